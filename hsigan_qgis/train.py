"""hsigan:train — raster + label vector in, model file out (with validation figures)."""
import os
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from . import __version__, model_file
from .config import TrainConfig, check
from .device import choose
from .errors import InputError
from .feedback import Feedback
from .head_choice import WINDOWS, head_candidates, refit_head, refits_head, spectral_head
from .smoothing_choice import boxes_of, choose_smoothing
from .metrics import confusion_matrix, summarise
from .outputs import check_job_files
from .report import listed
from .results import TrainResult
from .styling import parse_colours, resolve_colours, resolve_names


def validate(cfg: TrainConfig):
    """Bounds and choices from the config metadata (config.check), then what depends on several fields;
    CLASS_COLOURS too, so a malformed one is refused before training, not after it."""
    check(cfg)
    if cfg.samples and cfg.pretrain_steps:
        raise InputError("PRETRAIN_STEPS", "scene pretraining learns from the raster's unlabelled pixels, which a "
                                           "sample file does not hold; set it to 0 with SAMPLES, or give INPUT and LABELS")
    if cfg.spectral_head and WINDOWS.get(cfg.spectral_head_window, 0) > cfg.patch_size // 2:
        raise InputError("SPECTRAL_HEAD_WINDOW", f"a {cfg.spectral_head_window} window does not fit in PATCH_SIZE "
                                                 f"{cfg.patch_size}; choose a smaller window or auto, or a larger "
                                                 "PATCH_SIZE")
    if not cfg.samples:
        for name, value in (("INPUT", cfg.input), ("LABELS", cfg.labels)):  # an empty CLASS_FIELD: labels.py lists the fields
            if not value:
                raise InputError(name, "required unless SAMPLES (a sample file from hsigan:augment) is given")
    check_job_files([("OUTPUT_MODEL", cfg.output_model)], (cfg.input, cfg.labels, cfg.samples), cfg.output_report)
    if cfg.class_colours:
        parse_colours(cfg.class_colours)


def build_classifier(bands, n_classes, patch_size):
    from .torch_modules import torch_module
    SpectralSpatialNet = torch_module("classifier").SpectralSpatialNet
    return SpectralSpatialNet(bands, n_classes, patch_size)


def run_epochs(cfg, n_samples, feedback):
    """EPOCHS, lowered so that the classifier's optimiser steps stay within MAX_STEPS (training.capped_epochs)."""
    from .training import capped_epochs

    epochs = capped_epochs(cfg.epochs, n_samples, cfg.batch_size, cfg.max_steps)
    if epochs < cfg.epochs:
        feedback.info(f"{epochs} epochs instead of {cfg.epochs}: {n_samples} samples a pass, MAX_STEPS {cfg.max_steps} "
                      "caps the optimiser steps so the cost does not grow with the labels")
    return epochs


def pretrain(cfg, classifier, block, store, radius, feedback):
    """PRETRAIN_STEPS of scene pretraining (pretrain.py) on the store's unlabelled pixels, in the first 15 % of
    the progress; returns (history, the feedback for the rest of the training)."""
    if not cfg.pretrain_steps:
        return [], feedback
    from .pretrain import pretrain_encoder

    if store.unlabelled is None or not store.unlabelled.any():
        feedback.warning("PRETRAIN_STEPS: the raster sample holds no unlabelled valid pixel; no pretraining")
        return [], feedback
    feedback.info(f"Pretraining the encoder on the raster's unlabelled pixels ({cfg.pretrain_steps} steps of "
                  "masked spectral reconstruction)")
    history = pretrain_encoder(classifier, block, store.unlabelled, radius, cfg.pretrain_steps, cfg.learning_rate,
                               cfg.seed, feedback.span(0, 15), cfg.batch_size)
    return history, feedback.span(15, 100)


def synthetic_samples(cfg, ratio, block, train_px, radius, counts, file_synthetic, feedback):
    """GAN spectral or mixup (spectral_synthesis.py): `ratio` synthetic patches per real one, joined to
    those of a sample file if any. Returns (synthetic (patches, labels), separability % of their centre spectra,
    redraw): for mixup, redraw(epoch) makes that epoch's fresh mixes (round 10: fresh draws every epoch beat
    one draw), None for spectral."""
    import torch
    from .spectral_synthesis import centre_separability, mix_patches, synthesize

    wanted = np.ceil(counts * ratio).astype(int)
    make, what = (mix_patches, "each mixed from two labelled patches of its class, mixed afresh every epoch") \
        if cfg.gan == "mixup" else (synthesize, "class-Gaussian centre spectra in real patches")

    def joined(synthetic):
        return synthetic if file_synthetic is None else tuple(torch.cat([a, b]) for a, b in zip(file_synthetic, synthetic))

    synthetic = make(block, train_px, radius, len(counts), wanted, cfg.seed)
    separability = centre_separability(block, train_px, synthetic, cfg.seed)
    feedback.info(f"{len(synthetic[1])} synthetic patches ({what}) join the training set"
                  + (f"; a classifier tells their centre spectra from real ones {separability:.0f} % of the time "
                     "(50 % = indistinguishable)" if separability is not None else ""))
    redraw = None
    if cfg.gan == "mixup":
        def redraw(epoch):
            return joined(mix_patches(block, train_px, radius, len(counts), wanted, cfg.seed, epoch))
    return joined(synthetic), separability, redraw


def fit_network(cfg, inputs, feedback):
    """The network of GAN mode cfg.gan trained on the training pixels (inputs: train's SimpleNamespace),
    from a fresh seed: SimpleNamespace(classifier, history, gan_history, pretrain_history, generator, gan_steps,
    ratio, separability)."""
    import torch
    from .gan import draw_synthetic, resolve_gan_steps, resolve_synthetic_ratio, train_ssgan, train_wgan
    from .training import fit_classifier, seed_everything

    block, train_px, val_px, radius, counts = inputs.block, inputs.train, inputs.validation, inputs.radius, inputs.counts
    seed_everything(cfg.seed)
    classifier = build_classifier(inputs.bands, inputs.classes, cfg.patch_size).to(inputs.device)
    gan_history, synthetic, generator = [], None, None
    pretrain_history, feedback = pretrain(cfg, classifier, block, inputs.store, radius, feedback)
    gan_steps = resolve_gan_steps(cfg.gan, cfg.gan_steps, cfg.epochs, len(train_px), cfg.batch_size)
    file_synthetic = None
    if inputs.stored and inputs.stored["synthetic"] is not None:
        file_synthetic = tuple(torch.from_numpy(a).to(inputs.device) for a in inputs.stored["synthetic"])
        if cfg.gan == "wgan":
            feedback.info("the sample file's synthetic samples join the training set; no second GAN is trained")
    separability = redraw = None
    ratio = resolve_synthetic_ratio(cfg.gan, cfg.synthetic_ratio)
    if cfg.gan in ("spectral", "mixup"):  # synthetic patches, then as GAN none
        file_synthetic, separability, redraw = synthetic_samples(cfg, ratio, block, train_px, radius, counts,
                                                                 file_synthetic, feedback)
    if cfg.gan == "wgan" and file_synthetic is None:
        feedback.info(f"Training the conditional WGAN-GP ({gan_steps} generator steps)")
        generator, gan_history = train_wgan(block, train_px, radius, inputs.classes, gan_steps, cfg.seed,
                                            feedback.span(0, 40))
        synthetic = draw_synthetic(generator, np.ceil(counts * ratio).astype(int), cfg.seed)
        feedback.info(f"{len(synthetic[1])} synthetic labelled patches join the training set")
        epochs = run_epochs(cfg, len(train_px) + len(synthetic[1]), feedback)
        history = fit_classifier(classifier, block, train_px, val_px, radius, epochs, cfg.batch_size,
                                 cfg.learning_rate, cfg.seed, feedback.span(40, 95), synthetic=synthetic,
                                 balanced=cfg.class_balanced)
    elif cfg.gan == "ssgan":
        feedback.info(f"Training the semi-supervised GAN ({gan_steps} steps, unlabelled pixels from the raster)")
        gan_history = train_ssgan(classifier, block, inputs.store.unlabelled, train_px, radius, inputs.classes,
                                  gan_steps, cfg.learning_rate, cfg.seed, feedback.span(0, 95), cfg.batch_size,
                                  balanced=cfg.class_balanced)
        history = []
    else:
        epochs = run_epochs(cfg, len(train_px) + (0 if file_synthetic is None else len(file_synthetic[1])), feedback)
        history = fit_classifier(classifier, block, train_px, val_px, radius, epochs, cfg.batch_size,
                                 cfg.learning_rate, cfg.seed, feedback.span(0, 95), synthetic=file_synthetic,
                                 balanced=cfg.class_balanced, redraw=redraw)
    return SimpleNamespace(classifier=classifier, history=history, gan_history=gan_history,
                           pretrain_history=pretrain_history, generator=generator, gan_steps=gan_steps, ratio=ratio,
                           separability=separability)


def ssgan_or_none(cfg, inputs, feedback):
    """GAN ssgan with many labels (gan.tries_none_first): GAN none's network first, kept where its automatic kernel
    head weight is at least NONE_IF_HEAD (the head carries the model there, and round 26 found ssgan's network
    no better); else ssgan's, trained from the same seed as without the rule. Returns (network, fused model,
    head metadata, mode, why)."""
    from .gan import MANY_LABELS, NONE_IF_HEAD

    candidates = head_candidates(cfg, inputs.block, inputs.train, inputs.validation, inputs.radius, inputs.classes)

    def fused(cfg, net, feedback):
        return spectral_head(cfg, net.classifier, inputs.block, inputs.train, inputs.validation, inputs.radius,
                             inputs.classes, feedback, candidates, network=f"GAN {cfg.gan}'s network")

    none_cfg = replace(cfg, gan="none")
    feedback.info("GAN ssgan with more labels: training GAN none first; its network is kept if the validation "
                  f"pixels give the spectral kernel head a weight of {NONE_IF_HEAD:g} or more")
    net = fit_network(none_cfg, inputs, feedback.span(0, 15))
    model, head = fused(none_cfg, net, feedback)
    if head["weight"] >= NONE_IF_HEAD:
        why = (f"the median class has at least {MANY_LABELS} training pixels and GAN none's kernel head weight is "
               f"{head['weight']:g}, at least {NONE_IF_HEAD:g}")
        feedback.info(f"GAN ssgan: none, because {why}")
        return net, model, head, "none", why
    why = (f"GAN none's kernel head weight is {head['weight']:g}, below {NONE_IF_HEAD:g}; ssgan trains")
    feedback.info(f"GAN ssgan: ssgan, because {why}")
    net = fit_network(cfg, inputs, feedback.span(15, 100))
    model, head = fused(cfg, net, feedback)
    return net, model, head, "ssgan", why


def draw_from_raster(cfg, radius, feedback):
    """The labelled pixels train() learns from, drawn by cfg.seed (training and validation pixels in spatially
    disjoint blocks), and the patches around them: (scene, store, (train, validation), raster pixels, norm)."""
    from .sampling import choose_labelled
    from .training_patches import read_training_patches, to_raster

    # the gap between training and validation pixels: no patch, and no smoothing box (PATCH_SIZE 3 with 5x5),
    # reaches from a validation pixel to a training pixel
    gap = max(radius, max(boxes_of(cfg.smoothing)) // 2)

    def pick(points, valid):
        return [to_raster(p, points) for p in choose_labelled(
            points.rows - points.row, points.cols - points.col, points.index, valid, points.width,
            cfg.samples_per_class, cfg.validation_fraction, cfg.block_size, gap, cfg.seed, points.classes.names)]

    return read_training_patches(cfg, radius, feedback, pick)


def train(cfg: TrainConfig, feedback: Feedback = None, none_first: bool = True) -> TrainResult:
    """Run the whole training job; returns the model's path and validation figures. none_first=False: GAN ssgan
    trains ssgan whatever the labels (GAN auto's candidate)."""
    import torch
    from .gan import resolve_gan_mode, tries_none_first
    from .training import predict_indices

    feedback = feedback or Feedback()
    validate(cfg)
    if cfg.gan == "auto":  # trains the candidates through this function and keeps the better
        from .auto_gan import train_auto
        return train_auto(cfg, feedback, train)
    started = time.perf_counter()
    device = choose(cfg.device, feedback)
    radius = cfg.patch_size // 2
    stored = raster_px = None
    if cfg.samples:  # a sample file from hsigan:augment instead of raster + labels (see augment.py)
        from .training_patches import prepare_training
        stored = prepare_training(cfg, feedback)
        store, classes, wavelengths, bands = (stored[k] for k in ("store", "classes", "wavelengths", "bands"))
        train_px, val_px, norm = stored["train"], stored["validation"], stored["norm"]
    else:
        scene, store, (train_px, val_px), raster_px, norm = draw_from_raster(cfg, radius, feedback)
        classes, wavelengths, bands = scene.points.classes, scene.wavelengths, scene.bands
        if cfg.class_names:
            classes.names = resolve_names(cfg.class_names, classes)
    counts = np.bincount(train_px.labels, minlength=len(classes.ids))
    missing = [classes.names[k] for k in np.flatnonzero(counts == 0)]
    if missing:
        feedback.warning(f"classes without valid training pixels (the model will never predict them): {missing}")
    feedback.info(f"{len(train_px)} training and {len(val_px)} validation pixels (spatially disjoint blocks of "
                  f"{cfg.block_size} px), {len(classes.ids)} classes, {bands} bands, patch {cfg.patch_size}")
    requested = cfg.gan
    mode, why = resolve_gan_mode(cfg.gan, counts, from_samples=bool(cfg.samples))
    if why:  # mixup-if-few, or ssgan from a sample file: trains as `mode` from here on
        (feedback.warning if requested == "ssgan" else feedback.info)(f"GAN {requested}: {mode}, because {why}")
        cfg = replace(cfg, gan=mode)
    if len(norm.bad_bands):
        feedback.warning(f"{len(norm.bad_bands)} bands are nodata or constant over the training pixels and are "
                         f"ignored (set to 0) in training and classification: {(norm.bad_bands + 1).tolist()}")
    block = store.to(device)
    inputs = SimpleNamespace(block=block, store=store, stored=stored, train=train_px, validation=val_px,
                             counts=counts, classes=len(classes.ids), bands=bands, radius=radius, device=device)
    gan_chosen_on_validation = none_first and tries_none_first(cfg, counts, len(val_px))
    if gan_chosen_on_validation:
        net, model, head, mode, why = ssgan_or_none(cfg, inputs, feedback)
        cfg = replace(cfg, gan=mode)
    else:
        net = fit_network(cfg, inputs, feedback)
        model, head = spectral_head(cfg, net.classifier, block, train_px, val_px, radius, len(classes.ids), feedback)
    box, box_why, smoothed = choose_smoothing(cfg, model, raster_px[1] if raster_px else None, norm, device,
                                             feedback)
    figures = {}
    if len(val_px):
        predicted = predict_indices(model, block, val_px, radius) if smoothed is None else smoothed
        matrix = confusion_matrix(val_px.labels, predicted, len(classes.ids))
        summary = summarise(matrix)
        chose = [f"the spectral kernel head's {name}" for name, key in (("window", "window_chosen"),
                                                                         ("weight", "weight_chosen"))
                 if head and head[key].startswith("automatic,")]
        chose += ["the GAN mode"] if gan_chosen_on_validation else []
        chose += ["the smoothing"] if box_why.startswith("automatic, over") else []
        figures = dict(oa=float(summary["oa"]), aa=float(summary["aa"]), kappa=float(summary["kappa"]),
                       confusion=matrix.tolist(), chose=chose)
        feedback.info(f"Validation on held-out blocks: OA {summary['oa']:.2f}%, AA {summary['aa']:.2f}%, "
                      f"kappa {summary['kappa']:.4f}" + (f" (slightly optimistic: these pixels also chose "
                                                         f"{listed(chose)}; hsigan:assess on reference data kept out "
                                                         "of training gives an unbiased figure)" if chose else ""))
    else:
        feedback.warning("no validation pixels (VALIDATION_FRACTION is 0 or every class sits in one block)")
    if refits_head(cfg, head, val_px):
        model, head = refit_head(cfg, net.classifier, head, block, train_px, val_px, radius, len(classes.ids),
                                 feedback)
    seconds = time.perf_counter() - started
    metadata = dict(
        hsigan_version=__version__, torch_version=torch.__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        bands=bands, wavelengths=wavelengths, class_ids=[int(i) for i in classes.ids], class_names=classes.names,
        class_colours=resolve_colours(cfg.class_colours, classes, stored and stored["metadata"].get("class_colours")), mean=norm.mean.tolist(), std=norm.std.tolist(),
        bad_bands=[int(b) for b in norm.bad_bands],
        patch_size=cfg.patch_size,
        architecture=dict(name="SpectralSpatialNet", bands=bands, classes=len(classes.ids),
                          patch_size=cfg.patch_size),
        training=dict(source=os.path.basename(cfg.input or stored["metadata"]["source"]),
                      labels=os.path.basename((cfg.labels or stored["metadata"]["labels"]).split("|")[0]),
                      samples=os.path.basename(cfg.samples) or None,
                      class_field=cfg.class_field, gan=requested, epochs=cfg.epochs, max_steps=cfg.max_steps,
                      epochs_run=len(net.history) if net.history else None,
                      samples_per_class=cfg.samples_per_class, synthetic_ratio=net.ratio,
                      gan_steps=net.gan_steps, pretrain_steps=cfg.pretrain_steps, spectral_head=cfg.spectral_head, spectral_head_weight=cfg.spectral_head_weight, spectral_head_window=cfg.spectral_head_window, smoothing=cfg.smoothing, synthetic_separability=net.separability, class_balanced=cfg.class_balanced, batch_size=cfg.batch_size,
                      learning_rate=cfg.learning_rate,
                      validation_fraction=cfg.validation_fraction, block_size=cfg.block_size,
                      label_rule=cfg.label_rule, seed=cfg.seed, device=device.type,
                      train_pixels=int(len(train_px)), validation_pixels=int(len(val_px)),
                      train_pixels_per_class=counts.tolist(), seconds=round(seconds, 2),
                      **({"gan_rule": dict(chosen=mode, reason=why)} if why else {})),
        validation={k: v for k, v in figures.items()},
        smoothing=dict(box=box, chosen=box_why),
        history=net.history, gan_history=net.gan_history, pretrain_history=net.pretrain_history,
    )
    states = {"classifier": net.classifier.state_dict()}
    if head is not None:
        states["spectral_head"] = model.head.state_dict()
        metadata["spectral_head"] = head
    if net.generator is not None:
        states["generator"] = net.generator.state_dict()
        metadata["generator"] = dict(name="ConditionalGenerator", noise_dim=net.generator.noise_dim,
                                     width=net.generator.width)
    feedback.check_cancel()
    try:
        model_file.save(cfg.output_model, metadata, states)
    except ValueError as error:  # non-finite weights
        raise InputError("OUTPUT_MODEL", f"{error}; lower LEARNING_RATE or try another SEED")
    if cfg.output_report:
        from .report import write_training_report
        write_training_report(cfg.output_report, metadata)
    feedback.progress(100)
    feedback.info(f"Model written to {cfg.output_model} in {seconds:.1f} s")
    return TrainResult(output_model=cfg.output_model, output_report=cfg.output_report or None, oa=figures.get("oa"),
                       aa=figures.get("aa"), kappa=figures.get("kappa"), train_pixels=int(len(train_px)),
                       validation_pixels=int(len(val_px)), seconds=seconds, metadata=metadata,
                       gan_chosen=mode if why else None)
