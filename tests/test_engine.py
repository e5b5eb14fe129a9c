"""The QGIS-free engine: imports without QGIS, metrics, model files, labels, CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import RASTER, REFERENCE, ROOT, TRAIN_LABELS


def test_engine_imports_without_qgis():
    code = ("import sys; import hsigan_qgis.train, hsigan_qgis.classify, hsigan_qgis.assess, "
            "hsigan_qgis.cli; assert not any(m == 'qgis' or m.startswith('qgis.') for m in sys.modules), "
            "[m for m in sys.modules if m.startswith('qgis')]; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


def test_metrics_match_hand_computed_example():
    from hsigan_qgis.metrics import confusion_matrix, summarise
    reference = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    predicted = [0, 0, 0, 1, 1, 1, 2, 2, 0, 2]
    matrix = confusion_matrix(reference, predicted, 3)
    assert matrix.tolist() == [[3, 1, 0], [0, 2, 0], [1, 0, 3]]
    s = summarise(matrix)
    assert s["oa"] == pytest.approx(80.0)
    assert s["aa"] == pytest.approx(100 * (3 / 4 + 1 + 3 / 4) / 3)
    expected = (4 * 4 + 2 * 3 + 4 * 3) / 100
    assert s["kappa"] == pytest.approx((0.8 - expected) / (1 - expected))
    assert s["precision"][1] == pytest.approx(2 / 3)


def test_model_file_round_trip_and_atomic(tmp_path, trained_model):
    from hsigan_qgis import model_file
    metadata, tensors = model_file.load(trained_model[0])
    assert metadata["bands"] == 204 and metadata["patch_size"] % 2 == 1
    assert len(metadata["class_ids"]) == len(metadata["class_names"]) == len(metadata["class_colours"]) == 6
    path = tmp_path / "copy.hsigan"
    model_file.save(str(path), metadata, tensors)
    again, tensors2 = model_file.load(str(path))
    for name, array in tensors["classifier"].items():
        assert np.array_equal(array, tensors2["classifier"][name])
    bad = {"classifier": dict(tensors["classifier"])}
    first = next(iter(bad["classifier"]))
    bad["classifier"][first] = np.full_like(bad["classifier"][first], np.nan, dtype=np.float32)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        model_file.save(str(path), metadata, bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["copy.hsigan"]


def test_labels_rasterise_by_name_and_code():
    import rasterio
    from hsigan_qgis.labels import rasterise
    with rasterio.open(RASTER) as dataset:
        by_name = rasterise(TRAIN_LABELS, "class_name", dataset)
        by_code = rasterise(TRAIN_LABELS, "class_id", dataset)
    assert by_code.classes.ids == [1, 10, 11, 12, 13, 14]
    assert by_name.classes.ids == [1, 2, 3, 4, 5, 6] and by_name.classes.names[0] == "Brocoli_green_weeds_1"
    assert np.array_equal(by_name.index, by_code.index)
    assert (by_name.index >= 0).sum() > 1000


def test_cli_train_classify_assess(tmp_path):
    hsigan = os.path.join(ROOT, "bin", "hsigan")
    model, out = str(tmp_path / "m.hsigan"), str(tmp_path / "map.tif")
    done = subprocess.run([hsigan, "train", "--quiet", "--json", "--input", RASTER, "--labels", TRAIN_LABELS,
                           "--class-field", "class_name", "--gan", "none", "--epochs", "4",
                           "--samples-per-class", "30", "--output-model", model], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["train_pixels"] == 180
    done = subprocess.run([hsigan, "classify", "--quiet", "--input", RASTER, "--model", model, "--output", out],
                          capture_output=True, text=True)
    assert done.returncode == 0 and os.path.isfile(out), done.stderr
    done = subprocess.run([hsigan, "assess", "--json", "--input", out, "--reference", REFERENCE,
                           "--class-field", "class_name"], capture_output=True, text=True)
    result = json.loads(done.stdout)
    assert result["pixels"] > 1000 and 0 <= result["oa"] <= 100
    done = subprocess.run([hsigan, "classify", "--input", RASTER, "--model", str(tmp_path / "none.hsigan"),
                           "--output", str(tmp_path / "x.tif")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "MODEL" in done.stderr


@pytest.mark.qgis
def test_plugin_zip_installs_into_qgis(tmp_path):
    done = subprocess.run(["bash", os.path.join(ROOT, "scripts", "build_zip.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    import zipfile
    archive = os.path.join(ROOT, done.stdout.strip().splitlines()[-1])
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        assert "hsigan/metadata.txt" in names and "hsigan/__init__.py" in names
        assert not any(n.startswith("hsigan/tests/") for n in names)
        meta = zf.read("hsigan/metadata.txt").decode()
        zf.extractall(tmp_path / "plugins")
    for key in ("name=", "version=", "qgisMinimumVersion=", "description=", "about=", "author=",
                "hasProcessingProvider=yes", "changelog=", "tags="):
        assert key in meta
    assert "example.org" not in meta and "github.com/hsigan" not in meta  # no placeholder links (issue 13)
    profile = tmp_path / "profile" / "profiles" / "default" / "QGIS"
    profile.mkdir(parents=True)
    (profile / "QGIS3.ini").write_text("[PythonPlugins]\nhsigan=true\n")
    site = [p for p in sys.path if p.endswith("site-packages") and ".venv" in p]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=str(tmp_path / "plugins"),
               QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"), PYTHONPATH=":".join(site),
               XDG_RUNTIME_DIR=str(tmp_path))
    done = subprocess.run(["qgis_process.bin", "list"], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=300)
    assert "hsigan:train" in done.stdout and "hsigan:classify" in done.stdout, done.stdout[-2000:] + done.stderr
