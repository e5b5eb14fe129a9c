"""GAN spectral and mixup (hsigan_qgis/spectral_synthesis.py): synthetic centre spectra from a per-class Gaussian,
pasted into real patches of the same class, or patches mixed from two labelled patches of the same class;
deterministic, recorded in the model, and measured for separability."""
import numpy as np

from conftest import RASTER, TRAIN_LABELS
from classify_helpers import Log


def toy():
    import torch
    from hsigan_qgis.sampling import PixelSet
    rng = np.random.default_rng(0)
    block = torch.as_tensor(rng.normal(size=(8, 24, 24)), dtype=torch.float32)
    rows, cols = rng.integers(0, 20, 30), rng.integers(0, 20, 30)
    labels = np.repeat([0, 1, 2], 10)
    block[:4, rows[labels == 1] + 2, cols[labels == 1] + 2] += 5.0  # class 1: bright in bands 0-3
    return block, PixelSet(rows, cols, labels)


def test_synthetic_patches_keep_a_real_same_class_neighbourhood_and_a_class_like_centre():
    from hsigan_qgis.sampling import gather_patches
    from hsigan_qgis.spectral_synthesis import centre_separability, synthesize

    block, pixels = toy()
    patches, labels = synthesize(block, pixels, 2, 3, [4, 6, 0], seed=1)
    assert patches.shape == (10, 8, 5, 5) and labels.tolist() == [0] * 4 + [1] * 6
    real = gather_patches(block, pixels.rows, pixels.cols, 2)
    ring = np.ones((5, 5), bool)
    ring[2, 2] = False
    for x, k in zip(patches, labels.tolist()):
        hosts = [h for h, lab in zip(real, pixels.labels) if lab == k]
        assert any(np.allclose(x[:, ring], h[:, ring]) for h in hosts), "the neighbourhood of a real same-class pixel"
        assert not any(np.allclose(x[:, 2, 2], h[:, 2, 2]) for h in hosts), "the centre is new"
    bright = patches[labels == 1][:, :4, 2, 2].mean()
    assert bright > 3.0 and patches[labels == 0][:, :4, 2, 2].mean() < 1.5  # drawn from its own class
    again = synthesize(block, pixels, 2, 3, [4, 6, 0], seed=1)
    assert np.array_equal(patches, again[0]) and not np.array_equal(patches, synthesize(block, pixels, 2, 3, [4, 6, 0], seed=2)[0])
    separability = centre_separability(block, pixels, synthesize(block, pixels, 2, 3, [10, 10, 10], seed=1), 0)
    assert 0 <= separability <= 100


def test_mixup_patches_are_convex_mixes_of_two_patches_of_their_own_class():
    import torch
    from hsigan_qgis.sampling import gather_patches
    from hsigan_qgis.spectral_synthesis import mix_patches

    block, pixels = toy()
    patches, labels = mix_patches(block, pixels, 2, 3, [4, 6, 0], seed=1)
    assert patches.shape == (10, 8, 5, 5) and labels.tolist() == [0] * 4 + [1] * 6
    real = gather_patches(block, pixels.rows, pixels.cols, 2)
    copies = 0
    for x, k in zip(patches, labels.tolist()):
        own = real[torch.from_numpy(pixels.labels == k)]
        if any(torch.allclose(x, r) for r in own):  # both draws hit the same pixel: its patch
            copies += 1
            continue
        fits = []  # the best lam of x = lam a + (1 - lam) b over the pairs of its class (least squares)
        for a in own:
            for b in own:
                d = (a - b).flatten()
                if float(d @ d) > 0:
                    lam = float((x - b).flatten() @ d / (d @ d))
                    fits.append((float(((lam * a + (1 - lam) * b - x) ** 2).max()), lam))
        error, lam = min(fits)
        assert error < 1e-8 and 0.2 - 1e-4 <= lam <= 0.8 + 1e-4, (error, lam)
    assert copies <= 2  # draws are independent: about 1 in 10 pairs is one pixel twice here
    again = mix_patches(block, pixels, 2, 3, [4, 6, 0], seed=1)[0]
    assert torch.equal(patches, again) and not torch.equal(patches, mix_patches(block, pixels, 2, 3, [4, 6, 0], seed=2)[0])


def test_each_epoch_draws_other_mixes_of_the_same_sizes_reproducibly():
    import torch
    from hsigan_qgis.spectral_synthesis import mix_patches

    block, pixels = toy()
    first = mix_patches(block, pixels, 2, 3, [4, 6, 0], seed=1)
    assert torch.equal(first[0], mix_patches(block, pixels, 2, 3, [4, 6, 0], seed=1, epoch=0)[0])
    later = [mix_patches(block, pixels, 2, 3, [4, 6, 0], seed=1, epoch=e) for e in (1, 2)]
    for patches, labels in later:
        assert torch.equal(labels, first[1]) and not torch.equal(patches, first[0])
    assert not torch.equal(later[0][0], later[1][0])
    assert torch.equal(later[0][0], mix_patches(block, pixels, 2, 3, [4, 6, 0], seed=1, epoch=1)[0])


def test_fit_classifier_trains_on_each_epochs_redrawn_set():
    import torch
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.spectral_synthesis import mix_patches
    from hsigan_qgis.training import fit_classifier
    from models.classifier import SpectralSpatialNet

    block, pixels = toy()
    block = torch.nn.functional.pad(block, (2, 2, 2, 2))
    empty = type(pixels)(pixels.rows[:0], pixels.cols[:0], pixels.labels[:0])
    asked, weights = [], []
    for redraw in (None, lambda epoch: asked.append(epoch) or mix_patches(block, pixels, 2, 3, [10, 10, 10], 1, epoch)):
        torch.manual_seed(0)
        net = SpectralSpatialNet(8, 3, 5)
        fit_classifier(net, block, pixels, empty, 2, 3, 16, 1e-3, 0, Feedback(),
                       synthetic=mix_patches(block, pixels, 2, 3, [10, 10, 10], 1), redraw=redraw)
        weights.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert asked == [1, 2]  # the first epoch uses the set given, each later one its own draw
    assert not torch.equal(weights[0], weights[1])


def test_train_with_gan_mixup_is_recorded_and_deterministic(tmp_path):
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    weights = []
    for k in range(2):
        log, path = Log(), str(tmp_path / f"m{k}.hsigan")
        train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                          samples_per_class=12, epochs=2, gan="mixup", seed=4, device="cpu", validation_fraction=0), log)
        metadata, tensors = model_file.load(path)
        assert metadata["training"]["gan"] == "mixup" and metadata["training"]["gan_steps"] == 0
        assert metadata["training"]["synthetic_ratio"] == 2.0  # SYNTHETIC_RATIO 0 = automatic: 2 for mixup
        assert any(line.startswith(f"{2 * metadata['training']['train_pixels']} synthetic patches")
                   for line in log.lines), log.lines
        assert 0 <= metadata["training"]["synthetic_separability"] <= 100
        assert any("synthetic patches (each mixed from two labelled patches of its class, mixed afresh every "
                   "epoch)" in line
                   for line in log.lines), log.lines
        weights.append(tensors["classifier"])
    assert all(np.array_equal(v, weights[1][n]) for n, v in weights[0].items())


def test_train_with_gan_spectral_is_recorded_and_deterministic(tmp_path):
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    weights = []
    for k, gan in enumerate(("spectral", "spectral", "none")):
        log, path = Log(), str(tmp_path / f"m{k}.hsigan")
        train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                          samples_per_class=12, epochs=2, gan=gan, seed=4, device="cpu", validation_fraction=0), log)
        training = model_file.load(path)[0]["training"]
        assert training["gan"] == gan
        if gan == "spectral":
            assert 0 <= training["synthetic_separability"] <= 100 and training["synthetic_ratio"] == 1.0
            assert any(line.startswith(f"{training['train_pixels']} synthetic patches (class-Gaussian")
                       for line in log.lines), log.lines
        else:
            assert training["synthetic_separability"] is None and training["synthetic_ratio"] == 0.0
        weights.append(model_file.load(path)[1]["classifier"])
    assert all(np.array_equal(v, weights[1][n]) for n, v in weights[0].items())
    assert not np.array_equal(weights[0]["spectral.0.weight"], weights[2]["spectral.0.weight"])


def test_synthetic_ratio_zero_is_automatic_per_mode_and_a_set_ratio_is_kept():
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.gan import resolve_synthetic_ratio

    assert TrainConfig(output_model="m.hsigan").synthetic_ratio == 0
    assert [resolve_synthetic_ratio(m, 0) for m in ("mixup", "spectral", "wgan")] == [2.0, 1.0, 1.0]
    assert [resolve_synthetic_ratio(m, 0.5) for m in ("mixup", "spectral", "wgan")] == [0.5, 0.5, 0.5]
    assert [resolve_synthetic_ratio(m, 0.5) for m in ("none", "ssgan", "auto")] == [0.0, 0.0, 0.0]


def test_mixup_if_few_picks_mixup_when_the_median_class_has_at_most_20_training_pixels():
    from hsigan_qgis.gan import FEW_LABELS, resolve_gan_mode

    assert FEW_LABELS == 20
    assert resolve_gan_mode("mixup-if-few", [15, 14, 0, 90])[0] == "mixup"  # median of 14, 15, 90; empty left out
    assert resolve_gan_mode("mixup-if-few", [20, 20, 21])[0] == "mixup"    # the bound is included
    chosen, why = resolve_gan_mode("mixup-if-few", [20, 21])                # median 20.5
    assert chosen == "none" and why == "the median class has 20.5 training pixels, more than 20"
    assert resolve_gan_mode("mixup-if-few", [0, 0]) == ("none", "no class has training pixels")
    assert [resolve_gan_mode(m, [5, 5]) for m in ("none", "mixup", "ssgan", "auto")] == \
        [("none", ""), ("mixup", ""), ("ssgan", ""), ("auto", "")]


def test_train_with_mixup_if_few_trains_mixup_with_few_labels_and_none_with_many(tmp_path):
    """The rule's model is the very model of the mode it picks (same seed), and the model, the result and the
    log say which and why."""
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.report import write_training_report
    from hsigan_qgis.train import train

    def trained(gan, per_class, name):
        log, path = Log(), str(tmp_path / f"{name}.hsigan")
        result = train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                                   samples_per_class=per_class, epochs=2, gan=gan, seed=4, device="cpu",
                                   validation_fraction=0), log)
        return result, log, model_file.load(path)

    for per_class, picked in ((12, "mixup"), (0, "none")):
        result, log, (metadata, tensors) = trained("mixup-if-few", per_class, f"rule{per_class}")
        _, _, (_, same) = trained(picked, per_class, f"{picked}{per_class}")
        training = metadata["training"]
        counts = [c for c in training["train_pixels_per_class"] if c]
        assert (np.median(counts) <= 20) == (picked == "mixup"), counts  # the fixture spans both cases
        assert training["gan"] == "mixup-if-few" and training["gan_rule"]["chosen"] == picked
        assert result.gan_chosen == picked
        assert training["synthetic_ratio"] == (2.0 if picked == "mixup" else 0.0)
        assert any(line.startswith(f"GAN mixup-if-few: {picked}, because the median class has") for line in log.lines)
        assert all(np.array_equal(v, same["classifier"][n]) for n, v in tensors["classifier"].items())
        write_training_report(str(tmp_path / "report.html"), metadata)
        assert f"(trained as {picked}: the median class has" in (tmp_path / "report.html").read_text()
