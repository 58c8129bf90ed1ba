"""Test-split scores -> the evaluation table: per-label AUC with patient-level 95% CIs, the mean
and W-AUC with theirs, and each label's test positives (flagged below 30: a noisy AUC).

Point estimates are the trainable's own (trainables/metrics.py, scikit-learn underneath): the
mean over the split's eval labels (CheXpert: the 5 competition observations) and W-AUC over
all labels, as `val_auc` and `val_wauc` are computed. Intervals: bootstrap.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from search.evaluation import bootstrap as B
from trainables import metrics as M

FEW_POSITIVES = 30
MEAN, WAUC = "mean", "W-AUC"


@dataclass
class SplitScores:
    table: pd.DataFrame  # index: eval labels, then MEAN and WAUC
    method: str          # how the intervals were computed, in words
    labels: tuple        # the eval labels, in order
    y_true: np.ndarray   # (images, eval labels), for the ROC curves
    y_score: np.ndarray
    mask: np.ndarray
    images: int
    patients: int

    @property
    def mean(self) -> float:
        return float(self.table.loc[MEAN, "auc"])


def score_split(split, y_score: np.ndarray, labels, eval_labels, resamples: int = 1000,
                seed: int = 0) -> SplitScores:
    """`split`: a trainables.data.Split (labels, mask, patients); `y_score`: (images, labels)."""
    y_true, mask = split.labels, split.mask.astype(bool)
    aucs = M.per_label_auc(y_true, y_score, labels, mask)
    draws, positives = B.resampled_aucs(y_true, y_score, split.patients, mask, n=resamples, seed=seed)
    cols = [labels.index(k) for k in eval_labels]
    per_label = B.intervals(draws[:, cols])
    rows = []
    for k, label in enumerate(eval_labels):
        t = y_true[mask[:, cols[k]], cols[k]]
        rows.append({"label": label, "auc": aucs[label], "ci_low": per_label[k].low, "ci_high": per_label[k].high,
                     "positives": int(t.sum()), "negatives": int(len(t) - t.sum()),
                     "few_positives": bool(t.sum() < FEW_POSITIVES), "resamples_without_both_classes": per_label[k].dropped})
    for name, point, resampled in (
            (MEAN, M.mean_auc(aucs, eval_labels), B.mean_over(draws, cols)),
            (WAUC, M.weighted_auc(y_true, y_score, mask), B.weighted_over(draws, positives))):
        ci = B.intervals(resampled[:, None])[0]
        rows.append({"label": name, "auc": point, "ci_low": ci.low, "ci_high": ci.high,
                     "positives": None, "negatives": None, "few_positives": False, "resamples_without_both_classes": ci.dropped})
    table = pd.DataFrame(rows).set_index("label")
    table[["positives", "negatives"]] = table[["positives", "negatives"]].astype("Int64")
    return SplitScores(table=table, method=B.METHOD.format(n=resamples, seed=seed), labels=tuple(eval_labels),
                      y_true=y_true[:, cols], y_score=y_score[:, cols], mask=mask[:, cols],
                      images=len(y_true), patients=len(np.unique(split.patients)))
