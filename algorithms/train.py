"""hsigan:train (raster + labels) and hsigan:train_samples (a sample file from hsigan:augment)."""
from qgis.core import (QgsProcessing, QgsProcessingOutputLayerDefinition, QgsProcessingOutputNumber, QgsProperty,
                       QgsProcessingParameterField, QgsProcessingParameterFile,
                       QgsProcessingParameterFileDestination)

from .base import HsiGanAlgorithm
from ..hsigan_qgis.errors import InputError
from .labels_style import categorized_colours, class_names, refuse_feature_id
from ..hsigan_qgis.config import TrainConfig

TRAIN_SAMPLES_SKIP = ("label_rule", "pretrain_steps")  # a sample file holds pixels, not polygons or a scene


CLASS_NAME_FIELD_HELP = ("Optional text field holding each class's name when the class field holds integer "
                         "codes; the map's legend then reads the names. Without it, names come from the labels "
                         "layer's categorized style on the class field, else the codes.")


def desktop():
    """True inside desktop QGIS (its interface object exists), False in qgis_process and scripts."""
    import qgis.utils
    return getattr(qgis.utils, "iface", None) is not None


def is_temporary(value):
    """True for QGIS's 'Save to temporary file' (TEMPORARY_OUTPUT), also inside an output definition."""
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        if value.sink.propertyType() != QgsProperty.StaticProperty:
            return False
        value = value.sink.staticValue()
    return isinstance(value, str) and value.strip() == QgsProcessing.TEMPORARY_OUTPUT


class TrainAlgorithm(HsiGanAlgorithm):
    NAME, LABEL, CONFIG = "train", "Train classifier (GAN-augmented)", TrainConfig
    SKIP = ()
    HELP = ("Trains a spectral-spatial convolutional classifier on the pixels that the label polygons or "
            "points cover, helped by a GAN: <i>ssgan</i> (the default) makes the classifier the discriminator of "
            "a semi-supervised GAN that also learns from the raster's unlabelled pixels (in our three-scene "
            "benchmark, with the spectral kernel head, +4.3 OA over none on an agricultural scene and +1.4 on an "
            "urban one at 15 labels per class; about 3x the training time of none; with 20 labels or more in the "
            "median class it trains none first and keeps it where the validation pixels give the kernel head a "
            "weight of 0.5 or more, which the log says); <i>none</i> trains on the labelled pixels alone (the "
            "fastest); <i>wgan</i> "
            "adds labelled synthetic patches from a class-conditional WGAN-GP (helped on no scene); <i>spectral</i> "
            "adds patches whose centre spectrum is drawn from a Gaussian per class (no gain on the mean of scenes); <i>mixup</i> adds "
            "patches mixed afresh every epoch from two labelled patches of a class (with 15 labels per class +0.6 to +2.4 "
            "OA on an agricultural scene, -0.2 to +3.3 on an urban one, 2-3x the training time; use it when labels "
            "are few); <i>mixup-if-few</i> is mixup when the median class has at most 20 training pixels, otherwise "
            "none (the log says which). SPECTRAL_HEAD (on by default) "
            "fuses the network with an RBF kernel classifier on the labelled pixels' spectra (in our benchmark +1 to +3 OA on "
            "the mean of three scenes, most on an urban one; classification on a CPU computes 1.5-3x as much; "
            "SPECTRAL_HEAD_WINDOW lets it read local mean spectra, chosen on the validation blocks; with "
            "SAMPLES_PER_CLASS 0 the head then learns the validation pixels too: +1 OA on fresh seeds). CLASS_BALANCED (on by "
            "default) shows every class equally often, which keeps rare classes from being swamped. A share "
            "of spatial blocks is held out to report a validation OA and kappa (slightly optimistic when those "
            "blocks also chose the head's window or weight or the GAN mode; the log says so). Instead of raster + "
            "labels it can learn from SAMPLES, a file written by <i>Augment training samples</i> (then GAN "
            "none or wgan: ssgan trains as none, with a warning; <i>Train classifier from sample file</i> is the "
            "dialog for that). Class colours, and "
            "names for an integer class field, come from the labels layer's categorized style on the class "
            "field, otherwise a fixed palette; CLASS_NAME_FIELD names the classes of an integer class field. "
            "Typical: EPOCHS 30-100, PATCH_SIZE 5-9, SAMPLES_PER_CLASS 0 (all) or 15-50 to try few labels. "
            "Measured on Indian Pines (200 bands, 16 classes, 15 labelled pixels per class) on a 2-core CPU with "
            "one torch thread: 14 s of CPU time with GAN none; with both cores, the whole job 13 s with none, 23 s with "
            "mixup, 41 s with ssgan (README, Accuracy); "
            "MAX_STEPS caps the cost when labels are many. <b>Outputs</b>: the .hsigan model file "
            "for <i>Classify raster</i> (bands, wavelengths, classes, colours, normalisation, parameters, "
            "metrics), an optional HTML report (training curves, validation confusion matrix; JSON twin), and "
            "the numbers OA, AA, KAPPA and TRAIN_PIXELS for the modeler.")

    def initAlgorithm(self, config=None):  # noqa: N802
        # Raster, labels and class field are required in desktop QGIS's dialogs, so that QGIS preselects the
        # project's layers. Without the desktop (qgis_process, scripts) they stay optional: qgis_process
        # refuses a call that lacks a mandatory parameter before the algorithm sees it, and SAMPLES alone
        # (the sample-file path before hsigan:train_samples) must keep working there.
        self.add_raster_and_labels("labels", optional=not desktop())
        self.add(QgsProcessingParameterField("CLASS_NAME_FIELD", "Class name field (integer class fields)",
                                             parentLayerParameterName="LABELS",
                                             type=QgsProcessingParameterField.String, optional=True),
                 CLASS_NAME_FIELD_HELP)
        self.add(QgsProcessingParameterFile("SAMPLES", "Training samples (instead of raster + labels)",
                                            extension="hsamples", optional=True),
                 self.spec("samples").help + " Kept for scripts; in the dialog use <i>Train "
                 "classifier from sample file</i>.", advanced=True)
        self.add_common()

    def add_common(self):
        """What both training algorithms share: the numbers, the model file, the report and the figures."""
        self.add_options(skip=self.SKIP)
        self.add(QgsProcessingParameterFileDestination("OUTPUT_MODEL", "Model file", "HSI-GAN model (*.hsigan)"),
                 self.spec("output_model").help + " Give a path: a temporary file is deleted when "
                 "QGIS exits, so the dialog refuses one.")
        self.add(QgsProcessingParameterFileDestination("OUTPUT_REPORT", "Training report", "HTML (*.html)",
                                                       optional=True, createByDefault=False),
                 self.spec("output_report").help)
        for name, label in (("OA", "Validation overall accuracy (%)"), ("AA", "Validation average accuracy (%)"),
                            ("KAPPA", "Validation kappa"), ("TRAIN_PIXELS", "Training pixels")):
            self.addOutput(QgsProcessingOutputNumber(name, label))

    def checkParameterValues(self, parameters, context):  # noqa: N802
        if is_temporary(parameters.get("OUTPUT_MODEL")):
            return False, ("Model file (OUTPUT_MODEL): choose where to save the model; a temporary file is "
                           "deleted when QGIS exits")
        if self.parameterDefinition("INPUT") is None or not parameters.get("SAMPLES"):
            return super().checkParameterValues(parameters, context)
        # SAMPLES replaces raster + labels (how hsigan:train took a sample file before train_samples)
        for parameter in self.parameterDefinitions():
            if parameter.name() in ("INPUT", "LABELS", "CLASS_FIELD") and not parameters.get(parameter.name()):
                continue
            if not parameter.checkValueIsAcceptable(parameters.get(parameter.name()), context):
                return False, f"Incorrect parameter value for {parameter.description()} ({parameter.name()})"
        return self.check_options(parameters, context)

    def execute(self, parameters, context, feedback, engine_feedback):
        from ..hsigan_qgis.train import train

        from ..hsigan_qgis.outputs import report_files
        with_layers = self.parameterDefinition("INPUT") is not None
        report = self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or ""
        self.check_written(parameters, context, [("OUTPUT_MODEL", self.parameterAsFileOutput(
            parameters, "OUTPUT_MODEL", context))] + (report_files(report) if report else []),
            ("INPUT", "LABELS") if with_layers else ())
        raster = self.parameterAsRasterLayer(parameters, "INPUT", context) if with_layers else None
        layer = self.parameterAsVectorLayer(parameters, "LABELS", context) if with_layers else None
        labels_uri = ""
        if layer is not None:
            labels_path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                parameters, "LABELS", context, ["gpkg", "shp"], "gpkg", feedback)
            labels_uri = labels_path + (f"|layername={layer_name}" if layer_name else "")
        class_field = self.parameterAsString(parameters, "CLASS_FIELD", context) or "" if with_layers else ""
        name_field = self.parameterAsString(parameters, "CLASS_NAME_FIELD", context) or "" if with_layers else ""
        refuse_feature_id(layer, class_field)
        if name_field and layer is not None and layer.fields().indexOf(name_field) < 0:
            raise InputError("CLASS_NAME_FIELD", f"field '{name_field}' is not in the labels layer")
        values = self.option_values(parameters, context, skip=self.SKIP)
        cfg = TrainConfig(input=raster.source() if raster is not None else "", labels=labels_uri,
                          class_field=class_field, class_colours=categorized_colours(layer, class_field),
                          class_names=class_names(layer, class_field, name_field),
                          samples=self.parameterAsFile(parameters, "SAMPLES", context) or "",
                          output_model=self.parameterAsFileOutput(parameters, "OUTPUT_MODEL", context),
                          output_report=self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or "",
                          **values)
        result = train(cfg, engine_feedback)
        return {"OUTPUT_MODEL": result.output_model, "OUTPUT_REPORT": result.output_report, "OA": result.oa,
                "AA": result.aa, "KAPPA": result.kappa, "TRAIN_PIXELS": result.train_pixels}


class TrainFromSamplesAlgorithm(TrainAlgorithm):
    """The SAMPLES path of hsigan:train as its own dialog, with the sample file required."""
    NAME, LABEL = "train_samples", "Train classifier from sample file"
    SKIP = TRAIN_SAMPLES_SKIP
    HELP = ("Trains the spectral-spatial classifier of <i>Train classifier</i> from a training-sample file "
            "written by <i>Augment training samples</i> (.hsamples): its real samples train and validate "
            "(spatially disjoint blocks of their raster positions), its synthetic ones only train. GAN none "
            "(the default here) or wgan; ssgan needs the raster's unlabelled pixels, so use <i>Train "
            "classifier</i> for it. <b>Outputs</b>: the .hsigan model file for <i>Classify raster</i>, an "
            "optional HTML report (JSON twin), and the numbers OA, AA, KAPPA and TRAIN_PIXELS for the modeler.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add(QgsProcessingParameterFile("SAMPLES", "Training samples", extension="hsamples"),
                 self.spec("samples").help)
        self.add_common()
        self.parameterDefinition("GAN").setDefaultValue(list(self.spec("gan").choices).index("none"))
