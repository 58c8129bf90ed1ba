"""The training objective: every head's loss, fused by heads.fusion and the head weights."""
from __future__ import annotations

import numpy as np
import torch

from trainables.losses import FUSIONS, build_loss, fuse
from trainables.registry import ConfigError


class Objective:
    """Per-head losses fused by heads.fusion and head weights; a model may give a head its own loss.

    Weights come from heads.w_<head> (missing: 1.0), unless the model maps heads to the config
    keys that weight them (`head_weights`): F-MSML's eq. 5 weights two heads with one
    heads.alpha, {"ce": "alpha", "msml": "alpha", "fce": "beta"}.
    """

    def __init__(self, cfg: dict, model, pos_counts: np.ndarray, labels=None):
        heads = dict(cfg["heads"])
        self.fusion = heads.pop("fusion")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"heads.fusion={self.fusion!r}; choose one of {sorted(FUSIONS)}")
        keys = getattr(model, "head_weights", None) or {h: f"w_{h}" for h in model.heads}
        unknown = sorted(set(heads) - set(keys.values()))
        if unknown:
            raise ConfigError(f"unknown config key(s) {[f'heads.{k}' for k in unknown]}; model "
                              f"{cfg['model']['name']!r} has heads {list(model.heads)}, weighted by "
                              f"{sorted({f'heads.{k}' for k in keys.values()})}, and heads.fusion")
        try:
            self.weights = {h: float(heads.get(k, 1.0)) for h, k in keys.items()}
        except (TypeError, ValueError) as err:
            raise ConfigError(f"head weights must be numbers, got {heads}") from err
        if any(w < 0 for w in self.weights.values()):
            raise ConfigError(f"head weights must be >= 0, got {heads}")
        context = {"pos_counts": pos_counts, "labels": labels}  # for losses that weight by class
        default = build_loss(cfg["loss"], **context)
        own = getattr(model, "head_losses", {})
        self.losses = {h: build_loss(own[h], **context) if h in own else default
                       for h in model.heads}

    def __call__(self, outputs: dict, targets, mask, heads=None) -> torch.Tensor:
        active = heads or tuple(outputs)
        per_head = {h: self.losses[h](outputs[h], targets, mask) for h in active}
        return fuse(per_head, self.fusion, self.weights)
