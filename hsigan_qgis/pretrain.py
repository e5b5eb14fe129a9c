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
from .training import Diverged, eta_text, random_dihedral

MASK_SHARE = 0.5   # share of the bands hidden in each patch


def pretrain_encoder(classifier, block, valid_block, radius, steps, learning_rate, seed, feedback,
                     batch_size=64):
    """Pretrain classifier.spectral/.spatial in place on the pixels where valid_block is True (an (H, W)
    mask of `block`, or the (ids, 1) mask of a PatchStore); returns the history [{'step', 'loss'}].
    The classifier's head is not touched. Deterministic for a seed on one device."""
    import torch
    from models.pretrain_head import SpectrumHead

    rows, cols = np.nonzero(valid_block)
    if len(rows) == 0:
        raise ValueError("no unlabelled pixels to pretrain on")
    device = block.device
    bands = block.shape[0]
    rng = torch.Generator().manual_seed(seed + 5)
    torch.manual_seed(seed + 5)
    width = classifier.head.in_channels
    head = SpectrumHead(width, bands).to(device)
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
        # each patch hides its own random set of bands, in all its pixels
        hidden = torch.rand(len(x), bands, generator=rng).argsort(1)[:, :n_hidden].to(device)
        mask = torch.zeros(len(x), bands, device=device).scatter_(1, hidden, 1.0)
        predicted = head(classifier.features(x * (1 - mask)[:, :, None, None]))[:, :, 0, 0]
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
