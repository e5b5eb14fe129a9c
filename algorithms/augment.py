"""hsigan:augment"""
from qgis.core import QgsProcessingOutputNumber, QgsProcessingParameterFileDestination

from .base import HsiGanAlgorithm
from .labels_style import categorized_colours, refuse_feature_id
from ..hsigan_qgis.config import AugmentConfig

class AugmentAlgorithm(HsiGanAlgorithm):
    NAME, LABEL, CONFIG = "augment", "Augment training samples (conditional WGAN-GP)", AugmentConfig
    HELP = ("Collects the labelled pixels of a hyperspectral raster (P×P patches around each), trains a "
            "class-conditional WGAN-GP on them and adds COUNT_PER_CLASS synthetic labelled patches per class, "
            "each flagged synthetic. Writes a sample file (.hsamples: a zip of metadata.json and .npy arrays, "
            "no pickle, patches in the raster's units) that <i>Train classifier</i> takes as SAMPLES instead of "
            "raster + labels. The optional report plots real against synthetic spectra per class (mean ± std) "
            "and gives fidelity figures: the spectral angle between real and synthetic class means (0° = same "
            "shape) and how well a logistic regression tells real from synthetic (50% = indistinguishable). "
            "Typical: COUNT_PER_CLASS 1-4× the real pixels per class, GAN_STEPS 300-2000 (minutes on a CPU). "
            "<b>Outputs</b>: the sample file, the report (HTML + JSON), REAL_SAMPLES, SYNTHETIC_SAMPLES, "
            "SPECTRAL_ANGLE (degrees) and SEPARABILITY (%).")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_raster_and_labels("labels")
        self.add_options()
        self.add_field(QgsProcessingParameterFileDestination, "output", "HSI-GAN samples (*.hsamples)")
        self.add_field(QgsProcessingParameterFileDestination, "output_report", "HTML (*.html)", optional=True,
                       createByDefault=False)
        for name, label in (("REAL_SAMPLES", "Real samples"), ("SYNTHETIC_SAMPLES", "Synthetic samples"),
                            ("SPECTRAL_ANGLE", "Mean spectral angle real/synthetic (degrees)"),
                            ("SEPARABILITY", "Real-vs-synthetic classifier accuracy (%)")):
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def execute(self, parameters, context, feedback, engine_feedback):
        from ..hsigan_qgis.augment import augment
        from ..hsigan_qgis.outputs import report_files

        report = self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or ""
        self.check_written(parameters, context, [("OUTPUT", self.parameterAsFileOutput(parameters, "OUTPUT", context))]
                           + (report_files(report) if report else []), ("INPUT", "LABELS"))
        raster = self.parameterAsRasterLayer(parameters, "INPUT", context)
        layer = self.parameterAsVectorLayer(parameters, "LABELS", context)
        labels_path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, "LABELS", context, ["gpkg", "shp"], "gpkg", feedback)
        class_field = self.parameterAsString(parameters, "CLASS_FIELD", context)
        refuse_feature_id(layer, class_field)
        values = self.option_values(parameters, context)
        cfg = AugmentConfig(input=raster.source(), labels=labels_path + (f"|layername={layer_name}" if layer_name else ""),
                            class_field=class_field, class_colours=categorized_colours(layer, class_field),
                            output=self.parameterAsFileOutput(parameters, "OUTPUT", context),
                            output_report=self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or "",
                            **values)
        result = augment(cfg, engine_feedback)
        return {"OUTPUT": result.output, "OUTPUT_REPORT": result.output_report, "REAL_SAMPLES": result.real_samples,
                "SYNTHETIC_SAMPLES": result.synthetic_samples, "SPECTRAL_ANGLE": result.spectral_angle,
                "SEPARABILITY": result.separability}
