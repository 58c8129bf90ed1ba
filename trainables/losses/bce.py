"""Plain binary cross-entropy over the unmasked label entries: the baseline every paper reports."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def masked_mean(per_element: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return per_element.mean()
    return (per_element * mask).sum() / mask.sum().clamp(min=1)


class BCE(nn.Module):
    def forward(self, logits, targets, mask=None):
        per = F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none")
        return masked_mean(per, mask)
