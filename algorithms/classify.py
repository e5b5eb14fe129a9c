"""hsigan:classify"""
from qgis.core import (QgsProcessingParameterFile, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString)

from .base import HsiGanAlgorithm
from .destinations import drop_unwritten, optional_output_layer
from .styling import layer_name, style_on_load
from ..hsigan_qgis.config import ClassifyConfig


class ClassifyAlgorithm(HsiGanAlgorithm):
    NAME, LABEL, CONFIG = "classify", "Classify raster", ClassifyConfig
    HELP = ("Classifies every pixel of a hyperspectral raster with a model from <i>Train classifier</i>, tile "
            "by tile (memory depends on the tile size, not the raster size), on the GPU when one is available. "
            "The map keeps the raster's CRS, extent and pixel size, holds the model's class ids (0 = nodata) "
            "with class names and colours, and optionally a confidence raster. Works from the batch dialog "
            "(one model, many rasters). Typical: TILE_SIZE 0 (automatic; 128 if memory runs short), BATCH_SIZE 4 "
            "on a CPU, more on a GPU. <b>Outputs</b>: the classification raster (paletted style with the "
            "model's class names and colours, also as a .qml sidecar), optionally the confidence raster (grey, "
            "0-1) and the per-class probabilities; loaded into the project styled.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_field(QgsProcessingParameterRasterLayer, "input")
        self.add_field(QgsProcessingParameterFile, "model", extension="hsigan")
        self.add_options()
        self.add_field(QgsProcessingParameterString, "dask", defaultValue="", optional=True)
        self.add_field(QgsProcessingParameterRasterDestination, "output")
        self.add_field(QgsProcessingParameterRasterDestination, "output_confidence", optional=True,
                       createByDefault=False)
        self.add_field(QgsProcessingParameterRasterDestination, "output_probabilities", optional=True,
                       createByDefault=False)

    def execute(self, parameters, context, feedback, engine_feedback):
        from ..hsigan_qgis.classify import classify

        raster = self.parameterAsRasterLayer(parameters, "INPUT", context)
        values = self.option_values(parameters, context)
        cfg = ClassifyConfig(input=raster.source(), model=self.parameterAsFile(parameters, "MODEL", context),
                             output=self.parameterAsOutputLayer(parameters, "OUTPUT", context),
                             output_confidence=optional_output_layer(self, parameters, "OUTPUT_CONFIDENCE", context),
                             output_probabilities=optional_output_layer(self, parameters, "OUTPUT_PROBABILITIES", context),
                             dask=self.parameterAsString(parameters, "DASK", context) or "", **values)
        result = classify(cfg, engine_feedback)
        drop_unwritten(context)
        run = {}  # shared by this run's outputs: the map goes above its confidence
        for path, kind in ((result.output, "classes"), (result.output_confidence, "confidence")):
            if path:
                style_on_load(context, path, kind, result, layer_name(cfg.input, cfg.model, kind), run)
        # like QGIS's own algorithms: an optional output left empty is not in the results
        return {name: path for name, path in (("OUTPUT", result.output), ("OUTPUT_CONFIDENCE", result.output_confidence),
                                              ("OUTPUT_PROBABILITIES", result.output_probabilities)) if path}
