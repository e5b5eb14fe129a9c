"""SMOOTHING: the box the model's class probabilities are averaged over (models/smoothing.py), fixed by the user
or chosen on the spatially disjoint validation blocks like SPECTRAL_HEAD_WINDOW: no smoothing unless a box is
right on clearly more validation pixels (head_choice.clearly_better). A smoothed prediction needs the
probabilities of a pixel's neighbours, which the training patches do not hold, so the validation pixels'
windows are read again from the raster with the larger halo, one validation block at a time (memory: one
block). bench/RESULTS.md, rounds 27 and 28, give the figures behind it (7x7 joined the candidates in round 28)."""
import numpy as np

from .head_choice import HEAD_Z, clearly_better

BOXES = {"off": 1, "3x3": 3, "5x5": 5, "7x7": 7}  # SMOOTHING's choices (and "auto") and their box sides


def boxes_of(setting):
    """The box sides SMOOTHING considers: one when fixed, every one with auto."""
    return sorted(BOXES.values()) if setting == "auto" else [BOXES[setting]]


def validation_predictions(cfg, model, pixels, norm, boxes, device, feedback):
    """{box: (n,) class index predicted at each validation pixel (raster coordinates, a PixelSet) by the model
    smoothed over that box}, the raster read around each validation block with the halo of the largest box and
    judged and normalised as hsigan:classify does. The model runs once per block; each box averages its
    probabilities (BoxSmoothed.smooth), so a candidate box costs a box filter, not a network pass."""
    import torch

    from .predict import dense_logits
    from .raster import open_raster, read_window
    from .torch_modules import torch_module
    from .training_patches import groups_by_cell

    BoxSmoothed = torch_module("smoothing").BoxSmoothed
    model.eval()
    smoothed = {box: BoxSmoothed(model, box) for box in boxes if box > 1}
    r, halo = model.radius, model.radius + max(boxes) // 2
    predicted = {box: np.zeros(len(pixels), dtype=np.int64) for box in boxes}
    with open_raster(cfg.input) as dataset:  # one raster-aligned block at a time: a window of at most block^2
        for group in groups_by_cell(pixels.rows, pixels.cols, (cfg.block_size, cfg.block_size)):
            feedback.check_cancel()
            rows, cols = pixels.rows[group], pixels.cols[group]
            r0, c0 = int(rows.min()), int(cols.min())
            h, w = int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1
            data, valid = read_window(dataset, r0, c0, h, w, halo=halo, skip_bands=norm.bad_bands)
            x = torch.from_numpy(np.ascontiguousarray(norm.apply(data, valid)))[None].to(device)
            logits = dense_logits(model, x)  # (1, C, h + 2 (halo - r), ...)
            probabilities = torch.softmax(logits, 1)
            for box in boxes:
                cut = halo - r - box // 2  # a smaller box needs less of the halo
                if box == 1:
                    labels = logits[:, :, cut:logits.shape[2] - cut, cut:logits.shape[3] - cut].argmax(1)
                else:
                    part = x[:, :, cut:x.shape[2] - cut, cut:x.shape[3] - cut]
                    inner = probabilities[:, :, cut:probabilities.shape[2] - cut, cut:probabilities.shape[3] - cut]
                    labels = smoothed[box].smooth(inner, part).argmax(1)
                predicted[box][group] = labels[0].cpu().numpy()[rows - r0, cols - c0]
    return predicted


def automatic_box(predicted, labels):
    """SMOOTHING auto: (box, why) from validation_predictions' {box: predicted class indices} and the true ones.
    1 (no smoothing) unless a box is right on clearly more validation pixels where the two disagree: the sign
    test z >= HEAD_Z; of those, the largest b - c."""
    n, right = len(labels), {box: p == labels for box, p in predicted.items()}
    if n < 2 or len(right) < 2:
        return 1, f"automatic, {n} validation pixel(s): off"
    best, texts = clearly_better(right, lambda box: f"{box}x{box}", "no smoothing")
    return best, (f"automatic, over {n} validation pixels: {texts}; {HEAD_Z:g} needed to smooth: "
                  + (f"{best}x{best}" if best > 1 else "off"))


def choose_smoothing(cfg, model, raster_validation, norm, device, feedback):
    """(box, why, class indices predicted at the validation pixels with that box, or None where the model's own
    predictions hold: no smoothing, or no raster to read the neighbours from). SMOOTHING fixed, or
    automatic_box on the validation pixels (raster coordinates; None when training from a sample file, where
    auto means off)."""
    readable = raster_validation is not None and len(raster_validation) > 0
    predicted = None
    if cfg.smoothing != "auto":
        box, why = BOXES[cfg.smoothing], "SMOOTHING"
        if box > 1 and readable:
            predicted = validation_predictions(cfg, model, raster_validation, norm, [box], device, feedback)
    elif raster_validation is None:
        box, why = 1, "automatic, training from a sample file (no raster to read the neighbours from): off"
    elif len(raster_validation) < 2:
        box, why = 1, "automatic, no validation pixels: off"
    else:
        predicted = validation_predictions(cfg, model, raster_validation, norm, boxes_of("auto"), device,
                                           feedback)
        box, why = automatic_box(predicted, raster_validation.labels)
    feedback.info(f"Smoothing: {'off' if box == 1 else f'class probabilities averaged over {box}x{box} pixels'} "
                  f"({why})")
    return box, why, predicted[box] if predicted is not None and box > 1 else None
