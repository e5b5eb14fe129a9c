"""What training holds in memory: the patches around the labelled pixels it uses and a bounded random
sample of the whole scene, read window by window, never the window the labels span.

The raster is cut into a grid of CELL x CELL cells (block-aligned windows). Reads:
  scene sample  SCENE_PIXELS / CELL^2 cells drawn at random (seeded) over the whole raster, every cell when
                the raster is that small; their valid pixels give the normalisation statistics, and those
                not labelled are the semi-supervised GAN's unlabelled pixels.
  labelled      the cells of the training/validation pixels: a cell's whole window (with halo) when its
                pixels' patches would hold more, else one P x P window per pixel.
Every window is read as raster.read_window reads (scale/offset, nodata, reflection at the raster's edges),
so a pixel's patch is the same as one cut from the whole raster. One difference: the bands that decide
validity are those holding a value somewhere in the scene sample (before: somewhere in the labels'
window), since no window here covers the labels. Memory is about
(SCENE_PIXELS + labelled pixels x P^2) x (bands x 4 bytes), bounded by the settings. When the scene sample
holds no valid pixel (a scene that is mostly nodata), the statistics come from the labelled windows.
"""
import os
from dataclasses import dataclass

import numpy as np

from . import labels as labels_mod
from .errors import InputError
from .raster import band_wavelengths, judge_validity, open_raster, read_window, read_window_masks
from .sampling import Normalisation, PixelSet, choose_labelled

CELL = 64              # side of the windows training reads (px)
SCENE_PIXELS = 65536   # pixels of the scene sample (16 cells of 64 x 64)


class PatchStore:
    """Halo-padded cells (K, B, C+2r, C+2r) and single patches (M, B, P, P) as one torch-ready source.

    A patch is named by an id: k*C*C + row*C + col for pixel (row, col) of cell k, then K*C*C + m for
    single patch m. PixelSets over a store hold the ids in `rows` (cols are 0); sampling.gather_patches
    cuts patches from a store as from a block tensor, so the training code runs unchanged."""

    def __init__(self, cells, singles, cell_shape, radius, unlabelled=None):
        import torch
        self.cells, self.singles = torch.as_tensor(cells), torch.as_tensor(singles)  # numpy memory is shared
        self.cell_h, self.cell_w = cell_shape
        self.radius = radius
        self.n_cell_ids = len(cells) * self.cell_h * self.cell_w
        # (n ids, 1) mask of the scene sample's valid unlabelled pixels: np.nonzero gives (ids, 0)
        self.unlabelled = unlabelled

    @property
    def shape(self):
        return (self.singles.shape[1],)

    @property
    def device(self):
        return self.singles.device

    @property
    def nbytes(self):
        return sum(a.numel() * a.element_size() for a in (self.cells, self.singles))

    def to(self, device):
        return PatchStore(*(a.to(device) for a in (self.cells, self.singles)),
                          (self.cell_h, self.cell_w), self.radius, self.unlabelled)

    def gather(self, ids, radius):
        """(N, B, P, P) patches of the given ids."""
        import torch

        ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        p = 2 * radius + 1
        out = torch.empty((len(ids), self.shape[0], p, p), dtype=self.singles.dtype, device=self.device)
        in_cell = ids < self.n_cell_ids
        if in_cell.any():
            i = ids[in_cell]
            k, within = i // (self.cell_h * self.cell_w), i % (self.cell_h * self.cell_w)
            offsets = torch.arange(p)
            r = (within // self.cell_w)[:, None] + offsets[None, :]
            c = (within % self.cell_w)[:, None] + offsets[None, :]
            dev = self.device
            patches = self.cells[k.to(dev)[:, None, None], :, r.to(dev)[:, :, None], c.to(dev)[:, None, :]]
            out[in_cell.to(dev)] = patches.permute(0, 3, 1, 2)
        if (~in_cell).any():
            out[(~in_cell).to(self.device)] = self.singles[(ids[~in_cell] - self.n_cell_ids).to(self.device)]
        return out


@dataclass
class LabelledScene:
    """Labelled pixels, their validity, and the scene sample read so far (raw raster values)."""
    points: labels_mod.LabelPoints
    valid: np.ndarray          # (n,) the labelled pixel holds data
    bands: int
    wavelengths: list
    skip_bands: np.ndarray     # bands judged nowhere (no value anywhere in the scene sample)
    cell_shape: tuple
    scene_cells: list          # [(cell row, cell col)] sorted
    scene_data: np.ndarray     # (K, B, C+2r, C+2r) float32, raw
    scene_valid: np.ndarray    # (K, C+2r, C+2r)


def cell_window(cell, cell_shape, raster_shape):
    """(row, col, height, width) of a cell, clipped to the raster."""
    r0, c0 = cell[0] * cell_shape[0], cell[1] * cell_shape[1]
    return r0, c0, min(cell_shape[0], raster_shape[0] - r0), min(cell_shape[1], raster_shape[1] - c0)


def scene_cells(raster_shape, cell_shape, seed, scene_pixels=None):
    """The cells of the scene sample: all of them when they fit in scene_pixels, else a seeded draw."""
    scene_pixels = scene_pixels or SCENE_PIXELS
    rows, cols = -(-raster_shape[0] // cell_shape[0]), -(-raster_shape[1] // cell_shape[1])
    wanted = max(1, scene_pixels // (cell_shape[0] * cell_shape[1]))
    chosen = np.arange(rows * cols) if rows * cols <= wanted else \
        np.sort(np.random.default_rng(seed).choice(rows * cols, wanted, replace=False))
    return [(int(i // cols), int(i % cols)) for i in chosen]


def read_labelled_scene(cfg, radius, feedback, scene_pixels=None) -> LabelledScene:
    """Labels as pixel lists, the scene sample, and which labelled pixels hold data. cfg: train or augment."""
    with open_raster(cfg.input) as dataset:
        points = labels_mod.labelled_pixels(cfg.labels, cfg.class_field, dataset, cfg.label_rule, halo=radius)
        shape = (dataset.height, dataset.width)
        cell_shape = (min(CELL, shape[0]), min(CELL, shape[1]))
        cells = scene_cells(shape, cell_shape, cfg.seed, scene_pixels)
        padded = (cell_shape[0] + 2 * radius, cell_shape[1] + 2 * radius)
        data = np.zeros((len(cells), dataset.count) + padded, dtype=np.float32)
        oks = np.zeros((len(cells), dataset.count) + padded, dtype=bool)
        for k, cell in enumerate(cells):
            feedback.check_cancel()
            r0, c0, h, w = cell_window(cell, cell_shape, shape)
            d, ok = read_window_masks(dataset, r0, c0, h, w, halo=radius)
            data[k, :, :d.shape[1], :d.shape[2]] = d
            oks[k, :, :ok.shape[1], :ok.shape[2]] = ok
        has_value = oks.any(axis=(0, 2, 3))
        skip = np.flatnonzero(~has_value) if has_value.any() else np.zeros(0, dtype=np.int64)
        scene_valid = np.stack([judge_validity(ok, skip) for ok in oks]) if len(cells) else oks[:, 0]
        for k, cell in enumerate(cells):  # the zero padding of clipped edge cells is not data
            _, _, h, w = cell_window(cell, cell_shape, shape)
            scene_valid[k, h + 2 * radius:, :] = False
            scene_valid[k, :, w + 2 * radius:] = False
        del oks
        valid = _labelled_validity(dataset, points, cells, scene_valid, cell_shape, radius, skip, feedback)
        wavelengths, bands = band_wavelengths(dataset), dataset.count
    if points.skipped_null:
        feedback.warning(f"{points.skipped_null} label features have no class value (NULL or empty) and were skipped")
    return LabelledScene(points, valid, bands, wavelengths, skip, cell_shape, cells, data, scene_valid)


def groups_by_cell(rows, cols, cell_shape):
    """[index array] of the raster pixels (rows, cols) in each cell of cell_shape (raster-aligned) that holds
    any: read one cell's bounding window at a time."""
    if not len(rows):
        return []
    cell_of = (np.asarray(rows) // cell_shape[0]) * (10 ** 9) + np.asarray(cols) // cell_shape[1]
    order = np.argsort(cell_of, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(cell_of[order]) != 0])
    return np.split(order, starts[1:])


def _labelled_validity(dataset, points, cells, scene_valid, cell_shape, radius, skip, feedback):
    """Whether each labelled pixel holds data: from the scene sample where it covers the pixel, else read
    (the pixels of one cell at a time, their bounding window only)."""
    valid = np.zeros(len(points.rows), dtype=bool)
    known = {cell: k for k, cell in enumerate(cells)}
    for group in groups_by_cell(points.rows, points.cols, cell_shape):
        feedback.check_cancel()
        rows, cols = points.rows[group], points.cols[group]
        cell = (int(rows[0] // cell_shape[0]), int(cols[0] // cell_shape[1]))
        if cell in known:
            r0, c0 = cell[0] * cell_shape[0], cell[1] * cell_shape[1]
            valid[group] = scene_valid[known[cell], rows - r0 + radius, cols - c0 + radius]
        else:
            r0, c0 = rows.min(), cols.min()
            _, ok = read_window(dataset, int(r0), int(c0), int(rows.max() - r0 + 1), int(cols.max() - c0 + 1),
                                skip_bands=skip)
            valid[group] = ok[rows - r0, cols - c0]
    return valid


def estimate_bytes(scene: LabelledScene, pixels, radius):
    """Upper bound of the store's bytes for these raster pixels (what plan_reads would read)."""
    cells, singles = plan_reads(scene, pixels, radius)
    ch, cw = scene.cell_shape
    return 4 * scene.bands * ((len(scene.scene_cells) + len(cells)) * (ch + 2 * radius) * (cw + 2 * radius)
                              + len(singles) * (2 * radius + 1) ** 2)


def plan_reads(scene: LabelledScene, pixels, radius):
    """(cells to read whole, [(row, col)] pixels to read one patch each) for raster pixels (rows, cols)
    that the scene sample does not hold: a cell is read whole when its pixels' patches would be larger."""
    rows, cols = pixels
    ch, cw = scene.cell_shape
    known = set(scene.scene_cells)
    cell_cost = (ch + 2 * radius) * (cw + 2 * radius)
    by_cell = {}
    for r, c in zip(rows.tolist(), cols.tolist()):
        cell = (r // ch, c // cw)
        if cell not in known:
            by_cell.setdefault(cell, set()).add((r, c))
    cells, singles = [], []
    for cell in sorted(by_cell):
        if len(by_cell[cell]) * (2 * radius + 1) ** 2 >= cell_cost:
            cells.append(cell)
        else:
            singles.extend(sorted(by_cell[cell]))
    return cells, singles


def build_store(cfg, scene: LabelledScene, pixel_sets, radius, feedback, norm=None):
    """Read what the PixelSets (raster coordinates) need, fit the normalisation on the scene sample (unless
    given), normalise, and return (PatchStore on the CPU, the PixelSets as ids, Normalisation)."""
    rows = np.concatenate([p.rows for p in pixel_sets]) if pixel_sets else np.zeros(0, np.int64)
    cols = np.concatenate([p.cols for p in pixel_sets]) if pixel_sets else np.zeros(0, np.int64)
    cells, singles = plan_reads(scene, (rows, cols), radius)
    ch, cw = scene.cell_shape
    p = 2 * radius + 1
    with open_raster(cfg.input) as dataset:
        shape = (dataset.height, dataset.width)
        label_data = np.zeros((len(cells), scene.bands, ch + 2 * radius, cw + 2 * radius), dtype=np.float32)
        label_valid = np.zeros((len(cells), ch + 2 * radius, cw + 2 * radius), dtype=bool)
        for k, cell in enumerate(cells):
            feedback.check_cancel()
            r0, c0, h, w = cell_window(cell, scene.cell_shape, shape)
            d, v = read_window(dataset, r0, c0, h, w, halo=radius, skip_bands=scene.skip_bands)
            label_data[k, :, :d.shape[1], :d.shape[2]] = d
            label_valid[k, :v.shape[0], :v.shape[1]] = v
        single_data = np.zeros((len(singles), scene.bands, p, p), dtype=np.float32)
        single_valid = np.zeros((len(singles), p, p), dtype=bool)
        for k, (r, c) in enumerate(singles):
            if k % 256 == 0:
                feedback.check_cancel()
            single_data[k], single_valid[k] = read_window(dataset, r, c, 1, 1, halo=radius, skip_bands=scene.skip_bands)
    if norm is None:
        norm = fit_normalisation(scene, label_data, label_valid, single_data, single_valid, radius)
    all_cells = np.concatenate([scene.scene_data, label_data]) if len(label_data) else scene.scene_data
    all_valid = np.concatenate([scene.scene_valid, label_valid]) if len(label_valid) else scene.scene_valid
    del label_data
    scene.scene_data = None  # now in all_cells (normalised in place below)
    for data, valid in ((all_cells, all_valid), (single_data, single_valid)):
        for k in range(len(data)):
            norm.apply(data[k], valid[k])
    cell_index = {cell: k for k, cell in enumerate(list(scene.scene_cells) + cells)}
    single_index = {rc: k for k, rc in enumerate(singles)}
    n_cell_ids = len(all_cells) * ch * cw

    def ids_of(pixels):
        out = np.empty(len(pixels), dtype=np.int64)
        for i, (r, c) in enumerate(zip(pixels.rows.tolist(), pixels.cols.tolist())):
            k = cell_index.get((r // ch, c // cw))
            out[i] = k * ch * cw + (r % ch) * cw + (c % cw) if k is not None else n_cell_ids + single_index[(r, c)]
        return PixelSet(out, np.zeros(len(out), dtype=np.int64), pixels.labels)

    # the scene sample's valid pixels that carry no label: the unlabelled pixels of the semi-supervised GAN
    unlabelled = np.zeros((n_cell_ids + len(singles), 1), dtype=bool)
    scene_core = scene.scene_valid[:, radius:radius + ch, radius:radius + cw].copy()
    labelled = np.sort(scene.points.rows * shape[1] + scene.points.cols)
    for k, cell in enumerate(scene.scene_cells):
        r0, c0 = cell[0] * ch, cell[1] * cw
        i, j = np.nonzero(scene_core[k])
        keys = (r0 + i) * shape[1] + c0 + j
        at = np.minimum(np.searchsorted(labelled, keys), max(len(labelled) - 1, 0))
        hit = labelled[at] == keys if len(labelled) else np.zeros(len(keys), bool)
        scene_core[k, i[hit], j[hit]] = False
    unlabelled[:len(scene.scene_cells) * ch * cw, 0] = scene_core.reshape(-1)
    store = PatchStore(all_cells, single_data, scene.cell_shape, radius, unlabelled)
    return store, [ids_of(pixels) for pixels in pixel_sets], norm


def fit_normalisation(scene, label_data, label_valid, single_data, single_valid, radius):
    """Per-band statistics of the scene sample's valid pixels (cell cores); of the labelled windows' when
    the sample holds no valid pixel (a scene that is mostly nodata)."""
    ch, cw = scene.cell_shape
    core = (slice(radius, radius + ch), slice(radius, radius + cw))
    pieces = [(scene.scene_data[:, :, core[0], core[1]], scene.scene_valid[:, core[0], core[1]])]
    if not pieces[0][1].any():
        pieces = [(label_data[:, :, core[0], core[1]], label_valid[:, core[0], core[1]]),
                  (single_data[:, :, radius:radius + 1, radius:radius + 1],
                   single_valid[:, radius:radius + 1, radius:radius + 1])]
    if not sum(int(v.sum()) for _, v in pieces):
        raise InputError("INPUT", "the raster has no valid pixel under the labels")
    # Band by band groups (the statistics are per band): the float64 temporaries stay small.
    bands, parts = pieces[0][0].shape[1], []
    for b0 in range(0, bands, 16):
        pixels = np.concatenate([d[:, b0:b0 + 16].transpose(1, 0, 2, 3)[:, v] for d, v in pieces], axis=1)
        part = Normalisation.fit(pixels[:, None, :], np.ones((1, pixels.shape[1]), dtype=bool))
        parts.append((part.mean, part.std, part.bad_bands + b0))
    return Normalisation(*(np.concatenate(a) for a in zip(*parts)))


def to_raster(pixels, points: labels_mod.LabelPoints):
    """A PixelSet in label-window coordinates (sampling.choose_labelled) in raster coordinates."""
    return PixelSet(pixels.rows + points.row, pixels.cols + points.col, pixels.labels)


def read_training_patches(cfg, radius, feedback, choose):
    """Labels, the scene sample and the patches of the pixels `choose(points, valid)` picks: returns
    (scene (LabelledScene), store (PatchStore on the CPU), PixelSets as patch ids, PixelSets
    in raster coordinates, Normalisation). Memory is bounded by the settings, not by the raster or by how
    far apart the labels lie; the estimate is logged before the patches are read. cfg: train or augment."""
    scene = read_labelled_scene(cfg, radius, feedback)
    chosen = choose(scene.points, scene.valid)
    rows = np.concatenate([p.rows for p in chosen])
    cols = np.concatenate([p.cols for p in chosen])
    feedback.info(f"Reading the patches of {len(rows)} labelled pixels and a sample of "
                  f"{len(scene.scene_cells) * scene.cell_shape[0] * scene.cell_shape[1]} scene pixels: about "
                  f"{estimate_bytes(scene, (rows, cols), radius) / 2 ** 20:.0f} MiB in memory")
    store, ids, norm = build_store(cfg, scene, chosen, radius, feedback)
    return scene, store, ids, chosen, norm


def prepare_training(cfg, feedback):
    """What hsigan:train needs from a sample file, in its own terms.

    The real patches become the single patches of a PatchStore (patch id i = real sample i); the
    training/validation split is made on spatial blocks of the real samples' raster positions
    (sampling.choose_labelled), so it is as disjoint as with raster + labels, and costs memory by the
    number of samples, not by how far apart they lie. Returns dict(store, classes, wavelengths, bands,
    train, validation (PixelSets of patch ids), norm, synthetic (normalised patches, labels) or None,
    metadata)."""
    from .sample_file import read_samples

    metadata, arrays = read_samples(cfg.samples)
    patch = metadata["patch_size"]
    if cfg.patch_size > patch:
        raise InputError("PATCH_SIZE", f"{cfg.patch_size} is larger than the sample file's patches ({patch}); "
                                       f"use PATCH_SIZE {patch} or less, or write samples with a larger patch")
    cut = (patch - cfg.patch_size) // 2
    patches = arrays["patches"][:, :, cut:cut + cfg.patch_size, cut:cut + cfg.patch_size]
    norm = Normalisation(metadata["mean"], metadata["std"])
    patches = (patches - norm.mean[None, :, None, None]) / norm.std[None, :, None, None]
    real = ~arrays["synthetic"]
    real_x, real_y = patches[real], arrays["labels"][real]
    rows, cols = arrays["rows"][real], arrays["cols"][real]
    if len(real_x) == 0:
        raise InputError("SAMPLES", "the sample file holds no real samples to train and validate on")
    radius = cfg.patch_size // 2
    # split on the raster positions of the real samples, counted from their bounding window
    order = np.lexsort((cols, rows))
    r0, c0 = rows.min(), cols.min()
    train, validation = choose_labelled(rows[order] - r0, cols[order] - c0, real_y[order], np.ones(len(order), bool),
                                        cols.max() - c0 + 1, cfg.samples_per_class, cfg.validation_fraction,
                                        cfg.block_size, radius, cfg.seed, metadata["class_names"])
    which = {(r, c): i for r, c, i in zip(rows.tolist(), cols.tolist(), range(len(rows)))}

    def to_ids(pixels):
        i = np.array([which[(r + r0, c + c0)] for r, c in zip(pixels.rows.tolist(), pixels.cols.tolist())],
                     dtype=np.int64)
        return PixelSet(i, np.zeros(len(i), dtype=np.int64), real_y[i].astype(np.int64))

    synthetic = None
    if arrays["synthetic"].any():
        synthetic = (np.ascontiguousarray(patches[arrays["synthetic"]], dtype=np.float32),
                     arrays["labels"][arrays["synthetic"]].astype(np.int64))
    classes = labels_mod.ClassTable(ids=list(metadata["class_ids"]), names=list(metadata["class_names"]))
    store = PatchStore(np.zeros((0, metadata["bands"], 1, 1), dtype=np.float32),
                       np.ascontiguousarray(real_x, dtype=np.float32), (1, 1), radius)
    feedback.info(f"Samples from {os.path.basename(cfg.samples)}: {len(real_y)} real, "
                  f"{0 if synthetic is None else len(synthetic[1])} synthetic (training only); "
                  f"{(store.nbytes + (0 if synthetic is None else synthetic[0].nbytes)) / 2 ** 20:.0f} MiB in memory")
    return dict(store=store, classes=classes, wavelengths=metadata.get("wavelengths"), bands=metadata["bands"],
                train=to_ids(train), validation=to_ids(validation), norm=norm, synthetic=synthetic,
                metadata=metadata)
