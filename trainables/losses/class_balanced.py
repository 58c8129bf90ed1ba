"""Class-balanced weighted focal loss (Nugroho 2021, eq. 3-8; PAPERS.md section 3).

Effective-number weights (eq. 3-6), from the positive count n_k of label k in the training
split the trial uses, computed once per dataset (not per batch):

    alpha_k = (1 - beta) / (1 - beta^n_k)              eq. 3
    w_k+    = scale * C * alpha_k / sum_j alpha_j       eq. 4-5, C = number of labels
    w_k-    = 1 - w_k+                                  eq. 6

PAPERS.md decision: as printed (scale 1) a rare label gets w_k+ > 1 and a negative w_k-; the
authors' released code multiplies by 0.1 after normalising, so `scale` defaults to 0.1 and any
weight outside [0, 1] is refused with an error naming the label and what to change.

Loss (eq. 8 as decided in PAPERS.md: the standard binary focal loss with both terms), per
label entry: w_k(y) * [-alpha (1-p)^gamma y log p - (1-alpha) p^gamma (1-y) log(1-p)], with
w_k(y) = w_k+ if y = 1 else w_k-. The bracket is `trainables.losses.focal.focal`.

beta is configured as `loss.one_minus_beta` (1 - beta): the paper's values (eq. 10) are
1 - 2e-6 ... 1 - 2e-3, i.e. 1 - beta spans four decades and is what a log-scale search samples;
written as beta they differ only in the 4th-6th decimal (0.999998 vs 0.9998), which is easy
to mistype and lossy in float printing. 1 - beta^n is computed as -expm1(n log1p(-(1-beta)))
so tiny 1 - beta keeps its precision.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from trainables.losses.elementwise import check_inputs, reduce
from trainables.losses.focal import _check_params, focal


def _label_name(k: int, labels: Sequence[str] | None) -> str:
    return f"label {k} ({labels[k]})" if labels is not None else f"label index {k}"


def class_balanced_weights(pos_counts, beta: float, scale: float = 0.1,
                           labels: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(w_pos, w_neg), float32 tensors of one weight per label (eq. 3-6, scaled as decided)."""
    counts = np.asarray(pos_counts, dtype=np.float64).reshape(-1)
    if counts.size == 0:
        raise ValueError("pos_counts is empty; pass one positive count per label")
    if labels is not None and len(labels) != counts.size:
        raise ValueError(f"{len(labels)} label names for {counts.size} counts")
    if not 0.0 < beta < 1.0:
        raise ValueError(f"beta={beta} must lie in (0, 1) (the paper uses 1-2e-6 ... 1-2e-3)")
    if not scale > 0:
        raise ValueError(f"scale={scale} must be > 0 (the authors' code uses 0.1)")
    for k in np.flatnonzero(counts <= 0):
        raise ValueError(f"{_label_name(k, labels)} has {int(counts[k])} positives in the training "
                         "split, so its effective-number weight (1-beta)/(1-beta^0) is infinite; "
                         "train on a split where every label has a positive, or use loss.name: focal")
    one_minus_beta = 1.0 - beta
    alpha = one_minus_beta / -np.expm1(counts * np.log1p(-one_minus_beta))
    w_pos = scale * counts.size * alpha / alpha.sum()
    w_neg = 1.0 - w_pos
    for k in np.flatnonzero((w_pos > 1.0) | (w_neg < 0.0)):
        raise ValueError(
            f"class-balanced weight out of [0, 1] for {_label_name(k, labels)}: w_pos={w_pos[k]:.4g}, "
            f"w_neg={w_neg[k]:.4g} ({int(counts[k])} positives, beta=1-{one_minus_beta:.3g}, "
            f"scale={scale}). Lower loss.scale below {scale / w_pos[k]:.4g}, or raise 1-beta "
            "(loss.one_minus_beta) so the rare label's weight shrinks towards the others'")
    return torch.as_tensor(w_pos, dtype=torch.float32), torch.as_tensor(w_neg, dtype=torch.float32)


def weighted_focal(logits: torch.Tensor, targets: torch.Tensor, w_pos: torch.Tensor,
                   w_neg: torch.Tensor, alpha: float = 0.5, gamma: float = 1.0,
                   reduction: str = "mean", mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 8: per-label positive/negative weights times the binary focal loss."""
    check_inputs(logits, targets, mask, reduction)
    num_labels = logits.shape[-1]
    for name, w in (("w_pos", w_pos), ("w_neg", w_neg)):
        if tuple(w.shape) != (num_labels,):
            raise ValueError(f"{name} has shape {tuple(w.shape)}; expected ({num_labels},), one per label")
    per = focal(logits, targets, alpha, gamma, "none")
    targets = targets.float()
    # y * w+ + (1-y) * w-: exactly w+ / w- for 0/1 targets
    weight = targets * w_pos.to(per) + (1 - targets) * w_neg.to(per)
    return reduce(weight * per, mask, reduction)


class ClassBalancedFocal(nn.Module):
    """loss.name: cb_focal; loss.one_minus_beta, loss.alpha, loss.gamma, loss.scale.

    `pos_counts` (and `labels`, for error messages) come from the trainable, which passes the
    training split's positive counts; the weights are computed here once and kept as buffers
    (so they follow the module to the GPU).
    """

    def __init__(self, pos_counts=None, one_minus_beta: float = 2e-4, alpha: float = 0.5,
                 gamma: float = 1.0, scale: float = 0.1, labels: Sequence[str] | None = None):
        super().__init__()
        if pos_counts is None:
            raise ValueError("cb_focal needs the training split's positive counts (pos_counts), "
                             "which the trainable passes; build it through build_loss(..., pos_counts=...)")
        if not 0.0 < one_minus_beta < 1.0:
            raise ValueError(f"loss.one_minus_beta={one_minus_beta} must lie in (0, 1); the paper "
                             "uses 2e-6 ... 2e-3 (beta 0.999998 ... 0.998)")
        _check_params(alpha, gamma)
        w_pos, w_neg = class_balanced_weights(pos_counts, 1.0 - one_minus_beta, scale, labels)
        self.register_buffer("w_pos", w_pos)
        self.register_buffer("w_neg", w_neg)
        self.one_minus_beta, self.alpha, self.gamma, self.scale = (
            float(one_minus_beta), float(alpha), float(gamma), float(scale))

    def forward(self, logits, targets, mask=None):
        return weighted_focal(logits, targets, self.w_pos, self.w_neg, self.alpha, self.gamma, "mean", mask)

    def extra_repr(self) -> str:
        return (f"one_minus_beta={self.one_minus_beta:g}, alpha={self.alpha}, gamma={self.gamma}, "
                f"scale={self.scale}")
