"""SPECTRAL_HEAD: the RBF kernel ridge head on the centre spectra (hsigan_qgis/kernel_head.py,
models/spectral_kernel.py) fused with the network: its fit, its dense form, and a model with it trained,
saved, loaded and classified, deterministic by seed."""
import numpy as np
import pytest

from conftest import RASTER, TRAIN_LABELS
from classify_helpers import Log, assert_same_labels, patch_labels, read, run


def clusters(seed, n=30, bands=8):
    """Three classes of noisy spectra around distinct means: (spectra (3n, bands), labels)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=2.0, size=(3, bands))
    labels = np.repeat(np.arange(3), n)
    return (means[labels] + rng.normal(scale=0.7, size=(3 * n, bands))).astype(np.float32), labels


def test_kernel_head_fit_separates_classes_and_its_module_matches_numpy():
    import torch
    from hsigan_qgis.kernel_head import fit_kernel_head, head_module

    x, y = clusters(0)
    fitted = fit_kernel_head(x, y, 3, seed=0)
    assert fitted["loo_error"] < 0.1 and fitted["support"].shape == (90, 8) and fitted["dual"].shape == (90, 3)
    test, truth = clusters(0, n=40)[0][::-1].copy(), clusters(0, n=40)[1][::-1]  # the same means, new noise
    head = head_module(fitted, radius=0)
    with torch.no_grad():
        scores = head(torch.from_numpy(test.T.copy())[None, :, :, None])[0, :, :, 0].T.numpy()
    d2 = ((test[:, None, :] - fitted["support"][None]) ** 2).sum(2)
    expected = np.exp(-fitted["gamma"] * d2) @ fitted["dual"] / fitted["temperature"]
    np.testing.assert_allclose(scores, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())  # float32
    assert (scores.argmax(1) == truth).mean() > 0.9


def test_kernel_head_is_dense_and_aligned_with_the_network():
    """On a tile the head's output is (H-2r) x (W-2r), pixel (i, j) being the centre pixel (i+r, j+r)'s
    scores: what it gives on that pixel's patch."""
    import torch
    from hsigan_qgis.kernel_head import fit_kernel_head, head_module

    x, y = clusters(1)
    head = head_module(fit_kernel_head(x, y, 3, seed=0), radius=2)
    tile = torch.from_numpy(np.random.default_rng(2).normal(size=(1, 8, 11, 13)).astype(np.float32))
    with torch.no_grad():
        dense = head(tile)
        assert dense.shape == (1, 3, 7, 9)
        for i, j in [(0, 0), (3, 5), (6, 8)]:
            patch = tile[:, :, i:i + 5, j:j + 5]
            np.testing.assert_allclose(dense[0, :, i, j].numpy(), head(patch)[0, :, 0, 0].numpy(), rtol=1e-5)


def test_windowed_head_reads_the_local_mean_spectrum_densely_and_on_patches():
    """SPECTRAL_HEAD_WINDOW 3x3 (window 1): the head's scores at a pixel are the kernel scores of the mean
    spectrum of the 3x3 pixels around it, the same on a tile (dense, aligned with the network's crop) as on
    that pixel's patch; centre_spectra gives the same means for the fit."""
    import torch
    from hsigan_qgis.kernel_head import centre_spectra, fit_kernel_head, head_module
    from hsigan_qgis.sampling import PixelSet

    x, y = clusters(1)
    fitted = dict(fit_kernel_head(x, y, 3, seed=0), window=1)
    head = head_module(fitted, radius=2)
    tile = torch.from_numpy(np.random.default_rng(2).normal(size=(1, 8, 11, 13)).astype(np.float32))
    with torch.no_grad():
        dense = head(tile)
        assert dense.shape == (1, 3, 7, 9)
        for i, j in [(0, 0), (3, 5), (6, 8)]:
            mean = tile[0, :, i + 1:i + 4, j + 1:j + 4].mean((1, 2)).numpy().astype(np.float64)
            d2 = ((mean[None] - fitted["support"]) ** 2).sum(1)
            expected = np.exp(-fitted["gamma"] * d2) @ fitted["dual"] / fitted["temperature"]
            np.testing.assert_allclose(dense[0, :, i, j].numpy(), expected, rtol=1e-3, atol=1e-4)
            np.testing.assert_allclose(head(tile[:, :, i:i + 5, j:j + 5])[0, :, 0, 0].numpy(),
                                       dense[0, :, i, j].numpy(), rtol=1e-5)
        means = centre_spectra(tile[0], PixelSet(np.array([0, 3]), np.array([0, 5]), np.array([0, 1])), 2, window=1)
    np.testing.assert_allclose(means[1], tile[0, :, 4:7, 6:9].mean((1, 2)).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="window 3 must lie within the patch radius 2"):
        head_module(dict(fitted, window=3), radius=2)


def test_automatic_window_leaves_1x1_only_on_enough_validation_evidence():
    """SPECTRAL_HEAD_WINDOW auto: a wider window only when the fused model with it is right on clearly more of
    the validation pixels where it and the 1x1 fused model disagree (sign test, z >= 1.64); of those windows,
    the one with the largest lead; each head fused at the weight given for its window."""
    from hsigan_qgis.head_choice import automatic_head_window

    labels = np.zeros(100, int)
    net = np.tile([0.5, 0.5], (100, 1))  # undecided: the head decides
    right, wrong = [0.9, 0.1], [0.1, 0.9]

    def head(n_right):
        return np.array([right] * n_right + [wrong] * (100 - n_right))

    half = dict.fromkeys((0, 1, 2), 0.5)
    base = head(50)
    window, why = automatic_head_window(net, {0: base, 1: head(60), 2: head(70)}, labels, half)
    assert window == 2  # 20 more right, none fewer: z 4.47, the larger lead
    assert why == ("automatic, fused model over 100 validation pixels: 3x3 right on 10 where 1x1 is wrong and wrong "
                   "on 0 where 1x1 is right (z 3.16); 5x5 right on 20 where 1x1 is wrong and wrong on 0 where 1x1 "
                   "is right (z 4.47); 1.64 needed to leave 1x1: 5x5")
    assert automatic_head_window(net, {0: base, 1: head(52)}, labels, half)[0] == 0  # z 1.41: not enough
    assert automatic_head_window(net, {0: base, 1: head(53)}, labels, half)[0] == 1  # z 1.73
    swapped = np.vstack([head(50)[50:], head(50)[:50]])  # as many right, on other pixels: z 0
    assert automatic_head_window(net, {0: base, 1: swapped}, labels, half)[0] == 0
    assert automatic_head_window(net, {0: head(60), 1: base}, labels, half)[0] == 0  # worse: stays
    # the weight matters: at weight 0 every window's fused model is the network alone, nothing to choose
    assert automatic_head_window(net, {0: base, 1: head(70)}, labels, dict.fromkeys((0, 1), 0.0))[0] == 0
    assert automatic_head_window(net[:1], {0: base[:1], 1: head(70)[:1]}, labels[:1], half)[0] == 0  # one pixel


def test_support_cap_is_class_stratified_and_seeded():
    from hsigan_qgis.kernel_head import cap_support

    labels = np.repeat([0, 1, 2], [3000, 900, 5])
    kept = cap_support(labels, 1000, seed=3)
    counts = np.bincount(labels[kept])
    assert len(kept) <= 1000 and counts[2] >= 1 and counts[0] > counts[1] > counts[2]
    assert np.array_equal(kept, cap_support(labels, 1000, seed=3))
    assert not np.array_equal(kept, cap_support(labels, 1000, seed=4))
    assert np.array_equal(cap_support(labels[:50], 1000, seed=3), np.arange(50))


def train_tiny(tmp_path, name, **extra):
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    path, log = str(tmp_path / name), Log()
    extra.setdefault("samples_per_class", 12)
    extra.setdefault("smoothing", "off")  # what the validation chose: the head's window and weight only
    train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                      epochs=2, gan="none", seed=1, device="cpu", **extra), log)
    return path, log


def test_model_with_spectral_head_trains_saves_loads_classifies_deterministically(tmp_path):
    from hsigan_qgis import model_file

    path, log = train_tiny(tmp_path, "a.hsigan", spectral_head_weight=0.3, output_report=str(tmp_path / "a.html"))
    metadata, tensors = model_file.load(path)
    report = (tmp_path / "a.html").read_text()
    assert "fused with a spectral kernel head (weight 0.3, SPECTRAL_HEAD_WEIGHT" in report
    assert "also chose the spectral kernel head&#x27;s window, so the validation figures are slightly" in report
    head = metadata["spectral_head"]
    assert head["weight"] == 0.3 and metadata["training"]["spectral_head"] is True
    assert tensors["spectral_head"]["support"].shape == (head["support"], metadata["bands"])
    assert tensors["spectral_head"]["dual"].shape == (head["support"], len(metadata["class_ids"]))
    assert any(line.startswith("Spectral kernel head:") for line in log.lines)
    # the same seed gives the same network and the same head
    again, _ = train_tiny(tmp_path, "b.hsigan", spectral_head_weight=0.3)
    tensors2 = model_file.load(again)[1]
    for module in ("classifier", "spectral_head"):
        assert all(np.array_equal(a, tensors2[module][n]) for n, a in tensors[module].items()), module
    # classify's tiled dense map is the fused model on every pixel's patch
    want, margin = patch_labels(path, RASTER)
    got = read(run(tmp_path, RASTER, path, "map.tif", tile_size=32)[0], 1)
    assert_same_labels(got, want, margin)
    # the head changes the map: off, the network alone (no head in the file) classifies otherwise
    plain, _ = train_tiny(tmp_path, "c.hsigan", spectral_head=False)
    metadata0, tensors0 = model_file.load(plain)
    assert "spectral_head" not in metadata0 and "spectral_head" not in tensors0
    assert all(np.array_equal(a, tensors0["classifier"][n]) for n, a in tensors["classifier"].items())
    assert (patch_labels(plain, RASTER)[0] != want).any()


def test_refit_head_fits_the_validation_spectra_too_at_the_chosen_window_and_weight():
    """refit_head: the refitted head's support spectra are those of the training and the validation pixels (at
    the chosen window), its weight and window unchanged; the network is the same object, untouched."""
    import torch
    from types import SimpleNamespace
    from hsigan_qgis.head_choice import refit_head
    from hsigan_qgis.kernel_head import centre_spectra
    from hsigan_qgis.sampling import PixelSet
    from models.classifier import SpectralSpatialNet

    rng = np.random.default_rng(4)
    block = torch.from_numpy(rng.normal(size=(8, 20, 20)).astype(np.float32))
    cells = rng.permutation(14 * 14)[:30]
    rows, cols, labels = cells // 14, cells % 14, np.arange(30) % 3  # on a block with a 3-px halo
    train_px, val_px = (PixelSet(rows[s], cols[s], labels[s]) for s in (slice(0, 18), slice(18, 30)))
    net = SpectralSpatialNet(8, 3, 7).eval()
    before = {n: t.clone() for n, t in net.state_dict().items()}
    head = dict(name="SpectralKernelHead", weight=0.7, window=1, support=18, loo_oa=50.0)
    model, refitted = refit_head(SimpleNamespace(seed=0), net, head, block, train_px, val_px, 3, 3, Log())
    assert refitted["weight"] == 0.7 and refitted["window"] == 1 and float(model.weight) == pytest.approx(0.7)
    assert model.net is net
    assert refitted["support"] == 30 and refitted["refitted"] == dict(pixels=30, before=dict(support=18, loo_oa=50.0))
    want = centre_spectra(block, PixelSet(rows, cols, labels), 3, window=1)
    got = model.head.state_dict()["support"].numpy()
    assert sorted(map(tuple, np.round(got, 5))) == sorted(map(tuple, np.round(want, 5)))
    assert all(torch.equal(t, before[n]) for n, t in net.state_dict().items())


def test_every_pixel_refits_the_head_on_training_and_validation_pixels_after_validation(tmp_path, monkeypatch):
    """SAMPLES_PER_CLASS 0 (every pixel trains): after the validation figures, the head is fitted again on the
    training and validation pixels together, at the chosen window and weight; the network and the validation
    figures are those of the same run without the refit. With a cap per class the validation pixels stay out."""
    from hsigan_qgis import model_file, train as train_module
    from hsigan_qgis.kernel_head import MAX_SUPPORT

    path, log = train_tiny(tmp_path, "all.hsigan", samples_per_class=0, output_report=str(tmp_path / "all.html"))
    metadata, tensors = model_file.load(path)
    head, training = metadata["spectral_head"], metadata["training"]
    both = training["train_pixels"] + training["validation_pixels"]
    assert training["validation_pixels"] > 0 and head["refitted"]["pixels"] == both
    classes = len(metadata["class_ids"])

    def support_of(n, support):  # kernel_head.cap_support: all n up to MAX_SUPPORT, else class-stratified floors
        return support == n if n <= MAX_SUPPORT else MAX_SUPPORT - classes <= support <= MAX_SUPPORT

    assert support_of(both, head["support"])
    assert support_of(training["train_pixels"], head["refitted"]["before"]["support"])
    assert tensors["spectral_head"]["support"].shape == (head["support"], metadata["bands"])
    assert any(line.startswith("Spectral kernel head refitted on the ") for line in log.lines)
    assert "refitted on the %d training and validation pixels" % both in (tmp_path / "all.html").read_text()

    monkeypatch.setattr(train_module, "refits_head", lambda cfg, head, val_px: False)
    plain, plain_log = train_tiny(tmp_path, "plain.hsigan", samples_per_class=0)
    metadata0, tensors0 = model_file.load(plain)
    assert metadata0["validation"] == metadata["validation"]
    assert {k: v for k, v in metadata0["spectral_head"].items() if k in ("weight", "window")} == \
        {k: head[k] for k in ("weight", "window")}
    assert "refitted" not in metadata0["spectral_head"]
    assert all(np.array_equal(a, tensors0["classifier"][n]) for n, a in tensors["classifier"].items())
    assert not np.array_equal(tensors0["spectral_head"]["support"], tensors["spectral_head"]["support"])
    monkeypatch.undo()

    capped, capped_log = train_tiny(tmp_path, "capped.hsigan")  # 12 a class
    capped_head = model_file.load(capped, with_tensors=False)[0]["spectral_head"]
    assert "refitted" not in capped_head and not any("refitted" in line for line in capped_log.lines)


def test_fixed_window_trains_classifies_as_its_patches_and_is_refused_when_it_does_not_fit(tmp_path):
    """SPECTRAL_HEAD_WINDOW 3x3: the model stores window 1, classify's tiled map is the fused model on every
    pixel's patch; a 5x5 window with PATCH_SIZE 3 is refused naming the parameter; auto records its choice."""
    from hsigan_qgis import model_file
    from hsigan_qgis.errors import InputError

    path, log = train_tiny(tmp_path, "w.hsigan", spectral_head_window="3x3", spectral_head_weight=0.5)
    head = model_file.load(path, with_tensors=False)[0]["spectral_head"]
    assert head["window"] == 1 and head["window_chosen"] == "SPECTRAL_HEAD_WINDOW"
    assert any("window 3x3 (SPECTRAL_HEAD_WINDOW)" in line for line in log.lines)
    want, margin = patch_labels(path, RASTER)
    assert_same_labels(read(run(tmp_path, RASTER, path, "map.tif", tile_size=32)[0], 1), want, margin)
    plain, _ = train_tiny(tmp_path, "p.hsigan", spectral_head_window="1x1", spectral_head_weight=0.5)
    assert (patch_labels(plain, RASTER)[0] != want).any()  # the window changes the map
    (tmp_path / "x.hsigan").write_bytes(b"the previous model")  # a refused run keeps the previous output
    with pytest.raises(InputError, match="SPECTRAL_HEAD_WINDOW.*does not fit in PATCH_SIZE 3"):
        train_tiny(tmp_path, "x.hsigan", spectral_head_window="5x5", patch_size=3)
    assert (tmp_path / "x.hsigan").read_bytes() == b"the previous model"
    auto = model_file.load(train_tiny(tmp_path, "a.hsigan", patch_size=3)[0], with_tensors=False)[0]["spectral_head"]
    assert auto["window"] in (0, 1) and auto["window_chosen"].startswith("automatic, fused model over ")
    assert "5x5" not in auto["window_chosen"]  # 5x5 does not fit patch 3: not a candidate


def test_model_file_refuses_a_head_that_disagrees_with_its_metadata(tmp_path):
    from hsigan_qgis import model_file
    from hsigan_qgis.errors import InputError

    path, _ = train_tiny(tmp_path, "a.hsigan", spectral_head_weight=0.5)
    metadata, tensors = model_file.load(path)
    for change in (dict(support=metadata["spectral_head"]["support"] + 1), dict(weight=2.0), dict(name="x"),
                   dict(window=metadata["patch_size"] // 2 + 1), dict(window=0.5)):
        broken = str(tmp_path / "broken.hsigan")
        model_file.save(broken, dict(metadata, spectral_head=dict(metadata["spectral_head"], **change)), tensors)
        with pytest.raises(InputError, match="not an HSI-GAN model file"):
            model_file.load(broken)


def test_automatic_weight_leaves_0_3_only_on_enough_validation_evidence():
    """SPECTRAL_HEAD_WEIGHT 0: the weight of 0.1-0.9 with the lowest validation log-loss, but only when it beats
    0.3's by 1.64 standard errors: the same per-pixel evidence repeated over more validation pixels moves the
    weight, over few it does not (round 5: the lowest log-loss taken as it is lost 0.5 OA on Indian Pines)."""
    from hsigan_qgis.head_choice import automatic_head_weight

    net = np.array([[0.4, 0.6], [0.8, 0.2]], np.float32)  # pixel 1: the head is right, the net wrong; pixel 2: both
    head = np.array([[0.95, 0.05], [0.5, 0.5]], np.float32)  # right, the net surer
    labels = np.array([0, 0])

    def rule(a, b, copies, wrong_a, wrong_b):
        """`copies` times the two pixels and one pixel that the fused model at 0.3 gets wrong."""
        return automatic_head_weight(np.vstack([np.tile(a, (copies, 1)), [wrong_a]]),
                                     np.vstack([np.tile(b, (copies, 1)), [wrong_b]]),
                                     np.append(np.tile(labels, copies), 0))
    wrong_net, right_head = [0.2, 0.8], [0.95, 0.05]  # 0.3: 0.425 for class 0, wrong; 0.9: 0.875, right
    weight, why = rule(net, head, 10, wrong_net, right_head)  # 21 validation pixels: 1.30 standard errors
    assert weight == 0.3
    assert why == ("automatic, validation log-loss 0.362 at weight 0.9 against 0.476 at 0.3, 1.30 standard errors "
                   "lower over 21 validation pixels; 1.64 needed to leave 0.3")
    weight, why = rule(net, head, 50, wrong_net, right_head)  # 101 pixels: 2.37
    assert weight == 0.9 and "2.37 standard errors lower over 101 validation pixels" in why
    right_net, wrong_head = [0.6, 0.4], [0.0, 1.0]  # 0.3: 0.42 for class 0, wrong; 0.1: 0.54, right
    assert rule(head, net, 50, right_net, wrong_head)[0] == 0.3  # the network's side: the same test (1.18)
    assert rule(head, net, 200, right_net, wrong_head)[0] == 0.1  # 2.10
    assert rule(net, net, 50, wrong_net, wrong_net)[0] == 0.3  # no difference, no move
    assert automatic_head_weight(net[:1], head[:1], labels[:1])[0] == 0.3


def test_automatic_weight_stays_at_0_3_when_0_3_is_right_on_every_validation_pixel():
    """SPECTRAL_HEAD_WEIGHT 0: when the fused model at 0.3 already classifies every validation pixel correctly,
    a lower log-loss elsewhere (the head's surer probabilities on pixels 0.3 gets right too) does not move the
    weight, however many pixels (round 7: Salinas-A, nearly separable, lost test OA at 0.9)."""
    from hsigan_qgis.head_choice import automatic_head_weight

    net = np.array([[0.4, 0.6], [0.8, 0.2]], np.float32)  # both pixels right at 0.3 (0.565 and 0.71 for class 0)
    head = np.array([[0.95, 0.05], [0.5, 0.5]], np.float32)
    labels = np.array([0, 0])
    weight, why = automatic_head_weight(np.tile(net, (200, 1)), np.tile(head, (200, 1)), np.tile(labels, 200))
    assert weight == 0.3
    assert why == ("automatic, validation log-loss 0.373 at weight 0.9 against 0.457 at 0.3, 4.45 standard errors "
                   "lower over 400 validation pixels, but the fused model at 0.3 already classifies every "
                   "validation pixel correctly: 0.3")
    assert automatic_head_weight(np.tile(head, (200, 1)), np.tile(net, (200, 1)), np.tile(labels, 200))[0] == 0.3


def test_automatic_weight_moves_where_the_log_loss_keeps_0_3_but_a_weight_is_right_on_clearly_more_pixels():
    """SPECTRAL_HEAD_WEIGHT 0, the second step (round 26): an unsure network keeps the fused log-loss lowest near
    0.3, yet 0.4 is right on k validation pixels where 0.3 is wrong and wrong on none where 0.3 is right; the
    weight moves to 0.4 when the sign test's z = k / sqrt(k) reaches 1.64 (k = 3), not before."""
    from hsigan_qgis.head_choice import automatic_head_weight, log_loss_weight

    def pixels(k):  # k pixels the net gets narrowly wrong and the head narrowly right, k / 4 the reverse, surely
        net = np.array([[0.45, 0.55]] * k + [[0.9, 0.1]] * (k // 4 or 1))
        head = np.array([[0.6, 0.4]] * k + [[0.001, 0.999]] * (k // 4 or 1))
        return net, head, np.zeros(len(net), int)

    for k in (2, 8):
        net, head, labels = pixels(k)
        assert log_loss_weight(net, head, labels)[0] == 0.3
    weight, why = automatic_head_weight(*pixels(2))  # z 1.41
    assert weight == 0.3 and why == log_loss_weight(*pixels(2))[1]
    weight, why = automatic_head_weight(*pixels(8))
    assert weight == 0.4 and why.startswith(log_loss_weight(*pixels(8))[1] + "; but the fused model at 0.4 is right")
    assert why.endswith("right on 8 validation pixels where 0.3 is wrong and wrong on 0 where it is right (sign test "
                        "z 2.83, 1.64 needed): 0.4")


def test_automatic_weight_is_chosen_on_validation_and_recorded(tmp_path):
    """SPECTRAL_HEAD_WEIGHT 0 (the default): the weight comes from the validation log-loss; the choice, the
    losses and the evidence are logged and stored, and agree with the rule's threshold."""
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.head_choice import HEAD_GRID, HEAD_WEIGHT, HEAD_Z

    assert TrainConfig(output_model="m").spectral_head is True and TrainConfig(output_model="m").spectral_head_weight == 0
    path, log = train_tiny(tmp_path, "auto.hsigan")
    metadata = model_file.load(path, with_tensors=False)[0]
    head = metadata["spectral_head"]
    why = head["weight_chosen"]
    assert why.startswith("automatic, validation log-loss ") and head["weight"] in HEAD_GRID
    if "standard errors lower" in why:
        z = float(why.split(", ")[2].split(" standard errors")[0])
        if why.endswith(", but the fused model at 0.3 already classifies every validation pixel correctly: 0.3"):
            assert head["weight"] == HEAD_WEIGHT and z >= HEAD_Z  # the log-loss alone would have moved it
        else:
            assert (head["weight"] != HEAD_WEIGHT) == (z >= HEAD_Z)
            assert f"; {HEAD_Z:g} needed to leave {HEAD_WEIGHT:g}" in why
    else:
        assert head["weight"] == HEAD_WEIGHT and "the lowest of 0.1-0.9" in why
    assert metadata["validation"]["oa"] is not None and head["network_validation_oa"] is not None
    assert any("fused with weight" in line and why in line for line in log.lines)
    # the pixels that chose the weight also score the model: the log and the report say it is optimistic
    assert "the spectral kernel head's weight" in metadata["validation"]["chose"]
    assert any(line.startswith("Validation on held-out blocks:") and "slightly optimistic: these pixels also chose"
               in line for line in log.lines)
    fixed, fixed_log = train_tiny(tmp_path, "fixed.hsigan", spectral_head_weight=0.3, spectral_head_window="1x1")
    assert model_file.load(fixed, with_tensors=False)[0]["validation"]["chose"] == []
    assert not any("optimistic" in line for line in fixed_log.lines)


def test_tta_of_a_fused_model_is_the_mean_over_turned_patches(tmp_path):
    """TTA runs the kernel head once (it is the same in every orientation): the result still equals the
    fused model's softmax averaged over the 8 flips/rotations of every pixel's patch."""
    import torch
    from hsigan_qgis import model_file
    from hsigan_qgis.predict import load_classifier
    from hsigan_qgis.tta import dihedral_probabilities, turn, turn_back

    path, _ = train_tiny(tmp_path, "a.hsigan", spectral_head_weight=0.5)
    metadata, tensors = model_file.load(path)
    model = load_classifier(metadata, tensors, torch.device("cpu"))
    assert type(model).__name__ == "FusedClassifier"
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, metadata["bands"], 15, 17)).astype(np.float32))
    with torch.no_grad():
        want = sum(turn_back(torch.softmax(model(turn(x, k)), 1), k) for k in range(8)) / 8
    np.testing.assert_allclose(dihedral_probabilities(model, x).numpy(), want.numpy(), atol=1e-4)  # float32
