"""Fitting the spectral kernel head (models/spectral_kernel.py) on the labelled centre spectra.

Kernel ridge regression with one-hot targets and an RBF kernel on the normalised spectra; gamma (relative
to the median squared distance between the support spectra) and the ridge lambda are chosen by the
closed-form leave-one-out error over a small grid (one eigendecomposition of the kernel matrix per gamma),
the softmax temperature by the leave-one-out log-likelihood. numpy only: it is a few hundred to a
thousand pixels, and no scikit-learn in the plugin.
"""
import numpy as np

GAMMAS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # times 1 / median squared distance
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0)
TEMPERATURES = np.geomspace(1e-3, 1.0, 31)
MAX_SUPPORT = 1000  # class-stratified cap: fit O(n^3) and inference O(n) per pixel stay bounded


def cap_support(labels, cap, seed):
    """Indices of at most `cap` samples, class-stratified (each class keeps its share, at least one),
    drawn with a seeded generator; all of them when there are no more than `cap`."""
    n = len(labels)
    if n <= cap:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.maximum(1, np.floor(counts * cap / n)).astype(int)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(keep))


def squared_distances(a, b):
    return np.maximum((a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :], 0.0)


def balanced_error(labels, predicted, n_classes):
    """Mean over the classes present of each class's error rate (a class-balanced LOO error)."""
    errors = [np.mean(predicted[labels == c] != c) for c in range(n_classes) if (labels == c).any()]
    return float(np.mean(errors))


def fit_kernel_head(spectra, labels, n_classes, seed, max_support=MAX_SUPPORT):
    """dict(support (n, bands) float32, dual (n, classes) float32, gamma, ridge, temperature, loo_error)
    from normalised centre spectra (m, bands) and class indices (m,)."""
    keep = cap_support(np.asarray(labels), max_support, seed)
    x = np.asarray(spectra, dtype=np.float64)[keep]
    y = np.asarray(labels, dtype=np.int64)[keep]
    targets = np.eye(n_classes)[y]
    d2 = squared_distances(x, x)
    off = d2[~np.eye(len(x), dtype=bool)]
    scale = float(np.median(off)) if off.size and np.median(off) > 0 else 1.0
    best = None
    for g in GAMMAS:
        gamma = g / scale
        values, vectors = np.linalg.eigh(np.exp(-gamma * d2))
        values = np.maximum(values, 0.0)
        projected = vectors.T @ targets
        for ridge in LAMBDAS:
            shrink = values / (values + ridge)
            fitted = vectors @ (shrink[:, None] * projected)
            leverage = np.minimum((vectors * vectors) @ shrink, 1 - 1e-9)
            loo = (fitted - leverage[:, None] * targets) / (1 - leverage)[:, None]
            key = (balanced_error(y, loo.argmax(1), n_classes), float(((loo - targets) ** 2).mean()))
            if best is None or key < best[0]:
                dual = vectors @ (projected / (values + ridge)[:, None])
                best = (key, gamma, ridge, dual, loo)
    (error, _), gamma, ridge, dual, loo = best
    temperature = min(TEMPERATURES, key=lambda t: loo_nll(loo, y, t))
    return dict(support=x.astype(np.float32), dual=dual.astype(np.float32), gamma=float(gamma),
                ridge=float(ridge), temperature=float(temperature), loo_error=error)


def loo_nll(scores, labels, temperature):
    z = scores / temperature
    z = z - z.max(1, keepdims=True)
    return float(-(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(1))).mean())


def head_module(fitted, radius):
    """The torch module of a fit_kernel_head result."""
    from .torch_modules import torch_module
    return torch_module("spectral_kernel").SpectralKernelHead(fitted["support"], fitted["dual"], fitted["gamma"],
                                                             fitted["temperature"], radius, fitted.get("window", 0))


def centre_spectra(block, pixels, radius, window=0, batch=512):
    """(n, bands) float32 normalised centre spectra of a PixelSet on a halo'd block or PatchStore; with a
    window w, the mean spectrum of the (2w+1) x (2w+1) pixels around each centre (the head's input)."""
    from .sampling import gather_patches

    inner = slice(radius - window, radius + window + 1)
    out = [gather_patches(block, pixels.rows[s:s + batch], pixels.cols[s:s + batch], radius)[:, :, inner, inner]
           .mean((2, 3)).cpu().numpy() for s in range(0, len(pixels), batch)]
    return np.concatenate(out) if out else np.zeros((0, block.shape[0]), np.float32)


def fit_on_pixels(block, pixels, radius, n_classes, seed, max_support=MAX_SUPPORT, window=0):
    """fit_kernel_head on the centre spectra (window: their local means) of (at most max_support,
    class-stratified) training pixels; only the kept pixels are gathered, so the cost is bounded whatever the
    number of labels."""
    from .sampling import PixelSet

    keep = cap_support(pixels.labels, max_support, seed)
    kept = PixelSet(pixels.rows[keep], pixels.cols[keep], pixels.labels[keep])
    fitted = fit_kernel_head(centre_spectra(block, kept, radius, window), kept.labels, n_classes, seed, max_support)
    return dict(fitted, window=window)


def fused(net, fitted, weight):
    """FusedClassifier of a trained network and a fit_kernel_head result (same device as the net)."""
    from .torch_modules import torch_module

    head = head_module(fitted, net.radius).to(next(net.parameters()).device)
    return torch_module("spectral_kernel").FusedClassifier(net, head, weight).eval()
