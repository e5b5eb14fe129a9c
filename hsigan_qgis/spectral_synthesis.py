"""Synthetic labelled patches from a class-conditional spectral model, in real neighbourhoods (issue 12, item 3).

Why not the WGAN: its whole-patch fakes are 99.8 % separable from real ones and helped on no scene. Here
only the centre spectrum is made up; the neighbourhood is real. Per class, the centre spectra of the
labelled pixels are modelled as a Gaussian in their own principal components (at most COMPONENTS, from the
few labels a class has), with the residual spread kept per band; a synthetic sample is a draw from that
Gaussian pasted as the centre pixel of the patch of a random labelled pixel of the same class. The
classifier then sees more spectral variety per class than the labels hold, in contexts that occur. A
classifier two-sample test (fidelity.separability) on the centre spectra says how real the draws look.
"""
import numpy as np

from .kernel_head import centre_spectra
from .sampling import gather_patches

COMPONENTS = 5


def class_gaussians(spectra, labels, n_classes):
    """Per class (mean, principal axes scaled by their std, residual std per band); None for an empty class."""
    models = []
    for k in range(n_classes):
        x = spectra[labels == k].astype(np.float64)
        if not len(x):
            models.append(None)
            continue
        mean = x.mean(0)
        centred = x - mean
        if len(x) < 2:
            models.append((mean, np.zeros((0, x.shape[1])), np.zeros(x.shape[1])))
            continue
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        k_use = min(COMPONENTS, len(x) - 1)
        axes = vt[:k_use] * (s[:k_use, None] / np.sqrt(len(x) - 1))
        residual = centred - (centred @ vt[:k_use].T) @ vt[:k_use]
        models.append((mean, axes, residual.std(0)))
    return models


def draw_spectra(model, n, rng):
    mean, axes, residual = model
    return (mean + rng.standard_normal((n, len(axes))) @ axes
            + rng.standard_normal((n, len(mean))) * residual).astype(np.float32)


def synthesize(block, train, radius, n_classes, counts, seed):
    """(patches, labels) torch tensors on block's device: counts[k] synthetic patches of class k, each the
    patch of a random training pixel of class k with its centre spectrum drawn from the class Gaussian."""
    import torch

    rng = np.random.default_rng(seed + 7)
    centres = centre_spectra(block, train, radius)
    models = class_gaussians(centres, train.labels, n_classes)
    patches, labels = [], []
    for k, count in enumerate(counts):
        if not count or models[k] is None:
            continue
        hosts = rng.choice(np.flatnonzero(train.labels == k), int(count))
        x = gather_patches(block, train.rows[hosts], train.cols[hosts], radius)
        x[:, :, radius, radius] = torch.from_numpy(draw_spectra(models[k], int(count), rng)).to(x.device)
        patches.append(x)
        labels.append(torch.full((int(count),), k, dtype=torch.long, device=x.device))
    if not patches:
        return torch.zeros((0, block.shape[0], 2 * radius + 1, 2 * radius + 1)), torch.zeros(0, dtype=torch.long)
    return torch.cat(patches), torch.cat(labels)


def mix_patches(block, train, radius, n_classes, counts, seed, epoch=0):
    """(patches, labels) torch tensors on block's device: counts[k] synthetic patches of class k, each a convex
    mix lam * A + (1 - lam) * B of the patches of two training pixels of class k drawn independently (so
    sometimes one pixel twice), lam uniform in [0.2, 0.8] per patch (within-class mixup: new spectra and
    neighbourhoods between the labelled ones). epoch > 0: another draw of the same sizes (fresh mixes each epoch)."""
    import torch

    rng = np.random.default_rng(seed + 11 if not epoch else [seed + 11, epoch])
    patches, labels = [], []
    for k, count in enumerate(counts):
        members = np.flatnonzero(train.labels == k)
        if not count or len(members) < 2:
            continue
        a, b = (rng.choice(members, int(count)) for _ in range(2))
        lam = torch.from_numpy(rng.uniform(0.2, 0.8, int(count)).astype(np.float32)).to(block.device)[:, None, None, None]
        x = lam * gather_patches(block, train.rows[a], train.cols[a], radius) + \
            (1 - lam) * gather_patches(block, train.rows[b], train.cols[b], radius)
        patches.append(x)
        labels.append(torch.full((int(count),), k, dtype=torch.long, device=x.device))
    if not patches:
        return torch.zeros((0, block.shape[0], 2 * radius + 1, 2 * radius + 1)), torch.zeros(0, dtype=torch.long)
    return torch.cat(patches), torch.cat(labels)


def centre_separability(block, train, synthetic, seed):
    """Classifier two-sample test (fidelity.separability, %) of real training centre spectra against the
    synthetic ones: 50 is indistinguishable."""
    from .fidelity import separability

    radius = synthetic[0].shape[-1] // 2
    real = centre_spectra(block, train, radius)
    fake = synthetic[0][:, :, radius, radius].cpu().numpy()
    return separability(real.astype(np.float64), fake.astype(np.float64), seed)
