"""Scene self-supervised pretraining (PRETRAIN_STEPS): masked spectral reconstruction on unlabelled pixels.

Before the classifier sees a label, its encoder (SpectralSpatialNet.features: the spectral 1x1 layers and
the spatial 3x3 layers) learns the scene itself: in every patch of unlabelled pixels a random MASK_SHARE of
the bands is set to 0 (the band mean after normalisation) in all of the patch's pixels, and a small head
(models/pretrain_head.py) must give the centre pixel's full spectrum back from what is left (mean squared
error on the hidden bands, in the spirit of masked spectral modelling, e.g. FactoFormer, TGRS 2024). The
head is then dropped and the classifier fine-tuned on the labels as without pretraining.

The unlabelled pixels are those the semi-supervised GAN uses: the scene sample of training_patches.py (a
bounded sample of the raster; in the benchmark, every scene pixel outside the draw). The cost is fixed by
the step count, one classifier-sized forward/backward pass of BATCH patches a step, whatever the labels.
"""
import math
import time

import numpy as np

from .sampling import gather_patches
from .torch_modules import torch_module
from .training import Diverged, eta_text, random_dihedral

MASK_SHARE = 0.5   # share of the bands hidden in each patch
# What is hidden: 'bands' (MASK_SHARE of the bands in every pixel of the patch: the spectrum from the other
# bands) or 'centre' (every band of the centre pixel: its spectrum from the neighbourhood, spatial inpainting).
# 'contrast': two views of each patch (another flip/rotation, its own hidden bands, noise) must be told
# apart from the other patches of the batch (SimCLR's NT-Xent loss, temperature TEMPERATURE).
MODES = ("bands", "centre", "contrast")
TEMPERATURE = 0.2
NOISE = 0.1        # std of the noise added to each contrastive view (normalised units)


def pretrain_encoder(classifier, block, valid_block, radius, steps, learning_rate, seed, feedback,
                     batch_size=64, mode="bands"):
    """Pretrain classifier.spectral/.spatial in place on the pixels where valid_block is True (an (H, W)
    mask of `block`, or the (ids, 1) mask of a PatchStore); returns the history [{'step', 'loss'}].
    The classifier's head is not touched. Deterministic for a seed on one device."""
    import torch
    SpectrumHead = torch_module("pretrain_head").SpectrumHead

    rows, cols = np.nonzero(valid_block)
    if len(rows) == 0:
        raise ValueError("no unlabelled pixels to pretrain on")
    device = block.device
    bands = block.shape[0]
    rng = torch.Generator().manual_seed(seed + 5)
    torch.manual_seed(seed + 5)
    width = classifier.head.in_channels
    head = SpectrumHead(width, 64 if mode == "contrast" else bands).to(device)  # contrast: a projection
    encoder = [p for name, p in classifier.named_parameters() if not name.startswith("head.")]
    optimiser = torch.optim.Adam(encoder + list(head.parameters()), lr=learning_rate, weight_decay=1e-4)
    n_hidden = max(1, int(round(MASK_SHARE * bands)))
    history, started = [], time.perf_counter()
    classifier.train()
    head.train()
    for step in range(steps):
        feedback.check_cancel()
        for group in optimiser.param_groups:  # cosine decay
            group["lr"] = learning_rate * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, len(rows), (batch_size,), generator=rng).numpy()
        x = random_dihedral(gather_patches(block, rows[idx], cols[idx], radius), rng)
        target = x[:, :, radius, radius]
        if mode == "contrast":
            loss = _contrastive_loss(classifier, head, block, rows[idx], cols[idx], radius, n_hidden, rng)
        elif mode == "centre":  # the centre pixel hidden whole; the error on all its bands
            mask = torch.ones(len(x), bands, device=device)
            keep = torch.ones_like(x[:1, :1])
            keep[..., radius, radius] = 0
            masked = x * keep
        else:  # each patch hides its own random set of bands, in all its pixels
            hidden = torch.rand(len(x), bands, generator=rng).argsort(1)[:, :n_hidden].to(device)
            mask = torch.zeros(len(x), bands, device=device).scatter_(1, hidden, 1.0)
            masked = x * (1 - mask)[:, :, None, None]
        if mode != "contrast":
            predicted = head(classifier.features(masked))[:, :, 0, 0]
            loss = (((predicted - target) ** 2) * mask).sum() / mask.sum()
        if not torch.isfinite(loss):
            raise Diverged(f"the pretraining loss became non-finite at step {step + 1}")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if step % 10 == 0 or step == steps - 1:
            history.append(dict(step=step + 1, loss=float(loss.detach())))
        feedback.progress(100.0 * (step + 1) / steps)
        if (step + 1) % max(1, steps // 5) == 0:
            feedback.info(f"pretraining step {step + 1}/{steps}: masked-band error {float(loss.detach()):.4f}"
                          + eta_text(started, step + 1, steps))
    classifier.eval()
    return history


def _view(x, n_hidden, rng):
    """A random flip/rotation of the batch, each patch with its own hidden bands, plus noise."""
    import torch

    x = random_dihedral(x, rng)
    n, bands = x.shape[:2]
    hidden = torch.rand(n, bands, generator=rng).argsort(1)[:, :n_hidden].to(x.device)
    keep = 1 - torch.zeros(n, bands, device=x.device).scatter_(1, hidden, 1.0)
    return x * keep[:, :, None, None] + NOISE * torch.randn(x.shape, generator=rng).to(x.device)


def _contrastive_loss(classifier, head, block, rows, cols, radius, n_hidden, rng):
    import torch
    import torch.nn.functional as F

    x = gather_patches(block, rows, cols, radius)
    n = len(x)
    z = head(classifier.features(torch.cat([_view(x, n_hidden, rng), _view(x, n_hidden, rng)])))
    z = F.normalize(z.flatten(1), dim=1)
    similarity = z @ z.T / TEMPERATURE
    similarity.fill_diagonal_(float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(similarity, partner)
