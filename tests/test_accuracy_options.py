"""Options chosen by the multi-scene benchmark (bench/scenes.py): test-time dihedral averaging in classify
(TTA), the cap on the classifier's optimiser steps (MAX_STEPS), and the benchmark's Berlin split."""
import os

import numpy as np
import pytest

from conftest import RASTER, ROOT, SHARED, TRAIN_LABELS, write_raster
from classify_helpers import Log, cube, make_model, patch_labels, read, run


def tta_patch_reference(model, raster):
    """Reference: mean softmax of the net over the 8 flips/rotations of the PxP patch around every pixel."""
    import torch
    from hsigan_qgis import model_file
    from hsigan_qgis.predict import load_classifier
    from hsigan_qgis.raster import open_raster, read_window
    from hsigan_qgis.sampling import Normalisation, gather_patches
    from hsigan_qgis.tta import turn

    metadata, tensors = model_file.load(model)
    net = load_classifier(metadata, tensors, torch.device("cpu"))
    r = metadata["patch_size"] // 2
    with open_raster(raster) as ds:
        data, valid = read_window(ds, 0, 0, ds.height, ds.width, r, skip_bands=[])
        h, w = ds.height, ds.width
    Normalisation(metadata["mean"], metadata["std"]).apply(data, valid)
    rows, cols = np.mgrid[:h, :w]
    with torch.no_grad():
        x = gather_patches(torch.from_numpy(data), rows.ravel(), cols.ravel(), r)
        probs = sum(torch.softmax(net(turn(x, k)).flatten(1), 1) for k in range(8)) / 8
    return probs.numpy().reshape(h, w, -1)


def test_tta_map_is_the_mean_over_turned_patches_and_tiles_seamlessly(tmp_path):
    model = make_model(tmp_path / "m.hsigan", patch_size=7)
    raster = write_raster(tmp_path / "in.tif", cube())
    probs = tta_patch_reference(model, raster)
    ids = np.array([1, 2, 3, 4])[probs.argmax(2)]
    top = np.sort(probs, axis=2)
    margin = top[..., -1] - top[..., -2]
    for size in (128, 16, 20):
        out, _ = run(tmp_path, raster, model, f"t{size}.tif", tile_size=size, tta=True,
                     output_probabilities=str(tmp_path / f"p{size}.tif"))
        got = read(out, 1)
        assert not ((got != ids) & (margin > 1e-4)).any(), size
        np.testing.assert_allclose(read(tmp_path / f"p{size}.tif").transpose(1, 2, 0), probs, atol=1e-5)
    # TTA changes the map of this random net somewhere (so the comparison above can fail)
    plain, _ = patch_labels(model, raster)
    assert (plain != ids).any()


def test_tta_map_turns_with_the_raster_and_is_deterministic(tmp_path):
    """A raster turned a quarter gives the map turned a quarter (TTA averages over every orientation;
    the reflected edges turn along), and the same run twice gives the same bytes."""
    model = make_model(tmp_path / "m.hsigan", patch_size=5)
    data = cube()
    a = read(run(tmp_path, write_raster(tmp_path / "a.tif", data), model, "ma.tif", tta=True)[0], 1)
    turned = np.ascontiguousarray(np.rot90(data, 1, axes=(1, 2)))
    b = read(run(tmp_path, write_raster(tmp_path / "b.tif", turned), model, "mb.tif", tta=True)[0], 1)
    assert (np.rot90(a, 1) == b).mean() > 0.999  # equal up to float near-ties
    again = read(run(tmp_path, write_raster(tmp_path / "c.tif", data), model, "mc.tif", tta=True)[0], 1)
    assert np.array_equal(a, again)
    plain_b = read(run(tmp_path, write_raster(tmp_path / "d.tif", turned), model, "md.tif", tta=False)[0], 1)
    assert (np.rot90(read(run(tmp_path, tmp_path / "a.tif", model, "me.tif", tta=False)[0], 1), 1) != plain_b).any()


def test_capped_epochs_rule():
    from hsigan_qgis.training import capped_epochs

    assert capped_epochs(100, 240, 64, 1000) == 100   # 15 px/class x 16 classes: 4 batches a pass
    assert capped_epochs(100, 1796, 64, 1000) == 34   # 29 batches a pass
    assert capped_epochs(100, 10 ** 6, 64, 1000) == 1
    assert capped_epochs(100, 1796, 64, 0) == 100     # 0 = no cap


def test_max_steps_caps_the_epochs_run_and_is_recorded(tmp_path):
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    path, log = str(tmp_path / "m.hsigan"), Log()
    result = train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                               samples_per_class=40, epochs=6, batch_size=32, max_steps=16, gan="none", seed=0,
                               device="cpu", validation_fraction=0), log)
    training = model_file.load(path)[0]["training"]
    n = result.train_pixels
    per_epoch = int(np.ceil(n / 32))
    assert per_epoch > 4  # so the cap bites
    assert training["epochs_run"] == 16 // per_epoch < 6
    assert training["max_steps"] == 16 and training["epochs"] == 6
    assert any("instead of 6" in line and "MAX_STEPS" in line for line in log.lines), log.lines
    assert any(line.startswith("epoch 1/") and " left" in line for line in log.lines), log.lines  # the ETA


def test_defaults_chosen_by_the_benchmark():
    from hsigan_qgis.config import ClassifyConfig, TrainConfig

    t = TrainConfig(output_model="x.hsigan")
    assert (t.gan, t.max_steps, t.class_balanced) == ("ssgan", 1000, True)  # round 14
    assert ClassifyConfig(input="a", model="b", output="c").tta is False  # 6x CPU time for +0.26 OA


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED, "berlin_enmap")), reason="Berlin scene not here")
def test_berlin_split_is_disjoint_with_a_gap():
    import importlib.util

    import sys
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    spec = importlib.util.spec_from_file_location("bench_scenes", os.path.join(ROOT, "bench", "scenes.py"))
    scenes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scenes)
    _, gt, _ = scenes.load_scene("berlin_enmap")
    train, test = scenes.band_split(gt)
    tr, tc = np.nonzero(train)
    sr, sc = np.nonzero(test)
    assert np.maximum(np.abs(tr[:, None] - sr[None]), np.abs(tc[:, None] - sc[None])).min() > scenes.GAP
    for c in (1, 2, 3, 4):
        assert (gt[train] == c).sum() > 40 and (gt[test] == c).sum() > 30, c
    assert not np.isin(gt[test], (5, 6)).any() and np.isin(gt[train], (5, 6)).sum() == 17


def test_labels_only_draw_splits_exactly_the_svms_pixels():
    """bench/scenes.py --draw labels (round 21): hsigan:train is given the SVM's draw and nothing else; its split
    (SAMPLES_PER_CLASS 0) trains and validates on those pixels only, disjoint, every class kept; the engine draw
    takes SIZE a class from the whole training side instead."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import accuracy
    import scenes

    rng = np.random.default_rng(3)
    gt = np.kron(rng.integers(1, 5, (6, 6)), np.ones((10, 10), int))
    train_mask = np.zeros(gt.shape, bool)
    train_mask[:, :30] = True
    ids = np.unique(gt[train_mask])
    layer = scenes.label_layer("15", 7, gt, train_mask, ids, labels_only=True)
    rows, cols = accuracy.draw(train_mask, gt, 15, 7)
    assert np.array_equal(layer.rows, rows) and np.array_equal(layer.cols, cols)
    assert np.array_equal(ids[layer.labels], gt[rows, cols]) and np.bincount(layer.labels).tolist() == [15] * 4
    train, validation = scenes.engine_draw("15", 7, gt, train_mask, ids, labels_only=True)
    key = lambda p: set((p.rows * gt.shape[1] + p.cols).tolist())  # noqa: E731
    assert key(train) | key(validation) <= key(layer) and not key(train) & key(validation)
    assert len(validation) and set(train.labels.tolist()) == {0, 1, 2, 3}
    engine_train, _ = scenes.engine_draw("15", 7, gt, train_mask, ids)
    assert np.bincount(engine_train.labels).max() == 15 and not key(engine_train) <= key(layer)


def test_gan_auto_keeps_the_candidate_with_the_better_validation_and_is_deterministic(tmp_path):
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    runs = []
    for k in range(2):
        path, report, log = str(tmp_path / f"auto{k}.hsigan"), tmp_path / f"auto{k}.html", Log()
        result = train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model=path,
                                   samples_per_class=12, epochs=2, gan="auto", gan_steps=4, seed=1, device="cpu",
                                   output_report=str(report)), log)
        metadata, tensors = model_file.load(path)
        auto = metadata["training"]["gan_auto"]
        scores = auto["validation_oa"]
        assert set(scores) == {"none", "ssgan"} and auto["chosen"] == result.gan_chosen
        assert scores[auto["chosen"]] == max(scores.values())
        assert metadata["training"]["gan"] == auto["chosen"] and result.oa == scores[auto["chosen"]]
        assert any(line.startswith("GAN auto chose") for line in log.lines)
        assert "chosen by GAN auto" in report.read_text()
        runs.append(tensors["classifier"])
    assert all(np.array_equal(a, runs[1][n]) for n, a in runs[0].items())
    assert not any(name.startswith(".hsigan-auto") for name in os.listdir(tmp_path))  # candidates cleaned up


def test_gan_auto_needs_validation_blocks(tmp_path):
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.errors import InputError
    from hsigan_qgis.train import train

    with pytest.raises(InputError, match="VALIDATION_FRACTION"):
        train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name",
                          output_model=str(tmp_path / "m.hsigan"), gan="auto", validation_fraction=0))
    assert not os.listdir(tmp_path)


def test_command_line_yes_no_options_default_as_in_qgis():
    """Every yes/no parameter defaults on the command line to its config (and QGIS) default, and can be
    turned either way: --tta / --no-tta, --class-balanced / --no-class-balanced."""
    from hsigan_qgis.cli import build_parser
    from hsigan_qgis.config import ClassifyConfig, TrainConfig

    parser = build_parser()
    classify = ["classify", "--input", "a.tif", "--model", "m.hsigan", "--output", "o.tif"]
    assert parser.parse_args(classify).tta is ClassifyConfig.tta is False
    assert parser.parse_args(classify + ["--tta"]).tta is True
    assert parser.parse_args(classify).cog is False and parser.parse_args(classify + ["--cog"]).cog is True
    train = ["train", "--output-model", "m.hsigan"]
    assert parser.parse_args(train).class_balanced is TrainConfig.class_balanced is True
    assert parser.parse_args(train + ["--no-class-balanced"]).class_balanced is False


def ssgan_job(tmp_path, name, **extra):
    """GAN ssgan (the default) on the sample with 30 training pixels a class: many labels (median above 20)."""
    from hsigan_qgis import model_file
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.train import train

    log, none_first = Log(), extra.pop("none_first", True)
    settings = {**dict(samples_per_class=30, epochs=2, gan_steps=4, seed=1, device="cpu"), **extra}
    result = train(TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name",
                               output_model=str(tmp_path / name), **settings), log, none_first=none_first)
    metadata, tensors = model_file.load(result.output_model)
    return result, metadata, tensors, log


def same_tensors(a, b):
    return a.keys() == b.keys() and all(a[m].keys() == b[m].keys() and all(np.array_equal(t, b[m][n])
                                                                            for n, t in a[m].items()) for m in a)


def test_ssgan_with_many_labels_keeps_gan_none_only_where_its_head_weight_reaches_the_threshold(tmp_path):
    """GAN ssgan with a median class above 20 training pixels trains GAN none first, and keeps it when the
    validation pixels give its kernel head a weight of 0.5 or more (rounds 26 and 30); otherwise ssgan trains, and the
    model is exactly the one ssgan trains without the rule. The choice, logged and recorded, follows the head
    weight GAN none got, whichever way it falls here."""
    from hsigan_qgis.gan import NONE_IF_HEAD

    result, metadata, tensors, log = ssgan_job(tmp_path, "rule.hsigan", output_report=str(tmp_path / "rule.html"))
    training = metadata["training"]
    assert training["gan"] == "ssgan" and training["gan_rule"]["chosen"] == result.gan_chosen
    first = [line for line in log.lines if line.startswith("Spectral kernel head with GAN none's network: ")][0]
    none_weight = float(first.split("fused with weight ")[1].split(" ")[0])  # GAN none's head, logged first
    assert any(line.startswith("GAN ssgan with more labels: training GAN none first") for line in log.lines)
    assert "the GAN mode" in metadata["validation"]["chose"]
    assert f"trained as {result.gan_chosen}: " in (tmp_path / "rule.html").read_text()
    plain = ssgan_job(tmp_path, "plain.hsigan", none_first=False)
    none = ssgan_job(tmp_path, "none.hsigan", gan="none")
    if none_weight >= NONE_IF_HEAD:
        assert result.gan_chosen == "none" and same_tensors(tensors, none[2]) and not metadata["gan_history"]
        assert f"GAN none's kernel head weight is {none_weight:g}, at least 0.5" in training["gan_rule"]["reason"]
    else:
        assert result.gan_chosen == "ssgan" and same_tensors(tensors, plain[2]) and metadata["gan_history"]
        assert training["gan_rule"]["reason"] == f"GAN none's kernel head weight is {none_weight:g}, below 0.5; ssgan trains"
        assert metadata["spectral_head"] == plain[1]["spectral_head"]
    assert "gan_rule" not in plain[1]["training"] and plain[1]["gan_history"]


@pytest.mark.parametrize("weight, kept", [(0.5, "none"), (0.4, "ssgan")])
def test_ssgan_rule_switches_at_0_5(tmp_path, monkeypatch, weight, kept):
    """Both sides of the rule on the same draw: the automatic head weight held at 0.5 keeps GAN none's network
    (bit for bit the model GAN none trains, with no GAN history); at 0.4 ssgan's, as without the rule. Either way
    the kernel heads are fitted once: as many fits as the one network's job."""
    from hsigan_qgis import head_choice, kernel_head

    fits = []
    fit_on_pixels = kernel_head.fit_on_pixels
    monkeypatch.setattr(kernel_head, "fit_on_pixels", lambda *a, **k: fits.append(1) or fit_on_pixels(*a, **k))
    monkeypatch.setattr(head_choice, "automatic_head_weight", lambda *a: (weight, "automatic, held for the test"))
    result, metadata, tensors, log = ssgan_job(tmp_path, "rule.hsigan")
    fits_with_rule = len(fits)
    reference = ssgan_job(tmp_path, "ref.hsigan", **({"gan": "none"} if kept == "none" else {"none_first": False}))
    assert fits_with_rule == len(fits) - fits_with_rule == 3  # windows 1x1, 3x3 and 5x5; no refit with a cap
    assert result.gan_chosen == kept and metadata["training"]["gan_rule"]["chosen"] == kept
    assert same_tensors(tensors, reference[2]) and bool(metadata["gan_history"]) == (kept == "ssgan")
    assert any(line == f"GAN ssgan: {kept}, because " + metadata["training"]["gan_rule"]["reason"] for line in log.lines)


def test_ssgan_rule_applies_from_a_median_class_of_20_with_validation_pixels():
    """Round 31: a draw whose median class has exactly 20 training pixels counts as many labels (it had been left
    to ssgan, which lost up to 17 OA there on Berlin); 15 px/class, or no validation pixels, stays with ssgan.
    Empty classes are left out of the median; the automatic head weight and GAN ssgan are required too."""
    from dataclasses import replace

    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.gan import MANY_LABELS, many_labels, tries_none_first

    assert MANY_LABELS == 20
    assert many_labels(20.0, 99) and many_labels(55.0, 1)
    assert not many_labels(19.5, 99) and not many_labels(15.0, 99)
    assert not many_labels(48.5, 0) and not many_labels(None, 99)
    cfg = TrainConfig(output_model="m.hsigan")
    assert tries_none_first(cfg, [20, 0, 20, 40, 15], 99)           # median of 15, 20, 20, 40
    assert not tries_none_first(cfg, [19, 20, 0, 18], 99)           # median 19
    assert not tries_none_first(cfg, [20, 20, 20], 0)
    assert not tries_none_first(replace(cfg, gan="none"), [20, 20, 20], 99)
    assert not tries_none_first(replace(cfg, spectral_head_weight=0.5), [20, 20, 20], 99)


@pytest.mark.parametrize("extra", [dict(samples_per_class=12), dict(spectral_head_weight=0.5),
                                   dict(spectral_head=False), dict(validation_fraction=0.0)])
def test_ssgan_rule_stays_out_with_few_labels_a_fixed_weight_no_head_or_no_validation(tmp_path, monkeypatch, extra):
    """The rule needs many labels (a median class of 20 or more), the head at an automatic weight and validation pixels
    to choose it; otherwise GAN ssgan trains as it always did, even where the head would get 0.9."""
    from hsigan_qgis import head_choice

    monkeypatch.setattr(head_choice, "automatic_head_weight", lambda *a: (0.9, "automatic, held for the test"))
    result, metadata, _, log = ssgan_job(tmp_path, "m.hsigan", **extra)
    assert result.gan_chosen is None and "gan_rule" not in metadata["training"] and metadata["gan_history"]
    assert not any("training GAN none first" in line for line in log.lines)
