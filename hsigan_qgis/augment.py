"""hsigan:augment — the labelled pixels of a raster, enlarged with synthetic labelled patches from a
class-conditional WGAN-GP (gan.train_wgan), written as a training-sample file that hsigan:train reads
instead of raster + labels; plus a report on how faithful the synthetic samples are.

Sample file (.hsamples, format "hsigan-samples" version 1): a zip, nothing in it is pickled (arrays are
read with numpy's allow_pickle=False, metadata is JSON), so a file from a stranger cannot run code.
  metadata.json   format, format_version, hsigan/torch versions, created, source raster, labels,
                  class_field, bands, wavelengths (or null), patch_size, units ("raster": the raster's
                  values after its scale/offset), mean/std (per-band normalisation of the raster's valid
                  pixels in a random sample of the whole scene, see training_patches; the trained model uses them), class_ids, class_names,
                  class_colours, real/synthetic counts per class, GAN parameters and history, fidelity
  patches.npy     float32 (N, bands, P, P) in raster units
  labels.npy      int64 (N,) index into class_ids
  synthetic.npy   bool (N,) true for GAN-made samples
  rows.npy, cols.npy   int64 (N,) raster row/column of each real sample's centre pixel; -1 if synthetic

The GAN is trained on all real samples kept. hsigan:train validates on spatial blocks of the real
samples' positions; the synthetic samples only ever train. Caveat: the generator has seen the real
pixels that train later holds out, so the validation OA of a model trained from SAMPLES can be slightly
optimistic; judge it with hsigan:assess on reference data kept apart from the labels.

Fidelity (per class, on the centre-pixel spectra): the spectral angle between the real and synthetic
mean spectra (0 deg = same shape), and the cross-validated accuracy of an L2-regularised logistic
regression told to separate real from synthetic samples (50% = cannot tell them apart; 100% = trivially
separable), fed the centre spectrum and the patch's per-band spatial standard deviation.
"""
import io
import json
import os
import time
import zipfile

import numpy as np

from . import __version__, labels as labels_mod
from .config import AugmentConfig, check
from .device import choose
from .errors import InputError
from .feedback import Feedback
from .outputs import atomic_path, check_output
from .replaceable import check_replaceable
from .sampling import Normalisation, PixelSet, cap_per_class, choose_labelled

FORMAT = "hsigan-samples"
FORMAT_VERSION = 1
EXTENSION = ".hsamples"
ARRAYS = ("patches", "labels", "synthetic", "rows", "cols")


# -- the sample file --------------------------------------------------------------------------------
def write_samples(path, metadata, arrays):
    metadata = dict(metadata, format=FORMAT, format_version=FORMAT_VERSION)
    with atomic_path(path, "OUTPUT") as temporary:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("metadata.json", json.dumps(metadata, indent=1, sort_keys=True))
            for name in ARRAYS:
                buffer = io.BytesIO()
                np.save(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
                archive.writestr(f"{name}.npy", buffer.getvalue())


def read_samples(path, parameter="SAMPLES"):
    """(metadata, {name: array}); InputError for anything that is not a valid sample file."""
    from .model_file import open_archive
    from .sample_checks import check_samples
    with open_archive(path, parameter, FORMAT, FORMAT_VERSION, "sample", "write one with hsigan:augment",
                      "give a .hsamples file written by hsigan:augment") as (archive, metadata):
        arrays = {name: np.load(io.BytesIO(archive.read(f"{name}.npy")), allow_pickle=False)
                  for name in ARRAYS}
        check_samples(metadata, arrays, path, parameter)
    return metadata, arrays


# -- fidelity ---------------------------------------------------------------------------------------
def spectral_angle(a, b):
    """Angle in degrees between two spectra."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    if denominator == 0:
        return None
    return float(np.degrees(np.arccos(np.clip(a @ b / denominator, -1.0, 1.0))))


def separability(real, synthetic, seed, folds=2, steps=300, l2=1e-2, rate=0.5):
    """Cross-validated accuracy (%) of an L2-regularised logistic regression (numpy, full-batch gradient
    descent on standardised features) separating real from synthetic feature rows, on balanced classes
    (the smaller count from each); None when there are too few samples."""
    n = min(len(real), len(synthetic))
    if n < 2 * folds:
        return None
    rng = np.random.default_rng(seed)
    x = np.concatenate([real[rng.permutation(len(real))[:n]], synthetic[rng.permutation(len(synthetic))[:n]]])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    fold = np.concatenate([rng.permutation(n) % folds, rng.permutation(n) % folds])
    correct = 0
    for k in range(folds):
        train, test = fold != k, fold == k
        mean, std = x[train].mean(0), x[train].std(0) + 1e-6
        xt, yt = (x[train] - mean) / std, y[train]
        weights, bias = np.zeros(x.shape[1]), 0.0
        for _ in range(steps):
            p = 1.0 / (1.0 + np.exp(-np.clip(xt @ weights + bias, -30, 30)))
            weights -= rate * (xt.T @ (p - yt) / len(yt) + l2 * weights)
            bias -= rate * float((p - yt).mean())
        scores = ((x[test] - mean) / std) @ weights + bias
        correct += int(((scores > 0) == (y[test] > 0.5)).sum())
    return 100.0 * correct / len(y)


def fidelity(patches, labels, synthetic, class_names, seed):
    """Per-class real and synthetic centre spectra (mean, std), spectral angle and separability."""
    radius = patches.shape[-1] // 2
    centre = patches[:, :, radius, radius].astype(np.float64)
    texture = patches.reshape(len(patches), patches.shape[1], -1).std(axis=2)
    features = np.concatenate([centre, texture], axis=1)
    rows = []
    for k, name in enumerate(class_names):
        real, fake = (labels == k) & ~synthetic, (labels == k) & synthetic
        if not real.any() or not fake.any():
            continue
        rows.append(dict(
            class_name=name, real=int(real.sum()), synthetic=int(fake.sum()),
            real_mean=centre[real].mean(0).tolist(), real_std=centre[real].std(0).tolist(),
            synthetic_mean=centre[fake].mean(0).tolist(), synthetic_std=centre[fake].std(0).tolist(),
            spectral_angle=spectral_angle(centre[real].mean(0), centre[fake].mean(0)),
            separability=separability(features[real], features[fake], seed + k)))
    angles = [r["spectral_angle"] for r in rows if r["spectral_angle"] is not None]
    seps = [r["separability"] for r in rows if r["separability"] is not None]
    return dict(per_class=rows, mean_spectral_angle=float(np.mean(angles)) if angles else None,
                mean_separability=float(np.mean(seps)) if seps else None)


# -- the job ----------------------------------------------------------------------------------------
def validate(cfg: AugmentConfig):
    check(cfg)  # bounds and choices from the config metadata
    from .input_files import check_outputs
    from .report import report_files
    inputs = (cfg.input, cfg.labels)
    check_output(cfg.output, "OUTPUT", inputs=inputs)
    check_replaceable(cfg.output, "OUTPUT")
    written = [("OUTPUT", cfg.output)]
    if cfg.output_report:
        check_output(cfg.output_report, "OUTPUT_REPORT", inputs=inputs)
        check_replaceable(cfg.output_report, "OUTPUT_REPORT")
        written += report_files(cfg.output_report)
    check_outputs(written, inputs)  # the report's JSON twin too, and no file written twice
    if cfg.class_colours:
        from .train_job import parse_colours
        parse_colours(cfg.class_colours)


def augment(cfg: AugmentConfig, feedback: Feedback = None) -> dict:
    import torch
    from .gan import draw_synthetic, train_wgan
    from .sampling import choose_labelled, gather_patches
    from .train_job import read_training_patches, resolve_colours
    from .training_patches import to_raster
    from .training import seed_everything

    feedback = feedback or Feedback()
    validate(cfg)
    started = time.perf_counter()
    device = choose(cfg.device, feedback)
    radius = cfg.patch_size // 2

    def keep_real(points, valid):
        # choose_labelled refuses nodata-only or single-class labels with a clear message
        choose_labelled(points.rows, points.cols, points.index, valid, points.width, 0, 0.0, 2, radius, cfg.seed,
                        points.classes.names)
        real = cap_per_class(points.rows[valid] - points.row, points.cols[valid] - points.col,
                             points.index[valid], cfg.samples_per_class, np.random.default_rng(cfg.seed))
        return [to_raster(real, points)]

    scene, store, (real,), (real_at,), norm = read_training_patches(cfg, radius, feedback, keep_real)
    classes, wavelengths, bands = scene.points.classes, scene.wavelengths, scene.bands
    counts = np.bincount(real.labels, minlength=len(classes.ids))
    feedback.info(f"{len(real)} real labelled pixels in {int((counts > 0).sum())} classes, {bands} bands, "
                  f"patch {cfg.patch_size}; drawing {cfg.count_per_class} synthetic samples per class")
    seed_everything(cfg.seed)
    block = store.to(device)
    feedback.info(f"Training the conditional WGAN-GP ({cfg.gan_steps} generator steps)")
    generator, history = train_wgan(block, real, radius, len(classes.ids), cfg.gan_steps, cfg.seed,
                                    feedback.span(0, 85))
    wanted = np.where(counts > 0, cfg.count_per_class, 0)
    fake_x, fake_y = draw_synthetic(generator, wanted, cfg.seed)
    feedback.check_cancel()
    real_x = gather_patches(block, real.rows, real.cols, radius).cpu().numpy()
    scale_std, scale_mean = norm.std[None, :, None, None], norm.mean[None, :, None, None]
    patches = np.concatenate([real_x, fake_x.cpu().numpy().reshape(-1, *real_x.shape[1:])]) * scale_std + scale_mean
    patches = patches.astype(np.float32)
    labels = np.concatenate([real.labels, fake_y.cpu().numpy()]).astype(np.int64)
    synthetic = np.concatenate([np.zeros(len(real), bool), np.ones(len(fake_y), bool)])
    rows = np.concatenate([real_at.rows, np.full(len(fake_y), -1)]).astype(np.int64)
    cols = np.concatenate([real_at.cols, np.full(len(fake_y), -1)]).astype(np.int64)
    feedback.info("Measuring how far the synthetic samples are from the real ones")
    figures = fidelity(patches, labels, synthetic, classes.names, cfg.seed)
    feedback.progress(95)
    feedback.check_cancel()
    seconds = time.perf_counter() - started
    metadata = dict(
        hsigan_version=__version__, torch_version=torch.__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        source=os.path.basename(cfg.input), labels=os.path.basename(cfg.labels.split("|")[0]),
        class_field=cfg.class_field, bands=bands, wavelengths=wavelengths, patch_size=cfg.patch_size,
        units="raster", mean=norm.mean.tolist(), std=norm.std.tolist(),
        class_ids=[int(i) for i in classes.ids], class_names=classes.names,
        class_colours=resolve_colours(cfg.class_colours, classes),
        real_per_class=counts.tolist(), synthetic_per_class=[int(c) for c in wanted],
        gan=dict(name="ConditionalGenerator + projection critic, WGAN-GP", steps=cfg.gan_steps, seed=cfg.seed,
                 device=device.type, trained_on="all real samples in this file", history=history),
        label_rule=cfg.label_rule, samples_per_class=cfg.samples_per_class, seconds=round(seconds, 2),
        fidelity=dict(mean_spectral_angle=figures["mean_spectral_angle"],
                      mean_separability=figures["mean_separability"],
                      per_class=[{k: v for k, v in r.items() if not k.endswith(("_mean", "_std"))}
                                 for r in figures["per_class"]]))
    write_samples(cfg.output, metadata, dict(patches=patches, labels=labels, synthetic=synthetic, rows=rows,
                                             cols=cols))
    if cfg.output_report:
        from .report import write_augment_report
        write_augment_report(cfg.output_report, metadata, figures)
    feedback.progress(100)
    angle, sep = figures["mean_spectral_angle"], figures["mean_separability"]
    feedback.info(f"{len(real)} real and {len(fake_y)} synthetic samples written to {cfg.output} in {seconds:.1f} s"
                  + (f"; mean spectral angle real/synthetic {angle:.2f} deg" if angle is not None else "")
                  + (f", real-vs-synthetic classifier accuracy {sep:.1f}% (50% = indistinguishable)"
                     if sep is not None else ""))
    return dict(output=cfg.output, output_report=cfg.output_report or None, real_samples=int(len(real)),
                synthetic_samples=int(len(fake_y)), spectral_angle=angle, separability=sep, seconds=seconds,
                metadata=metadata)


# -- hsigan:train from a sample file ----------------------------------------------------------------
def prepare_training(cfg, feedback):
    """What train_job needs from a sample file, in its own terms.

    The real patches become the single patches of a PatchStore (patch id i = real sample i); the
    training/validation split is made on spatial blocks of the real samples' raster positions
    (sampling.choose_labelled), so it is as disjoint as with raster + labels, and costs memory by the
    number of samples, not by how far apart they lie. Returns dict(store, classes, wavelengths, bands,
    train, validation (PixelSets of patch ids), norm, synthetic (normalised patches, labels) or None,
    metadata)."""
    from .training_patches import PatchStore

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
