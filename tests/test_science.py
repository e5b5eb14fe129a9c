"""Behaviour of the science parts: disjoint splits, GAN samples, semi-supervised training, determinism."""
import importlib.util
import os

import numpy as np
import pytest

from conftest import RASTER, ROOT, SHARED, TRAIN_LABELS


def _chebyshev_gap(train, other):
    """Smallest Chebyshev distance between a True pixel of train and one of other."""
    tr, tc = np.nonzero(train)
    orow, ocol = np.nonzero(other)
    return int(np.maximum(np.abs(tr[:, None] - orow[None]), np.abs(tc[:, None] - ocol[None])).min())


@pytest.mark.parametrize("radius", [1, 3, 4])
def test_training_pixels_stay_a_patch_radius_away_from_validation(radius):
    from hsigan_qgis.sampling import choose_pixels

    rng = np.random.default_rng(radius)
    # fields of 4 classes: coarse random blocks, some pixels unlabelled
    index = np.kron(rng.integers(0, 4, (8, 8)), np.ones((9, 9), int))
    index[rng.random(index.shape) < 0.2] = -1
    valid = np.ones(index.shape, bool)
    train, val = choose_pixels(index, valid, 0, 0.3, 12, radius, 0, ["a", "b", "c", "d"])
    assert len(train) and len(val)
    t = np.zeros(index.shape, bool)
    v = np.zeros(index.shape, bool)
    t[train.rows, train.cols] = True
    v[val.rows, val.cols] = True
    assert _chebyshev_gap(t, v) > radius
    assert (index[train.rows, train.cols] == train.labels).all()


def _bench():
    spec = importlib.util.spec_from_file_location("bench_accuracy", os.path.join(ROOT, "bench", "accuracy.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED, "indian_pines")), reason="Indian Pines not here")
def test_benchmark_split_is_disjoint_with_a_gap_and_keeps_every_class():
    bench = _bench()
    _, gt = bench.load()
    train, test = bench.disjoint_split(gt)
    assert not (train & test).any()
    assert _chebyshev_gap(train, test) > bench.GAP
    for c in np.unique(gt[gt > 0]):
        assert (gt[train] == c).any() and (gt[test] == c).any(), c
    draw = bench.draw(train, gt, 15, 0)
    assert train[draw].all()
    assert np.bincount(gt[draw]).max() == 15


def _toy(bands=12, size=40, classes=3, seed=0):
    """A normalised block (bands, size+2r, size+2r) of square fields whose spectra differ by class."""
    import torch

    rng = np.random.default_rng(seed)
    field = np.kron(rng.integers(0, classes, (size // 8, size // 8)), np.ones((8, 8), int))
    means = rng.normal(0, 1.5, (classes, bands))
    cube = means[field].transpose(2, 0, 1) + rng.normal(0, 0.3, (bands, size, size))
    return torch.as_tensor(np.pad(cube, ((0, 0), (2, 2), (2, 2)), mode="reflect"), dtype=torch.float32), field, means


def _pixels(field, per_class, seed):
    from hsigan_qgis.sampling import PixelSet

    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for c in np.unique(field):
        r, cc = np.nonzero(field == c)
        pick = rng.permutation(len(r))[:per_class]
        rows.append(r[pick])
        cols.append(cc[pick])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return PixelSet(rows, cols, field[rows, cols].astype(np.int64))


def test_wgan_samples_are_labelled_finite_and_class_conditional():
    import torch
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.gan import draw_synthetic, train_wgan
    from hsigan_qgis.training import seed_everything

    seed_everything(0)
    block, field, _ = _toy()
    train = _pixels(field, 30, 0)
    real_means = np.stack([block[:, 2:-2, 2:-2].numpy()[:, field == k].mean(1) for k in range(3)])

    def class_means(gen):
        patches, labels = draw_synthetic(gen, [5, 7, 9], 0)
        assert patches.shape == (21, 12, 3, 3) and labels.tolist() == [0] * 5 + [1] * 7 + [2] * 9
        assert torch.isfinite(patches).all()
        return np.stack([patches[labels == k].mean(dim=(0, 2, 3)).numpy() for k in range(3)])

    untrained, _ = train_wgan(block, train, 1, 3, 0, 0, Feedback(), batch_size=16)
    gen, history = train_wgan(block, train, 1, 3, 150, 0, Feedback(), batch_size=32)
    assert len(history) >= 15 and np.isfinite([h["critic"] for h in history]).all()
    before = ((class_means(untrained) - real_means) ** 2).sum()
    synthetic_means = class_means(gen)
    # Training brings the synthetic class means closer to the real ones (lr 1e-4: slowly) ...
    assert ((synthetic_means - real_means) ** 2).sum() < 0.8 * before
    # ... and conditioning works: each class's synthetic mean lies nearest the real mean of that class.
    distances = ((synthetic_means[:, None] - real_means[None]) ** 2).sum(-1)
    assert (distances.argmin(1) == np.arange(3)).all(), distances


def test_ssgan_trains_a_usable_classifier_from_few_labels():
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.gan import train_ssgan
    from hsigan_qgis.training import predict_indices, seed_everything
    from models.classifier import SpectralSpatialNet

    seed_everything(0)
    block, field, _ = _toy(seed=1)
    train = _pixels(field, 5, 0)
    test = _pixels(field, 200, 1)
    model = SpectralSpatialNet(12, 3, 3)
    history = train_ssgan(model, block, np.ones(field.shape, bool), train, 1, 3, 120, 1e-3, 0, Feedback(),
                          batch_size=16)
    assert history and all(np.isfinite([h["supervised"], h["unsupervised"]]).all() for h in history)
    accuracy = (predict_indices(model, block, test, 1) == test.labels).mean()
    assert accuracy > 0.8, accuracy  # chance is 1/3


def test_ssgan_never_normalises_real_patches_together_with_fakes():
    """BatchNorm statistics of a training batch must come from real patches only or fakes only: mixing
    them shifted the real patches' normalisation and cost OA on Indian Pines (bench/RESULTS.md)."""
    import torch
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.gan import train_ssgan
    from models.classifier import SpectralSpatialNet

    block, field, _ = _toy(seed=2)
    real_spectra = {tuple(v) for v in block.numpy().reshape(12, -1).T.round(5)}
    model = SpectralSpatialNet(12, 3, 3)
    batches = []

    def record(module, inputs):
        if module.training:  # a patch's centre pixel is the same under any flip or rotation
            centres = inputs[0][:, :, 1, 1].detach().numpy().round(5)
            batches.append([tuple(v) in real_spectra for v in centres])

    model.register_forward_pre_hook(record)
    train_ssgan(model, block, np.ones(field.shape, bool), _pixels(field, 5, 0), 1, 3, 4, 1e-3, 0, Feedback(),
                batch_size=8)
    kinds = [(all(b), not any(b)) for b in batches if b]
    assert any(real for real, _ in kinds) and any(fake for _, fake in kinds), "expected real and fake passes"
    assert all(real or fake for real, fake in kinds), [sum(b) for b in batches]


def test_ssgan_generator_step_computes_no_discriminator_weight_gradients():
    """The generator's update backpropagates through the discriminator for its input gradients only (the
    weights' gradients would be zeroed unused); the weights stay trainable after."""
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.gan import train_ssgan
    from models.classifier import SpectralSpatialNet

    block, field, _ = _toy(seed=2)
    model = SpectralSpatialNet(12, 3, 3)
    weight_gradients = []
    for parameter in model.parameters():
        parameter.register_hook(lambda grad: weight_gradients.append(1))
    steps = 4
    train_ssgan(model, block, np.ones(field.shape, bool), _pixels(field, 5, 0), 1, 3, steps, 1e-3, 0, Feedback(),
                batch_size=8)
    assert len(weight_gradients) == steps * len(list(model.parameters()))  # the discriminator's steps only
    assert all(parameter.requires_grad for parameter in model.parameters())


@pytest.mark.parametrize("gan", ["wgan", "ssgan"])
def test_same_seed_gives_byte_identical_weights(tmp_path, gan):
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    states = []
    for run in range(2):
        path = str(tmp_path / f"m{run}.hsigan")
        train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                          samples_per_class=6, epochs=1, gan=gan, gan_steps=3, seed=3, device="cpu"))
        states.append(model_file.load(path)[1])
    assert states[0].keys() == states[1].keys()
    for part in states[0]:
        for name, array in states[0][part].items():
            assert np.array_equal(np.asarray(array), np.asarray(states[1][part][name])), (part, name)
    # and another seed does change them (so the comparison can fail)
    path = str(tmp_path / "other.hsigan")
    train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                      samples_per_class=6, epochs=1, gan=gan, gan_steps=3, seed=4, device="cpu"))
    other = model_file.load(path)[1]["classifier"]
    assert any(not np.array_equal(np.asarray(a), np.asarray(states[0]["classifier"][n])) for n, a in other.items())


def test_class_balanced_draws_show_every_class_equally_often():
    """class_balanced: rare classes are drawn as often as common ones (in fit_classifier's epochs and in
    ssgan's labelled batches); without it each real sample comes once per epoch."""
    import torch
    from hsigan_qgis.gan import _real_batch
    from hsigan_qgis.sampling import PixelSet
    from hsigan_qgis.training import epoch_order

    labels = np.repeat([0, 1, 2], [200, 20, 4])
    generator = torch.Generator().manual_seed(0)
    plain = epoch_order(labels, 10, False, generator)
    assert sorted(plain.tolist()) == list(range(len(labels) + 10))
    drawn = torch.cat([epoch_order(labels, 10, True, generator) for _ in range(20)])
    real = drawn[drawn < len(labels)].numpy()
    assert (drawn >= len(labels)).sum() == 20 * 10  # every synthetic sample once per epoch
    share = np.bincount(labels[real], minlength=3) / len(real)
    assert np.allclose(share, 1 / 3, atol=0.05), share

    block = torch.zeros((1, 40, 40))
    pixels = PixelSet(np.arange(len(labels)) % 30 + 5, np.arange(len(labels)) // 30 + 5, labels)
    by_class = [np.flatnonzero(labels == c) for c in range(3)]
    _, y = _real_batch(block, pixels, torch.as_tensor(labels), 2, 3000, generator, by_class)
    assert np.allclose(np.bincount(y.numpy(), minlength=3) / 3000, 1 / 3, atol=0.04)
    _, y = _real_batch(block, pixels, torch.as_tensor(labels), 2, 3000, generator)
    assert np.bincount(y.numpy(), minlength=3)[2] < 3000 * 0.05  # 4 of 224 pixels: rare without balancing


@pytest.mark.parametrize("gan", ["none", "ssgan"])
def test_class_balanced_is_used_and_recorded(tmp_path, gan):
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    weights = {}
    for balanced in (False, True):
        path, report = str(tmp_path / f"m{balanced}.hsigan"), tmp_path / f"r{balanced}.html"
        train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                          samples_per_class=6, epochs=1, gan=gan, gan_steps=3, seed=3, device="cpu",
                          class_balanced=balanced, output_report=str(report)))
        metadata, tensors = model_file.load(path)
        assert metadata["training"]["class_balanced"] is balanced
        assert ("every class shown equally often" in report.read_text()) is balanced
        weights[balanced] = tensors["classifier"]
    assert any(not np.array_equal(np.asarray(a), np.asarray(weights[True][n])) for n, a in weights[False].items())


def test_automatic_gan_steps():
    """GAN_STEPS 0 = automatic: wgan 200; ssgan 550 (round 14) whatever the number of labels (bounded cost)."""
    from hsigan_qgis.gan import resolve_gan_steps

    assert resolve_gan_steps("ssgan", 0, 100, 211, 64) == 550
    assert resolve_gan_steps("ssgan", 0, 100, 1796, 64) == 550  # was 2,900 (100 epochs x 29 batches)
    assert resolve_gan_steps("ssgan", 0, 100, 100000, 64) == 550
    assert resolve_gan_steps("wgan", 0, 100, 1796, 64) == 200
    assert resolve_gan_steps("ssgan", 50, 100, 1796, 64) == 50  # an explicit value is kept
    assert resolve_gan_steps("none", 50, 100, 1796, 64) == 0
