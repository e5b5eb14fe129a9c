"""Which labelled pixels train and which validate, and patches around them.

Validation is spatially disjoint: the label window is cut into square blocks, and for each class (rarest
first) about `validation_fraction` of the blocks holding it are held out whole. Training pixels closer
than the patch radius to a validation pixel are dropped, so no training patch overlaps a validation
pixel and the reported validation accuracy does not leak through shared neighbourhoods.
"""
from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass
class PixelSet:
    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray  # class index

    def __len__(self):
        return len(self.labels)

    @classmethod
    def joined(cls, *sets):
        """One PixelSet holding the pixels of several, in order."""
        return cls(*(np.concatenate([getattr(s, k) for s in sets]) for k in ("rows", "cols", "labels")))


def split_blocks(rows, cols, labels, width, validation_fraction, block_size, radius, rng):
    """Boolean masks (train, validation) over labelled pixels given as lists (row-major order) in the
    coordinates of the label window, `width` px wide (the blocks are counted from its origin)."""
    from scipy.spatial import cKDTree

    if validation_fraction <= 0:
        return np.ones(len(labels), bool), np.zeros(len(labels), bool)
    block_id = (rows // block_size) * (width // block_size + 1) + cols // block_size
    held = set()
    classes, counts = np.unique(labels, return_counts=True)
    for cls in classes[np.argsort(counts)]:
        blocks = np.unique(block_id[labels == cls])
        if len(blocks) < 2:
            continue  # a class in a single block stays in training; it cannot be validated honestly
        already = [b for b in blocks if b in held]
        want = max(1, int(round(validation_fraction * len(blocks))))
        free = [b for b in rng.permutation(blocks) if b not in held]
        for b in free[:max(0, want - len(already))]:
            held.add(b)
        # never hold out every block of a class
        if all(b in held for b in blocks):
            held.discard(already[0] if already else free[0])
    points = np.column_stack([rows, cols])
    while True:
        validation = np.isin(block_id, list(held))
        # a square (Chebyshev) neighbourhood: a P x P patch reaches radius px along diagonals too
        near = validation.copy()
        if radius > 0 and validation.any():
            distance, _ = cKDTree(points[validation]).query(points, p=np.inf, distance_upper_bound=radius + 0.5)
            near = np.isfinite(distance)
        train = ~near
        # A class whose every training pixel fell in or beside held-out blocks gets its blocks back.
        starved = [c for c in classes if not (train & (labels == c)).any() and (validation & (labels == c)).any()]
        if not starved:
            return train, validation
        held -= set(np.unique(block_id[labels == starved[0]]).tolist())


def cap_per_class(rows, cols, labels, samples_per_class, rng):
    """At most `samples_per_class` of each class (all with 0), kept in the given order."""
    if samples_per_class > 0 and len(labels):
        keep = []
        for cls in np.unique(labels):
            where = np.flatnonzero(labels == cls)
            keep.append(rng.permutation(where)[:samples_per_class])
        keep = np.sort(np.concatenate(keep))
        rows, cols, labels = rows[keep], cols[keep], labels[keep]
    return PixelSet(np.asarray(rows), np.asarray(cols), np.asarray(labels).astype(np.int64))


def choose_labelled(rows, cols, labels, valid, width, samples_per_class, validation_fraction, block_size, radius,
                    seed, class_names):
    """(train PixelSet, validation PixelSet) from labelled pixels given as lists in row-major order, in the
    coordinates of a label window `width` px wide; `valid` says which hold data in the raster."""
    rng = np.random.default_rng(seed)
    rows, cols, labels = (np.asarray(a)[np.asarray(valid, bool)] for a in (rows, cols, labels))
    if not len(labels):
        raise InputError("LABELS", "every labelled pixel is nodata in the raster; draw labels over valid pixels")
    present = np.unique(labels)
    if len(present) < 2:
        raise InputError("LABELS", f"only one class ({class_names[present[0]]}) has valid labelled pixels; "
                                   "a classifier needs at least two classes")
    train_mask, val_mask = split_blocks(rows, cols, labels, width, validation_fraction, block_size, radius, rng)
    train = cap_per_class(rows[train_mask], cols[train_mask], labels[train_mask], samples_per_class, rng)
    cap_val = samples_per_class * 4 if samples_per_class > 0 else 0  # bounded cost, enough to judge
    validation = cap_per_class(rows[val_mask], cols[val_mask], labels[val_mask], cap_val, rng)
    return train, validation


def choose_pixels(index, valid, samples_per_class, validation_fraction, block_size, radius, seed,
                  class_names):
    """(train PixelSet, validation PixelSet) in label-window coordinates, from a class-index grid."""
    rows, cols = np.nonzero(index >= 0)
    return choose_labelled(rows, cols, index[rows, cols], valid[rows, cols], index.shape[1], samples_per_class,
                           validation_fraction, block_size, radius, seed, class_names)


class Normalisation:
    """Per-band z-scores; in training the statistics come from the valid pixels of a random sample of the
    whole scene (training_patches).

    Bad bands (no finite value, nodata or constant over the training pixels) carry nothing the net can
    learn; they are recorded in the model ('bad_bands', 0-based) and set to 0 after normalisation in
    training and inference alike, so a band that varies only in the scene classified cannot leak in."""

    def __init__(self, mean, std, bad_bands=()):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.bad_bands = np.asarray(bad_bands, dtype=np.int64).reshape(-1)

    @classmethod
    def fit(cls, data, valid):
        pixels = data[:, valid]
        if pixels.shape[1] == 0:
            raise InputError("INPUT", "the raster has no valid pixel under the labels")
        finite = np.isfinite(pixels).all(axis=1)
        pixels[~finite] = 0.0  # a copy; bands with NaN (e.g. nodata everywhere) are bad
        mean = pixels.mean(axis=1, dtype=np.float64)
        std = pixels.std(axis=1, dtype=np.float64)
        bad = ~finite | ~(std > 1e-12)
        mean[bad], std[bad] = 0.0, 1.0
        return cls(mean, std, np.flatnonzero(bad))

    def scale_factor(self, normalised, valid):
        """Median over bands of (this data's band mean / the training band mean), from already normalised
        data: about 1 for data on the training scale, about 1e4 or 1e-4 for reflectance stored as 0-10000
        against 0-1 or the reverse. None when there is nothing to compare."""
        usable = np.abs(self.mean) > 1e-12
        usable[self.bad_bands] = False
        if not valid.any() or not usable.any():
            return None
        z = normalised[usable][:, valid].mean(axis=1, dtype=np.float64)
        raw = self.mean[usable] + self.std[usable] * z
        return float(np.median(raw / self.mean[usable]))

    def apply(self, data, valid):
        """Normalise in place; invalid pixels become 0 (the mean), so they do not drive the net."""
        data -= self.mean[:, None, None]
        data /= self.std[:, None, None]
        data[:, ~valid] = 0.0
        data[self.bad_bands] = 0.0
        return data


def gather_patches(block, rows, cols, radius):
    """(N, B, P, P) patches centred on (rows, cols) of a halo-padded (B, H+2r, W+2r) torch block, or of
    the patches of a training_patches.PatchStore (rows: patch ids)."""
    import torch

    if not isinstance(block, torch.Tensor):
        return block.gather(rows, radius)

    offsets = torch.arange(-radius, radius + 1, device=block.device)
    r = torch.as_tensor(rows, device=block.device)[:, None] + radius + offsets[None, :]
    c = torch.as_tensor(cols, device=block.device)[:, None] + radius + offsets[None, :]
    patches = block[:, r[:, :, None], c[:, None, :]]  # (B, N, P, P)
    return patches.permute(1, 0, 2, 3).contiguous()
