"""Fitting the spectral-spatial classifier on real (and optionally synthetic) patches."""
import copy
import math
import os
import time

import numpy as np

from .errors import Diverged
from .sampling import gather_patches


def seed_everything(seed: int):
    import torch

    # cuBLAS is deterministic only with a fixed workspace; it reads this when CUDA first uses it, which in
    # a training job is after this call (torch's reproducibility notes).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.use_deterministic_algorithms(True, warn_only=True)


def random_dihedral(x, generator):
    """One of the 8 flips/rotations of the square, the same for the whole batch (labels do not change)."""
    import torch

    k = int(torch.randint(0, 8, (1,), generator=generator))
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _per_pixel(model, block, pixels, radius, batch, each, empty):
    """each(output) of the model (eval mode, no gradients) on the patches of a PixelSet, batch by batch,
    output flattened to (n, classes); concatenated as numpy, or `empty` for no pixels."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(pixels), batch):
            sl = slice(start, start + batch)
            x = gather_patches(block, pixels.rows[sl], pixels.cols[sl], radius)
            out.append(each(model(x).flatten(1)).cpu().numpy())
    return np.concatenate(out) if out else empty


def predict_indices(model, block, pixels, radius, batch=512):
    """Class index predicted for each pixel of a PixelSet."""
    return _per_pixel(model, block, pixels, radius, batch, lambda z: z.argmax(1), np.zeros(0, dtype=np.int64))


def predict_probabilities(model, block, pixels, radius, batch=512):
    """(n, classes) softmax of a model's output for each pixel of a PixelSet."""
    import torch
    return _per_pixel(model, block, pixels, radius, batch, lambda z: torch.softmax(z, 1),
                      np.zeros((0, 0), dtype=np.float32))


def overall_accuracy(model, block, pixels, radius):
    if len(pixels) == 0:
        return None
    return 100.0 * float((predict_indices(model, block, pixels, radius) == pixels.labels).mean())


def eta_text(started, done, total):
    """', about 12 s left' from the time since `started` (time.perf_counter) and the share done."""
    if done <= 0 or done >= total:
        return ""
    left = (time.perf_counter() - started) * (total - done) / done
    return f", about {left:.0f} s left" if left < 120 else f", about {left / 60:.1f} min left"


def capped_epochs(epochs, n_train, batch_size, max_steps):
    """Epochs to run so that epochs x batches per epoch stays within max_steps (0 = no cap), at least 1.
    The cost of fit_classifier is then bounded whatever the number of labels."""
    if max_steps <= 0 or n_train <= 0:
        return epochs
    return max(1, min(epochs, max_steps // int(math.ceil(n_train / batch_size))))


def epoch_order(labels, n_syn, balanced, generator):
    """One epoch's sample indices: real samples 0..n-1, synthetic ones n..n+n_syn-1, shuffled. Each real
    sample once, or with `balanced` n real draws with replacement, every class equally likely."""
    import torch

    n_real = len(labels)
    order = torch.randperm(n_real + n_syn, generator=generator)
    if balanced and n_real:
        chance = torch.as_tensor(1.0 / np.bincount(labels)[labels], dtype=torch.float64)
        drawn = torch.multinomial(chance, n_real, replacement=True, generator=generator)
        order = torch.where(order < n_real, drawn[order.clamp(max=n_real - 1)], order)
    return order


def fit_classifier(model, block, train, validation, radius, epochs, batch_size, learning_rate, seed,
                   feedback, synthetic=None, synthetic_weight=0.5, balanced=False, redraw=None):
    """Train in place; returns the per-epoch history [{'epoch', 'loss', 'val_oa'}].

    balanced: each epoch's real pixels are drawn with replacement so that every class is seen equally
    often (class_balanced in TrainConfig); otherwise each real pixel once per epoch.

    synthetic: optional (patches tensor, labels tensor) joined to the real set; their loss counts
    `synthetic_weight` times a real sample's. redraw: optional function epoch -> a fresh synthetic set of the
    same length, used from the second epoch on (new mixup draws every epoch).

    A non-finite loss rolls back to the last good epoch with half the learning rate; the third time it stops
    with Diverged."""
    import torch
    import torch.nn.functional as F

    device = block.device
    generator = torch.Generator().manual_seed(seed)
    real_labels = torch.as_tensor(train.labels, device=device)
    n_real = len(train)
    n_syn = 0 if synthetic is None else len(synthetic[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    history, good_state, failures, lr_scale = [], copy.deepcopy(model.state_dict()), 0, 1.0
    epoch, started = 0, time.perf_counter()
    while epoch < epochs:
        for group in optimiser.param_groups:  # cosine decay by epoch
            group["lr"] = lr_scale * learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        if redraw is not None and epoch > 0:
            synthetic = redraw(epoch)
        model.train()
        order = epoch_order(train.labels, n_syn, balanced, generator)
        total, count, finite = 0.0, 0, True
        for start in range(0, len(order), batch_size):
            feedback.check_cancel()
            idx = order[start:start + batch_size]
            if len(idx) < 2:
                continue
            real_idx = idx[idx < n_real].numpy()
            parts, labels, weights = [], [], []
            if len(real_idx):
                parts.append(gather_patches(block, train.rows[real_idx], train.cols[real_idx], radius))
                labels.append(real_labels[real_idx])
                weights.append(torch.ones(len(real_idx), device=device))
            syn_idx = (idx[idx >= n_real] - n_real).to(device)
            if len(syn_idx):
                parts.append(synthetic[0][syn_idx])
                labels.append(synthetic[1][syn_idx])
                weights.append(torch.full((len(syn_idx),), synthetic_weight, device=device))
            x = random_dihedral(torch.cat(parts), generator)
            y, w = torch.cat(labels), torch.cat(weights)
            loss = (F.cross_entropy(model(x).flatten(1), y, reduction="none") * w).sum() / w.sum()
            if not torch.isfinite(loss):
                finite = False
                break
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(y)
            count += len(y)
        if not finite:
            failures += 1
            if failures >= 3:
                raise Diverged("the classifier's loss became NaN three times")
            model.load_state_dict(good_state)
            optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=1e-4)
            lr_scale *= 0.5
            feedback.warning(f"non-finite loss in epoch {epoch + 1}; restarting it from the last good state "
                             "with half the learning rate")
            continue
        good_state = copy.deepcopy(model.state_dict())
        val_oa = overall_accuracy(model, block, validation, radius)
        history.append(dict(epoch=epoch + 1, loss=total / max(count, 1), val_oa=val_oa))
        epoch += 1
        feedback.progress(100.0 * epoch / epochs)
        if epoch == 1 or epoch % 10 == 0 or epoch == epochs:
            feedback.info(f"epoch {epoch}/{epochs}: loss {history[-1]['loss']:.4f}"
                          + (f", validation OA {val_oa:.1f}%" if val_oa is not None else "")
                          + eta_text(started, epoch, epochs))
    model.eval()
    return history
