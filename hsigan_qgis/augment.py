"""hsigan:augment — the labelled pixels of a raster, enlarged with synthetic labelled patches from a
class-conditional WGAN-GP (gan.train_wgan), written as a training-sample file that hsigan:train reads
instead of raster + labels; plus a report on how faithful the synthetic samples are.

The sample file's format: sample_file.py; the fidelity figures: fidelity.py.

The GAN is trained on all real samples kept. hsigan:train validates on spatial blocks of the real
samples' positions; the synthetic samples only ever train. Caveat: the generator has seen the real
pixels that train later holds out, so the validation OA of a model trained from SAMPLES can be slightly
optimistic; judge it with hsigan:assess on reference data kept apart from the labels.
"""
import os
import time

import numpy as np

from . import __version__
from .config import AugmentConfig, check
from .device import choose
from .feedback import Feedback
from .fidelity import fidelity
from .outputs import check_job_files
from .results import AugmentResult
from .sample_file import write_samples
from .sampling import cap_per_class, choose_labelled
from .styling import parse_colours, resolve_colours


# -- the job ----------------------------------------------------------------------------------------
def validate(cfg: AugmentConfig):
    check(cfg)  # bounds and choices from the config metadata
    check_job_files([("OUTPUT", cfg.output)], (cfg.input, cfg.labels), cfg.output_report)
    if cfg.class_colours:
        parse_colours(cfg.class_colours)


def augment(cfg: AugmentConfig, feedback: Feedback = None) -> AugmentResult:
    import torch
    from .gan import draw_synthetic, train_wgan
    from .sampling import gather_patches
    from .training_patches import read_training_patches
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
    return AugmentResult(output=cfg.output, output_report=cfg.output_report or None, real_samples=int(len(real)),
                         synthetic_samples=int(len(fake_y)), spectral_angle=angle, separability=sep, seconds=seconds,
                         metadata=metadata)
