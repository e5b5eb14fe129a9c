"""Training memory is bounded by what it samples (issue 14): labels as pixel lists, patches read window by
window, the same patches as cut from the whole raster, and a real run on a large VRT under a memory cap."""
import importlib.util
import os

import numpy as np
import pytest

from conftest import RASTER, REFERENCE, ROOT, TRAIN_LABELS

CAP_MIB = 1024  # the whole window the far-apart labels span would be 5 GB as float32


def _bench():
    spec = importlib.util.spec_from_file_location("bench_train_memory", os.path.join(ROOT, "bench", "train_memory.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rule", ["centre", "all_touched"])
@pytest.mark.parametrize("vector", [TRAIN_LABELS, REFERENCE])
def test_labels_burnt_chunk_by_chunk_are_the_rasterised_grid(monkeypatch, rule, vector):
    import rasterio
    from hsigan_qgis import labels
    monkeypatch.setattr(labels, "CHUNK", 7)  # many chunks, features cut across them
    with rasterio.open(RASTER) as dataset:
        grid = labels.rasterise(vector, "class_name", dataset, rule, halo=3)
        points = labels.labelled_pixels(vector, "class_name", dataset, rule, halo=3)
    rows, cols = np.nonzero(grid.index >= 0)
    assert len(rows) > 1000
    assert (points.row, points.col, points.height, points.width) == (grid.row, grid.col) + grid.index.shape
    np.testing.assert_array_equal(points.rows, rows + grid.row)
    np.testing.assert_array_equal(points.cols, cols + grid.col)
    np.testing.assert_array_equal(points.index, grid.index[rows, cols])


@pytest.mark.parametrize("samples_per_class", [0, 4])  # dense: whole cells read; sparse: one patch per pixel
def test_training_patches_are_those_of_the_whole_raster(monkeypatch, samples_per_class):
    """Same pixels in the same order as the grid-based split, and each patch equal to the one cut from the
    whole raster (read with its halo, normalised with the same statistics)."""
    import torch
    from hsigan_qgis import labels, training_patches
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.feedback import Feedback
    from hsigan_qgis.raster import open_raster, read_window
    from hsigan_qgis.sampling import choose_labelled, choose_pixels, gather_patches
    from hsigan_qgis.training_patches import read_training_patches
    monkeypatch.setattr(training_patches, "SCENE_PIXELS", 64 * 64)  # one of the 4 cells: labels outside it
    radius = 3
    cfg = TrainConfig(input=RASTER, labels=TRAIN_LABELS, class_field="class_name", output_model="unused.hsigan")

    def pick(points, valid):
        return [training_patches.to_raster(p, points) for p in choose_labelled(
            points.rows - points.row, points.cols - points.col, points.index, valid, points.width,
            samples_per_class, 0.2, 16, radius, 0, points.classes.names)]

    scene, store, ids, at, norm = read_training_patches(cfg, radius, Feedback(), pick)
    assert len(scene.scene_cells) == 1
    if samples_per_class:
        assert len(store.singles) > 0
    else:
        assert len(store.cells) > 1
    with open_raster(RASTER) as dataset:
        grid = labels.rasterise(TRAIN_LABELS, "class_name", dataset, halo=radius)
        h, w = grid.index.shape
        _, valid = read_window(dataset, grid.row, grid.col, h, w, halo=radius)
        expected = choose_pixels(grid.index, valid[radius:radius + h, radius:radius + w], samples_per_class, 0.2,
                                 16, radius, 0, grid.classes.names)
        data, valid = read_window(dataset, 0, 0, dataset.height, dataset.width, halo=radius)
    norm.apply(data, valid)
    block = torch.from_numpy(data)
    for got_ids, got_at, want in zip(ids, at, expected):
        assert len(want) > 0
        np.testing.assert_array_equal(got_at.rows, want.rows + grid.row)
        np.testing.assert_array_equal(got_at.cols, want.cols + grid.col)
        np.testing.assert_array_equal(got_ids.labels, want.labels)
        assert torch.equal(gather_patches(store, got_ids.rows, got_ids.cols, radius),
                           gather_patches(block, got_at.rows, got_at.cols, radius))
    # the semi-supervised GAN's unlabelled pixels: valid scene-sample pixels without a label
    unlabelled = np.flatnonzero(store.unlabelled[:, 0])
    assert len(unlabelled) > 100 and unlabelled.max() < 64 * 64
    labelled = set(zip(scene.points.rows.tolist(), scene.points.cols.tolist()))
    r0, c0 = scene.scene_cells[0][0] * 64, scene.scene_cells[0][1] * 64
    assert not labelled & {(r0 + i // 64, c0 + i % 64) for i in unlabelled.tolist()}


def test_scene_sample_is_seeded_and_spread_over_the_whole_raster():
    from hsigan_qgis.training_patches import scene_cells
    cells = scene_cells((2900, 2900), (64, 64), seed=0)
    assert cells == scene_cells((2900, 2900), (64, 64), seed=0) != scene_cells((2900, 2900), (64, 64), seed=1)
    assert len(cells) == 16 and len(set(cells)) == 16
    rows = [r for r, _ in cells]
    assert min(rows) < 15 < max(rows)  # both halves of a 46 x 46 cell grid
    assert len(scene_cells((100, 100), (64, 64), seed=0)) == 4  # a small raster: every cell


@pytest.fixture(scope="module")
def far_labels(tmp_path_factory):
    """Salinas-A repeated 30 x 30 in a VRT (2490 x 2580 px, 204 bands) and 8 points near each of two
    opposite corners."""
    bench = _bench()
    folder = tmp_path_factory.mktemp("far_labels")
    big = bench.make_large_vrt(RASTER, str(folder / "big.vrt"), 30)
    rows, cols, classes = bench.corner_points(2490, 8)
    gpkg = bench.write_points(str(folder / "far.gpkg"), big, rows, cols, classes)
    return bench, folder, big, gpkg


def test_train_with_labels_at_opposite_corners_of_a_large_raster_stays_under_a_memory_cap(far_labels):
    from hsigan_qgis.model_file import load
    bench, folder, big, gpkg = far_labels
    model = str(folder / "m.hsigan")
    peak, _, done = bench.run_measured(["train", "--input", big, "--labels", gpkg, "--class-field", "cls",
                                        "--gan", "ssgan", "--gan-steps", "3", "--epochs", "1",
                                        "--validation-fraction", "0", "--output-model", model, "--device", "cpu"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert peak is not None and peak < CAP_MIB, f"peak RSS {peak:.0f} MiB"
    assert "MiB in memory" in done.stderr  # the estimate is logged before reading
    metadata, _ = load(model)
    assert metadata["training"]["train_pixels"] == 16 and metadata["class_ids"] == [1, 2]


def test_augment_and_train_from_its_samples_stay_under_the_cap(far_labels):
    bench, folder, big, gpkg = far_labels
    samples = str(folder / "far.hsamples")
    peak, _, done = bench.run_measured(["augment", "--input", big, "--labels", gpkg, "--class-field", "cls",
                                        "--count-per-class", "8", "--gan-steps", "2", "--output", samples,
                                        "--device", "cpu", "--quiet"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert peak < CAP_MIB, f"augment peak RSS {peak:.0f} MiB"
    from hsigan_qgis.sample_file import read_samples
    _, arrays = read_samples(samples)
    real = ~arrays["synthetic"]
    assert real.sum() == 16 and arrays["rows"][real].max() - arrays["rows"][real].min() > 2400
    peak, _, done = bench.run_measured(["train", "--samples", samples, "--gan", "none", "--epochs", "1",
                                        "--output-model", str(folder / "s.hsigan"), "--device", "cpu", "--quiet"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert peak < CAP_MIB, f"train from samples peak RSS {peak:.0f} MiB"


def test_a_scene_sample_of_nodata_falls_back_to_the_labelled_windows(monkeypatch, tmp_path):
    """A flight line in a large nodata frame: the sampled windows may hold no data at all; training still
    works, with the statistics of the labelled windows."""
    from conftest import write_raster
    from hsigan_qgis import training_patches
    from hsigan_qgis.config import TrainConfig
    from hsigan_qgis.model_file import load
    from hsigan_qgis.train import train
    monkeypatch.setattr(training_patches, "SCENE_PIXELS", 64 * 64)
    sampled = training_patches.scene_cells((256, 256), (64, 64), seed=0)[0]
    data = np.full((5, 256, 256), -9999, dtype=np.float32)
    r0, c0 = (0, 0) if sampled != (0, 0) else (192, 192)  # a data cell the sample does not draw
    rng = np.random.default_rng(0)
    data[:, r0:r0 + 64, c0:c0 + 64] = rng.normal(100.0, 5.0, (5, 64, 64))
    data[:, r0:r0 + 64, c0 + 32:c0 + 64] += 50.0
    raster = write_raster(tmp_path / "line.tif", data, nodata=-9999)
    rows = np.repeat(np.arange(r0 + 8, r0 + 56, 6), 2)
    cols = np.tile([c0 + 10, c0 + 50], len(rows) // 2)
    gpkg = _bench().write_points(str(tmp_path / "l.gpkg"), raster, rows, cols, (cols > c0 + 32) + 1)
    model = str(tmp_path / "m.hsigan")
    result = train(TrainConfig(input=raster, labels=gpkg, class_field="cls", output_model=model, gan="none",
                               epochs=2, validation_fraction=0, device="cpu"))
    assert result.train_pixels == len(rows)
    mean = load(model)[0]["mean"]
    assert all(110 < m < 140 for m in mean)  # data pixels only (about 125), never the nodata value
