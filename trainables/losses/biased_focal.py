"""Biased focal loss (BFL), MLRFNet's eq. 3-4 (Li et al. 2024).

Per label entry, p = sigmoid(logit), p_s = max(p - s, 0):

    BFL = -alpha (1-p)^beta y log p  -  (1-alpha) p_s^beta (1-y) log(1-p)

PAPERS.md section 5 decision: the probability shift s acts only inside the negatives'
modulating factor (log(1-p) keeps the unshifted p), so an easy negative with p <= s adds
nothing while a hard one (p > s) is down-weighted less than by the focal loss. The paper
uses alpha 0.4 (more weight on negatives than Lin et al.'s 0.25) and s 0.2; beta is not
given. With s = 0 this is exactly `focal` with gamma = beta (trainables/losses/focal.py).

Numerics: computed in log space like `focal`. log p_s = log p + log1p(-s/p) for p > s, so
s = 0 reproduces focal bit for bit and p_s^beta never goes through a pow with a tiny base
(whose gradient is NaN for beta in (0, 1)). Entries with p <= s take the constant 0 through
`torch.where` on already finite inputs, so their gradient is 0, not NaN. 0^0 is 1: with
beta = 0 the factor is 1 everywhere (alpha-weighted BCE whatever s is), which is what
`focal` gives at gamma 0 and the limit of p^beta as beta -> 0 for p > 0. Masked entries
(mask 0, CheXpert U-Ignore) contribute nothing; "mean" averages the unmasked entries.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainables.losses.elementwise import check_inputs, reduce

# -log p beyond this means p < e^-80 (< any useful s); clamping keeps exp finite so the
# gradient of the masked-out branch is 0 * finite, never 0 * inf = NaN.
MAX_NEG_LOG_P = 80.0


def _check_params(alpha: float, beta: float, shift: float) -> None:
    if not all(math.isfinite(v) for v in (alpha, beta, shift)):
        raise ValueError(f"alpha, beta, shift must be finite numbers, got {alpha}, {beta}, {shift}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha} must lie in [0, 1] (weight of the positive term; paper 0.4)")
    if beta < 0:
        raise ValueError(f"beta={beta} must be >= 0 (focusing parameter; 0 gives alpha-weighted BCE)")
    if not 0.0 <= shift < 1.0:
        raise ValueError(f"shift={shift} must lie in [0, 1) (probability shift s; paper 0.2)")


def negative_factor(logits: torch.Tensor, beta: float, shift: float) -> torch.Tensor:
    """max(p - s, 0)^beta with 0^0 = 1, finite value and gradient everywhere."""
    log_p = F.logsigmoid(logits)
    if shift == 0.0:
        return torch.exp(beta * log_p)
    ratio = shift * torch.exp((-log_p).clamp(max=MAX_NEG_LOG_P))  # s / p
    active = ratio < 1.0                                          # p > s
    log_ps = log_p + torch.log1p(-torch.where(active, ratio, torch.zeros_like(ratio)))
    off = torch.ones_like(log_p) if beta == 0 else torch.zeros_like(log_p)
    return torch.where(active, torch.exp(beta * log_ps), off)


def biased_focal(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.4, beta: float = 2.0,
                 shift: float = 0.2, reduction: str = "mean",
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    check_inputs(logits, targets, mask, reduction)
    _check_params(alpha, beta, shift)
    logits, targets = logits.float(), targets.float()
    log_p, log_1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
    pos = alpha * torch.exp(beta * log_1mp) * log_p * targets
    neg = (1 - alpha) * negative_factor(logits, beta, shift) * log_1mp * (1 - targets)
    per = -(pos + neg)
    return reduce(per, mask, reduction)


class BiasedFocal(nn.Module):
    """loss.name: biased_focal, loss.alpha, loss.beta, loss.shift; mean over unmasked entries."""

    def __init__(self, alpha: float = 0.4, beta: float = 2.0, shift: float = 0.2):
        super().__init__()
        _check_params(alpha, beta, shift)
        self.alpha, self.beta, self.shift = float(alpha), float(beta), float(shift)

    def forward(self, logits, targets, mask=None):
        return biased_focal(logits, targets, self.alpha, self.beta, self.shift, "mean", mask)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, shift={self.shift}"
