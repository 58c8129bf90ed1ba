"""Optimizers (timm.optim, so SGD, Adam, RAdam+Lookahead "ranger" are one name each) and LR schedules."""
from __future__ import annotations

import torch
from timm.optim import create_optimizer_v2, list_optimizers

from trainables.registry import ConfigError, build

OPTIM_KEYS = {"lr", "weight_decay", "momentum", "betas", "eps"}


def build_optimizer(model: torch.nn.Module, cfg: dict) -> torch.optim.Optimizer:
    cfg = dict(cfg)
    name = cfg.pop("name")
    # timm takes a "lookahead_" prefix on any optimizer name; list_optimizers() omits it
    if name.removeprefix("lookahead_") not in list_optimizers():
        raise ConfigError(f"optim.name={name!r} is not a timm optimizer; e.g. sgd, adam, adamw, "
                          "lookahead_radam (the 'Ranger' of Nugroho 2021)")
    unknown = sorted(set(cfg) - OPTIM_KEYS)
    if unknown:
        raise ConfigError(f"unknown config key(s) {[f'optim.{k}' for k in unknown]}; optim takes {sorted(OPTIM_KEYS)}")
    if not cfg.get("lr", 0) > 0:
        raise ConfigError(f"optim.lr={cfg.get('lr')!r} must be > 0")
    if "momentum" in cfg and not name.endswith("sgd") and name not in ("rmsprop", "lars", "lamb"):
        cfg.pop("momentum")  # defaults carry SGD's momentum; Adam-family optimizers take none
    if "betas" in cfg:
        cfg["betas"] = tuple(cfg["betas"])
    return create_optimizer_v2(model, opt=name, **cfg)


def _plateau(optimizer, max_epochs, factor: float = 0.1, patience: int = 1):
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)


def _step(optimizer, max_epochs, step_size: int = 3, gamma: float = 0.1):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


def _cosine(optimizer, max_epochs):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max_epochs)


def _none(optimizer, max_epochs):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


SCHEDULES = {"plateau": _plateau, "step": _step, "cosine": _cosine, "none": _none}


def build_schedule(optimizer, cfg: dict, max_epochs: int):
    return build(SCHEDULES, cfg, "sched", {"optimizer": optimizer, "max_epochs": max_epochs})


def step_schedule(scheduler, val_loss: float) -> None:
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_loss)
    else:
        scheduler.step()
