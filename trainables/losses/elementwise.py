"""What every per-label-entry loss shares: input checks and the masked reductions.

A mask (CheXpert U-Ignore) zeroes entries out; "mean" averages over the unmasked entries only,
"sum" sums them, "none" returns the per-entry tensor with masked entries at 0.
"""
from __future__ import annotations

import torch

REDUCTIONS = ("none", "sum", "mean")


def masked_mean(per_element: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return per_element.mean()
    return (per_element * mask).sum() / mask.sum().clamp(min=1)


def check_inputs(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> None:
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ in shape")
    if mask is not None and mask.shape != logits.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must have the logits' shape {tuple(logits.shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is unknown; choose one of {list(REDUCTIONS)}")


def reduce(per: torch.Tensor, mask: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if mask is not None:
        mask = mask.to(per.dtype)
        if reduction == "mean":
            return masked_mean(per, mask)
        per = per * mask
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.mean()
