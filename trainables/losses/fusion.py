"""Decision-level fusion of several heads' losses (DualCheXNet eq. 3-4).

concat: sum_h w_h L_h (eq. 4; the paper misprints it as L_F three times), avg: mean of the
heads' losses, max: the largest. Only the heads active in the current training phase take
part, so iterative training's eq. 5-6 (w_F L_F + w_D L_D, w_F L_F + w_R L_R) are concat over
two heads.
"""
from __future__ import annotations

import torch


def _concat(losses: dict, weights: dict) -> torch.Tensor:
    return sum(weights.get(h, 1.0) * v for h, v in losses.items())


def _avg(losses: dict, weights: dict) -> torch.Tensor:
    return torch.stack(list(losses.values())).mean()


def _max(losses: dict, weights: dict) -> torch.Tensor:
    return torch.stack(list(losses.values())).max()


FUSIONS = {"concat": _concat, "avg": _avg, "max": _max}


def fuse(losses: dict, mode: str = "concat", weights: dict | None = None) -> torch.Tensor:
    if mode not in FUSIONS:
        raise ValueError(f"heads.fusion={mode!r} is unknown; choose one of {sorted(FUSIONS)}")
    if not losses:
        raise ValueError("no head losses to fuse")
    return FUSIONS[mode](losses, weights or {})
