"""One definition per parameter (issues 10.6 and 11.1): the config dataclass, the CLI and the QGIS algorithm
agree on every field's name, default, bounds and choices, and all three refuse the same bad values with the
engine's message (config.check)."""
import argparse
import re

import pytest

from hsigan_qgis import cli, config as cfgs
from hsigan_qgis.errors import InputError

ALGORITHMS = {"train": "TrainAlgorithm", "augment": "AugmentAlgorithm", "classify": "ClassifyAlgorithm",
              "assess": "AssessAlgorithm", "export-onnx": "ExportOnnxAlgorithm"}
# class colours and names come from the labels layer (its categorized style, CLASS_NAME_FIELD) in QGIS
NOT_IN_QGIS = {"class_colours", "class_names"}
QGIS_ONLY = {"CLASS_NAME_FIELD"}  # a field of the labels layer whose values become class_names


def cli_actions(job):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[job]
    return {a.dest: a for a in sub._actions}


def qgis_algorithm(job):
    import importlib
    from hsigan_qgis import plugin_package
    plugin_package.load()
    module = importlib.import_module(f"hsigan.algorithms.{job.replace('-', '_')}")
    algorithm = getattr(module, ALGORITHMS[job])()
    algorithm.initAlgorithm({})
    return algorithm


@pytest.mark.qgis
@pytest.mark.parametrize("job", sorted(cli.JOBS))
def test_dataclass_cli_and_qgis_agree_on_every_field(qgis_app, job):
    from qgis.core import (QgsProcessingParameterBoolean, QgsProcessingParameterDefinition,
                           QgsProcessingParameterEnum, QgsProcessingParameterNumber)
    config_class = cli.JOBS[job][0]
    actions = cli_actions(job)
    algorithm = qgis_algorithm(job)
    for p in cfgs.parameters(config_class):
        action = actions[p.field]  # CLI: --field-name, same default, same choices
        assert action.option_strings[0] == p.flag
        if p.required:
            assert action.required, p.field
        else:
            assert action.default == p.default, p.field
            assert type(action.default) is p.kind, p.field
        assert tuple(action.choices or ()) == p.choices, p.field
        if p.kind is bool:
            assert isinstance(action, argparse.BooleanOptionalAction), p.field
            assert f"--no-{p.flag[2:]}" in action.option_strings
        if p.field in NOT_IN_QGIS:
            assert algorithm.parameterDefinition(p.qgis_name) is None
            continue
        definition = algorithm.parameterDefinition(p.qgis_name)  # QGIS: FIELD_NAME, label from the metadata
        assert definition is not None, (job, p.qgis_name)
        assert definition.description() == p.label and p.label, p.field
        assert definition.help().startswith(p.help)  # QGIS may add a dialog-only remark
        assert bool(definition.flags() & QgsProcessingParameterDefinition.FlagAdvanced) == p.advanced, p.field
        if not p.is_option:  # a path or layer may be left empty exactly when the field has a default
            assert bool(definition.flags() & QgsProcessingParameterDefinition.FlagOptional) == (not p.required), p.field
        if p.choices:
            assert isinstance(definition, QgsProcessingParameterEnum)
            assert tuple(definition.options()) == p.choices
            assert p.choices[definition.defaultValue()] == p.default
        elif p.kind is bool:
            assert isinstance(definition, QgsProcessingParameterBoolean)
            assert definition.defaultValue() is p.default
        elif p.kind in (int, float):
            assert isinstance(definition, QgsProcessingParameterNumber)
            assert definition.dataType() == (QgsProcessingParameterNumber.Double if p.kind is float
                                             else QgsProcessingParameterNumber.Integer)
            assert definition.defaultValue() == p.default
            assert definition.minimum() == p.lowest and definition.maximum() == p.maximum, p.field
            assert p.minimum is not None and p.maximum is not None, "every number has both bounds"
    names = {p.qgis_name for p in cfgs.parameters(config_class)}
    inputs = {d.name() for d in algorithm.parameterDefinitions() if not d.isDestination()}
    destinations = {d.name() for d in algorithm.parameterDefinitions() if d.isDestination()}
    assert inputs | destinations <= names | QGIS_ONLY, "every QGIS parameter is a config field"


@pytest.mark.qgis
def test_class_balanced_defaults_to_on_everywhere(qgis_app):
    assert cfgs.TrainConfig(output_model="m").class_balanced is True
    args = cli.build_parser().parse_args(["train", "--output-model", "m"])
    assert args.class_balanced is True
    assert cli.build_parser().parse_args(["train", "--output-model", "m", "--no-class-balanced"]).class_balanced is False
    assert qgis_algorithm("train").parameterDefinition("CLASS_BALANCED").defaultValue() is True
    assert cli.build_parser().parse_args(["classify", "--input", "a", "--model", "b", "--output", "c"]).cog is False


@pytest.mark.qgis
def test_one_introspection_helper():
    """config.parameters replaces config.describe and HsiGanAlgorithm.field_meta."""
    assert not hasattr(cfgs, "describe")
    from hsigan_qgis import plugin_package
    plugin_package.load()
    import hsigan.algorithms.base as base
    assert not hasattr(base.HsiGanAlgorithm, "field_meta")
    import hsigan.algorithms.train as train_module
    assert not hasattr(train_module, "NUMBERS")


# -- bad values: refused by the engine, the CLI and QGIS alike, before anything is read or written ------
BAD_VALUES = [  # (job, field, value); each out of the field's bounds, even where it must be odd, ...
    ("train", "validation_fraction", 0.95), ("train", "batch_size", 5000), ("train", "batch_size", 1),
    ("train", "patch_size", 8), ("train", "patch_size", 33), ("train", "epochs", 0), ("train", "epochs", 10001),
    ("train", "learning_rate", 0.0), ("train", "learning_rate", 2.0), ("train", "synthetic_ratio", 21.0),
    ("train", "seed", -1), ("train", "block_size", 1), ("train", "samples_per_class", -5),
    ("train", "gan_steps", -1), ("train", "spectral_head_weight", 0.01), ("train", "spectral_head_weight", 1.5),
    ("augment", "count_per_class", 0), ("augment", "count_per_class", 100001), ("augment", "patch_size", 4),
    ("augment", "gan_steps", 0), ("augment", "seed", -3),
    ("classify", "tile_size", 10000), ("classify", "tile_size", 8), ("classify", "batch_size", 0),
    ("classify", "batch_size", 257),
    ("export-onnx", "tile_size", 8), ("export-onnx", "tile_size", 5000), ("export-onnx", "resolution", -1.0),
]


@pytest.fixture
def scene_files(tmp_path, small_model):
    from errors_helpers import scene, stripe_features, write_labels
    raster = scene(tmp_path / "scene.tif")
    labels = write_labels(tmp_path / "labels.gpkg", stripe_features())
    return dict(raster=raster, labels=labels, model=small_model[0], out=tmp_path / "out")


def job_values(job, files):
    folder = files["out"]
    folder.mkdir(exist_ok=True)
    if job == "train":
        return dict(input=files["raster"], labels=files["labels"], class_field="cls",
                    output_model=str(folder / "m.hsigan"), gan="none", epochs=1)
    if job == "augment":
        return dict(input=files["raster"], labels=files["labels"], class_field="cls",
                    output=str(folder / "s.hsamples"), gan_steps=1)
    if job == "export-onnx":
        return dict(model=files["model"], output=str(folder / "m.onnx"))
    return dict(input=files["raster"], model=files["model"], output=str(folder / "map.tif"))


def engine_run(job, cfg):
    return cli.run(job, cfg, None)


@pytest.mark.qgis
@pytest.mark.hostile
@pytest.mark.parametrize("job, field, value", BAD_VALUES)
@pytest.mark.parametrize("frontend", ["engine", "cli", "qgis"])
def test_a_bad_value_is_refused_everywhere_before_the_run(processing_run, scene_files, job, field, value, frontend):
    from hostile import cli_fails, untouched
    from errors_helpers import qgis_error
    values = job_values(job, scene_files)
    values[field] = value
    name = field.upper()
    inputs = (scene_files["raster"], scene_files["labels"], scene_files["model"])
    if frontend == "engine":
        config_class = cli.JOBS[job][0]
        with untouched(scene_files["out"], *inputs), pytest.raises(InputError) as caught:
            engine_run(job, config_class(**values))
        assert caught.value.parameter == name
        message = str(caught.value)
    elif frontend == "cli":
        argv = [job] + [x for k, v in values.items() for x in (cfgs.parameter(cli.JOBS[job][0], k).flag, v)]
        message = cli_fails(name, *argv, folder=scene_files["out"], inputs=inputs)
    else:
        parameters = {k.upper(): v for k, v in values.items()}
        if "gan" in values:
            parameters["GAN"] = 0
        with untouched(scene_files["out"], *inputs[1:]):  # QGIS writes .aux.xml beside the raster it opens
            message = qgis_error(processing_run, f"hsigan:{job.replace('-', '_')}", parameters)
    assert name in message, message
    spec = cfgs.parameter(cli.JOBS[job][0], field)
    message = re.sub(rf"^.*\({name}\): ", f"{name}: ", message, flags=re.M)  # QGIS: "Dialog label (ID): ..."
    if frontend != "qgis" or spec.lowest <= value <= spec.maximum:  # else QGIS's own range check refuses it
        # first ("Incorrect parameter value for X"); PATCH_SIZE 8 gets past that one but not the engine's
        assert f"{name}: {value} is not {spec.bounds_text()}" in message, message


@pytest.mark.hostile
@pytest.mark.parametrize("job, field, value", [("train", "gan", "cgan"), ("train", "class_balanced", "yes"),
                                               ("augment", "label_rule", "middle"), ("classify", "device", "tpu"),
                                               ("classify", "cog", 1), ("train", "learning_rate", float("nan")),
                                               ("train", "spectral_head_window", "7x7"),
                                               ("train", "smoothing", "9x9")])
def test_a_wrong_kind_of_value_is_refused_by_the_engine(scene_files, job, field, value):
    from hostile import untouched
    values = job_values(job, scene_files)
    values[field] = value
    with untouched(scene_files["out"], scene_files["raster"], scene_files["labels"]), \
            pytest.raises(InputError) as caught:
        engine_run(job, cli.JOBS[job][0](**values))
    assert caught.value.parameter == field.upper()


@pytest.mark.hostile
@pytest.mark.parametrize("argv, flag", [(["train", "--gan", "cgan"], "--gan"),
                                        (["classify", "--tile-size", "big"], "--tile-size"),
                                        (["train", "--spectral-head-window", "7x7"], "--spectral-head-window"),
                                        (["train", "--smoothing", "on"], "--smoothing"),
                                        (["train", "--learning-rate", "nan"], "LEARNING_RATE"),
                                        (["train", "--class-balanced", "yes"], "unrecognized arguments")])
def test_cli_refuses_bad_text_in_one_line(scene_files, argv, flag):
    from hostile import cli_fails
    job = argv[0]
    values = job_values(job, scene_files)
    base = [x for k, v in values.items() for x in (cfgs.parameter(cli.JOBS[job][0], k).flag, v)]
    cli_fails(flag, job, *(base + argv[1:]), folder=scene_files["out"], inputs=(scene_files["labels"],))


@pytest.mark.qgis
@pytest.mark.hostile
def test_qgis_process_refuses_an_even_patch_size_before_the_run(tmp_path):
    """qgis_process calls checkParameterValues, so the engine's rule (odd sizes) refuses the run up front."""
    from hostile import untouched
    from errors_helpers import qgis_fails, scene, stripe_features, train_params, write_labels
    raster = scene(tmp_path / "scene.tif")
    labels = write_labels(tmp_path / "labels.gpkg", stripe_features())
    with untouched(tmp_path, labels):
        text = qgis_fails("hsigan:train", train_params(raster, labels, str(tmp_path / "m.hsigan"), PATCH_SIZE=8),
                          "PATCH_SIZE", tmp_path)
    assert "8 is not an odd number from 1 to 31" in text
