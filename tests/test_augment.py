"""hsigan:augment: the sample file (safe format, real samples in raster units at their raster
positions, synthetic ones flagged), the fidelity figures and report, and hsigan:train from SAMPLES."""
import io
import json
import os
import subprocess
import zipfile

import numpy as np
import pytest
import rasterio

from conftest import RASTER, ROOT, TRAIN_LABELS

COUNT = 12


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """A sample file written through the command line (bin/hsigan augment)."""
    folder = tmp_path_factory.mktemp("augment")
    out, report = str(folder / "s.hsamples"), str(folder / "s.html")
    done = subprocess.run([os.path.join(ROOT, "bin", "hsigan"), "augment", "--json", "--quiet", "--input", RASTER,
                           "--labels", TRAIN_LABELS, "--class-field", "class_name", "--output", out,
                           "--count-per-class", str(COUNT), "--samples-per-class", "25", "--patch-size", "5",
                           "--gan-steps", "2", "--output-report", report],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out, report, json.loads(done.stdout)


def test_sample_file_is_safe_and_faithful_to_the_raster(samples):
    from hsigan_qgis.sample_file import read_samples
    path, _, result = samples
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        assert names == ["cols.npy", "labels.npy", "metadata.json", "patches.npy", "rows.npy", "synthetic.npy"]
        for name in names[:-1]:  # every array loads without pickle
            if name.endswith(".npy"):
                np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
    metadata, arrays = read_samples(path)
    k = len(metadata["class_ids"])
    synthetic = arrays["synthetic"]
    assert result["synthetic_samples"] == COUNT * k == int(synthetic.sum())
    assert result["real_samples"] == int((~synthetic).sum()) == 25 * k
    assert np.bincount(arrays["labels"][synthetic], minlength=k).tolist() == [COUNT] * k
    assert metadata["synthetic_per_class"] == [COUNT] * k and metadata["units"] == "raster"
    assert (arrays["rows"][synthetic] == -1).all() and (arrays["rows"][~synthetic] >= 0).all()
    # real patches are raster values (raw units) centred on the recorded pixel
    with rasterio.open(RASTER) as src:
        cube = src.read().astype(np.float32)
    real = np.flatnonzero(~synthetic)
    for i in real[:: max(1, len(real) // 10)]:
        r, c = arrays["rows"][i], arrays["cols"][i]
        np.testing.assert_allclose(arrays["patches"][i, :, 2, 2], cube[:, r, c], rtol=1e-5, atol=1e-3)
    assert 0 <= result["spectral_angle"] <= 90 and 0 <= result["separability"] <= 100


def test_report_plots_real_and_synthetic_spectra(samples):
    _, report, _ = samples
    text = open(report, encoding="utf-8").read()
    assert text.count("<svg") >= 6  # one spectrum plot per class, plus the GAN losses
    assert "real (n=25)" in text and f"synthetic (n={COUNT})" in text and "<polygon" in text  # ± std bands
    with open(report[:-5] + ".json") as stream:
        data = json.load(stream)
    assert len(data["spectra"]) == 6 and len(data["spectra"][0]["real_mean"]) == 204
    assert data["fidelity"]["mean_separability"] is not None


def test_separability_and_spectral_angle_mean_what_they_say():
    from hsigan_qgis.fidelity import separability, spectral_angle
    rng = np.random.default_rng(0)
    real = rng.normal(size=(120, 30))
    same, shifted = rng.normal(size=(120, 30)), rng.normal(size=(120, 30)) + 1.0
    assert 35 <= separability(real, same, 0) <= 65
    assert separability(real, shifted, 0) >= 95
    assert spectral_angle([1, 2, 3], [2, 4, 6]) == pytest.approx(0, abs=1e-6)
    assert spectral_angle([1, 0], [0, 1]) == pytest.approx(90)


def test_sample_file_patches_come_back_as_patch_ids(samples, tmp_path):
    from hsigan_qgis.sample_file import read_samples
    from hsigan_qgis.training_patches import prepare_training
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.sampling import gather_patches
    path = samples[0]
    metadata, arrays = read_samples(path)
    cfg = TrainConfig(samples=path, output_model=str(tmp_path / "m.hsigan"), patch_size=3)
    prepared = prepare_training(cfg, Feedback())
    train, val = prepared["train"], prepared["validation"]
    assert len(train) and len(val)
    got = gather_patches(prepared["store"], train.rows, train.cols, 1).numpy()
    real = arrays["patches"][~arrays["synthetic"]][:, :, 1:4, 1:4]  # 5x5 cut to 3x3
    mean, std = np.asarray(metadata["mean"])[:, None, None], np.asarray(metadata["std"])[:, None, None]
    expected = (real[train.rows] - mean) / std
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert (train.labels == arrays["labels"][~arrays["synthetic"]][train.rows]).all()
    assert len(prepared["synthetic"][1]) == int(arrays["synthetic"].sum())
    # the split is made on the samples' raster positions, as with raster + labels
    real_rows = arrays["rows"][~arrays["synthetic"]]
    real_cols = arrays["cols"][~arrays["synthetic"]]
    gap = np.maximum(np.abs(real_rows[train.rows][:, None] - real_rows[val.rows][None, :]),
                     np.abs(real_cols[train.rows][:, None] - real_cols[val.rows][None, :]))
    assert gap.min() > 1  # no training patch (radius 1) reaches a validation pixel


def test_train_from_samples_and_refusals(samples, tmp_path):
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.errors import InputError
    from hsigan_qgis.model_file import load
    from hsigan_qgis.train import train
    path = samples[0]
    model = str(tmp_path / "m.hsigan")
    result = train(TrainConfig(samples=path, output_model=model, epochs=2, gan="none", patch_size=5))
    metadata, _ = load(model, with_tensors=False)
    assert metadata["training"]["samples"] == "s.hsamples" and metadata["bands"] == 204
    assert result.train_pixels + result.validation_pixels <= 6 * 25
    # the default GAN, ssgan, needs the raster's unlabelled pixels, which a sample file lacks: none trains instead
    fallback = train(TrainConfig(samples=path, output_model=str(tmp_path / "f.hsigan"), epochs=2, patch_size=5))
    assert fallback.gan_chosen == "none"
    metadata, _ = load(str(tmp_path / "f.hsigan"), with_tensors=False)
    assert metadata["training"]["gan"] == "ssgan" and metadata["training"]["gan_steps"] == 0
    assert "sample file" in metadata["training"]["gan_rule"]["reason"]
    with pytest.raises(InputError, match="PATCH_SIZE"):
        train(TrainConfig(samples=path, output_model=model, gan="none", patch_size=7))
    with pytest.raises(InputError, match="INPUT"):
        train(TrainConfig(output_model=model))


def test_unsafe_or_foreign_files_are_refused(tmp_path):
    from hsigan_qgis.sample_file import read_samples
    from hsigan_qgis.errors import InputError
    bad = tmp_path / "bad.hsamples"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"format": "hsigan-samples", "format_version": 1,
                                                      "bands": 1, "patch_size": 1}))
        for name in ("patches", "labels", "synthetic", "rows", "cols"):
            buffer = io.BytesIO()
            np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)  # a pickled object
            archive.writestr(f"{name}.npy", buffer.getvalue())
    with pytest.raises(InputError, match="SAMPLES"):
        read_samples(str(bad))
    (tmp_path / "text.hsamples").write_text("hello")
    with pytest.raises(InputError, match="not an HSI-GAN sample file"):
        read_samples(str(tmp_path / "text.hsamples"))


@pytest.mark.qgis
def test_augment_in_qgis_declares_numbers(processing_run, tmp_path):
    out = str(tmp_path / "q.hsamples")
    result = processing_run("hsigan:augment", {"INPUT": RASTER, "LABELS": TRAIN_LABELS, "CLASS_FIELD": "class_id",
                                               "COUNT_PER_CLASS": 5, "SAMPLES_PER_CLASS": 10, "PATCH_SIZE": 3,
                                               "GAN_STEPS": 1, "OUTPUT": out})
    assert result["OUTPUT"] == out and os.path.isfile(out)
    assert result["SYNTHETIC_SAMPLES"] == 30 and result["REAL_SAMPLES"] == 60
    assert 0 <= result["SEPARABILITY"] <= 100
