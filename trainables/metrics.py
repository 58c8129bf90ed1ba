"""Per-label ROC AUC and the headline means (scikit-learn underneath).

`val_auc` is the mean over labels with both classes present among the unmasked entries of
the split; labels without positives (or without negatives) are reported as skipped and
never turn the mean into NaN. `weighted_auc` is Ge et al.'s W-AUC: each label's AUC weighted
by its positive count (scikit-learn's average="weighted", with masked entries left out).
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def per_label_auc(y_true: np.ndarray, y_score: np.ndarray, labels, mask: np.ndarray | None = None) -> dict:
    """{label: AUC or None}; None where the label lacks positives or negatives."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    if y_true.shape != y_score.shape or y_true.ndim != 2 or y_true.shape[1] != len(labels):
        raise ValueError(f"y_true {y_true.shape} and y_score {y_score.shape} must both be "
                         f"(n_samples, {len(labels)})")
    mask = np.ones_like(y_true, dtype=bool) if mask is None else np.asarray(mask).astype(bool)
    out = {}
    for k, label in enumerate(labels):
        t, s = y_true[mask[:, k], k], y_score[mask[:, k], k]
        out[label] = float(roc_auc_score(t, s)) if 0 < t.sum() < len(t) else None
    return out


def mean_auc(aucs: dict, over=None) -> float:
    """Mean over `over` (default all) labels whose AUC exists; NaN only if none exists."""
    values = [aucs[k] for k in (over or aucs) if aucs.get(k) is not None]
    return float(np.mean(values)) if values else float("nan")


def weighted_auc(y_true: np.ndarray, y_score: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Each label's AUC over its unmasked entries, weighted by its unmasked positive count."""
    y_true = np.asarray(y_true)
    aucs = per_label_auc(y_true, y_score, range(y_true.shape[1]), mask)
    mask = np.ones_like(y_true, dtype=bool) if mask is None else np.asarray(mask).astype(bool)
    pos = (y_true * mask).sum(axis=0)
    keep = [k for k, v in aucs.items() if v is not None]
    if not keep:
        return float("nan")
    return float(np.average([aucs[k] for k in keep], weights=pos[keep]))


def skipped_labels(aucs: dict) -> list[str]:
    return [k for k, v in aucs.items() if v is None]
