"""Loss families, one file each, chosen by name from the trial config (`loss.name`).

Every loss module is called as loss(logits, targets, mask) -> scalar, mask being 0 for label
entries that must not count (CheXpert U-Ignore).
"""
from __future__ import annotations

from trainables.losses.bce import BCE
from trainables.losses.class_balanced import ClassBalancedFocal, class_balanced_weights, weighted_focal
from trainables.losses.biased_focal import BiasedFocal, biased_focal
from trainables.losses.focal import Focal, focal
from trainables.losses.fusion import FUSIONS, fuse
from trainables.losses.modulated_wce import ModulatedWCE, modulated_wce
from trainables.losses.msml import MSML, msml
from trainables.registry import build

LOSSES = {
    "bce": BCE,
    "cb_focal": ClassBalancedFocal,
    "biased_focal": BiasedFocal,
    "modulated_wce": ModulatedWCE,
    "focal": Focal,
    "msml": MSML,
}


def build_loss(cfg: dict, **context):
    """cfg = {"name": ..., **kwargs}; context (e.g. pos_counts) goes to factories that take it."""
    return build(LOSSES, cfg, "loss", context)


__all__ = ["LOSSES", "FUSIONS", "build_loss", "fuse", "modulated_wce", "ModulatedWCE", "BCE",
           "focal", "Focal", "class_balanced_weights", "weighted_focal", "ClassBalancedFocal",
           "biased_focal", "BiasedFocal", "msml", "MSML"]
