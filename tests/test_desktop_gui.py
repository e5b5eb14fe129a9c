"""QGIS's own dialogs, as an analyst uses them: each algorithm's dialog, the batch dialog and the shipped
model's dialog, with a GUI QgsApplication on an offscreen display (tests/desktop_gui.py, in a child process
with a time limit). Asserts no warning or message box, the outputs, their layer names and styles."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.qgis
DRIVER = os.path.join(ROOT, "tests", "desktop_gui.py")
LIMIT = 420


def drive(scenario, folder):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_WAIT_POLICY="PASSIVE",
               HSIGAN_GUI_TIMEOUT=str(LIMIT - 20), XDG_RUNTIME_DIR=str(folder / "xdg"),
               HOME=str(folder / "home"))  # a fresh QGIS profile
    os.makedirs(folder / "xdg", mode=0o700, exist_ok=True)
    done = subprocess.run([sys.executable, DRIVER, str(folder), scenario], capture_output=True, text=True,
                          timeout=LIMIT, env=env)
    report = folder / f"{scenario}.json"
    assert done.returncode == 0 and report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(report.read_text())


def test_each_algorithm_dialog_runs_without_warning(tmp_path):
    report = drive("dialogs", tmp_path)
    preset = report["train_preselected"]  # required inputs: the project's layers are preselected
    assert preset["INPUT"].startswith("salinas_a") and preset["LABELS"].startswith("training_labels")
    assert float(preset["SYNTHETIC_RATIO"]) == 0  # the widget shows the default, 0 = automatic
    from hsigan_qgis.config import GAN_MODES
    assert GAN_MODES[int(preset["GAN"])] == "ssgan"  # the GAN list preselects the default (round 14)
    assert int(preset["GAN_STEPS"]) == 0  # automatic: 550 for ssgan
    assert GAN_MODES[int(report["train_samples_gan"])] == "none"  # a sample file has no unlabelled pixels
    assert not {"INPUT", "LABELS", "CLASS_FIELD"} & set(report["train_optional"])  # no "[optional]"
    assert {"SAMPLES", "CLASS_NAME_FIELD"} <= set(report["train_optional"])
    refused = report["train_temporary"]
    assert refused["ran"] is None and len(refused["warnings"]) == 1
    assert "Model file (OUTPUT_MODEL): choose where to save the model" in refused["warnings"][0]
    for algorithm in ("hsigan:train", "hsigan:augment", "hsigan:train_samples", "hsigan:classify",
                      "hsigan:assess", "hsigan:check"):
        run = report[algorithm]
        assert run["ok"] is True, (algorithm, run)
        assert run["warnings"] == [] and run["log_errors"] == [], (algorithm, run)
    assert report["hsigan:train"]["results"]["OUTPUT_MODEL"] == str(tmp_path / "dialog.hsigan")
    assert set(report["hsigan:classify"]["results"]) == {"OUTPUT", "OUTPUT_CONFIDENCE"}
    assert float(report["hsigan:assess"]["results"]["PIXELS"]) > 1000
    layers = report["layers"]
    assert [layer["name"] for layer in layers[:2]] == ["salinas_a — classification (dialog)",
                                                        "salinas_a — confidence (dialog)"]
    classes, confidence = layers[0], layers[1]
    assert classes["renderer"] == "paletted" and confidence["renderer"] == "singlebandgray"
    from hsigan_qgis.model_file import load
    metadata = load(str(tmp_path / "dialog.hsigan"), with_tensors=False)[0]
    # integer class field + class name field: the legend reads names, not 1, 10, 11 ...
    assert classes["labels"] == metadata["class_names"] and "Lettuce_romaine_4wk" in classes["labels"]
    assert classes["colours"] == metadata["class_colours"]
    # the dialog's defaults include the automatic kernel head window (patch 3: 1x1 or 3x3), chosen and recorded
    head = metadata["spectral_head"]
    assert head["window"] in (0, 1) and head["window_chosen"].startswith("automatic, fused model over ")


def test_batch_dialog_with_an_empty_confidence_reports_no_false_error(tmp_path):
    report = drive("batch", tmp_path)
    log = report["log"]
    assert log.count("correctly executed") == 2, log[-2000:]
    assert "not correctly generated" not in log and "failed" not in log.lower(), log[-2000:]
    assert report["warnings"] == []
    layers = [(layer["name"], layer["renderer"], os.path.basename(layer["source"])) for layer in report["layers"]]
    assert layers[:3] == [("salinas_a — classification (batch)", "paletted", "row2_map.tif"),
                          ("salinas_a — confidence (batch)", "singlebandgray", "row2_zconf.tif"),
                          ("salinas_a — classification (batch)", "paletted", "row1_map.tif")], layers
    assert not os.path.exists(tmp_path / "row1_zconf.tif")


def test_model_dialog_validates_and_runs(tmp_path):
    report = drive("model", tmp_path)
    assert report["valid"] is True and report["problems"] == []
    order = report["order"]
    assert order.index("labels") < order.index("labels_field") and order.index("reference") < order.index("reference_field")
    assert report["shown"]["labels_field"] == "class_name"  # not reset to 'fid' when the layer was set
    assert report["output_labels"] and all(report["output_labels"])
    assert report["ok"] is True and report["warnings"] == []
    assert report["results"]["classify:Classification"] == str(tmp_path / "model_map.tif")
    assert os.path.isfile(tmp_path / "model_run.hsigan") and os.path.isfile(tmp_path / "model_accuracy.json")
    names = [layer["name"] for layer in report["layers"]]
    assert names[0] == "salinas_a — classification (model_run)", names
    assert report["layers"][0]["renderer"] == "paletted"
