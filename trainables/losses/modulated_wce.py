"""DualCheXNet's modulated weighted cross-entropy (Chen et al. 2019, eq. 2).

    L = -(1/|P|) sum_{y=1} (1-p)^lam ln p  -  (1/|N|) sum_{y=0} p^lam ln(1-p)

|P| and |N| count the positive and negative label entries of the batch (entries masked out,
e.g. CheXpert U-Ignore, count in neither). lam = 0 is the |P|/|N|-weighted cross-entropy.
Computed in log space (logsigmoid) so extreme logits stay finite.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def modulated_wce(logits: torch.Tensor, targets: torch.Tensor, lam: float = 0.0,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    if lam < 0:
        raise ValueError(f"lam={lam} must be >= 0 (the paper searches [0, 2])")
    logits = logits.float()
    mask = torch.ones_like(logits) if mask is None else mask.float()
    pos, neg = targets * mask, (1 - targets) * mask
    log_p, log_1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
    pos_term = torch.exp(lam * log_1mp) * log_p * pos
    neg_term = torch.exp(lam * log_p) * log_1mp * neg
    # A batch with no positive (or no negative) entry has nothing to average on that side.
    return -(pos_term.sum() / pos.sum().clamp(min=1) + neg_term.sum() / neg.sum().clamp(min=1))


class ModulatedWCE(nn.Module):
    def __init__(self, lam: float = 0.0):
        super().__init__()
        if not 0 <= lam <= 10:
            raise ValueError(f"loss.lam={lam} is out of range; DualCheXNet searches [0, 2]")
        self.lam = float(lam)

    def forward(self, logits, targets, mask=None):
        return modulated_wce(logits, targets, self.lam, mask)
