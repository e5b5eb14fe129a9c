"""Issue 6, cases 9-14: output paths, cancelling, GAN divergence, out of memory, the device, determinism.
Each case runs in QGIS (processing.run) and at least once through bin/qgis-process."""
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import QGIS_PROCESS, run_qgis_process
from errors_helpers import (digest, fault_env, listing, qgis_args, qgis_error, qgis_fails, qgis_feedback,
                                 read_map, read_tensors, run_qgis_process_with_fault, same_tensors, scene,
                                 stripe_features, train_params, write_labels)


@pytest.fixture
def data(tmp_path):
    raster = scene(tmp_path / "scene.tif")
    gpkg = write_labels(tmp_path / "labels.gpkg", stripe_features())
    return tmp_path, raster, gpkg


def no_leftovers(folder, expected):
    """Exactly the files in `expected` (names) are in folder: no temporary or partial file."""
    assert listing(folder) == sorted(expected), listing(folder)


# -- 9. output paths ----------------------------------------------------------------------------------
@pytest.mark.qgis
@pytest.mark.hostile
def test_output_same_as_input_is_refused(processing_run, small_model, tmp_path):
    model, raster = small_model
    hashes = digest(raster, model)
    message = qgis_error(processing_run, "hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": raster,
                                                              "DEVICE": 1})
    assert "OUTPUT" in message and "is also an input" in message
    message = qgis_error(processing_run, "hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": raster,
                                                              "OUTPUT_CONFIDENCE": model, "DEVICE": 1})
    assert "OUTPUT" in message
    assert digest(raster, model) == hashes


@pytest.mark.qgis
@pytest.mark.hostile
def test_output_same_as_labels_is_refused(processing_run, data):
    folder, raster, gpkg = data
    hashes = digest(raster, gpkg)
    message = qgis_error(processing_run, "hsigan:train", train_params(raster, gpkg, gpkg))
    assert "OUTPUT_MODEL" in message and "is also an input" in message
    assert digest(raster, gpkg) == hashes


@pytest.mark.qgis
@pytest.mark.hostile
def test_output_same_as_input_qgis_process(small_model, tmp_path):
    model, raster = small_model
    hashes = digest(raster, model)
    text = qgis_fails("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": raster}, "OUTPUT")
    assert "is also an input" in text
    assert digest(raster, model) == hashes


@pytest.mark.qgis
@pytest.mark.hostile
@pytest.mark.parametrize("where", ["/sys/hsigan_map.tif", "missing-folder"])
def test_output_not_writable(processing_run, small_model, tmp_path, where):
    model, raster = small_model
    out = where if where.startswith("/") else str(tmp_path / "no" / "such" / "map.tif")
    message = qgis_error(processing_run, "hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out,
                                                              "DEVICE": 1})
    assert "OUTPUT" in message and ("not writable" in message or "does not exist" in message), message
    assert not os.path.exists(out)


@pytest.mark.qgis
@pytest.mark.hostile
@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any folder")
def test_output_folder_without_write_permission(processing_run, small_model, tmp_path):
    model, raster = small_model
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        message = qgis_error(processing_run, "hsigan:classify", {"INPUT": raster, "MODEL": model,
                                                                  "OUTPUT": str(locked / "map.tif"), "DEVICE": 1})
        assert "OUTPUT" in message and "not writable" in message
    finally:
        locked.chmod(0o755)


@pytest.mark.qgis
@pytest.mark.hostile
def test_output_not_writable_qgis_process(data):
    folder, raster, gpkg = data
    text = qgis_fails("hsigan:train", train_params(raster, gpkg, "/sys/model.hsigan"), "OUTPUT_MODEL", folder)
    assert "not writable" in text


@pytest.mark.qgis
@pytest.mark.hostile
def test_existing_map_survives_a_failure_mid_write(processing_run, small_model, tmp_path, monkeypatch):
    model, raster = small_model
    out = str(tmp_path / "map.tif")
    old = b"an older map the user wants to keep"
    with open(out, "wb") as stream:
        stream.write(old)
    import hsigan_qgis.block_reader as block_reader
    real, calls = block_reader.read_window, []

    def failing(*args, **kwargs):  # the disk goes away after two tiles
        calls.append(1)
        if len(calls) > 2:
            raise OSError(5, "Input/output error")
        return real(*args, **kwargs)
    monkeypatch.setattr(block_reader, "read_window", failing)
    message = qgis_error(processing_run, "hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out,
                                                              "TILE_SIZE": 16, "BATCH_SIZE": 1, "DEVICE": 1})
    assert "Input/output error" in message and len(calls) > 2
    assert open(out, "rb").read() == old
    no_leftovers(tmp_path, ["map.tif"])
    monkeypatch.setattr(block_reader, "read_window", real)
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 1})
    assert (read_map(out)[0] > 0).all()  # replaced once complete
    no_leftovers(tmp_path, ["map.qml", "map.tif"])


@pytest.mark.qgis
@pytest.mark.hostile
def test_existing_model_survives_a_failure_mid_write(processing_run, data, monkeypatch):
    import zipfile
    folder, raster, gpkg = data
    model = str(folder / "m.hsigan")
    processing_run("hsigan:train", train_params(raster, gpkg, model))
    before = open(model, "rb").read()
    real, calls = zipfile.ZipFile.writestr, []

    def failing(self, *args, **kwargs):  # the disk fills up after the metadata and one tensor
        calls.append(1)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)
    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    message = qgis_error(processing_run, "hsigan:train", train_params(raster, gpkg, model, SEED=5))
    assert "No space left on device" in message
    assert open(model, "rb").read() == before
    no_leftovers(folder, ["labels.gpkg", "m.hsigan", "scene.tif"])


# -- 10. cancel -----------------------------------------------------------------------------------------
@pytest.mark.qgis
@pytest.mark.hostile
def test_cancel_training_then_train_again(processing_run, data):
    folder, raster, gpkg = data
    model = str(folder / "m.hsigan")
    feedback = qgis_feedback(cancel_after=1)  # the Cancel button, pressed after the first epoch
    message = qgis_error(processing_run, "hsigan:train", train_params(raster, gpkg, model, EPOCHS=5), feedback)
    assert "cancelled" in message and "epoch 1/5" in feedback.text and "epoch 5/5" not in feedback.text
    no_leftovers(folder, ["labels.gpkg", "scene.tif"])
    result = processing_run("hsigan:train", train_params(raster, gpkg, model))
    assert os.path.isfile(model) and result["TRAIN_PIXELS"] > 0


@pytest.mark.qgis
@pytest.mark.hostile
def test_cancel_classification_then_classify_again(processing_run, small_model, tmp_path):
    model, raster = small_model
    out = str(tmp_path / "map.tif")
    feedback = qgis_feedback(cancel_after=1)  # after the first of four tiles
    message = qgis_error(processing_run, "hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out,
                                                              "TILE_SIZE": 16, "BATCH_SIZE": 1, "DEVICE": 1}, feedback)
    assert "cancelled" in message
    no_leftovers(tmp_path, [])
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 1})
    assert (read_map(out)[0] > 0).all()


@pytest.mark.qgis
@pytest.mark.hostile
def test_interrupt_qgis_process_training(processing_run, data):
    """Ctrl+C on qgis_process while it trains: it stops, no model (nor temporary file) is left, and the
    next run works."""
    folder, raster, gpkg = data
    model = str(folder / "m.hsigan")
    env = fault_env("started", folder)
    process = subprocess.Popen([QGIS_PROCESS, "run", "hsigan:train", "--",
                                *qgis_args(train_params(raster, gpkg, model, EPOCHS=10000))],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 300
    while not os.path.exists(env["HSIGAN_TEST_STARTED"]) and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "qgis_process ended before training started"
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    try:
        text, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        text, _ = process.communicate()
    assert process.returncode != 0, text
    assert not os.path.exists(model)
    assert [n for n in os.listdir(folder) if ".part" in n] == []
    result = processing_run("hsigan:train", train_params(raster, gpkg, model))
    assert os.path.isfile(model) and result["TRAIN_PIXELS"] > 0


# -- 11. GAN divergence ---------------------------------------------------------------------------------
@pytest.mark.qgis
@pytest.mark.hostile
def test_gan_divergence_stops_with_an_explanation(processing_run, data, monkeypatch):
    import models.losses
    folder, raster, gpkg = data
    monkeypatch.setattr(models.losses, "critic_loss", lambda real, fake: (fake.mean() - real.mean()) * float("nan"))
    model = str(folder / "m.hsigan")
    message = qgis_error(processing_run, "hsigan:train", train_params(raster, gpkg, model, GAN=1, GAN_STEPS=3))
    assert "LEARNING_RATE" in message and "diverged" in message and "non-finite" in message
    assert "no model was written" in message
    no_leftovers(folder, ["labels.gpkg", "scene.tif"])


@pytest.mark.qgis
@pytest.mark.hostile
def test_classifier_nan_loss_recovers(processing_run, data, monkeypatch):
    import torch.nn.functional as F
    folder, raster, gpkg = data
    real, calls = F.cross_entropy, []

    def once_nan(*args, **kwargs):  # the first batch's loss is NaN, then all is well
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 1 else loss
    monkeypatch.setattr(F, "cross_entropy", once_nan)
    feedback = qgis_feedback()
    model = str(folder / "m.hsigan")
    processing_run("hsigan:train", train_params(raster, gpkg, model), feedback=feedback)
    assert "non-finite loss in epoch 1" in feedback.text and "half the learning rate" in feedback.text
    for module in read_tensors(model).values():  # the loader also refuses non-finite weights
        assert all(np.isfinite(a).all() for a in module.values())


@pytest.mark.qgis
@pytest.mark.hostile
def test_classifier_nan_loss_every_time_stops(processing_run, data, monkeypatch):
    import torch.nn.functional as F
    folder, raster, gpkg = data
    real = F.cross_entropy
    monkeypatch.setattr(F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    message = qgis_error(processing_run, "hsigan:train", train_params(raster, gpkg, str(folder / "m.hsigan")))
    assert "LEARNING_RATE" in message and "diverged" in message
    no_leftovers(folder, ["labels.gpkg", "scene.tif"])


@pytest.mark.qgis
@pytest.mark.hostile
def test_nan_weights_are_never_written(processing_run, data, monkeypatch):
    import hsigan_qgis.training as training
    folder, raster, gpkg = data
    real = training.fit_classifier

    def poisoned(model, *args, **kwargs):  # finite losses, but the weights end up NaN
        history = real(model, *args, **kwargs)
        next(model.parameters()).data.fill_(float("nan"))
        return history
    monkeypatch.setattr(training, "fit_classifier", poisoned)
    model = str(folder / "m.hsigan")
    message = qgis_error(processing_run, "hsigan:train", train_params(raster, gpkg, model))
    assert "OUTPUT_MODEL" in message and "NaN" in message
    no_leftovers(folder, ["labels.gpkg", "scene.tif"])


@pytest.mark.qgis
@pytest.mark.hostile
def test_gan_divergence_qgis_process(data):
    folder, raster, gpkg = data
    done = run_qgis_process_with_fault("gan-nan", folder, "run", "hsigan:train", "--",
                                       *qgis_args(train_params(raster, gpkg, str(folder / "m.hsigan"), GAN=1,
                                                               GAN_STEPS=3)))
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "LEARNING_RATE" in text and "diverged" in text, text
    assert "Traceback" not in text
    assert not os.path.exists(folder / "m.hsigan")


# -- 12. out of memory ----------------------------------------------------------------------------------
def fake_oom(monkeypatch, limit=400, error=RuntimeError):
    """The classifier cannot allocate memory for inputs of more than `limit` pixels (batch x height x width):
    a 24 x 24 raster in one tile, or a training batch of more than 44 3 x 3 patches."""
    import models.classifier as classifier
    real = classifier.SpectralSpatialNet.forward

    def forward(self, x):
        if x.shape[0] * x.shape[-2] * x.shape[-1] > limit:
            if error is MemoryError:
                raise MemoryError()
            raise error("DefaultCPUAllocator: can't allocate memory: you tried to allocate 68719476736 bytes")
        return real(self, x)
    monkeypatch.setattr(classifier.SpectralSpatialNet, "forward", forward)


@pytest.mark.qgis
@pytest.mark.hostile
@pytest.mark.parametrize("error", [RuntimeError, MemoryError])
def test_out_of_memory_in_classification(processing_run, small_model, tmp_path, monkeypatch, error):
    model, raster = small_model
    fake_oom(monkeypatch, error=error)
    out = str(tmp_path / "map.tif")
    message = qgis_error(processing_run, "hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out,
                                                              "TILE_SIZE": 8192, "DEVICE": 1})
    assert message.startswith("Tile size (TILE_SIZE): out of memory") and "lower Tile size (TILE_SIZE)" in message, message
    no_leftovers(tmp_path, [])
    # the advice works: smaller tiles fit
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "TILE_SIZE": 16,
                                       "BATCH_SIZE": 1, "DEVICE": 1})
    assert (read_map(out)[0] > 0).all()


@pytest.mark.qgis
@pytest.mark.hostile
def test_out_of_memory_in_training(processing_run, data, monkeypatch):
    folder, raster, gpkg = data
    fake_oom(monkeypatch)
    model = str(folder / "m.hsigan")
    message = qgis_error(processing_run, "hsigan:train", train_params(raster, gpkg, model, BATCH_SIZE=4096))
    assert message.startswith("Batch size (BATCH_SIZE): out of memory") and "lower Batch size (BATCH_SIZE)" in message, message
    no_leftovers(folder, ["labels.gpkg", "scene.tif"])
    processing_run("hsigan:train", train_params(raster, gpkg, model, BATCH_SIZE=16))
    assert os.path.isfile(model)


@pytest.mark.qgis
@pytest.mark.hostile
def test_out_of_memory_qgis_process(small_model, tmp_path):
    model, raster = small_model
    out = str(tmp_path / "map.tif")
    done = run_qgis_process_with_fault("oom", tmp_path, "run", "hsigan:classify", "--", f"INPUT={raster}",
                                       f"MODEL={model}", f"OUTPUT={out}", "TILE_SIZE=4096", "DEVICE=1")
    text = done.stdout + done.stderr
    assert done.returncode != 0 and "Tile size (TILE_SIZE): out of memory" in text and "Traceback" not in text, text
    assert not os.path.exists(out)


# -- 13. device -----------------------------------------------------------------------------------------
@pytest.mark.qgis
@pytest.mark.hostile
def test_cuda_without_cuda(processing_run, small_model, tmp_path, monkeypatch):
    import hsigan_qgis.device as device
    monkeypatch.setattr(device, "cuda_status", lambda: (False, "torch 2.x is a CPU build"))
    model, raster = small_model
    out = str(tmp_path / "map.tif")
    message = qgis_error(processing_run, "hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out,
                                                              "DEVICE": 2})
    assert message.startswith("Device (DEVICE): CUDA was asked for but is not available: torch 2.x is a CPU build")
    assert "DEVICE=cpu or auto" in message
    no_leftovers(tmp_path, [])
    feedback = qgis_feedback()
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 0},
                   feedback=feedback)
    assert "Device: cpu (CUDA not available: torch 2.x is a CPU build)" in feedback.text
    assert os.path.isfile(out)


@pytest.mark.qgis
@pytest.mark.hostile
def test_cuda_without_cuda_qgis_process(data):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    folder, raster, gpkg = data
    text = qgis_fails("hsigan:train", train_params(raster, gpkg, str(folder / "m.hsigan"), DEVICE=2), "DEVICE",
                      folder)
    assert "CUDA was asked for but is not available" in text


# -- 14. determinism ------------------------------------------------------------------------------------
DETERMINISM = dict(GAN=1, GAN_STEPS=2, SYNTHETIC_RATIO=0.5)


@pytest.mark.qgis
def test_same_seed_same_model_and_map(processing_run, data):
    folder, raster, gpkg = data
    paths = []
    for run in ("a", "b"):
        model, out = str(folder / f"{run}.hsigan"), str(folder / f"{run}.tif")
        processing_run("hsigan:train", train_params(raster, gpkg, model, **DETERMINISM))
        processing_run("hsigan:classify", {"INPUT": raster, "MODEL": model, "OUTPUT": out, "DEVICE": 1})
        paths.append((model, out))
    assert same_tensors(paths[0][0], paths[1][0])
    assert np.array_equal(read_map(paths[0][1])[0], read_map(paths[1][1])[0])
    # and the test can tell: another seed gives other weights
    other = str(folder / "other.hsigan")
    processing_run("hsigan:train", train_params(raster, gpkg, other, SEED=7, **DETERMINISM))
    assert not same_tensors(paths[0][0], other)


@pytest.mark.qgis
def test_same_seed_same_model_and_map_qgis_process(processing_run, data):
    """Two qgis_process runs give byte-identical weights and the same map. (Weights from qgis_process and
    from processing.run inside another process can differ in the last bits: floating-point results of
    torch/MKL are reproducible within one kind of host process, not across them. The maps agree.)"""
    folder, raster, gpkg = data
    models = []
    for run in ("c", "d"):  # without the GAN, which test_same_seed_same_model_and_map covers, to save time
        model = str(folder / f"{run}.hsigan")
        done = run_qgis_process("run", "hsigan:train", "--", *qgis_args(train_params(raster, gpkg, model)))
        assert done.returncode == 0, done.stdout + done.stderr
        models.append(model)
    assert same_tensors(*models)
    out = str(folder / "c.tif")
    done = run_qgis_process("run", "hsigan:classify", "--", f"INPUT={raster}", f"MODEL={models[0]}",
                            f"OUTPUT={out}", "DEVICE=1")
    assert done.returncode == 0, done.stdout + done.stderr
    in_qgis = str(folder / "d.tif")
    processing_run("hsigan:classify", {"INPUT": raster, "MODEL": models[1], "OUTPUT": in_qgis, "DEVICE": 1})
    assert np.array_equal(read_map(out)[0], read_map(in_qgis)[0])
