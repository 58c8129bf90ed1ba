"""Plain binary cross-entropy over the unmasked label entries: the baseline every paper reports."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from trainables.losses.elementwise import masked_mean


class BCE(nn.Module):
    def forward(self, logits, targets, mask=None):
        per = F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="none")
        return masked_mean(per, mask)
