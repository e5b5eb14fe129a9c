"""What an analyst meets in QGIS: documented algorithms, the shipped modeler model, batch runs, styled
outputs, colours from the labels' style, cancel, the missing-torch message, hsigan:check and the CLI."""
import json
import os
import subprocess
import textwrap
import time

import numpy as np
import pytest
import rasterio

from conftest import QGIS_PROCESS, RASTER, REFERENCE, ROOT, TRAIN_LABELS, sample_cube, write_raster

MODEL3 = os.path.join(ROOT, "qgis_models", "hsigan_pipeline.model3")


def _algorithms():
    from qgis.core import QgsApplication
    return QgsApplication.processingRegistry().providerById("hsigan").algorithms()


@pytest.mark.qgis
def test_every_algorithm_is_documented_and_flags_advanced(qgis_app):
    from dataclasses import fields
    from qgis.core import QgsProcessingParameterDefinition
    algorithms = {a.name(): a for a in _algorithms()}
    assert set(algorithms) == {"augment", "train", "train_samples", "classify", "assess", "check", "export_onnx",
                               "install_torch"}
    for algorithm in algorithms.values():
        assert algorithm.group() and algorithm.groupId() and len(algorithm.displayName()) > 8
        text = algorithm.shortHelpString()
        assert "Outputs" in text, algorithm.name()
        for parameter in algorithm.parameterDefinitions():
            assert parameter.description() in text, (algorithm.name(), parameter.name())
        if algorithm.CONFIG is None:
            continue
        advanced = {f.name for f in fields(algorithm.CONFIG) if f.metadata.get("advanced")}
        for parameter in algorithm.parameterDefinitions():
            flagged = bool(parameter.flags() & QgsProcessingParameterDefinition.FlagAdvanced)
            if parameter.name().lower() in advanced and (algorithm.name(), parameter.name()) != (
                    "train_samples", "SAMPLES"):  # there the sample file is the one main input
                assert flagged, (algorithm.name(), parameter.name())
    train = algorithms["train"]
    for name in ("BATCH_SIZE", "LEARNING_RATE", "GAN_STEPS"):
        assert train.parameterDefinition(name).flags() & QgsProcessingParameterDefinition.FlagAdvanced
    assert not train.parameterDefinition("EPOCHS").flags() & QgsProcessingParameterDefinition.FlagAdvanced


@pytest.mark.qgis
def test_outputs_are_declared_for_the_modeler(qgis_app):
    algorithms = {a.name(): a for a in _algorithms()}
    kinds = {name: {o.name(): o.type() for o in a.outputDefinitions()} for name, a in algorithms.items()}
    for name in ("OA", "AA", "KAPPA", "TRAIN_PIXELS"):
        assert kinds["train"][name] == "outputNumber"
    for name in ("OA", "AA", "KAPPA", "PIXELS"):
        assert kinds["assess"][name] == "outputNumber"
    for name in ("REAL_SAMPLES", "SYNTHETIC_SAMPLES", "SPECTRAL_ANGLE", "SEPARABILITY"):
        assert kinds["augment"][name] == "outputNumber"
    assert kinds["augment"]["OUTPUT"] == "outputFile" and kinds["train"]["OUTPUT_MODEL"] == "outputFile"
    assert kinds["classify"]["OUTPUT"] == "outputRaster" and kinds["assess"]["OUTPUT_REPORT"] == "outputHtml"


@pytest.mark.qgis
def test_shipped_model_chains_augment_train_classify_assess(tmp_path):
    text = open(MODEL3, encoding="utf-8").read()
    for algorithm in ("hsigan:augment", "hsigan:train", "hsigan:classify", "hsigan:assess"):
        assert algorithm in text
    out = {"train:Model": str(tmp_path / "m.hsigan"), "classify:Classification": str(tmp_path / "map.tif"),
           "assess:Accuracy report": str(tmp_path / "acc.html")}
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([QGIS_PROCESS, "--json", "run", MODEL3, "--", f"raster={RASTER}",
                           f"labels={TRAIN_LABELS}", "labels_field=class_name", f"reference={REFERENCE}",
                           "reference_field=class_name", "synthetic_per_class=10", "real_per_class=30",
                           "gan_steps=2", "epochs=3"] + [f"{k}={v}" for k, v in out.items()],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(done.stdout)["results"]
    assert results == out
    from hsigan_qgis.model_file import load
    metadata, _ = load(out["train:Model"], with_tensors=False)
    assert metadata["training"]["samples"]  # train learnt from augment's sample file
    with rasterio.open(out["classify:Classification"]) as dst:
        assert set(np.unique(dst.read(1)).tolist()) <= set(metadata["class_ids"])
    with open(out["assess:Accuracy report"][:-5] + ".json") as stream:
        assert stream and json.load(stream)["pixels"] > 1000


def _batch_rasters(tmp_path):
    cube, transform, crs = sample_cube()
    from rasterio.transform import Affine
    paths = [RASTER]
    for i, (r0, r1) in enumerate(((0, 40), (30, 83))):
        shifted = transform * Affine.translation(0, r0)
        paths.append(write_raster(tmp_path / f"part{i}.tif", np.ascontiguousarray(cube[:, r0:r1]), crs=crs,
                                  transform=shifted))
    return paths


@pytest.mark.qgis
def test_batch_of_three_rasters_loads_styled_layers(qgis_app, trained_model, tmp_path):
    """What BatchAlgorithmDialog.runAlgorithm does: one algorithm instance, per row the dialog's parameters
    (outputs as QgsProcessingOutputLayerDefinition to the project), a fresh context, run, then
    handleAlgorithmResults loads the outputs into the project."""
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects
    from qgis.core import (QgsApplication, QgsPalettedRasterRenderer, QgsProcessingFeedback,
                           QgsProcessingOutputLayerDefinition, QgsProject, QgsSingleBandGrayRenderer)
    project = QgsProject.instance()
    project.removeAllMapLayers()
    model, _ = trained_model
    from hsigan_qgis.model_file import load
    metadata, _ = load(model, with_tensors=False)
    algorithm = QgsApplication.processingRegistry().createAlgorithmById("hsigan:classify")
    feedback = QgsProcessingFeedback()
    outputs = []
    for i, raster in enumerate(_batch_rasters(tmp_path)):
        out, conf = str(tmp_path / f"map{i}.tif"), str(tmp_path / f"conf{i}.tif")
        parameters = {"INPUT": raster, "MODEL": model, "TILE_SIZE": 256, "BATCH_SIZE": 4, "COG": False,
                      "DEVICE": 0, "OUTPUT": QgsProcessingOutputLayerDefinition(out, project),
                      "OUTPUT_CONFIDENCE": QgsProcessingOutputLayerDefinition(conf, project)}
        parameters = algorithm.preprocessParameters(parameters)
        context = dataobjects.createContext(feedback)
        results, ok = algorithm.run(parameters, context, feedback)
        assert ok, feedback.textLog()[-2000:]
        assert handleAlgorithmResults(algorithm, context, feedback, False, parameters)
        outputs.append((raster, results["OUTPUT"]))
    for raster, out in outputs:
        with rasterio.open(raster) as src, rasterio.open(out) as dst:
            assert dst.shape == src.shape and dst.transform == src.transform
    layers = list(project.mapLayers().values())
    classes = [l for l in layers if isinstance(l.renderer(), QgsPalettedRasterRenderer)]
    greys = [l for l in layers if isinstance(l.renderer(), QgsSingleBandGrayRenderer)]
    assert len(classes) == 3 and len(greys) == 3, [(l.name(), l.renderer().type()) for l in layers]
    for layer in classes:
        palette = layer.renderer().classes()
        assert [c.label for c in palette] == metadata["class_names"]
        assert [c.value for c in palette] == metadata["class_ids"]
        assert [c.color.name() for c in palette] == metadata["class_colours"]
        assert layer.name().endswith(" — classification (salinas)"), layer.name()
    for layer in greys:
        enhancement = layer.renderer().contrastEnhancement()
        assert (enhancement.minimumValue(), enhancement.maximumValue()) == (0.0, 1.0)
    project.removeAllMapLayers()


@pytest.mark.qgis
def test_run_and_load_results_styles_the_map(qgis_app, trained_model, tmp_path):
    import processing
    from qgis.core import QgsPalettedRasterRenderer, QgsProject
    project = QgsProject.instance()
    project.removeAllMapLayers()
    processing.runAndLoadResults("hsigan:classify", {"INPUT": RASTER, "MODEL": trained_model[0],
                                                     "OUTPUT": str(tmp_path / "map.tif")})
    layers = project.mapLayersByName("salinas_a — classification (salinas)")
    assert len(layers) == 1 and isinstance(layers[0].renderer(), QgsPalettedRasterRenderer)
    assert [c.label for c in layers[0].renderer().classes()] == trained_model[1].metadata["class_names"]
    project.removeAllMapLayers()


@pytest.mark.qgis
def test_class_colours_come_from_the_labels_categorized_style(processing_run, tmp_path):
    from qgis.core import (QgsCategorizedSymbolRenderer, QgsRendererCategory, QgsSymbol, QgsVectorLayer)
    from qgis.PyQt.QtGui import QColor
    layer = QgsVectorLayer(TRAIN_LABELS, "labels", "ogr")
    names = sorted({f["class_name"] for f in layer.getFeatures()})
    chosen = {name: "#%02x%02x%02x" % (40 * i + 10, 200 - 30 * i, 15 * i) for i, name in enumerate(names)}
    categories = []
    for name in names:
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setColor(QColor(chosen[name]))
        categories.append(QgsRendererCategory(name, symbol, name))
    layer.setRenderer(QgsCategorizedSymbolRenderer("class_name", categories))
    model, report = str(tmp_path / "m.hsigan"), str(tmp_path / "train.html")
    common = {"CLASS_FIELD": "class_name", "EPOCHS": 2, "GAN": 0, "SAMPLES_PER_CLASS": 10, "PATCH_SIZE": 3}
    processing_run("hsigan:train", dict(common, INPUT=RASTER, LABELS=layer, OUTPUT_MODEL=model,
                                        OUTPUT_REPORT=report))
    from hsigan_qgis.model_file import load
    metadata, _ = load(model, with_tensors=False)
    assert metadata["class_colours"] == [chosen[n] for n in metadata["class_names"]]
    # the training report has its curves as inline SVG plots, and a JSON twin
    text = open(report, encoding="utf-8").read()
    assert "Training curves" in text and text.count("<svg") >= 2 and "<polyline" in text
    assert len(json.load(open(report[:-5] + ".json"))["history"]) == 2
    # a layer without a categorized style: the fixed palette
    plain = str(tmp_path / "plain.hsigan")
    processing_run("hsigan:train", dict(common, INPUT=RASTER, LABELS=TRAIN_LABELS, OUTPUT_MODEL=plain))
    from hsigan_qgis.styling import default_colours
    assert load(plain, with_tensors=False)[0]["class_colours"] == default_colours(len(names))


@pytest.mark.qgis
@pytest.mark.parametrize("algorithm,parameters", [
    ("hsigan:train", {"CLASS_FIELD": "class_name", "EPOCHS": 2000, "GAN": 0, "PATCH_SIZE": 3}),
    ("hsigan:augment", {"CLASS_FIELD": "class_name", "GAN_STEPS": 5000, "PATCH_SIZE": 3, "COUNT_PER_CLASS": 5}),
])
def test_cancel_is_honoured_within_seconds(processing_run, tmp_path, algorithm, parameters):
    from qgis.core import QgsProcessingException, QgsProcessingFeedback
    out = "OUTPUT_MODEL" if algorithm == "hsigan:train" else "OUTPUT"
    target = str(tmp_path / ("x.hsigan" if out == "OUTPUT_MODEL" else "x.hsamples"))
    feedback = QgsProcessingFeedback()
    cancelled_at = []

    def on_progress(value):
        if value > 0 and not cancelled_at:
            cancelled_at.append(time.perf_counter())
            feedback.cancel()
    feedback.progressChanged.connect(on_progress)
    with pytest.raises(QgsProcessingException, match="cancel"):
        processing_run(algorithm, dict(parameters, INPUT=RASTER, LABELS=TRAIN_LABELS, **{out: target}),
                       feedback=feedback)
    assert cancelled_at, "no progress was reported"
    assert time.perf_counter() - cancelled_at[0] < 10
    assert not os.path.exists(target)


@pytest.mark.qgis
@pytest.mark.hostile
def test_classify_refuses_a_raster_with_other_bands(processing_run, trained_model, tmp_path):
    from qgis.core import QgsProcessingException
    cube, transform, crs = sample_cube()
    raster = write_raster(tmp_path / "ten.tif", np.ascontiguousarray(cube[:10]), crs=crs, transform=transform)
    with pytest.raises(QgsProcessingException) as caught:
        processing_run("hsigan:classify", {"INPUT": raster, "MODEL": trained_model[0],
                                           "OUTPUT": str(tmp_path / "map.tif")})
    message = str(caught.value)
    assert "10 bands" in message and "204" in message and "Traceback" not in message
    assert not os.path.exists(tmp_path / "map.tif")


@pytest.mark.qgis
@pytest.mark.hostile
@pytest.mark.parametrize("algorithm, name", [("hsigan:train", "CLASS_BALANCED"), ("hsigan:classify", "COG")])
def test_a_yes_no_parameter_refuses_other_text(processing_run, trained_model, tmp_path, algorithm, name):
    """QGIS itself reads any text as false for a boolean; the algorithms say it is not a yes/no value."""
    from qgis.core import QgsProcessingException
    out = str(tmp_path / "out.tif")
    parameters = {"INPUT": RASTER, "MODEL": trained_model[0], "OUTPUT": out} if algorithm == "hsigan:classify" else \
        {"INPUT": RASTER, "LABELS": TRAIN_LABELS, "CLASS_FIELD": "class_name", "OUTPUT_MODEL": str(tmp_path / "m.hsigan")}
    with pytest.raises(QgsProcessingException) as caught:
        processing_run(algorithm, dict(parameters, **{name: "sometimes"}))
    message = str(caught.value).splitlines()[-1]  # refused before the run: after "Unable to execute algorithm"
    label = {"CLASS_BALANCED": "Show every class equally often", "COG": "Cloud-optimised GeoTIFF"}[name]
    assert message.startswith(f"{label} ({name}): 'sometimes' is not a yes/no value") and "true or false" in message
    assert os.listdir(tmp_path) == []
    processing_run(algorithm, dict(parameters, **{name: "true"}, **({"EPOCHS": 1, "GAN": 0, "SAMPLES_PER_CLASS": 6}
                                                                  if algorithm == "hsigan:train" else {})))
    assert os.listdir(tmp_path)


@pytest.mark.qgis
def test_check_reports_versions_and_device(processing_run):
    import torch
    result = processing_run("hsigan:check", {})
    assert result["DEVICE"] in ("cpu", "cuda")
    assert f"torch={torch.__version__}" in result["REPORT"] and "device_reason=" in result["REPORT"]


BLOCK_TORCH = textwrap.dedent("""
    import sys
    class _HideTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError("No module named 'torch' (hidden by the HSI-GAN test)")
    sys.meta_path.insert(0, _HideTorch())
""")


@pytest.mark.qgis
def test_provider_loads_without_torch_and_says_how_to_install(tmp_path):
    """qgis_process with torch hidden from the import system (a sitecustomize meta-path finder)."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(BLOCK_TORCH)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(hide))
    run = lambda *args: subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, timeout=300, env=env)
    listed = run("list")
    assert listed.returncode == 0 and "hsigan:train" in listed.stdout and "hsigan:augment" in listed.stdout
    model = tmp_path / "m.hsigan"
    done = run("run", "hsigan:train", "--", f"INPUT={RASTER}", f"LABELS={TRAIN_LABELS}", "CLASS_FIELD=class_name",
               f"OUTPUT_MODEL={model}")
    text = done.stdout + done.stderr
    assert done.returncode != 0 and not model.exists()
    assert "needs torch" in text and "hsigan:install_torch" in text, text[-2000:]  # the plugin's own installer
    assert "Traceback" not in text
    check = run("--json", "run", "hsigan:check")
    assert check.returncode == 0, check.stderr
    results = json.loads(check.stdout)["results"]
    assert "torch=None" in results["REPORT"] and results["DEVICE"] == "none"


@pytest.mark.parametrize("job,flags", [("train", ["--samples", "--class-field", "--epochs", "--gan"]),
                                       ("augment", ["--count-per-class", "--gan-steps", "--output-report"]),
                                       ("classify", ["--model", "--tile-size", "--output-confidence"]),
                                       ("assess", ["--reference", "--class-field"])])
def test_cli_help(job, flags):
    done = subprocess.run([os.path.join(ROOT, "bin", "hsigan"), job, "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    for flag in flags:
        assert flag in done.stdout
    assert "default:" in done.stdout


def test_cli_reports_an_unexpected_fault_in_one_line(trained_model, tmp_path):
    """A bug the engine does not translate still ends as one line and exit status 1; HSIGAN_DEBUG=1 shows
    the traceback."""
    from errors_helpers import fault_env
    command = [os.path.join(ROOT, "bin", "hsigan"), "classify", "--quiet", "--input", RASTER, "--model",
               trained_model[0], "--output", str(tmp_path / "map.tif")]
    env = fault_env("bug", tmp_path)
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == ("hsigan classify: failed: ZeroDivisionError: planted bug "
                                   "(HSIGAN_DEBUG=1 shows the traceback)")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=dict(env, HSIGAN_DEBUG="1"))
    assert done.returncode == 1 and "Traceback" in done.stderr and "planted bug" in done.stderr
    assert not os.path.exists(tmp_path / "map.tif")


@pytest.mark.hostile
def test_cli_reports_bad_input_in_one_line(tmp_path):
    done = subprocess.run([os.path.join(ROOT, "bin", "hsigan"), "train", "--output-model", str(tmp_path / "m.hsigan")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "INPUT" in done.stderr and "Traceback" not in done.stderr
