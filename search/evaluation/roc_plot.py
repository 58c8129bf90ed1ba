"""roc.png: one ROC panel per label, with its AUC, CI and test positives in the panel's title
(red when the label has fewer than 30 positives)."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: a cluster node or CI has no display
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from search.evaluation.scoring import SplitScores  # noqa: E402

COLUMNS = 5


def plot(scores: SplitScores, path, title: str) -> Path:
    n = len(scores.labels)
    cols = min(COLUMNS, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.9 * rows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        label, r = scores.labels[k], scores.table.iloc[k]
        keep = scores.mask[:, k]
        t, s = scores.y_true[keep, k], scores.y_score[keep, k]
        ax.plot([0, 1], [0, 1], color="0.8", lw=1)
        if 0 < t.sum() < len(t):
            fpr, tpr, _ = roc_curve(t, s)
            ax.plot(fpr, tpr, lw=1.5)
            head = f"{label}\nAUC {r['auc']:.3f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}], n+={int(r['positives'])}"
        else:
            head = f"{label}\nno AUC: {int(t.sum())} positives"
        ax.set_title(head, fontsize=8.5, color="tab:red" if r["few_positives"] else "black")
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
        ax.tick_params(labelsize=7)
        if k % cols == 0:
            ax.set_ylabel("true positive rate", fontsize=8)
        if k >= n - cols:
            ax.set_xlabel("false positive rate", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
