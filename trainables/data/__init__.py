"""Dataset layer: published on-disk formats in, `Splits` of image paths and label matrices out.

Every reader returns the same `Splits` so the trainable never needs to know which dataset it
is training on. Labels are float32 0/1 matrices; `mask` is 0 where a label entry must not
reach the loss (CheXpert's U-Ignore), 1 elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trainables.errors import UserError

NIH_LABELS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)


class DataError(UserError, ValueError):
    """Raised for a dataset that is not as published; the message names the file and the fix."""


def first_few(items, n: int = 5) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


@dataclass
class Split:
    paths: list[str]
    labels: np.ndarray
    mask: np.ndarray
    # Kept only to prove patient-disjointness; never logged anywhere.
    patients: np.ndarray

    def __post_init__(self):
        n = len(self.paths)
        if self.labels.shape[0] != n or self.mask.shape != self.labels.shape or len(self.patients) != n:
            raise ValueError(
                f"Split arrays disagree: {n} paths, labels {self.labels.shape}, "
                f"mask {self.mask.shape}, {len(self.patients)} patient ids")

    def __len__(self) -> int:
        return len(self.paths)

    def positive_counts(self) -> np.ndarray:
        return (self.labels * self.mask).sum(axis=0).astype(np.int64)


@dataclass
class Splits:
    name: str
    root: str
    labels: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    # Labels the headline val_auc averages over (CheXpert's 5 competition observations).
    eval_labels: tuple[str, ...] = field(default=())
    description: str = ""

    def __post_init__(self):
        if not self.eval_labels:
            self.eval_labels = tuple(self.labels)
