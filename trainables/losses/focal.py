"""Binary focal loss, AM_DenseNet's eq. 4 (Zhao et al. 2021, after Lin et al. 2017).

Per label entry, p = sigmoid(logit):

    FL = -alpha (1-p)^gamma y log p  -  (1-alpha) p^gamma (1-y) log(1-p)

The paper gives no alpha or gamma (they are its search space; Lin et al.'s defaults are
alpha 0.25, gamma 2). gamma = 0 is alpha-weighted BCE; alpha 0.5, gamma 0 is half of BCE.
For 0/1 targets this equals `torchvision.ops.sigmoid_focal_loss`, but it is computed in log
space ((1-p)^gamma = exp(gamma logsigmoid(-x))): torchvision's (1-p_t)**gamma has a NaN
gradient for 0 < gamma < 1 once p_t rounds to 1 (logit +-17 in float32), and gamma in (0, 1)
is inside the searched range. Masked entries (mask 0, e.g. CheXpert U-Ignore) contribute
nothing; "mean" averages over the unmasked entries. `focal` is also the building block of the
class-balanced weighted focal loss (Nugroho 2021), which weights `reduction="none"` output.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainables.losses.elementwise import check_inputs, reduce

def _check_params(alpha: float, gamma: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha} must lie in [0, 1] (weight of the positive term)")
    if gamma < 0:
        raise ValueError(f"gamma={gamma} must be >= 0 (gamma 0 is alpha-weighted BCE)")


def focal(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0,
          reduction: str = "mean", mask: torch.Tensor | None = None) -> torch.Tensor:
    check_inputs(logits, targets, mask, reduction)
    _check_params(alpha, gamma)
    logits, targets = logits.float(), targets.float()
    log_p, log_1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
    pos = alpha * torch.exp(gamma * log_1mp) * log_p * targets
    neg = (1 - alpha) * torch.exp(gamma * log_p) * log_1mp * (1 - targets)
    per = -(pos + neg)
    return reduce(per, mask, reduction)


class Focal(nn.Module):
    """loss.name: focal, loss.alpha, loss.gamma; mean over the unmasked label entries."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0):
        super().__init__()
        _check_params(alpha, gamma)
        self.alpha, self.gamma = float(alpha), float(gamma)

    def forward(self, logits, targets, mask=None):
        return focal(logits, targets, self.alpha, self.gamma, "mean", mask)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}"
