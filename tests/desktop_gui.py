"""Drives QGIS's own Processing dialogs (GUI classes, offscreen display) as an analyst would, and prints
what they did as JSON. Run by tests/test_desktop_gui.py in a child process: a GUI QgsApplication cannot
share a process with the headless one of the other tests.

    python tests/desktop_gui.py OUT_DIR SCENARIO

Scenarios: dialogs (each algorithm's dialog), batch (classify as batch), model (the shipped model's
dialog). Message boxes are recorded instead of shown (a modal box would wait for a click that never
comes): the JSON lists them as warnings."""
import faulthandler
import json
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, "/usr/share/qgis/python/plugins"]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
faulthandler.dump_traceback_later(int(os.environ.get("HSIGAN_GUI_TIMEOUT", "500")), exit=True)

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer  # noqa: E402
from qgis.PyQt.QtCore import QObject  # noqa: E402
from qgis.PyQt.QtWidgets import QMainWindow, QMessageBox, QTextEdit  # noqa: E402

SAMPLE = os.path.join(ROOT, "sample_data")
RASTER = os.path.join(SAMPLE, "salinas_a.tif")
LABELS = os.path.join(SAMPLE, "salinas_a_train.gpkg")
REFERENCE = os.path.join(SAMPLE, "salinas_a_reference.gpkg")
MODEL3 = os.path.join(ROOT, "qgis_models", "hsigan_pipeline.model3")
QUICK = {"EPOCHS": 2, "GAN": 0, "SAMPLES_PER_CLASS": 10, "PATCH_SIZE": 3, "SEED": 0}
WARNINGS = []
# a failure in the dialog's log: an error word, a traceback or Processing's "not correctly generated"
# (not the plural: help text and the head's log speak of "standard errors")
ERROR = re.compile(r"\berror\b|traceback|not correctly generated", re.IGNORECASE)


class Iface(QObject):
    """What Processing's dialogs ask of QGIS's main window: a real window, canvas and message bar."""

    def __init__(self):
        super().__init__()
        from qgis.gui import QgsMapCanvas, QgsMessageBar
        self.window = QMainWindow()
        self.canvas = QgsMapCanvas(self.window)
        self.bar = QgsMessageBar(self.window)

    def mainWindow(self):  # noqa: N802
        return self.window

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def messageBar(self):  # noqa: N802
        return self.bar

    def activeLayer(self):  # noqa: N802
        return None

    def browserModel(self):  # noqa: N802
        return None


def record_message_boxes():
    def recorder(kind, answer):
        def box(parent, title, text, *args, **kwargs):
            WARNINGS.append(f"{kind}: {title}: {text}")
            return answer
        return box
    QMessageBox.warning = recorder("warning", QMessageBox.Ok)
    QMessageBox.critical = recorder("critical", QMessageBox.Ok)
    QMessageBox.question = recorder("question", QMessageBox.No)
    QMessageBox.information = recorder("information", QMessageBox.Ok)


def start():
    app = QgsApplication([], True)
    app.initQgis()
    import qgis.utils
    qgis.utils.iface = Iface()  # before processing.gui imports it
    record_message_boxes()
    from processing.core.Processing import Processing
    from processing.core.ProcessingConfig import ProcessingConfig
    Processing.initialize()
    ProcessingConfig.setSettingValue(ProcessingConfig.KEEP_DIALOG_OPEN, True)  # read its log after the run
    from hsigan_qgis import plugin_package
    provider = plugin_package.provider()
    QgsApplication.processingRegistry().addProvider(provider)
    return app, provider


def log_text(dialog):
    return "\n".join(w.toPlainText() for w in dialog.findChildren(QTextEdit))


def bar_messages(dialog):
    from qgis.gui import QgsMessageBar
    texts = []
    for bar in dialog.findChildren(QgsMessageBar):
        for item in bar.items():
            texts.append(f"{item.title()} {item.text()}".strip())
    return texts


def run_dialog(app, dialog, timeout=300):
    """Press Run and wait (with the event loop turning) until the algorithm finished; returns its
    (success, results) or (None, {}) when it never started (a message box refused the parameters)."""
    finished = []
    dialog.seen = {"log": "", "bar": []}

    def on_finished(ok, results):  # read the dialog now: it may close itself next
        dialog.seen.update(log=log_text(dialog), bar=bar_messages(dialog))
        finished.append((ok, dict(results)))
    dialog.algorithmFinished.connect(on_finished)
    boxes = len(WARNINGS)
    dialog.runAlgorithm()
    deadline = time.time() + timeout
    while not finished and time.time() < deadline:
        if len(WARNINGS) > boxes and dialog.runButton().isEnabled():
            return None, {}
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()
    if not finished:
        dialog.seen.update(log=log_text(dialog), bar=bar_messages(dialog))
        if "execution failed" in dialog.seen["log"].lower():
            return False, {}
        raise TimeoutError(f"{dialog.algorithm().id()} did not finish in {timeout} s")
    return finished[0]


def close(dialog):
    try:
        dialog.close()
    except RuntimeError:  # it closed (and deleted) itself after a successful run
        pass


def layer_summary(project):
    """Loaded layers from the top of the layer tree down: name, renderer type and palette labels."""
    out = []
    for node in project.layerTreeRoot().findLayers():
        layer = node.layer()
        renderer = layer.renderer()
        entry = {"name": layer.name(), "source": layer.source(), "renderer": renderer.type() if renderer else None}
        if renderer is not None and renderer.type() == "paletted":
            entry["labels"] = [c.label for c in renderer.classes()]
            entry["colours"] = [c.color.name() for c in renderer.classes()]
        out.append(entry)
    return out


def dialog_for(algorithm_id, parameters=None):
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    import processing
    if isinstance(algorithm_id, str):
        return processing.createAlgorithmDialog(algorithm_id, parameters or {})
    dialog = AlgorithmDialog(algorithm_id.create(), parent=None)  # as the modeler does: the dialog owns it
    dialog.setParameters(parameters or {})
    return dialog


def shown_values(dialog):
    """The parameters as the dialog would run them (what the widgets show)."""
    values = dialog.createProcessingParameters()
    return {k: (v.source() if hasattr(v, "source") else str(v)) for k, v in values.items()}


def project_layers():
    project = QgsProject.instance()
    project.removeAllMapLayers()
    raster = QgsRasterLayer(RASTER, "salinas_a")
    labels = QgsVectorLayer(LABELS, "training labels", "ogr")
    project.addMapLayers([raster, labels])
    return project, raster, labels


def scenario_dialogs(app, out):
    project, raster, labels = project_layers()
    report = {}
    # Train: the dialog preselects the project's raster and labels (required inputs)
    dialog = dialog_for("hsigan:train")
    preset = shown_values(dialog)
    report["train_preselected"] = {k: preset.get(k) for k in ("INPUT", "LABELS", "CLASS_FIELD", "OUTPUT_MODEL",
                                                              "SYNTHETIC_RATIO", "GAN", "GAN_STEPS")}
    samples_dialog = dialog_for("hsigan:train_samples", {"SAMPLES": os.path.join(out, "any.hsamples")})
    report["train_samples_gan"] = shown_values(samples_dialog).get("GAN")
    close(samples_dialog)
    from qgis.core import QgsProcessingParameterDefinition
    report["train_optional"] = [p.name() for p in dialog.algorithm().parameterDefinitions()
                                if p.flags() & QgsProcessingParameterDefinition.FlagOptional]
    # a temporary model file is refused before anything runs
    dialog.setParameters(dict(QUICK, INPUT=raster, LABELS=labels, CLASS_FIELD="class_id",
                              CLASS_NAME_FIELD="class_name", OUTPUT_MODEL="TEMPORARY_OUTPUT"))
    ok, _ = run_dialog(app, dialog)
    report["train_temporary"] = {"ran": ok, "warnings": list(WARNINGS)}
    WARNINGS.clear()
    close(dialog)
    model = os.path.join(out, "dialog.hsigan")
    runs = {
        "hsigan:train": dict(QUICK, INPUT=raster, LABELS=labels, CLASS_FIELD="class_id",
                             CLASS_NAME_FIELD="class_name", OUTPUT_MODEL=model),
        "hsigan:augment": {"INPUT": raster, "LABELS": labels, "CLASS_FIELD": "class_name", "COUNT_PER_CLASS": 5,
                           "SAMPLES_PER_CLASS": 10, "PATCH_SIZE": 3, "GAN_STEPS": 2,
                           "OUTPUT": os.path.join(out, "dialog.hsamples")},
        "hsigan:train_samples": dict(QUICK, SAMPLES=os.path.join(out, "dialog.hsamples"),
                                     OUTPUT_MODEL=os.path.join(out, "from_samples.hsigan")),
        "hsigan:classify": {"INPUT": raster, "MODEL": model, "OUTPUT": os.path.join(out, "a_map.tif"),
                            "OUTPUT_CONFIDENCE": os.path.join(out, "b_confidence.tif")},
        "hsigan:assess": {"INPUT": os.path.join(out, "a_map.tif"), "REFERENCE": REFERENCE,
                          "CLASS_FIELD": "class_id", "OUTPUT_REPORT": os.path.join(out, "accuracy.html")},
        "hsigan:check": {},
    }
    for algorithm_id, parameters in runs.items():
        dialog = dialog_for(algorithm_id, parameters)
        ok, results = run_dialog(app, dialog)
        print(algorithm_id, ok, file=sys.stderr)
        report[algorithm_id] = {"ok": ok, "results": {k: str(v) for k, v in results.items()},
                                "warnings": list(WARNINGS) + dialog.seen["bar"],
                                "log_errors": [line for line in dialog.seen["log"].splitlines() if ERROR.search(line)]}
        WARNINGS.clear()
        close(dialog)
    report["layers"] = layer_summary(project)
    return report


def scenario_batch(app, out):
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from processing.tools import dataobjects
    from qgis.core import QgsApplication as App
    project, raster, labels = project_layers()
    model = os.path.join(out, "batch.hsigan")
    import processing
    processing.run("hsigan:train", dict(QUICK, INPUT=RASTER, LABELS=LABELS, CLASS_FIELD="class_name",
                                        OUTPUT_MODEL=model))
    project.removeMapLayer(labels.id())
    algorithm = App.processingRegistry().createAlgorithmById("hsigan:classify")
    dialog = BatchAlgorithmDialog(algorithm, parent=None)
    panel = dialog.mainWidget()
    context = dataobjects.createContext()
    rows = [(RASTER, os.path.join(out, "row1_map.tif"), ""), (RASTER, os.path.join(out, "row2_map.tif"),
                                                              os.path.join(out, "row2_zconf.tif"))]
    while panel.batchRowCount() < len(rows):
        panel.addRow()
    while panel.batchRowCount() > len(rows):
        panel.tblParameters.setRowCount(panel.tblParameters.rowCount() - 1)
        panel.wrappers.pop()
    for row, (source, output, confidence) in enumerate(rows):
        values = {"INPUT": source, "MODEL": model}
        for name, value in values.items():
            panel.wrappers[row][panel.parameter_to_column[name]].setParameterValue(value, context)
        for name, value in (("OUTPUT", output), ("OUTPUT_CONFIDENCE", confidence)):
            panel.tblParameters.cellWidget(row + 1, panel.parameter_to_column[name]).setValue(value)
    panel.checkLoadLayersOnCompletion.setChecked(True)  # "Load layers on completion"
    dialog.runAlgorithm()
    for _ in range(20):
        app.processEvents()
    report = {"log": log_text(dialog), "warnings": list(WARNINGS) + bar_messages(dialog),
              "layers": layer_summary(project), "rows": rows}
    close(dialog)
    return report


def scenario_model(app, out):
    from qgis.core import QgsProcessingModelAlgorithm
    project, raster, labels = project_layers()
    reference = QgsVectorLayer(REFERENCE, "reference", "ogr")
    project.addMapLayer(reference)
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(MODEL3)
    valid, problems = model.validate()
    # as in the toolbox: the model file in the models folder, run from the model provider
    import shutil
    from processing.core.ProcessingConfig import ProcessingConfig
    from processing.modeler.ModelerUtils import ModelerUtils
    folder = os.path.join(out, "models")
    os.makedirs(folder, exist_ok=True)
    shutil.copy(MODEL3, folder)
    ProcessingConfig.setSettingValue(ModelerUtils.MODELS_FOLDER, folder)
    provider = QgsApplication.processingRegistry().providerById("model")
    provider.refreshAlgorithms()
    dialog = dialog_for("model:" + model.name())
    order = [p.name() for p in dialog.algorithm().parameterDefinitions()]
    outputs = {"train:Model": os.path.join(out, "model_run.hsigan"),
               "classify:Classification": os.path.join(out, "model_map.tif"),
               "assess:Accuracy report": os.path.join(out, "model_accuracy.html")}
    dialog.setParameters(dict({"raster": raster, "labels": labels, "labels_field": "class_name",
                               "reference": reference, "reference_field": "class_name",
                               "synthetic_per_class": 5, "real_per_class": 10, "gan_steps": 2, "epochs": 2},
                              **outputs))
    shown = shown_values(dialog)
    ok, results = run_dialog(app, dialog)
    report = {"valid": valid, "problems": problems, "order": order, "shown": shown, "ok": ok,
              "results": {k: str(v) for k, v in results.items() if not k.startswith("CHILD")},
              "output_labels": [p.description() for p in dialog.algorithm().destinationParameterDefinitions()],
              "warnings": list(WARNINGS) + dialog.seen["bar"], "layers": layer_summary(project)}
    close(dialog)
    return report


def main():
    out, scenario = sys.argv[1], sys.argv[2]
    app, provider = start()
    try:
        report = globals()["scenario_" + scenario](app, out)
    finally:
        QgsProject.instance().removeAllMapLayers()
    with open(os.path.join(out, scenario + ".json"), "w") as stream:
        json.dump(report, stream, indent=1, default=str)
    sys.stdout.flush()
    os._exit(0)  # skip QGIS's teardown of GUI objects held by Python (a known exit-time crash)


if __name__ == "__main__":
    main()
