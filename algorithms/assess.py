"""hsigan:assess"""
from qgis.core import (QgsProcessing, QgsProcessingOutputNumber, QgsProcessingParameterField,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterVectorLayer)

from .base import HsiGanAlgorithm
from hsigan_qgis.config import AssessConfig


class AssessAlgorithm(HsiGanAlgorithm):
    NAME, LABEL, CONFIG = "assess", "Assess classification accuracy", AssessConfig
    NEEDS = ("rasterio", "scipy", "numpy")
    HELP = ("Compares a classification map with reference polygons or points that were <b>not</b> used for "
            "training (ideally spatially apart from them) and reports overall accuracy (OA), average accuracy "
            "(AA), Cohen's kappa, per-class producer's and user's accuracy, F1 and the confusion matrix. "
            "<b>Outputs</b>: an HTML report (per-class table, shaded confusion matrix) with a JSON twin, and the "
            "numbers OA (%), AA (%), KAPPA and PIXELS for the modeler.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add(QgsProcessingParameterRasterLayer("INPUT", "Classification map"), self.field_meta("input")[1]["help"])
        self.add(QgsProcessingParameterVectorLayer("REFERENCE", "Reference polygons or points",
                                                   [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint]),
                 self.field_meta("reference")[1]["help"])
        self.add(QgsProcessingParameterField("CLASS_FIELD", "Class field", parentLayerParameterName="REFERENCE",
                                             type=QgsProcessingParameterField.Any),
                 self.field_meta("class_field")[1]["help"])
        self.add_from_config("LABEL_RULE", "label_rule", "Polygon rasterisation rule")
        self.add(QgsProcessingParameterFileDestination("OUTPUT_REPORT", "Accuracy report", "HTML (*.html)",
                                                       optional=True),
                 self.field_meta("output_report")[1]["help"])
        for name, label in (("OA", "Overall accuracy (%)"), ("AA", "Average accuracy (%)"), ("KAPPA", "Kappa"),
                            ("PIXELS", "Reference pixels assessed")):
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def execute(self, parameters, context, feedback, engine_feedback):
        from hsigan_qgis.assessment import assess

        from hsigan_qgis.report import report_files
        report = self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or ""
        self.check_written(parameters, context, report_files(report) if report else [], ("INPUT", "REFERENCE"))
        raster = self.parameterAsRasterLayer(parameters, "INPUT", context)
        path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, "REFERENCE", context, ["gpkg", "shp"], "gpkg", feedback)
        cfg = AssessConfig(input=raster.source(), reference=path + (f"|layername={layer_name}" if layer_name else ""),
                           class_field=self.parameterAsString(parameters, "CLASS_FIELD", context),
                           output_report=self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or "",
                           label_rule=self.value_of(parameters, "LABEL_RULE", "label_rule", context))
        result = assess(cfg, engine_feedback)
        return {"OA": result["oa"], "AA": result["aa"], "KAPPA": result["kappa"], "PIXELS": result["pixels"],
                "OUTPUT_REPORT": result.get("output_report")}
