"""Accuracy figures from a confusion matrix: OA, AA, Cohen's kappa, per-class precision (user's
accuracy), recall (producer's accuracy) and F1. Rows are reference classes, columns predictions."""
import numpy as np


def confusion_matrix(reference, predicted, n_classes):
    reference = np.asarray(reference, dtype=np.int64).ravel()
    predicted = np.asarray(predicted, dtype=np.int64).ravel()
    return np.bincount(reference * n_classes + predicted, minlength=n_classes * n_classes) \
        .reshape(n_classes, n_classes)


def summarise(matrix):
    """Dict of oa, aa, kappa (in %, kappa as a fraction) and per-class arrays."""
    matrix = np.asarray(matrix, dtype=np.float64)
    total = matrix.sum()
    if total == 0:
        raise ValueError("no reference pixel to assess")
    diagonal = np.diag(matrix)
    reference_totals = matrix.sum(axis=1)
    predicted_totals = matrix.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(reference_totals > 0, diagonal / reference_totals, np.nan)
        precision = np.where(predicted_totals > 0, diagonal / predicted_totals, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = np.where(reference_totals > 0, f1, np.nan)
    oa = diagonal.sum() / total
    expected = (reference_totals * predicted_totals).sum() / total ** 2
    kappa = (oa - expected) / (1 - expected) if expected < 1 else 1.0
    return dict(oa=100 * oa, aa=100 * np.nanmean(recall), kappa=float(kappa),
                recall=recall, precision=precision, f1=f1, support=reference_totals.astype(int))
