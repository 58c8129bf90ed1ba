"""Multi-label softmax loss, MSML (Ge et al. 2018, eq. 2; PAPERS.md section 2).

For each positive label l of a sample, a softmax of x_l against the sample's negatives only:

    E_i = (1/|Y_i|) sum_{l in Y_i} -log( e^{x_l} / (e^{x_l} + sum_{k in Ybar_i} e^{x_k}) )

Eq. 2 is printed as the mean probability, but the gradient the paper gives (dE/dz = -y/z) is
that of its negative log, so (PAPERS.md decision) this is the negative log. Each term is
softplus(LSE_neg - x_l), with LSE_neg = logsumexp of the negatives, so logits of +-50 stay
finite. A sample with no positive label ("No Finding") contributes 0 and is left out of the
batch mean; a sample with no negative gives 0 (every fraction is 1). Label entries with mask 0
(CheXpert U-Ignore) are neither positive nor negative. Targets >= 0.5 count as positive.
Adding a constant to all of a sample's logits changes nothing, so the MSML head's sigmoid is
not a calibrated probability (F-MSML predicts with its fused head, trainables/models/fmsml.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainables.losses.elementwise import check_inputs


def msml(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean",
         mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample MSML ("none": shape (N,), 0 without positives); "mean" over samples with a positive."""
    if logits.dim() != 2:
        raise ValueError(f"logits {tuple(logits.shape)} must be (batch, labels)")
    check_inputs(logits, targets, mask, reduction)
    logits = logits.float()
    valid = torch.ones_like(logits, dtype=torch.bool) if mask is None else mask > 0
    pos, neg = (targets >= 0.5) & valid, (targets < 0.5) & valid
    # A finite filler instead of -inf: a row without negatives then has LSE_neg ~ -1.7e38 and
    # every term softplus(-huge) = 0 with zero gradient, and no NaN enters the graph.
    filler = torch.finfo(logits.dtype).min / 2
    lse_neg = torch.logsumexp(torch.where(neg, logits, torch.full_like(logits, filler)), dim=1)
    terms = F.softplus(lse_neg[:, None] - logits) * pos
    n_pos = pos.sum(dim=1)
    per_sample = terms.sum(dim=1) / n_pos.clamp(min=1)
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    return per_sample.sum() / (n_pos > 0).sum().clamp(min=1)


class MSML(nn.Module):
    """loss.name: msml (F-MSML gives it to its stream-2 head through `head_losses`)."""

    def forward(self, logits, targets, mask=None):
        return msml(logits, targets, "mean", mask)
