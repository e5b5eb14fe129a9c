"""Every check a sample file (.hsamples, see sample_file.py) must pass before hsigan:train uses it, so that a
damaged or crafted file is refused at once with a message naming SAMPLES, rather than failing deep in
training under another parameter's name (out of memory for BATCH_SIZE, a diverged LEARNING_RATE, "only
one class" for LABELS)."""
import math

import numpy as np

from .errors import InputError

MAX_POSITION_SPAN = 2 ** 25  # raster pixels the real samples' positions may span (train holds two int64 grids
#                              of that area: 512 MiB; a 5792 x 5792 scene)


def _int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _colour(value):
    return isinstance(value, str) and len(value) == 7 and value[0] == "#" and all(
        c in "0123456789abcdefABCDEF" for c in value[1:])


def check_samples(metadata, arrays, path, parameter="SAMPLES"):
    """InputError naming `parameter` for the first fault of a sample file's metadata and arrays."""
    def refuse(why):
        raise InputError(parameter, f"'{path}' is not a usable HSI-GAN sample file: {why}; write it again with "
                                    "hsigan:augment")

    bands, patch = metadata.get("bands"), metadata.get("patch_size")
    if not (_int(bands) and 1 <= bands <= 100000):
        refuse(f"its band count {bands!r} is not a whole number from 1 to 100000")
    if not (_int(patch) and 1 <= patch <= 31 and patch % 2 == 1):
        refuse(f"its patch size {patch!r} is not an odd number from 1 to 31")
    ids, names = metadata.get("class_ids"), metadata.get("class_names")
    if not (isinstance(ids, list) and isinstance(names, list) and len(ids) == len(names) >= 2):
        refuse("its class table (class_ids, class_names) is missing, inconsistent or has fewer than 2 classes")
    if not all(_int(i) for i in ids):
        refuse(f"its class ids {ids[:5]} are not all integers")
    if not all(0 < i < 2 ** 32 for i in ids) or len(set(ids)) != len(ids):
        refuse(f"its class ids {ids[:5]} are not distinct integers from 1 to {2 ** 32 - 1} (0 is the map's "
               "nodata)")
    if not all(isinstance(n, str) and n.strip() for n in names):
        refuse("its class names are not all non-empty text")
    mean, std = metadata.get("mean"), metadata.get("std")
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) == bands):
        refuse("its normalisation (mean, std) does not match its band count")
    if not all(_finite(v) for v in mean) or not all(_finite(v) and v > 0 for v in std):
        refuse("its normalisation holds a non-finite mean or a standard deviation that is not positive")
    wavelengths = metadata.get("wavelengths")
    if wavelengths is not None and not (isinstance(wavelengths, list) and len(wavelengths) == bands
                                        and all(_finite(v) for v in wavelengths)):
        refuse("its wavelengths do not match its band count")
    colours = metadata.get("class_colours")
    if colours is not None and not (isinstance(colours, list) and len(colours) == len(ids)
                                    and all(_colour(c) for c in colours)):
        refuse("its class colours are not one '#rrggbb' per class")

    patches, labels, synthetic = arrays["patches"], arrays["labels"], arrays["synthetic"]
    rows, cols = arrays["rows"], arrays["cols"]
    n = len(labels) if labels.ndim == 1 else -1
    if n < 1 or patches.shape != (n, bands, patch, patch) or any(a.shape != (n,) for a in (synthetic, rows, cols)):
        refuse("its arrays and metadata do not agree (sample count or patch shape)")
    if patches.dtype.kind != "f":
        refuse(f"its patches hold {patches.dtype}, not floating-point values")
    if labels.dtype.kind not in "iu" or rows.dtype.kind not in "iu" or cols.dtype.kind not in "iu":
        refuse("its class labels or positions are not integers")
    if synthetic.dtype != bool:
        refuse("its synthetic flags are not true/false values")
    if labels.min() < 0 or labels.max() >= len(ids):
        refuse(f"a sample's class index is outside 0..{len(ids) - 1}")
    if not np.isfinite(patches).all():
        refuse(f"{int((~np.isfinite(patches)).any(axis=(1, 2, 3)).sum())} patches hold NaN or infinite values")
    real = ~synthetic
    if not real.any():
        refuse("it holds no real samples to train and validate on")
    r, c = rows[real], cols[real]
    if r.min() < 0 or c.min() < 0:
        refuse("a real sample has a negative raster position")
    span = (int(r.max()) - int(r.min()) + 1) * (int(c.max()) - int(c.min()) + 1)
    if span > MAX_POSITION_SPAN:
        refuse(f"its real samples' positions span {span} raster pixels (more than {MAX_POSITION_SPAN})")
    position = r.astype(np.int64) * (int(c.max()) + 1) + c
    if len(np.unique(position)) != len(position):
        refuse(f"{len(position) - len(np.unique(position))} real samples repeat the raster position of another "
               "(each real sample is one pixel of the raster)")
    present = np.unique(labels[real])
    if len(present) < 2:
        refuse(f"its real samples hold one class only ({names[int(present[0])]}); a classifier needs two or more")
