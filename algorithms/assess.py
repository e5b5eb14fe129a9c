"""hsigan:assess"""
from qgis.core import QgsProcessingOutputNumber, QgsProcessingParameterFileDestination

from .base import HsiGanAlgorithm
from .labels_style import refuse_feature_id
from ..hsigan_qgis.config import AssessConfig


class AssessAlgorithm(HsiGanAlgorithm):
    NAME, LABEL, CONFIG = "assess", "Assess classification accuracy", AssessConfig
    NEEDS = ("rasterio", "scipy", "numpy")
    HELP = ("Compares a classification map with reference polygons or points that were <b>not</b> used for "
            "training (ideally spatially apart from them) and reports overall accuracy (OA), average accuracy "
            "(AA), Cohen's kappa, per-class producer's and user's accuracy, F1 and the confusion matrix. "
            "<b>Outputs</b>: an HTML report (per-class table, shaded confusion matrix) with a JSON twin, and the "
            "numbers OA (%), AA (%), KAPPA and PIXELS for the modeler.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_raster_and_labels("reference")
        self.add_options()
        self.add_field(QgsProcessingParameterFileDestination, "output_report", "HTML (*.html)", optional=True)
        for name, label in (("OA", "Overall accuracy (%)"), ("AA", "Average accuracy (%)"), ("KAPPA", "Kappa"),
                            ("PIXELS", "Reference pixels assessed")):
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def execute(self, parameters, context, feedback, engine_feedback):
        from ..hsigan_qgis.assess import assess

        from ..hsigan_qgis.outputs import report_files
        report = self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or ""
        self.check_written(parameters, context, report_files(report) if report else [], ("INPUT", "REFERENCE"))
        raster = self.parameterAsRasterLayer(parameters, "INPUT", context)
        refuse_feature_id(self.parameterAsVectorLayer(parameters, "REFERENCE", context),
                          self.parameterAsString(parameters, "CLASS_FIELD", context))
        path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, "REFERENCE", context, ["gpkg", "shp"], "gpkg", feedback)
        cfg = AssessConfig(input=raster.source(), reference=path + (f"|layername={layer_name}" if layer_name else ""),
                           class_field=self.parameterAsString(parameters, "CLASS_FIELD", context),
                           output_report=self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or "",
                           **self.option_values(parameters, context))
        result = assess(cfg, engine_feedback)
        return {"OA": result.oa, "AA": result.aa, "KAPPA": result.kappa, "PIXELS": result.pixels,
                "OUTPUT_REPORT": result.output_report}
