"""How faithful synthetic samples are to the real ones (hsigan:augment's report and metadata).

Fidelity (per class, on the centre-pixel spectra): the spectral angle between the real and synthetic
mean spectra (0 deg = same shape), and the cross-validated accuracy of an L2-regularised logistic
regression told to separate real from synthetic samples (50% = cannot tell them apart; 100% = trivially
separable), fed the centre spectrum and the patch's per-band spatial standard deviation.
"""
import numpy as np


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
