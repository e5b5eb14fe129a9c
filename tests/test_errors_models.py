"""Issue 6, cases 7 and 8: a raster that does not fit the model, and model files that are broken, foreign,
too new or hostile. Loading a hostile file must fail cleanly and execute nothing."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from hsigan_qgis import model_file
from hsigan_qgis.errors import InputError
from errors_helpers import (WAVELENGTHS, cube, digest, listing, qgis_error, qgis_fails, qgis_feedback,
                                 read_map, scene, tag_wavelengths)

MARKER_NAME = "HSIGAN_PWNED"


class Exploit:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def classify_fails(processing_run, folder, raster, model, must_name, **extra):
    before, hashes = listing(folder), digest(raster, model)
    out = str(folder / "map.tif")
    message = qgis_error(processing_run, "hsigan:classify", dict({"INPUT": raster, "MODEL": model, "OUTPUT": out,
                                                                   "DEVICE": 1}, **extra))
    # QGIS names the parameter by its dialog label and id: "Hyperspectral raster (INPUT): ..."
    assert f"({must_name}):" in message or f"parameter value for {must_name}" in message, message
    assert not os.path.exists(out) and listing(folder) == before
    assert digest(raster, model) == hashes
    return message


# -- 7. raster vs model -------------------------------------------------------------------------------
@pytest.mark.qgis
@pytest.mark.hostile
def test_band_count_differs(processing_run, small_model, tmp_path):
    model, _ = small_model
    raster = scene(tmp_path / "five.tif", cube(bands=5))
    message = classify_fails(processing_run, tmp_path, raster, model, "INPUT")
    assert "5 bands" in message and "trained on 6" in message


@pytest.mark.qgis
@pytest.mark.hostile
def test_band_count_differs_qgis_process(small_model, tmp_path):
    model, _ = small_model
    raster = scene(tmp_path / "seven.tif", cube(bands=7))
    text = qgis_fails("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": str(tmp_path / "map.tif")},
                      "INPUT", tmp_path)
    assert "7 bands" in text


@pytest.mark.qgis
@pytest.mark.parametrize("dtype", ["int16", "uint16", "float64"])
def test_other_dtype_same_values_gives_same_map(processing_run, tmp_path, dtype):
    """Rasters are read as float32 whatever their type: a model trained on scaled integers classifies the
    same values stored as another type identically."""
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train
    from errors_helpers import FAST, stripe_features, write_labels
    values = cube(dtype="int16")
    trained_on = scene(tmp_path / "int16.tif", values)
    model = str(tmp_path / "m.hsigan")
    train(TrainConfig(input=trained_on, labels=write_labels(tmp_path / "l.gpkg", stripe_features()),
                      class_field="cls", output_model=model, **FAST))
    other = scene(tmp_path / f"{dtype}.tif", values.astype(dtype))
    maps = []
    for raster in (trained_on, other):
        out = str(tmp_path / f"map_{os.path.basename(raster)}")
        processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 1})
        maps.append(read_map(out)[0])
    assert np.array_equal(maps[0], maps[1]) and (maps[0] > 0).all()


@pytest.mark.qgis
def test_missing_wavelengths_warn_and_classify(processing_run, small_model, tmp_path):
    model, _ = small_model
    raster = scene(tmp_path / "plain.tif")  # same bands, no wavelength tags
    feedback = qgis_feedback()
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": str(tmp_path / "map.tif"),
                                       "DEVICE": 1}, feedback=feedback)
    assert "does not state its band wavelengths" in feedback.text
    assert (read_map(str(tmp_path / "map.tif"))[0] > 0).all()


@pytest.mark.qgis
@pytest.mark.hostile
def test_other_wavelengths_are_refused(processing_run, small_model, tmp_path):
    model, _ = small_model
    raster = tag_wavelengths(scene(tmp_path / "shifted.tif"), WAVELENGTHS[:2] + [700.0] + WAVELENGTHS[3:])
    message = classify_fails(processing_run, tmp_path, raster, model, "INPUT")
    assert "band 3" in message and "700" in message and "650" in message


@pytest.mark.qgis
@pytest.mark.hostile
def test_other_wavelengths_qgis_process(small_model, tmp_path):
    model, _ = small_model
    raster = tag_wavelengths(scene(tmp_path / "shifted.tif"), [w + 100 for w in WAVELENGTHS])
    text = qgis_fails("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": str(tmp_path / "map.tif")},
                      "INPUT", tmp_path)
    assert "band 1" in text and "wavelength" in text


# -- 8. model files -------------------------------------------------------------------------------------
def rewrite(model, path, metadata_change=None, extra=None, drop=()):
    """A copy of a model zip with its metadata changed and entries added or dropped."""
    with zipfile.ZipFile(model) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            if info.filename in drop:
                continue
            data = source.read(info)
            if info.filename == "metadata.json" and metadata_change:
                metadata = json.loads(data)
                metadata_change(metadata)
                data = json.dumps(metadata).encode()
            target.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            target.writestr(name, data)
    return str(path)


def evil_npy(marker):
    buffer = io.BytesIO()
    np.save(buffer, np.array([Exploit(marker), 1], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def bad_models(model, folder):
    """{case: path} of model files that must be refused; the hostile ones would create folder/MARKER."""
    marker = str(folder / MARKER_NAME)
    data = open(model, "rb").read()
    files = {}

    def put(name, content):
        path = str(folder / name)
        with open(path, "wb") as stream:
            stream.write(content)
        return path
    files["truncated"] = put("truncated.hsigan", data[:len(data) // 2])
    files["truncated-end"] = put("truncated_end.hsigan", data[:-10])
    files["random"] = put("random.hsigan", np.random.default_rng(0).bytes(4096))
    files["empty"] = put("empty.hsigan", b"")
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as archive:
        archive.writestr("readme.txt", "not a model")
    files["zip-without-metadata"] = put("nometa.hsigan", zbuf.getvalue())
    import torch
    torch.save({"weight": torch.zeros(3)}, str(folder / "checkpoint.hsigan"))  # a renamed .pt file
    files["torch-pt"] = str(folder / "checkpoint.hsigan")
    files["pickle"] = put("pickled.hsigan", pickle.dumps(Exploit(marker)))
    files["newer"] = rewrite(model, folder / "newer.hsigan", lambda m: m.update(format_version=99))
    files["npy-pickle"] = rewrite(model, folder / "evil.hsigan",
                                  extra={"tensors/classifier/evil.npy": evil_npy(marker)})
    # the pickled array replacing a real weight, so it is read before anything else could fail
    first = sorted(n for n in zipfile.ZipFile(model).namelist() if n.startswith("tensors/classifier/"))[0]
    files["npy-pickle-replacing"] = rewrite(model, folder / "evil2.hsigan", drop=(first,),
                                            extra={first: evil_npy(marker)})
    files["nan-weights"] = rewrite(model, folder / "nan.hsigan", drop=(first,),
                                   extra={first: _npy(np.full(np.load(io.BytesIO(zipfile.ZipFile(model).read(first))).shape,
                                                              np.nan, dtype=np.float32))})
    files["bad-metadata"] = rewrite(model, folder / "badmeta.hsigan", lambda m: m.update(class_ids="1,2,3"))
    files["wrong-architecture"] = rewrite(model, folder / "arch.hsigan",
                                          lambda m: m["architecture"].update(patch_size=5))
    files["bad-bands-out-of-range"] = rewrite(model, folder / "badbands.hsigan",
                                              lambda m: m.update(bad_bands=[0, m["bands"]]))
    return files, marker


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


EXPECTED = {"truncated": "not a zip archive", "truncated-end": "not a zip archive", "random": "not a zip archive",
            "empty": "not a zip archive", "zip-without-metadata": "without HSI-GAN metadata",
            "torch-pt": "PyTorch checkpoint", "pickle": "not a zip archive", "newer": "newer than this plugin",
            "npy-pickle": "has no use for", "npy-pickle-replacing": "holds object",
            "nan-weights": "NaN or infinite weights", "bad-metadata": "class_ids",
            "wrong-architecture": "architecture", "bad-bands-out-of-range": "ignored bands is not valid"}


@pytest.mark.hostile
def test_bad_model_files_fail_cleanly_in_the_loader(small_model, tmp_path):
    files, marker = bad_models(small_model[0], tmp_path)
    assert files.keys() == EXPECTED.keys()
    for case, path in files.items():
        with pytest.raises(InputError) as caught:
            model_file.load(path)
        assert caught.value.parameter == "MODEL", case
        assert EXPECTED[case] in str(caught.value), (case, str(caught.value))
    assert not os.path.exists(marker), "a model file executed code"
    # the marker is real: unpickling the crafted array the unsafe way does create it
    np.load(io.BytesIO(evil_npy(marker)), allow_pickle=True)
    assert os.path.exists(marker)


@pytest.mark.qgis
@pytest.mark.hostile
def test_bad_model_files_in_qgis(processing_run, small_model, tmp_path):
    _, raster = small_model
    models = tmp_path / "models"
    models.mkdir()
    files, marker = bad_models(small_model[0], models)
    for case, path in files.items():
        message = classify_fails(processing_run, tmp_path, raster, path, "MODEL")
        assert EXPECTED[case] in message, (case, message)
    assert not os.path.exists(marker), "a model file executed code"
    # QGIS itself refuses a MODEL without the .hsigan extension before the plugin sees it
    import torch
    torch.save({"weight": torch.zeros(3)}, str(models / "weights.pt"))
    message = classify_fails(processing_run, tmp_path, raster, str(models / "weights.pt"), "MODEL")
    assert "Incorrect parameter value for MODEL" in message


@pytest.mark.qgis
@pytest.mark.hostile
def test_hostile_model_qgis_process(small_model, tmp_path):
    _, raster = small_model
    files, marker = bad_models(small_model[0], tmp_path)
    for case in ("npy-pickle", "pickle"):
        text = qgis_fails("hsigan:classify", {"INPUT": raster, "MODEL": files[case],
                                              "OUTPUT": str(tmp_path / "map.tif")}, "MODEL", tmp_path)
        assert EXPECTED[case] in text
    assert not os.path.exists(marker), "a model file executed code"


@pytest.mark.qgis
@pytest.mark.hostile
def test_newer_model_qgis_process(small_model, tmp_path):
    _, raster = small_model
    files, _ = bad_models(small_model[0], tmp_path)
    for case in ("newer",):
        text = qgis_fails("hsigan:classify", {"INPUT": raster, "MODEL": files[case],
                                              "OUTPUT": str(tmp_path / "map.tif")}, "MODEL", tmp_path)
        assert EXPECTED[case] in text, text
