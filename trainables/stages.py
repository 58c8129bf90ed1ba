"""What each batch and epoch trains with: the phase (frozen modules, heads whose losses count),
the stage of two-stage training (its image size and batch), and the input pipeline for it.
"""
from __future__ import annotations

import torch

from trainables.data.cache import get_cache
from trainables.data.loaders import InputPipeline
from trainables.models.backbone import set_frozen
from trainables.registry import ConfigError


class Phases:
    """Which modules are frozen and which heads' losses count for a batch, and applying it.

    Two kinds: DualCheXNet's iterative training (Algorithm 1, train.iterative: `model.phases()`
    cycled by batch or epoch), or a model's epoch-sequenced stages (`model.stages()`, each with
    `until_epoch`, None for the last; F-MSML's Local / Local-Fixed strategies). A phase may name
    the head that predicts while it lasts (`predict_head`). The epoch counter ASHA sees is one.
    """

    def __init__(self, cfg: dict, model):
        self.enabled = cfg["train"]["iterative"]
        if self.enabled and not hasattr(model, "phases"):
            raise ConfigError(f"train.iterative is on but model {cfg['model']['name']!r} has no "
                              "training phases; set train.iterative: false")
        self.unit = cfg["train"]["iterative_unit"]
        self.stages = [] if self.enabled else list(getattr(model, "stages", list)())
        for stage in self.stages[:-1]:
            if stage["until_epoch"] >= cfg["train"]["max_epochs"]:
                raise ConfigError(
                    f"model {cfg['model']['name']!r}: stage {stage['name']!r} lasts until epoch "
                    f"{stage['until_epoch']} but train.max_epochs={cfg['train']['max_epochs']}, so "
                    "the next stage never runs; raise train.max_epochs or shorten the stage "
                    "(e.g. model.stage1_epochs)")
        self.list = model.phases() if self.enabled else [{"name": "joint", "frozen": [], "heads": None}]

    def at(self, epoch: int, step: int) -> dict:
        if self.stages:
            return next(s for s in self.stages if s["until_epoch"] is None or epoch < s["until_epoch"])
        if not self.enabled:
            return self.list[0]
        return self.list[(step if self.unit == "batch" else epoch) % len(self.list)]

    @staticmethod
    def apply(model, phase: dict) -> None:
        model.train()
        model.requires_grad_(True)
        for module in phase["frozen"]:
            set_frozen(module, True)
        if "predict_head" in phase:
            model.predict_head = phase["predict_head"]


def stage2_epoch(cfg: dict) -> int | None:
    """First epoch (0-based) of stage 2 of two-stage training (Nugroho 2021), or None.

    One epoch counter runs across both stages, so ASHA's time_attr=epoch sees one trial.
    """
    t = cfg["train"]
    if not t["two_stage"]:
        return None
    n = t["stage1_epochs"]
    if n is None:
        return (t["max_epochs"] + 1) // 2  # max_epochs 1: stage 1 only
    # stage1_epochs >= max_epochs is allowed: a run cut short (or resumed later) in stage 1
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"train.stage1_epochs={n!r} must be a positive integer (epochs before "
                          "stage 2), or null for half of train.max_epochs")
    return n


def for_stage(cfg: dict, stage: int) -> dict:
    """The config stage `stage` trains with: stage 2 doubles the crop and the cached size
    (224 -> 448 as in the paper) and halves the batch (32 -> 16)."""
    if stage == 1:
        return cfg
    d = cfg["data"]
    return {**cfg, "data": {**d, "image_size": 2 * d["image_size"], "resize": 2 * d["resize"],
                            "batch_size": max(1, d["batch_size"] // 2)}}


def split_cache(data_cfg: dict, splits):
    """The cache a trial trains from; the runner prebuilds exactly this one on the driver."""
    return get_cache(splits.train.paths + splits.val.paths, data_cfg["resize"], data_cfg["cache_dir"])


def make_pipeline(cfg: dict, splits, device: torch.device, cpus: float | None = None) -> InputPipeline:
    return InputPipeline(cfg["data"], cfg["train"]["seed"], splits, split_cache(cfg["data"], splits), device, cpus)
