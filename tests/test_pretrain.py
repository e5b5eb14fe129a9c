"""Scene self-supervised pretraining (PRETRAIN_STEPS, hsigan_qgis/pretrain.py): it learns the scene (the
masked-band error falls), changes the encoder only, is deterministic, and runs inside hsigan:train."""
import numpy as np
import pytest

from conftest import RASTER, TRAIN_LABELS
from classify_helpers import Log


def scene_block(seed=0, bands=12, size=20, radius=2):
    """A smooth random scene: each band a blend of two spatial patterns, so masked bands are predictable."""
    import torch
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size + 2 * radius, :size + 2 * radius] / size
    base = np.stack([np.sin(3 * yy + rng.uniform(0, 3)), np.cos(4 * xx + rng.uniform(0, 3))])
    mix = rng.normal(size=(bands, 2))
    data = np.einsum("bk,khw->bhw", mix, base) + 0.05 * rng.normal(size=(bands,) + yy.shape)
    return torch.as_tensor(data, dtype=torch.float32)


def pretrained(steps, seed=0, mode="bands"):
    import torch
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.pretrain import pretrain_encoder
    from models.classifier import SpectralSpatialNet

    torch.manual_seed(0)
    net = SpectralSpatialNet(12, 3, 5, width=16, spectral_width=16)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    history = pretrain_encoder(net, scene_block(), np.ones((20, 20), bool), 2, steps, 3e-3, seed, Feedback(),
                               batch_size=16, mode=mode)
    return net, before, history


@pytest.mark.parametrize("mode", ["bands", "centre", "contrast"])
def test_pretraining_lowers_its_loss_and_leaves_the_head_alone(mode):
    net, before, history = pretrained(60, mode=mode)
    first, last = history[0]["loss"], np.mean([h["loss"] for h in history[-2:]])
    assert last < (0.75 if mode == "contrast" else 0.6) * first, (first, last)  # contrast: chance is ln 31 = 3.4
    after = net.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before if k.startswith("head."))
    assert not np.array_equal(before["spectral.0.weight"], after["spectral.0.weight"])
    assert not np.array_equal(before["spatial.0.weight"], after["spatial.0.weight"])


@pytest.mark.parametrize("mode", ["bands", "centre", "contrast"])
def test_pretraining_is_deterministic_for_a_seed(mode):
    a, _, ha = pretrained(8, seed=3, mode=mode)
    b, _, hb = pretrained(8, seed=3, mode=mode)
    c, _, _ = pretrained(8, seed=4, mode=mode)
    assert ha == hb
    assert all(np.array_equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not np.array_equal(a.state_dict()["spectral.0.weight"], c.state_dict()["spectral.0.weight"])


def test_train_with_pretraining_is_recorded_and_deterministic(tmp_path):
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    weights = []
    for k, steps in enumerate((6, 6, 0)):
        log = Log()
        path = str(tmp_path / f"m{k}.hsigan")
        train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                          samples_per_class=10, epochs=2, gan="none", pretrain_steps=steps, seed=2, device="cpu",
                          validation_fraction=0), log)
        metadata, tensors = model_file.load(path)
        assert metadata["training"]["pretrain_steps"] == steps
        assert len(metadata["pretrain_history"]) == (2 if steps else 0)  # steps 1 and 6
        assert any(line.startswith("Pretraining the encoder") for line in log.lines) == bool(steps)
        assert set(tensors) == {"classifier", "spectral_head"}  # the reconstruction head is not saved
        weights.append(tensors["classifier"])
    assert set(weights[0]) == set(weights[2])  # the same classifier as without pretraining
    assert all(np.array_equal(v, weights[1][n]) for n, v in weights[0].items())
    assert not np.array_equal(weights[0]["spectral.0.weight"], weights[2]["spectral.0.weight"])


def test_pretraining_needs_the_raster_not_a_sample_file(tmp_path):
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.errors import InputError
    from hsigan_qgis.train import train

    with pytest.raises(InputError, match="PRETRAIN_STEPS"):
        train(TrainConfig(samples=str(tmp_path / "s.hsamples"), output_model=str(tmp_path / "m.hsigan"),
                          pretrain_steps=10))
    with pytest.raises(InputError, match="PRETRAIN_STEPS"):
        train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name",
                          output_model=str(tmp_path / "m.hsigan"), pretrain_steps=-1))
