"""The desktop analyst's path (issue 13) in headless QGIS: the shipped model passes the modeler's own
validation, batch rows with empty optional outputs load without a false error, layers are named after the
raster and model with the map above its confidence, train's common path is required while its sample-file
path lives on, errors and help name label and id, class names from a name field or the legend, the
training report says what AA covers, the model file needs a path, and metadata.txt is real.
The same paths through QGIS's dialogs: tests/test_desktop_gui.py."""
import configparser
import json
import os
import re
import subprocess

import pytest

from conftest import RASTER, REFERENCE, ROOT, TRAIN_LABELS, run_qgis_process, sample_cube, write_raster

MODEL3 = os.path.join(ROOT, "qgis_models", "hsigan_pipeline.model3")
QUICK = {"EPOCHS": 2, "GAN": 0, "SAMPLES_PER_CLASS": 10, "PATCH_SIZE": 3, "SEED": 0}


def _algorithm(name):
    from qgis.core import QgsApplication
    return QgsApplication.processingRegistry().algorithmById(name)


# 1 ------------------------------------------------------------------------------------------------------
@pytest.mark.qgis
def test_shipped_model_passes_the_modelers_validation(qgis_app):
    from qgis.core import QgsProcessingModelAlgorithm
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(MODEL3)
    valid, problems = model.validate()
    assert valid, problems
    for child in model.childAlgorithms().values():
        algorithm = child.algorithm()
        assert algorithm is not None, child.algorithmId()
        for parameter in algorithm.parameterDefinitions():  # every input written into the model
            if not parameter.isDestination() and parameter.defaultValue() is not None:
                assert child.parameterSources().get(parameter.name()), (child.childId(), parameter.name())
    outputs = model.destinationParameterDefinitions()
    assert outputs and all(o.description() for o in outputs)  # the run dialog's labels
    order = [p.name() for p in model.parameterDefinitions()]
    for parameter in model.parameterDefinitions():  # a field input after its layer, or it resets to 'fid'
        if parameter.type() == "field":
            assert order.index(parameter.parentLayerParameterName()) < order.index(parameter.name())
    assert model.childAlgorithm("train").algorithmId() == "hsigan:train_samples"


# 2, 6 ---------------------------------------------------------------------------------------------------
@pytest.mark.qgis
def test_batch_rows_with_empty_optional_outputs_load_without_false_error(qgis_app, trained_model, tmp_path):
    """BatchAlgorithmDialog.runAlgorithm's path: per row QgsProcessingOutputLayerDefinition(text, project),
    an empty text for the optional outputs left empty, then handleAlgorithmResults."""
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects
    from qgis.core import QgsProcessingFeedback, QgsProcessingOutputLayerDefinition, QgsProject
    project = QgsProject.instance()
    project.removeAllMapLayers()
    model, _ = trained_model
    cube, transform, crs = sample_cube()
    part = write_raster(tmp_path / "field_7.tif", cube[:, :40].copy(), crs=crs, transform=transform)
    algorithm = _algorithm("hsigan:classify").create()
    rows = [(RASTER, str(tmp_path / "a_map.tif"), ""),                    # confidence left empty
            (part, str(tmp_path / "b_map.tif"), str(tmp_path / "c_conf.tif"))]  # conf path sorts after map
    for raster, out, confidence in rows:
        feedback = QgsProcessingFeedback()
        errors = []
        feedback.reportError = lambda text, fatal=False: errors.append(text)
        parameters = {"INPUT": raster, "MODEL": model, "TILE_SIZE": 256, "BATCH_SIZE": 4, "COG": False,
                      "DEVICE": 0, "OUTPUT": QgsProcessingOutputLayerDefinition(out, project),
                      "OUTPUT_CONFIDENCE": QgsProcessingOutputLayerDefinition(confidence, project),
                      "OUTPUT_PROBABILITIES": QgsProcessingOutputLayerDefinition("", project)}
        parameters = algorithm.preprocessParameters(parameters)
        context = dataobjects.createContext(feedback)
        results, ok = algorithm.run(parameters, context, feedback)
        assert ok
        queued = set(context.layersToLoadOnCompletion())
        assert queued == ({out, confidence} if confidence else {out})
        assert set(results) == ({"OUTPUT", "OUTPUT_CONFIDENCE"} if confidence else {"OUTPUT"})
        assert handleAlgorithmResults(algorithm, context, feedback, False, parameters)
        assert not [e for e in errors if "not correctly generated" in e], errors
    written = sorted(f for f in os.listdir(tmp_path) if f.endswith(".tif") and f != "field_7.tif")
    assert written == ["a_map.tif", "b_map.tif", "c_conf.tif"]  # nothing for the outputs left empty
    nodes = [n.layer() for n in project.layerTreeRoot().findLayers()]  # top of the tree first
    names = [layer.name() for layer in nodes]
    assert names == ["field_7 — classification (salinas)", "field_7 — confidence (salinas)",
                     "salinas_a — classification (salinas)"], names
    assert nodes[0].renderer().type() == "paletted" and nodes[1].renderer().type() == "singlebandgray"
    project.removeAllMapLayers()


@pytest.mark.qgis
def test_processing_run_returns_only_written_outputs(processing_run, trained_model, tmp_path):
    out = str(tmp_path / "map.tif")
    results = processing_run("hsigan:classify", {"INPUT": RASTER, "MODEL": trained_model[0], "OUTPUT": out,
                                                 "OUTPUT_CONFIDENCE": None, "OUTPUT_PROBABILITIES": ""})
    assert results == {"OUTPUT": out}
    assert os.path.isfile(out) and not [f for f in os.listdir(tmp_path) if not f.startswith("map.")]


# 4, 9 ---------------------------------------------------------------------------------------------------
@pytest.mark.qgis
def test_train_requires_raster_labels_and_field_and_keeps_the_sample_file_path(processing_run, tmp_path):
    from qgis.core import QgsProcessingException, QgsProcessingParameterDefinition
    train, from_samples = _algorithm("hsigan:train"), _algorithm("hsigan:train_samples")
    optional = QgsProcessingParameterDefinition.FlagOptional
    for name in ("INPUT", "LABELS", "CLASS_FIELD"):  # required in the desktop dialogs: test_desktop_gui.py
        assert train.parameterDefinition(name).flags() & optional, name  # headless: the old parameter set
    assert train.parameterDefinition("SAMPLES").flags() & optional
    assert not from_samples.parameterDefinition("SAMPLES").flags() & optional
    assert from_samples.parameterDefinition("INPUT") is None
    gan = from_samples.parameterDefinition("GAN")
    assert gan.options()[gan.defaultValue()] == "none"  # ssgan needs the raster, which a sample file lacks
    # neither raster + labels nor samples: the engine names the raster
    with pytest.raises(QgsProcessingException, match=r"^Hyperspectral raster \(INPUT\): required unless"):
        processing_run("hsigan:train", dict(QUICK, OUTPUT_MODEL=str(tmp_path / "none.hsigan")))
    samples = str(tmp_path / "s.hsamples")
    processing_run("hsigan:augment", {"INPUT": RASTER, "LABELS": TRAIN_LABELS, "CLASS_FIELD": "class_name",
                                      "COUNT_PER_CLASS": 5, "SAMPLES_PER_CLASS": 10, "PATCH_SIZE": 3,
                                      "GAN_STEPS": 2, "OUTPUT": samples})
    old, new = str(tmp_path / "old.hsigan"), str(tmp_path / "new.hsigan")
    processing_run("hsigan:train", dict(QUICK, SAMPLES=samples, OUTPUT_MODEL=old))  # the old parameter set
    processing_run("hsigan:train_samples", dict(QUICK, SAMPLES=samples, OUTPUT_MODEL=new))
    from hsigan_qgis.model_file import load
    first, second = load(old, with_tensors=False)[0], load(new, with_tensors=False)[0]
    assert first["training"]["samples"] == second["training"]["samples"] == "s.hsamples"
    assert first["history"] == second["history"] and first["validation"] == second["validation"]
    # qgis_process refuses calls without a mandatory parameter itself: SAMPLES alone still works there
    done = run_qgis_process("--json", "run", "hsigan:train", "--", f"SAMPLES={samples}", "EPOCHS=2", "GAN=0",
                            "SAMPLES_PER_CLASS=10", "PATCH_SIZE=3", f"OUTPUT_MODEL={tmp_path / 'qp.hsigan'}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    # the same training; losses agree to float rounding (qgis_process may run torch with other threads)
    third = load(str(tmp_path / "qp.hsigan"), with_tensors=False)[0]["history"]
    assert [(h["epoch"], h["val_oa"]) for h in third] == [(h["epoch"], h["val_oa"]) for h in first["history"]]
    assert all(abs(a["loss"] - b["loss"]) < 1e-4 for a, b in zip(third, first["history"]))
    # 9: a temporary model file is refused, by both
    for name in ("hsigan:train", "hsigan:train_samples"):
        with pytest.raises(QgsProcessingException, match=r"Model file \(OUTPUT_MODEL\): choose where"):
            processing_run(name, dict(QUICK, SAMPLES=samples, OUTPUT_MODEL="TEMPORARY_OUTPUT"))


@pytest.mark.qgis
def test_gan_mixup_if_few_from_processing_says_what_it_trained(processing_run, tmp_path):
    from hsigan_qgis.model_file import load
    model = str(tmp_path / "m.hsigan")
    processing_run("hsigan:train", {"INPUT": RASTER, "LABELS": TRAIN_LABELS, "CLASS_FIELD": "class_name",
                                    **QUICK, "GAN": 6, "OUTPUT_MODEL": model})
    training = load(model, with_tensors=False)[0]["training"]
    assert training["gan"] == "mixup-if-few" and training["synthetic_ratio"] == 2.0
    assert training["gan_rule"] == {"chosen": "mixup", "reason": "the median class has 10 training pixels, at most 20"}


@pytest.mark.qgis
def test_help_says_what_parameters_do_and_states_measured_times(qgis_app):
    train = _algorithm("hsigan:train")
    assert "0 = automatic" in train.parameterDefinition("GAN_STEPS").description()
    assert "(wgan, spectral, mixup; 0 = automatic)" in train.parameterDefinition("SYNTHETIC_RATIO").description()
    assert train.parameterDefinition("SYNTHETIC_RATIO").defaultValue() == 0
    assert "none and ssgan ignore it" in train.parameterDefinition("SYNTHETIC_RATIO").help()
    # scripts and models pass GAN by index: new modes go at the end
    assert train.parameterDefinition("GAN").options() == ["none", "wgan", "ssgan", "auto", "spectral", "mixup",
                                                          "mixup-if-few"]
    text = train.shortHelpString()
    assert "a few minutes" not in text
    assert re.search(r"the whole job \d+ s with none, \d+ s with mixup, \d+ s with ssgan", text)
    assert "Model file</b> (OUTPUT_MODEL)" in text and "temporary file" in text


# 5 ------------------------------------------------------------------------------------------------------
@pytest.mark.qgis
def test_errors_and_help_name_dialog_label_and_id(processing_run, tmp_path):
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException) as raised:
        processing_run("hsigan:train", dict(QUICK, INPUT=RASTER, LABELS=TRAIN_LABELS, CLASS_FIELD="no_such",
                                            OUTPUT_MODEL=str(tmp_path / "m.hsigan")))
    assert str(raised.value).startswith("Class field (CLASS_FIELD): field 'no_such' is not in"), str(raised.value)
    with pytest.raises(QgsProcessingException) as raised:  # 'fid' is what a field combo preselects
        processing_run("hsigan:train", dict(QUICK, INPUT=RASTER, LABELS=TRAIN_LABELS, CLASS_FIELD="fid",
                                            OUTPUT_MODEL=str(tmp_path / "m.hsigan")))
    assert str(raised.value).startswith("Class field (CLASS_FIELD): 'fid' is the layer's feature id")
    assert "class_id" in str(raised.value) and not os.path.exists(tmp_path / "m.hsigan")
    for algorithm in (_algorithm(n) for n in ("hsigan:train", "hsigan:classify", "hsigan:augment")):
        text = algorithm.shortHelpString()
        for parameter in algorithm.parameterDefinitions():
            assert f"<b>{parameter.description()}</b> ({parameter.name()})" in text
    text = _algorithm("hsigan:train").shortHelpString()
    assert "CLASS_BALANCED" in text and "Show every class equally often (CLASS_BALANCED)" in text
    assert "Epochs (EPOCHS) 30-100" in text


@pytest.mark.qgis
def test_error_text_helper_leaves_unknown_ids_and_words_alone(qgis_app):
    from hsigan_qgis import plugin_package
    plugin_package.load()
    from hsigan.algorithms.parameter_names import with_labels
    classify = _algorithm("hsigan:classify")
    text = with_labels("TILE_SIZE: out of memory; lower TILE_SIZE (e.g. 256) or BATCH_SIZE, not CLASS_COLOURS",
                       classify, "TILE_SIZE")
    assert text == ("Tile size (TILE_SIZE): out of memory; lower Tile size (TILE_SIZE) (e.g. 256) or Tiles per "
                    "batch (BATCH_SIZE), not CLASS_COLOURS")
    assert with_labels("DEVICE: no CUDA; use DEVICE=cpu", classify, "DEVICE") == \
        "Device (DEVICE): no CUDA; use DEVICE=cpu"  # ID=value is what qgis_process takes
    assert with_labels("OUTPUTS and INPUT_X", classify) == "OUTPUTS and INPUT_X"


# 7 ------------------------------------------------------------------------------------------------------
@pytest.mark.qgis
def test_class_names_from_a_name_field_or_the_categorized_style(processing_run, tmp_path):
    from qgis.core import QgsCategorizedSymbolRenderer, QgsRendererCategory, QgsSymbol, QgsVectorLayer
    from qgis.PyQt.QtGui import QColor
    from hsigan_qgis.model_file import load
    layer = QgsVectorLayer(TRAIN_LABELS, "labels", "ogr")
    truth = {int(f["class_id"]): f["class_name"] for f in layer.getFeatures()}
    ids = sorted(truth)
    named = str(tmp_path / "named.hsigan")
    processing_run("hsigan:train", dict(QUICK, INPUT=RASTER, LABELS=TRAIN_LABELS, CLASS_FIELD="class_id",
                                        CLASS_NAME_FIELD="class_name", OUTPUT_MODEL=named))
    metadata = load(named, with_tensors=False)[0]
    assert metadata["class_ids"] == ids and metadata["class_names"] == [truth[i] for i in ids]
    # no name field: the labels of a categorized style on the id field, with its colours
    categories = []
    for k, cid in enumerate(ids):
        symbol = QgsSymbol.defaultSymbol(layer.geometryType())
        symbol.setColor(QColor("#%02x%02x%02x" % (30 * k, 100, 255 - 30 * k)))
        categories.append(QgsRendererCategory(cid, symbol, f"Legend {cid}"))
    layer.setRenderer(QgsCategorizedSymbolRenderer("class_id", categories))
    styled = str(tmp_path / "styled.hsigan")
    processing_run("hsigan:train", dict(QUICK, INPUT=RASTER, LABELS=layer, CLASS_FIELD="class_id",
                                        OUTPUT_MODEL=styled))
    metadata = load(styled, with_tensors=False)[0]
    assert metadata["class_names"] == [f"Legend {cid}" for cid in ids]
    assert metadata["class_colours"] == [c.symbol().color().name() for c in categories]
    # without either: the codes, as before
    plain = str(tmp_path / "plain.hsigan")
    processing_run("hsigan:train", dict(QUICK, INPUT=RASTER, LABELS=TRAIN_LABELS, CLASS_FIELD="class_id",
                                        OUTPUT_MODEL=plain))
    assert load(plain, with_tensors=False)[0]["class_names"] == [str(i) for i in ids]


def test_class_names_spec_is_checked_by_the_engine():
    from hsigan_qgis.errors import InputError
    from hsigan_qgis.labels import ClassTable
    from hsigan_qgis.styling import resolve_names
    table = ClassTable(ids=[1, 10, 11], names=["1", "10", "11"])
    assert resolve_names('{"1": "water", "11": " bare  soil "}', table) == ["water", "10", "bare soil"]
    assert resolve_names('{"1": "x"}', ClassTable(ids=[1], names=["forest"])) == ["forest"]  # text classes kept
    with pytest.raises(InputError, match="CLASS_NAMES"):
        resolve_names("[1, 2]", table)


# 8 ------------------------------------------------------------------------------------------------------
def test_training_report_says_which_classes_aa_covers_and_has_round_ticks(tmp_path):
    from hsigan_qgis.report import write_training_report
    history = [{"epoch": e, "loss": 2.244 / e, "val_oa": 50 + 4 * e} for e in range(1, 11)]
    metadata = {"class_names": ["water", "forest", "bare soil"], "class_ids": [1, 2, 3],
                "training": {"train_pixels": 90, "validation_pixels": 40, "block_size": 16, "gan": "none",
                             "class_balanced": True, "seconds": 3.2, "device": "cpu",
                             "train_pixels_per_class": [30, 30, 30]},
                "validation": {"oa": 95.0, "aa": 100.0, "kappa": 0.9, "confusion": [[20, 0, 0], [0, 0, 0],
                                                                                     [1, 0, 19]]},
                "history": history, "gan_history": []}
    path = str(tmp_path / "train.html")
    write_training_report(path, metadata)
    text = open(path, encoding="utf-8").read()
    assert "AA is the mean accuracy over the 2 of 3 classes that have validation pixels" in text
    assert "1 class has no validation pixels and is not validated: forest" in text
    assert re.search(r"<td class=\"name\">forest</td><td class=\"\">2</td><td class=\"\">30</td>"
                     r"<td class=\"\">0</td>", text)
    svg = text[text.index("Classifier loss") - 300:]
    svg = svg[:svg.index("</svg>")]
    ticks = re.findall(r'class="ytick">([^<]+)<', svg)
    assert ticks == ["0", "1", "2", "3"], ticks  # round, not 1.122, 2.244
    left = float(re.search(r'<line x1="([\d.]+)" y1="[\d.]+" x2="[\d.]+" y2="[\d.]+" stroke="#888"/><line x1="\1"',
                           svg).group(1))
    assert left - 4 - 6 * max(map(len, ticks)) >= 14 + 6  # tick labels clear of the rotated axis title
    assert 'x="14"' in svg and "cross-entropy" in svg
    assert re.findall(r'class="xtick">([^<]+)<', svg) == ["0", "2", "4", "6", "8", "10"]
    # every class validated: no warning
    metadata["validation"]["confusion"] = [[20, 0, 0], [0, 5, 0], [1, 0, 19]]
    write_training_report(path, metadata)
    text = open(path, encoding="utf-8").read()
    assert "over the 3 of 3 classes" in text and "not validated" not in text


# 10 -----------------------------------------------------------------------------------------------------
@pytest.mark.qgis
def test_metadata_has_no_placeholders_and_has_changelog_tags_and_icon(qgis_app, tmp_path):
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "metadata.txt"), encoding="utf-8")
    general = parser["general"]
    text = open(os.path.join(ROOT, "metadata.txt"), encoding="utf-8").read()
    assert "example." not in text and "hsigan/hsigan-qgis" not in text
    for key in ("name", "qgisMinimumVersion", "description", "version", "author", "about"):
        assert general.get(key, "").strip(), key  # what QGIS needs to load and list the plugin
    assert general["version"] in general["changelog"] and len(general["changelog"].splitlines()) >= 3
    assert len([t for t in general["tags"].split(",") if t.strip()]) >= 5
    from qgis.PyQt.QtSvg import QSvgRenderer
    icon = os.path.join(ROOT, general["icon"])
    assert QSvgRenderer(icon).isValid()
    shipped = subprocess.run(["git", "-C", ROOT, "check-attr", "export-ignore", "--", general["icon"]],
                             capture_output=True, text=True, check=True).stdout
    assert shipped.strip().endswith("unspecified"), shipped  # in the plugin zip (git archive, .gitattributes)
    # QGIS's own reader of installed plugins parses it (multi-line changelog included)
    import shutil
    import qgis.utils
    os.makedirs(tmp_path / "hsigan")
    for name in ("metadata.txt", "__init__.py"):
        shutil.copy(os.path.join(ROOT, name), tmp_path / "hsigan")
    (name, parsed), = qgis.utils.findPlugins(str(tmp_path))
    assert name == "hsigan" and parsed is not None
    assert parsed.get("general", "changelog") == general["changelog"]
    assert not parsed.has_option("general", "homepage") and not parsed.has_option("general", "email")


# model run in-process (the same model the modeler validates) --------------------------------------------
@pytest.mark.qgis
def test_shipped_model_runs_in_process(processing_run, tmp_path):
    out = {"train:Model": str(tmp_path / "m.hsigan"), "classify:Classification": str(tmp_path / "map.tif"),
           "assess:Accuracy report": str(tmp_path / "acc.html")}
    from qgis.core import QgsProcessingModelAlgorithm
    model = QgsProcessingModelAlgorithm()
    assert model.fromFile(MODEL3)
    results = processing_run(model, dict({"raster": RASTER, "labels": TRAIN_LABELS, "labels_field": "class_name",
                                           "reference": REFERENCE, "reference_field": "class_name",
                                           "synthetic_per_class": 5, "real_per_class": 10, "gan_steps": 2,
                                           "epochs": 2}, **out))
    assert {k: results[k] for k in out} == out
    assert json.load(open(out["assess:Accuracy report"][:-5] + ".json"))["pixels"] > 1000
