"""The train -> classify -> assess path in real headless QGIS: processing.run and bin/qgis-process."""
import json
import os

import numpy as np
import pytest
import rasterio

from conftest import RASTER, REFERENCE, TRAIN_LABELS, run_qgis_process, write_raster, sample_cube

pytestmark = pytest.mark.qgis


def test_provider_lists_algorithms(qgis_app):
    from qgis.core import QgsApplication
    provider = QgsApplication.processingRegistry().providerById("hsigan")
    ids = sorted(a.id() for a in provider.algorithms())
    assert ids == ["hsigan:assess", "hsigan:augment", "hsigan:check", "hsigan:classify", "hsigan:export_onnx",
                   "hsigan:install_torch", "hsigan:train", "hsigan:train_samples"]
    for algorithm in provider.algorithms():
        assert algorithm.shortHelpString().strip()
        assert algorithm.group() == ("Set-up" if algorithm.name() == "install_torch" else "Hyperspectral classification")


def test_train_classify_assess_in_qgis(processing_run, tmp_path):
    model = str(tmp_path / "m.hsigan")
    trained = processing_run("hsigan:train", {
        "INPUT": RASTER, "LABELS": TRAIN_LABELS, "CLASS_FIELD": "class_name", "SAMPLES_PER_CLASS": 0,
        "EPOCHS": 10, "GAN": 0, "SEED": 1, "OUTPUT_MODEL": model, "OUTPUT_REPORT": str(tmp_path / "train.html")})
    assert os.path.isfile(model)
    assert 0 <= trained["OA"] <= 100 and -1 <= trained["KAPPA"] <= 1
    assert os.path.isfile(tmp_path / "train.html") and os.path.isfile(tmp_path / "train.json")
    out = str(tmp_path / "map.tif")
    processing_run("hsigan:classify", {"INPUT": RASTER, "MODEL": model, "OUTPUT": out, "TILE_SIZE": 32})
    with rasterio.open(RASTER) as src, rasterio.open(out) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform and dst.shape == src.shape
        assert dst.dtypes[0] == "uint8" and dst.nodata == 0
        values = np.unique(dst.read(1))
    from hsigan_qgis.model_file import load
    metadata, _ = load(model, with_tensors=False)
    assert set(values.tolist()) <= set(metadata["class_ids"])
    report = str(tmp_path / "acc.html")
    assessed = processing_run("hsigan:assess", {"INPUT": out, "REFERENCE": REFERENCE, "CLASS_FIELD": "class_name",
                                                "OUTPUT_REPORT": report})
    assert assessed["OA"] > 90, assessed
    assert 0 < assessed["KAPPA"] <= 1 and assessed["PIXELS"] > 1000
    with open(os.path.splitext(report)[0] + ".json") as stream:
        data = json.load(stream)
    assert abs(data["oa"] - assessed["OA"]) < 1e-9
    assert "Confusion matrix" in open(report).read()


def test_qgis_process_classify_keeps_nodata(trained_model, tmp_path):
    cube, transform, crs = sample_cube()
    cube = cube.copy()
    cube[:, 10:20, 30:45] = -9999
    raster = write_raster(tmp_path / "holes.tif", cube, crs=crs, transform=transform, nodata=-9999)
    out = str(tmp_path / "map.tif")
    done = run_qgis_process("run", "hsigan:classify", "--", f"INPUT={raster}", f"MODEL={trained_model[0]}",
                            f"OUTPUT={out}", "TILE_SIZE=40")
    assert done.returncode == 0, done.stdout + done.stderr
    with rasterio.open(out) as dst:
        labels = dst.read(1)
        assert dst.transform == transform and dst.crs == crs
    assert (labels[10:20, 30:45] == 0).all()
    assert (labels[:10] > 0).all() and (labels[20:] > 0).all()


def test_qgis_process_train_and_assess(tmp_path):
    model = str(tmp_path / "m.hsigan")
    done = run_qgis_process("--json", "run", "hsigan:train", "--", f"INPUT={RASTER}", f"LABELS={TRAIN_LABELS}",
                            "CLASS_FIELD=class_id", "EPOCHS=6", "GAN=0", "SAMPLES_PER_CLASS=40", f"OUTPUT_MODEL={model}")
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(done.stdout)["results"]
    assert results["OUTPUT_MODEL"] == model and results["TRAIN_PIXELS"] == 6 * 40
    out = str(tmp_path / "map.tif")
    assert run_qgis_process("run", "hsigan:classify", "--", f"INPUT={RASTER}", f"MODEL={model}",
                            f"OUTPUT={out}").returncode == 0
    with rasterio.open(out) as dst:
        assert set(np.unique(dst.read(1)).tolist()) <= {1, 10, 11, 12, 13, 14}  # the field's own codes
    done = run_qgis_process("--json", "run", "hsigan:assess", "--", f"INPUT={out}", f"REFERENCE={REFERENCE}",
                            "CLASS_FIELD=class_id")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert results["OA"] > 80 and results["PIXELS"] > 1000


def test_qgis_process_reports_bad_parameter(tmp_path):
    done = run_qgis_process("run", "hsigan:train", "--", f"INPUT={RASTER}", f"LABELS={TRAIN_LABELS}",
                            "CLASS_FIELD=no_such_field", f"OUTPUT_MODEL={tmp_path / 'm.hsigan'}")
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert "CLASS_FIELD" in text and "Traceback" not in text
    assert not os.path.exists(tmp_path / "m.hsigan")
