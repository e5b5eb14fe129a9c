"""hsigan:classify"""
from qgis.core import (QgsProcessingParameterFile, QgsProcessingParameterRasterDestination,
                       QgsProcessingParameterRasterLayer, QgsProcessingParameterString)

from .base import HsiGanAlgorithm
from .styling import style_on_load
from hsigan_qgis.config import ClassifyConfig

OPTIONS = [("TILE_SIZE", "tile_size", "Tile size (pixels)"), ("BATCH_SIZE", "batch_size", "Tiles per batch"),
           ("COG", "cog", "Cloud-optimised GeoTIFF"), ("DEVICE", "device", "Device")]


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
        self.add(QgsProcessingParameterRasterLayer("INPUT", "Hyperspectral raster"), self.field_meta("input")[1]["help"])
        self.add(QgsProcessingParameterFile("MODEL", "Model file", extension="hsigan"), self.field_meta("model")[1]["help"])
        for name, field, label in OPTIONS:
            self.add_from_config(name, field, label)
        self.add(QgsProcessingParameterString("DASK", "Dask cluster (tcp://host:port or local:N)", defaultValue="",
                                              optional=True), self.field_meta("dask")[1]["help"], advanced=True)
        self.add(QgsProcessingParameterRasterDestination("OUTPUT", "Classification"), self.field_meta("output")[1]["help"])
        self.add(QgsProcessingParameterRasterDestination("OUTPUT_CONFIDENCE", "Confidence", optional=True,
                                                         createByDefault=False),
                 self.field_meta("output_confidence")[1]["help"])
        self.add(QgsProcessingParameterRasterDestination("OUTPUT_PROBABILITIES", "Class probabilities",
                                                         optional=True, createByDefault=False),
                 self.field_meta("output_probabilities")[1]["help"], advanced=True)

    def execute(self, parameters, context, feedback, engine_feedback):
        from hsigan_qgis.inference import classify

        raster = self.parameterAsRasterLayer(parameters, "INPUT", context)
        values = {field: self.value_of(parameters, name, field, context) for name, field, _ in OPTIONS}
        cfg = ClassifyConfig(input=raster.source(), model=self.parameterAsFile(parameters, "MODEL", context),
                             output=self.parameterAsOutputLayer(parameters, "OUTPUT", context),
                             output_confidence=self.parameterAsOutputLayer(parameters, "OUTPUT_CONFIDENCE", context) or "",
                             output_probabilities=self.parameterAsOutputLayer(parameters, "OUTPUT_PROBABILITIES", context) or "",
                             dask=self.parameterAsString(parameters, "DASK", context) or "", **values)
        result = classify(cfg, engine_feedback)
        style_on_load(context, result["output"], "classes", result)
        if result["output_confidence"]:
            style_on_load(context, result["output_confidence"], "confidence", result)
        return {"OUTPUT": result["output"], "OUTPUT_CONFIDENCE": result["output_confidence"],
                "OUTPUT_PROBABILITIES": result["output_probabilities"]}
