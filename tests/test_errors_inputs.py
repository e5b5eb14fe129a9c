"""Issue 10, items 8 and 10-13: input faults a user can fix, each refused with one message naming the
parameter at fault, before anything is written: class codes classify cannot use, sample files checked on
open, assess maps that are not class maps, truncated rasters and VRTs without their sources, formats that
cannot hold an output, immutable outputs, malformed CLASS_COLOURS, line and empty label layers. Every case
also checks that no output or temp file is left and that every input is byte-identical (hostile.untouched)."""
import io
import json
import os
import subprocess
import zipfile

import numpy as np
import pytest

from hsigan_qgis.config import AssessConfig, AugmentConfig, ClassifyConfig, TrainConfig
from hsigan_qgis.errors import InputError
from hostile import cli_fails, untouched
from errors_helpers import (BANDS, CLASSES, FAST, LogFeedback, box, point, px, qgis_error,
                                 qgis_fails, scene, stripe_features, write_labels)

pytestmark = pytest.mark.hostile


def engine_fails(job, cfg, parameter, folder, *inputs, feedback=None):
    """Runs the engine job expecting an InputError naming `parameter`; returns its message."""
    from hsigan_qgis.cli import run
    with untouched(folder, *inputs), pytest.raises(InputError) as caught:
        run(job, cfg, feedback)
    assert caught.value.parameter == parameter, str(caught.value)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture
def scene_files(tmp_path):
    raster = scene(tmp_path / "scene.tif")
    labels = write_labels(tmp_path / "labels.gpkg", stripe_features())
    out = tmp_path / "out"
    out.mkdir()
    return tmp_path, raster, labels, out


def train_cfg(raster, labels, out, **extra):
    return TrainConfig(input=raster, labels=labels, class_field="cls", output_model=str(out / "m.hsigan"),
                       **dict(FAST, **extra))


# -- 8. class codes classify cannot use: refused at train time -------------------------------------------
@pytest.mark.parametrize("code", [2 ** 32, 2 ** 40, 2 ** 62])
def test_integer64_class_codes_too_large_for_a_map(scene_files, code):
    folder, raster, _, out = scene_files
    third = 8
    features = [(box(k * third + 2, 3, (k + 1) * third - 2, 21), {"code": [1, 2, code][k]}) for k in range(3)]
    labels = write_labels(folder / "big.gpkg", features, field_types={"code": "int64"})
    cfg = TrainConfig(input=raster, labels=labels, class_field="code", output_model=str(out / "m.hsigan"), **FAST)
    message = engine_fails("train", cfg, "CLASS_FIELD", out, raster, labels)
    assert str(code) in message and "4294967295" in message


def test_integer64_class_codes_cli(scene_files):
    folder, raster, _, out = scene_files
    features = [(box(k * 8 + 2, 3, (k + 1) * 8 - 2, 21), {"code": [1, 2, 2 ** 33][k]}) for k in range(3)]
    labels = write_labels(folder / "big.gpkg", features, field_types={"code": "int64"})
    cli_fails("CLASS_FIELD", "train", "--input", raster, "--labels", labels, "--class-field", "code",
              "--output-model", out / "m.hsigan", "--gan", "none", "--epochs", "1", folder=out,
              inputs=(raster, labels))


def test_integer64_codes_that_fit_still_train(scene_files):
    folder, raster, _, out = scene_files
    features = [(box(k * 8 + 2, 3, (k + 1) * 8 - 2, 21), {"code": [1, 2, 2 ** 32 - 1][k]}) for k in range(3)]
    labels = write_labels(folder / "fit.gpkg", features, field_types={"code": "int64"})
    from hsigan_qgis.train import train
    result = train(TrainConfig(input=raster, labels=labels, class_field="code", output_model=str(out / "m.hsigan"),
                               **FAST))
    assert result.metadata["class_ids"] == [1, 2, 2 ** 32 - 1]


# -- 11. sample files validated on open: every fault names SAMPLES ------------------------------------------
def good_samples(patch=3, per_class=12):
    """(metadata, arrays) of a valid sample file: 3 classes of real samples at distinct positions plus a few
    synthetic ones, 6 bands."""
    rng = np.random.default_rng(0)
    n_real = 3 * per_class
    labels = np.concatenate([np.repeat(np.arange(3), per_class), np.arange(3)]).astype(np.int64)
    patches = (rng.normal(0, 0.01, (len(labels), BANDS, patch, patch)) + labels[:, None, None, None] * 0.2
               + 0.1).astype(np.float32)
    rows = np.concatenate([np.arange(n_real) // 6 * 3, np.full(3, -1)]).astype(np.int64)
    cols = np.concatenate([np.arange(n_real) % 6 * 3 + labels[:n_real] * 20, np.full(3, -1)]).astype(np.int64)
    synthetic = np.concatenate([np.zeros(n_real, bool), np.ones(3, bool)])
    metadata = dict(source="scene.tif", labels="labels.gpkg", class_field="cls", bands=BANDS, wavelengths=None,
                    patch_size=patch, units="raster", mean=[0.3] * BANDS, std=[0.2] * BANDS,
                    class_ids=[1, 2, 3], class_names=list(CLASSES),
                    class_colours=["#ff0000", "#00ff00", "#0000ff"], real_per_class=[per_class] * 3,
                    synthetic_per_class=[1] * 3)
    return metadata, dict(patches=patches, labels=labels, synthetic=synthetic, rows=rows, cols=cols)


def write_raw_samples(path, metadata, arrays):
    """A sample file written as augment does, but without any check (arrays of any dtype, metadata as is)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps(dict(metadata, format="hsigan-samples", format_version=1)))
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            archive.writestr(f"{name}.npy", buffer.getvalue())
    return str(path)


def _set(key, value):
    return lambda m, a: m.__setitem__(key, value)


def _array(key, change):
    return lambda m, a: a.__setitem__(key, change(a[key]))


def _patch_value(value):
    def change(patches):
        patches = patches.copy()
        patches[5, 2, 1, 1] = value
        return patches
    return change


def _real_only(change):
    def apply(m, a):
        real = ~a["synthetic"]
        for key in ("rows", "cols"):
            a[key] = a[key].copy()
        change(m, a, real)
    return apply


SAMPLE_FAULTS = {
    "positions-a-million-apart": (_real_only(lambda m, a, real: (a["rows"].__setitem__(0, 10 ** 6),
                                                                  a["cols"].__setitem__(0, 10 ** 6))), "span"),
    "positions-all-equal": (_real_only(lambda m, a, real: (a["rows"].__setitem__(real, 4),
                                                            a["cols"].__setitem__(real, 4))), "repeat"),
    "negative-position": (_real_only(lambda m, a, real: a["cols"].__setitem__(3, -7)), "negative"),
    "zero-std": (_set("std", [0.2] * (BANDS - 1) + [0.0]), "standard deviation"),
    "nan-mean": (_set("mean", [float("nan")] * BANDS), "non-finite mean"),
    "nan-patch": (_array("patches", _patch_value(np.nan)), "NaN or infinite"),
    "inf-patch": (_array("patches", _patch_value(np.inf)), "NaN or infinite"),
    "string-class-ids": (_set("class_ids", ["1", "2", "3"]), "not all integers"),
    "bool-class-ids": (_set("class_ids", [True, 2, 3]), "not all integers"),
    "class-id-zero": (_set("class_ids", [0, 1, 2]), "distinct integers from 1"),
    "class-id-negative": (_set("class_ids", [-4, 1, 2]), "distinct integers from 1"),
    "class-id-too-large": (_set("class_ids", [1, 2, 2 ** 32]), "distinct integers from 1"),
    "class-ids-repeated": (_set("class_ids", [1, 2, 2]), "distinct integers from 1"),
    "one-class-table": (lambda m, a: m.update(class_ids=[1], class_names=["Grass"]), "fewer than 2 classes"),
    "names-not-text": (_set("class_names", ["Grass", 7, "Soil"]), "class names"),
    "label-index-out-of-range": (_array("labels", lambda x: np.where(x == 2, 9, x)), "class index"),
    "labels-as-text": (_array("labels", lambda x: x.astype(str)), "not integers"),
    "labels-as-floats": (_array("labels", lambda x: x.astype(np.float64)), "not integers"),
    "patches-as-integers": (_array("patches", lambda x: (x * 1000).astype(np.int32)), "not floating-point"),
    "synthetic-not-bool": (_array("synthetic", lambda x: x.astype(np.int8)), "true/false"),
    "no-real-samples": (_array("synthetic", lambda x: np.ones_like(x)), "no real samples"),
    "one-real-class": (lambda m, a: a.__setitem__("labels", np.where(a["synthetic"], a["labels"], 0)),
                       "one class only"),
    "even-patch-size": (_set("patch_size", 4), "patch size"),
    "band-count-disagrees": (_set("bands", BANDS + 1), "band count" ),
    "wavelengths-wrong-length": (_set("wavelengths", [500.0, 600.0]), "wavelengths"),
    "colour-not-hex": (_set("class_colours", ["red", "#00ff00", "#0000ff"]), "colours"),
    "rows-shorter": (_array("rows", lambda x: x[:-1]), "do not agree"),
}


def test_a_good_sample_file_trains(tmp_path):
    from hsigan_qgis.train import train
    path = write_raw_samples(tmp_path / "ok.hsamples", *good_samples())
    result = train(TrainConfig(samples=path, output_model=str(tmp_path / "m.hsigan"), gan="none", epochs=1,
                               patch_size=3, validation_fraction=0.2, block_size=4, batch_size=16))
    assert result.train_pixels > 0 and os.path.exists(tmp_path / "m.hsigan")


@pytest.mark.parametrize("fault", sorted(SAMPLE_FAULTS))
def test_sample_file_faults_name_samples(tmp_path, fault):
    change, expected = SAMPLE_FAULTS[fault]
    metadata, arrays = good_samples()
    change(metadata, arrays)
    path = write_raw_samples(tmp_path / "bad.hsamples", metadata, arrays)
    out = tmp_path / "out"
    out.mkdir()
    cfg = TrainConfig(samples=path, output_model=str(out / "m.hsigan"), gan="none", epochs=1, patch_size=3)
    message = engine_fails("train", cfg, "SAMPLES", out, path)
    assert expected in message, message
    assert "hsigan:augment" in message


@pytest.mark.parametrize("fault", ["positions-a-million-apart", "string-class-ids", "class-id-zero"])
def test_sample_file_faults_cli(tmp_path, fault):
    change, expected = SAMPLE_FAULTS[fault]
    metadata, arrays = good_samples()
    change(metadata, arrays)
    path = write_raw_samples(tmp_path / "bad.hsamples", metadata, arrays)
    line = cli_fails("SAMPLES", "train", "--samples", path, "--output-model", tmp_path / "m.hsigan", "--gan", "none",
                     "--patch-size", "3", folder=tmp_path, inputs=(path,))
    assert expected in line


@pytest.mark.qgis
def test_sample_file_fault_qgis_process(tmp_path):
    change, _ = SAMPLE_FAULTS["nan-patch"]
    metadata, arrays = good_samples()
    change(metadata, arrays)
    path = write_raw_samples(tmp_path / "bad.hsamples", metadata, arrays)
    with untouched(tmp_path, path):
        text = qgis_fails("hsigan:train", {"SAMPLES": path, "OUTPUT_MODEL": str(tmp_path / "m.hsigan"), "GAN": 0,
                                           "PATCH_SIZE": 3}, "SAMPLES", tmp_path)
    assert "NaN" in text


# -- 10. assess: the map must be a class map --------------------------------------------------------------
@pytest.fixture
def reference(tmp_path):
    return write_labels(tmp_path / "reference.gpkg", stripe_features())


def test_assess_refuses_a_multiband_map(tmp_path, reference):
    raster = scene(tmp_path / "scene.tif")  # the hyperspectral image itself, 6 bands
    cfg = AssessConfig(input=raster, reference=reference, class_field="cls",
                       output_report=str(tmp_path / "out" / "r.html"))
    (tmp_path / "out").mkdir()
    message = engine_fails("assess", cfg, "INPUT", tmp_path / "out", raster, reference)
    assert "6 bands" in message


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_assess_refuses_a_non_integer_map(tmp_path, reference, dtype):
    raster = scene(tmp_path / "map.tif", data=np.ones((1, 24, 24), dtype=dtype))
    message = engine_fails("assess", AssessConfig(input=raster, reference=reference, class_field="cls"), "INPUT",
                           tmp_path, raster, reference)
    assert dtype in message


@pytest.mark.qgis
def test_assess_multiband_map_in_qgis(processing_run, tmp_path, reference):
    raster = scene(tmp_path / "scene.tif")
    with untouched(tmp_path, reference):
        message = qgis_error(processing_run, "hsigan:assess", {"INPUT": raster, "REFERENCE": reference,
                                                               "CLASS_FIELD": "cls"})
    assert message.startswith("Classification map (INPUT):") and "bands" in message


def test_assess_multiband_map_cli(tmp_path, reference):
    raster = scene(tmp_path / "scene.tif")
    line = cli_fails("INPUT", "assess", "--input", raster, "--reference", reference, "--class-field", "cls",
                     folder=tmp_path, inputs=(raster, reference))
    assert "6 bands" in line


def test_assess_warns_when_no_map_value_matches_a_reference_class(tmp_path):
    from hsigan_qgis.assess import assess
    raster = scene(tmp_path / "map.tif", data=np.full((1, 24, 24), 7, dtype="uint8"))
    features = [(box(k * 8 + 2, 3, (k + 1) * 8 - 2, 21), {"code": k + 1}) for k in range(3)]
    reference = write_labels(tmp_path / "codes.gpkg", features)
    log = LogFeedback()
    result = assess(AssessConfig(input=raster, reference=reference, class_field="code"), log.engine)
    assert result.oa == 0
    assert "no map value under the reference matches a reference class" in log.text and "[7]" in log.text


# -- 12. faults a user causes and can fix: named, not "failed: <ExceptionType>" ------------------------------
def truncated(folder, raster):
    data = open(raster, "rb").read()
    path = folder / "truncated.tif"
    path.write_bytes(data[:len(data) // 2])
    return str(path)


def vrt_without_source(folder, raster):
    source = folder / "vsrc.tif"
    source.write_bytes(open(raster, "rb").read())
    vrt = str(folder / "good.vrt")
    subprocess.run(["gdalbuildvrt", "-q", vrt, str(source)], check=True)
    source.unlink()
    return vrt, str(source)


def test_truncated_geotiff_train(scene_files):
    folder, raster, labels, out = scene_files
    bad = truncated(folder, raster)
    message = engine_fails("train", train_cfg(bad, labels, out), "INPUT", out, bad, labels)
    assert "the file is truncated or damaged" in message and "IReadBlock failed" in message


@pytest.mark.parametrize("where", ["data", "header"])
def test_truncated_geotiff_classify(scene_files, small_model, where):
    """data: the header is whole, the pixel blocks are cut (GDAL fails only when reading them); header: the
    tags written at the end of the file are cut, so GDAL cannot open it."""
    folder, raster, labels, out = scene_files
    bad = truncated(folder, raster if where == "data" else small_model[1])
    cfg = ClassifyConfig(input=bad, model=small_model[0], output=str(out / "map.tif"), device="cpu")
    message = engine_fails("classify", cfg, "INPUT", out, bad, small_model[0])
    assert ("the file is truncated or damaged" if where == "data" else "cannot open raster") in message


def test_truncated_geotiff_classify_cli(scene_files, small_model):
    folder, raster, labels, out = scene_files
    bad = truncated(folder, raster)
    line = cli_fails("INPUT", "classify", "--input", bad, "--model", small_model[0], "--output", out / "map.tif",
                     "--device", "cpu", folder=out, inputs=(bad, small_model[0]))
    assert "the file is truncated or damaged" in line


def test_truncated_map_assess(tmp_path):
    raster = scene(tmp_path / "map.tif", data=np.ones((1, 24, 24), dtype="uint8"))
    bad = truncated(tmp_path, raster)
    codes = write_labels(tmp_path / "codes.gpkg", [(box(k * 8 + 2, 3, (k + 1) * 8 - 2, 21), {"code": k + 1})
                                                   for k in range(3)])
    message = engine_fails("assess", AssessConfig(input=bad, reference=codes, class_field="code"), "INPUT", tmp_path,
                           bad, codes)
    assert "the file is truncated or damaged" in message


def test_vrt_without_its_source_train(scene_files):
    folder, raster, labels, out = scene_files
    vrt, missing = vrt_without_source(folder, raster)
    message = engine_fails("train", train_cfg(vrt, labels, out), "INPUT", out, vrt, labels)
    assert missing in message


def test_vrt_without_its_source_classify(scene_files, small_model):
    folder, raster, labels, out = scene_files
    vrt, missing = vrt_without_source(folder, raster)
    cfg = ClassifyConfig(input=vrt, model=small_model[0], output=str(out / "map.tif"), device="cpu")
    message = engine_fails("classify", cfg, "INPUT", out, vrt, small_model[0])
    assert f"reads 1 file(s) that do not exist: {missing}" in message


@pytest.mark.qgis
def test_vrt_without_its_source_classify_qgis_process(scene_files, small_model):
    folder, raster, labels, out = scene_files
    vrt, missing = vrt_without_source(folder, small_model[1])
    with untouched(out, vrt, small_model[0]):
        text = qgis_fails("hsigan:classify", {"INPUT": vrt, "MODEL": small_model[0], "OUTPUT": str(out / "map.tif"),
                                              "DEVICE": 1}, "INPUT", out)
    assert "vsrc.tif" in text


@pytest.mark.parametrize("name, path, expected", [  # only formats tested to hold every output are written
    ("OUTPUT_CONFIDENCE", "conf.bmp", "'.bmp'"), ("OUTPUT_PROBABILITIES", "prob.rst", "'.rst'"),
    ("OUTPUT_CONFIDENCE", "conf.jpg", "'.jpg'"), ("OUTPUT", "map.gif", "'.gif'"),
    ("OUTPUT_PROBABILITIES", "prob.png", "'.png'")])
def test_output_format_that_cannot_hold_the_output(scene_files, small_model, name, path, expected):
    folder, _, _, out = scene_files
    paths = dict(output=str(out / "map.tif"))
    paths[name.lower()] = str(out / path)
    cfg = ClassifyConfig(input=small_model[1], model=small_model[0], device="cpu", **paths)
    message = engine_fails("classify", cfg, name, out, small_model[1], small_model[0])
    assert expected in message and "does not write" in message and ".tif (GeoTIFF)" in message


def test_output_format_cli(scene_files, small_model):
    folder, _, _, out = scene_files
    cli_fails("OUTPUT_CONFIDENCE", "classify", "--input", small_model[1], "--model", small_model[0], "--output",
              out / "map.tif", "--output-confidence", out / "c.bmp", "--device", "cpu", folder=out,
              inputs=(small_model[1], small_model[0]))


@pytest.fixture
def immutable(tmp_path):
    """make(path): an existing file marked immutable (chattr +i), unmarked after the test."""
    marked = []

    def make(path, content=b"previous output"):
        path.write_bytes(content)
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mark files immutable here: {done.stderr.decode().strip()}")
        marked.append(path)
        return str(path)
    yield make
    for path in marked:
        subprocess.run(["chattr", "-i", str(path)])


def test_immutable_existing_map(scene_files, small_model, immutable):
    folder, _, _, out = scene_files
    target = immutable(out / "map.tif")
    cfg = ClassifyConfig(input=small_model[1], model=small_model[0], output=target, device="cpu")
    message = engine_fails("classify", cfg, "OUTPUT", out, target, small_model[1], small_model[0])
    assert "immutable" in message


def test_immutable_existing_model(scene_files, immutable):
    folder, raster, labels, out = scene_files
    target = immutable(out / "m.hsigan")
    engine_fails("train", train_cfg(raster, labels, out), "OUTPUT_MODEL", out, target, raster, labels)


def test_immutable_existing_report_cli(tmp_path, reference, immutable):
    raster = scene(tmp_path / "map.tif", data=np.ones((1, 24, 24), dtype="uint8"))
    report = immutable(tmp_path / "r.html")
    cli_fails("OUTPUT_REPORT", "assess", "--input", raster, "--reference", reference, "--class-field", "cls",
              "--output-report", report, folder=tmp_path, inputs=(raster, reference, report))


@pytest.mark.parametrize("colours, expected", [
    ("{not json", "not valid JSON"), ('["#ff0000"]', "not a JSON object"), ('{"Grass": "red"}', "'red'"),
    ('{"Grass": 255}', "255"), ('{"Grass": "#ff00"}', "#ff00"), ('{"Water": "#gg0000"}', "#gg0000")])
def test_malformed_class_colours_refused_before_training(scene_files, colours, expected):
    folder, raster, labels, out = scene_files
    log = LogFeedback()
    message = engine_fails("train", train_cfg(raster, labels, out, class_colours=colours), "CLASS_COLOURS", out,
                           raster, labels, feedback=log.engine)
    assert expected in message
    assert not log.lines, "the colours are checked before any work: " + log.text


def test_malformed_class_colours_augment(scene_files):
    folder, raster, labels, out = scene_files
    cfg = AugmentConfig(input=raster, labels=labels, class_field="cls", output=str(out / "s.hsamples"),
                        class_colours='{"Grass": "green"}', gan_steps=1)
    engine_fails("augment", cfg, "CLASS_COLOURS", out, raster, labels)


def test_malformed_class_colours_cli(scene_files):
    folder, raster, labels, out = scene_files
    cli_fails("CLASS_COLOURS", "train", "--input", raster, "--labels", labels, "--class-field", "cls",
              "--output-model", out / "m.hsigan", "--class-colours", "{oops", folder=out, inputs=(raster, labels))


def test_wrong_shape_tensor_message_is_one_whole_line(small_model, tmp_path):
    from test_errors_models import _npy, rewrite
    model = small_model[0]
    name = "tensors/classifier/head.bias.npy"
    assert name in zipfile.ZipFile(model).namelist()
    bad = rewrite(model, tmp_path / "shape.hsigan", drop=(name,), extra={name: _npy(np.zeros(7, np.float32))})
    out = tmp_path / "out"
    out.mkdir()
    cfg = ClassifyConfig(input=small_model[1], model=bad, output=str(out / "map.tif"), device="cpu")
    message = engine_fails("classify", cfg, "MODEL", out, bad, small_model[1])
    assert "\n" not in message and "\t" not in message
    assert message.endswith(("anew", "again", "anew)", "again)")) or message.endswith(".")
    inner = message[message.find("(") + 1:message.rfind(")")]
    assert not inner.endswith(tuple("abcdefghijklmnopqrstuvwxyz")) or len(inner) < 290, message


# -- 13. label geometries: lines refused, an empty layer said to be empty -----------------------------------
def line(c0, r0, c1, r1):
    (x0, y0), (x1, y1) = px(c0, r0), px(c1, r1)
    return f"LINESTRING({x0} {y0},{x1} {y1})"


LINE_LAYERS = {
    "lines-only": [(line(k * 8 + 2, 3, k * 8 + 5, 20), {"cls": CLASSES[k]}) for k in range(3)],
    "polygons-and-a-line": stripe_features() + [(line(1, 1, 20, 1), {"cls": "Grass"})],
    "multilinestring": stripe_features()[:2] + [
        ("MULTILINESTRING((%s %s,%s %s),(%s %s,%s %s))" % (*px(18, 3), *px(18, 20), *px(20, 3), *px(20, 20)),
         {"cls": "Soil"})],
    "polygon-boundary-as-line": stripe_features()[:2] + [
        (box(18, 3, 22, 20).replace("POLYGON((", "LINESTRING(").replace("))", ")"), {"cls": "Soil"})],
}


@pytest.mark.parametrize("layer", sorted(LINE_LAYERS))
def test_lines_are_not_labels(scene_files, layer):
    folder, raster, _, out = scene_files
    labels = write_labels(folder / "lines.gpkg", LINE_LAYERS[layer])
    message = engine_fails("train", train_cfg(raster, labels, out), "LABELS", out, raster, labels)
    assert "lines are not a label geometry; use polygons or points" in message


def test_lines_as_reference_in_assess(tmp_path):
    raster = scene(tmp_path / "map.tif", data=np.ones((1, 24, 24), dtype="uint8"))
    reference = write_labels(tmp_path / "lines.gpkg", LINE_LAYERS["lines-only"])
    message = engine_fails("assess", AssessConfig(input=raster, reference=reference, class_field="cls"),
                           "REFERENCE", tmp_path, raster, reference)
    assert "lines are not a label geometry" in message


def test_lines_as_labels_augment_cli(scene_files):
    folder, raster, _, out = scene_files
    labels = write_labels(folder / "lines.gpkg", LINE_LAYERS["polygons-and-a-line"])
    cli_fails("LABELS", "augment", "--input", raster, "--labels", labels, "--class-field", "cls", "--output",
              out / "s.hsamples", "--gan-steps", "1", folder=out, inputs=(raster, labels))


@pytest.mark.qgis
def test_lines_as_labels_in_qgis(processing_run, scene_files):
    from errors_helpers import train_params
    folder, raster, _, out = scene_files
    labels = write_labels(folder / "lines.gpkg", LINE_LAYERS["polygons-and-a-line"])
    with untouched(out, labels):
        message = qgis_error(processing_run, "hsigan:train", train_params(raster, labels, str(out / "m.hsigan")))
    assert "LABELS" in message and "lines" in message


def test_points_and_polygons_still_train(scene_files):
    from hsigan_qgis.train import train
    folder, raster, _, out = scene_files
    labels = write_labels(folder / "mixed.gpkg", stripe_features()[:2] + [(point(20, 10), {"cls": "Soil"}),
                                                                         (point(21, 12), {"cls": "Soil"})])
    assert train(train_cfg(raster, labels, out)).train_pixels > 0


@pytest.mark.parametrize("job", ["train", "augment", "assess"])
def test_an_empty_layer_says_it_has_no_features(tmp_path, job):
    raster = scene(tmp_path / "scene.tif")
    empty = write_labels(tmp_path / "empty.gpkg", [], field_types={"cls": "str"})
    out = tmp_path / "out"
    out.mkdir()
    if job == "train":
        cfg, name = train_cfg(raster, empty, out), "LABELS"
    elif job == "augment":
        cfg, name = AugmentConfig(input=raster, labels=empty, class_field="cls", output=str(out / "s.hsamples")), "LABELS"
    else:
        raster = scene(tmp_path / "map.tif", data=np.ones((1, 24, 24), dtype="uint8"))
        cfg, name = AssessConfig(input=raster, reference=empty, class_field="cls"), "REFERENCE"
    message = engine_fails(job, cfg, name, out, raster, empty)
    assert "the layer" in message and "has no features" in message


@pytest.mark.qgis
def test_assess_multiband_map_qgis_process(tmp_path, reference):
    raster = scene(tmp_path / "scene.tif")
    with untouched(tmp_path, reference):
        text = qgis_fails("hsigan:assess", {"INPUT": raster, "REFERENCE": reference, "CLASS_FIELD": "cls",
                                            "OUTPUT_REPORT": str(tmp_path / "r.html")}, "INPUT", tmp_path)
    assert "6 bands" in text


@pytest.mark.qgis
def test_lines_as_labels_augment_qgis_process(scene_files):
    folder, raster, _, out = scene_files
    labels = write_labels(folder / "lines.gpkg", LINE_LAYERS["polygons-and-a-line"])
    with untouched(out, labels):
        text = qgis_fails("hsigan:augment", {"INPUT": raster, "LABELS": labels, "CLASS_FIELD": "cls",
                                             "OUTPUT": str(out / "s.hsamples"), "GAN_STEPS": 1, "PATCH_SIZE": 3},
                          "LABELS", out)
    assert "lines are not a label geometry" in text
