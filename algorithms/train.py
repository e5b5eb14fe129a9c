"""hsigan:train"""
from qgis.core import (QgsProcessingOutputNumber, QgsProcessingParameterField, QgsProcessingParameterFile,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterRasterLayer,
                       QgsProcessingParameterVectorLayer, QgsProcessing)

from .base import HsiGanAlgorithm
from .labels_style import categorized_colours
from hsigan_qgis.config import TrainConfig

NUMBERS = [("SAMPLES_PER_CLASS", "samples_per_class", "Training pixels per class (0 = all)"),
           ("PATCH_SIZE", "patch_size", "Patch size (pixels, odd)"),
           ("EPOCHS", "epochs", "Epochs"),
           ("GAN", "gan", "GAN mode"),
           ("SYNTHETIC_RATIO", "synthetic_ratio", "Synthetic samples per real sample"),
           ("GAN_STEPS", "gan_steps", "GAN generator steps"),
           ("CLASS_BALANCED", "class_balanced", "Show every class equally often"),
           ("BATCH_SIZE", "batch_size", "Batch size"),
           ("LEARNING_RATE", "learning_rate", "Learning rate"),
           ("VALIDATION_FRACTION", "validation_fraction", "Validation share of spatial blocks"),
           ("BLOCK_SIZE", "block_size", "Validation block size (pixels)"),
           ("LABEL_RULE", "label_rule", "Polygon rasterisation rule"),
           ("DEVICE", "device", "Device"),
           ("SEED", "seed", "Random seed")]


class TrainAlgorithm(HsiGanAlgorithm):
    NAME, LABEL, CONFIG = "train", "Train classifier (GAN-augmented)", TrainConfig
    HELP = ("Trains a spectral-spatial convolutional classifier on the pixels that the label polygons or "
            "points cover, helped by a GAN: <i>ssgan</i> (the default, best in our Indian Pines benchmark) "
            "makes the classifier the discriminator of a semi-supervised GAN that also learns from the "
            "raster's unlabelled pixels; <i>wgan</i> adds labelled synthetic patches from a class-conditional "
            "WGAN-GP; <i>none</i> trains on the labelled pixels alone (4-10x faster). CLASS_BALANCED (on by "
            "default) shows every class equally often, which keeps rare classes from being swamped. A share "
            "of spatial blocks is held out to report an honest validation OA and kappa. Instead of raster + "
            "labels it can learn from SAMPLES, a file written by <i>Augment training samples</i> (then GAN "
            "none or wgan). Class colours come from the labels layer's categorized style on the class field, "
            "otherwise a fixed palette. Typical: EPOCHS 30-100, PATCH_SIZE 5-9, SAMPLES_PER_CLASS 0 (all) or "
            "15-50 to try few labels; a few minutes on a 2-core CPU. <b>Outputs</b>: the .hsigan model file "
            "for <i>Classify raster</i> (bands, wavelengths, classes, colours, normalisation, parameters, "
            "metrics), an optional HTML report (training curves, validation confusion matrix; JSON twin), and "
            "the numbers OA, AA, KAPPA and TRAIN_PIXELS for the modeler.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add(QgsProcessingParameterRasterLayer("INPUT", "Hyperspectral raster", optional=True),
                 self.field_meta("input")[1]["help"])
        self.add(QgsProcessingParameterVectorLayer("LABELS", "Label polygons or points",
                                                   [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint],
                                                   optional=True),
                 self.field_meta("labels")[1]["help"])
        self.add(QgsProcessingParameterField("CLASS_FIELD", "Class field", parentLayerParameterName="LABELS",
                                             type=QgsProcessingParameterField.Any, optional=True),
                 self.field_meta("class_field")[1]["help"])
        self.add(QgsProcessingParameterFile("SAMPLES", "Training samples (instead of raster + labels)",
                                            extension="hsamples", optional=True),
                 self.field_meta("samples")[1]["help"])
        for name, field, label in NUMBERS:
            self.add_from_config(name, field, label)
        self.add(QgsProcessingParameterFileDestination("OUTPUT_MODEL", "Model file", "HSI-GAN model (*.hsigan)"),
                 self.field_meta("output_model")[1]["help"])
        self.add(QgsProcessingParameterFileDestination("OUTPUT_REPORT", "Training report", "HTML (*.html)",
                                                       optional=True, createByDefault=False),
                 self.field_meta("output_report")[1]["help"])
        for name, label in (("OA", "Validation overall accuracy (%)"), ("AA", "Validation average accuracy (%)"),
                            ("KAPPA", "Validation kappa"), ("TRAIN_PIXELS", "Training pixels")):
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def execute(self, parameters, context, feedback, engine_feedback):
        from hsigan_qgis.train_job import train

        from hsigan_qgis.report import report_files
        report = self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or ""
        self.check_written(parameters, context, [("OUTPUT_MODEL", self.parameterAsFileOutput(
            parameters, "OUTPUT_MODEL", context))] + (report_files(report) if report else []), ("INPUT", "LABELS"))
        raster = self.parameterAsRasterLayer(parameters, "INPUT", context)
        layer = self.parameterAsVectorLayer(parameters, "LABELS", context)
        labels_uri = ""
        if layer is not None:
            labels_path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                parameters, "LABELS", context, ["gpkg", "shp"], "gpkg", feedback)
            labels_uri = labels_path + (f"|layername={layer_name}" if layer_name else "")
        class_field = self.parameterAsString(parameters, "CLASS_FIELD", context) or ""
        values = {field: self.value_of(parameters, name, field, context) for name, field, _ in NUMBERS}
        cfg = TrainConfig(input=raster.source() if raster is not None else "", labels=labels_uri,
                          class_field=class_field, class_colours=categorized_colours(layer, class_field),
                          samples=self.parameterAsFile(parameters, "SAMPLES", context) or "",
                          output_model=self.parameterAsFileOutput(parameters, "OUTPUT_MODEL", context),
                          output_report=self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or "",
                          **values)
        result = train(cfg, engine_feedback)
        return {"OUTPUT_MODEL": result["output_model"], "OUTPUT_REPORT": result["output_report"],
                "OA": result["oa"], "AA": result["aa"], "KAPPA": result["kappa"],
                "TRAIN_PIXELS": result["train_pixels"]}
