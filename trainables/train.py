"""The trainable: one nested config -> model, loss, data -> epochs -> one report per epoch.

`train_fn(config)` is what Ray Tune runs for every paper; `python -m trainables.train --config
FILE.yaml` runs the same `run()` outside Tune (a plain or an exported config), with a local
reporter in place of `tune.report`. Checkpoints hold state dicts only and are loaded with
weights_only=True; a resumed trial continues at the epoch after its checkpoint.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from trainables import metrics as M
from trainables.config import resolve
from trainables.data.cache import get_cache
from trainables.data.dataset import CachedDataset
from trainables.data.sources import load_splits
from trainables.data.transforms import eval_transform, train_transform
from trainables.losses import build_loss, fuse
from trainables.models import build_model
from trainables.models.backbone import set_frozen
from trainables.optim import build_optimizer, build_schedule, step_schedule
from trainables.registry import ConfigError
from trainables.reporting import LocalReporter, TuneReporter


class NonFiniteLoss(FloatingPointError):
    pass


def pick_device(cfg: dict) -> torch.device:
    want = cfg["train"]["device"]
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device='cuda' but no CUDA device is visible to this trial; "
                          "request GPUs with --gpus-per-trial or use train.device='auto'")
    return torch.device("cuda" if want != "cpu" and torch.cuda.is_available() else "cpu")


class Objective:
    """Per-head losses fused by heads.fusion with heads.w_<head>; a model may give a head its own loss."""

    def __init__(self, cfg: dict, model, pos_counts: np.ndarray):
        heads = dict(cfg["heads"])
        self.fusion = heads.pop("fusion")
        self.weights = {k[2:]: float(v) for k, v in heads.items() if k.startswith("w_")}
        unknown = sorted(set(heads) - {f"w_{h}" for h in model.heads})
        if unknown:
            raise ConfigError(f"unknown config key(s) {[f'heads.{k}' for k in unknown]}; model "
                              f"{cfg['model']['name']!r} has heads {list(model.heads)} "
                              f"(weights heads.w_<head>) and heads.fusion")
        if any(w < 0 for w in self.weights.values()):
            raise ConfigError(f"head weights must be >= 0, got {self.weights}")
        default = build_loss(cfg["loss"], pos_counts=pos_counts)
        own = getattr(model, "head_losses", {})
        self.losses = {h: build_loss(own[h], pos_counts=pos_counts) if h in own else default
                       for h in model.heads}

    def __call__(self, outputs: dict, targets, mask, heads=None) -> torch.Tensor:
        active = heads or tuple(outputs)
        per_head = {h: self.losses[h](outputs[h], targets, mask) for h in active}
        return fuse(per_head, self.fusion, self.weights)


class Phases:
    """Iterative training (Algorithm 1): which phase a batch belongs to, and applying it."""

    def __init__(self, cfg: dict, model):
        self.enabled = cfg["train"]["iterative"]
        if self.enabled and not hasattr(model, "phases"):
            raise ConfigError(f"train.iterative is on but model {cfg['model']['name']!r} has no "
                              "training phases; set train.iterative: false")
        self.unit = cfg["train"]["iterative_unit"]
        self.list = model.phases() if self.enabled else [{"name": "joint", "frozen": [], "heads": None}]

    def at(self, epoch: int, step: int) -> dict:
        if not self.enabled:
            return self.list[0]
        return self.list[(step if self.unit == "batch" else epoch) % len(self.list)]

    @staticmethod
    def apply(model, phase: dict) -> None:
        model.train()
        model.requires_grad_(True)
        for module in phase["frozen"]:
            set_frozen(module, True)


def make_loaders(cfg: dict, splits):
    d = cfg["data"]
    cache = get_cache(splits.train.paths + splits.val.paths, d["resize"], d["cache_dir"])
    train_ds = CachedDataset(splits.train, cache, train_transform(
        d["image_size"], d["hflip"], d["rotation"], d["jitter"], d["scale_min"]))
    val_ds = CachedDataset(splits.val, cache, eval_transform(d["image_size"]))
    return train_ds, DataLoader(val_ds, batch_size=d["eval_batch_size"], num_workers=d["num_workers"])


def epoch_loader(cfg: dict, train_ds, epoch: int) -> DataLoader:
    """Order (and subset) depend only on (seed, epoch), so a resumed trial sees what it would have."""
    d, seed = cfg["data"], cfg["train"]["seed"]
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(train_ds), generator=g)
    if d["epoch_images"]:
        order = order[: d["epoch_images"]]
    return DataLoader(Subset(train_ds, order.tolist()), batch_size=d["batch_size"],
                      num_workers=d["num_workers"], drop_last=len(order) > d["batch_size"])


def autocast(device: torch.device, cfg: dict):
    enabled = device.type == "cuda" and cfg["train"]["amp"]
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def train_epoch(model, objective, phases, optimizer, loader, device, cfg, epoch, step):
    total, count, start = 0.0, 0, time.perf_counter()
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    clip = cfg["train"]["grad_clip"]
    for batch, (x, y, mask) in enumerate(loader):
        x = x.to(device, non_blocking=True).to(memory_format=memory_format)
        y, mask = y.to(device), mask.to(device)
        phase = phases.at(epoch, step)
        phases.apply(model, phase)
        with autocast(device, cfg):
            loss = objective(model(x), y, mask, phase["heads"])
        if not torch.isfinite(loss):
            raise NonFiniteLoss(
                f"training loss became {loss.item()} at epoch {epoch + 1}, batch {batch} "
                f"(phase {phase['name']}); lower optim.lr (now {cfg['optim']['lr']}), set "
                "train.grad_clip, or check the loss parameters. The trial stops here instead of "
                "training on NaN.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        total += loss.item() * len(x)
        count += len(x)
        step += 1
    model.train()
    model.requires_grad_(True)
    elapsed = time.perf_counter() - start
    return total / max(count, 1), count / max(elapsed, 1e-9), step


@torch.no_grad()
def evaluate(model, objective, loader, device, cfg, splits) -> dict:
    model.eval()
    scores, loss_sum, n = [], 0.0, 0
    for x, y, mask in loader:
        x, y, mask = x.to(device), y.to(device), mask.to(device)
        with autocast(device, cfg):
            out = model(x)
        loss_sum += objective(out, y, mask).item() * len(x)
        n += len(x)
        scores.append(torch.sigmoid(out[model.predict_head].float()).cpu().numpy())
    y_score = np.concatenate(scores)
    aucs = M.per_label_auc(splits.val.labels, y_score, splits.labels, splits.val.mask)
    out = {"val_loss": loss_sum / max(n, 1),
           "val_auc": M.mean_auc(aucs, splits.eval_labels),
           "val_wauc": M.weighted_auc(splits.val.labels, y_score),
           "val_auc_labels": sum(aucs[k] is not None for k in splits.eval_labels)}
    out.update({f"val_auc/{k}": v for k, v in aucs.items() if v is not None})
    return out


def run(config: dict, reporter) -> dict:
    cfg = resolve(config)
    seed = cfg["train"]["seed"]
    torch.manual_seed(seed)
    np.random.seed(seed)
    if cfg["train"]["threads"]:
        torch.set_num_threads(cfg["train"]["threads"])
    device = pick_device(cfg)

    splits = load_splits(cfg["data"])
    train_ds, val_loader = make_loaders(cfg, splits)
    model = build_model(cfg["model"], num_classes=len(splits.labels)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    objective = Objective(cfg, model, splits.train.positive_counts())
    phases = Phases(cfg, model)
    optimizer = build_optimizer(model, cfg["optim"])
    scheduler = build_schedule(optimizer, cfg["sched"], cfg["train"]["max_epochs"])

    start_epoch, step, last = 0, 0, {}
    state = reporter.restore()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, step = int(state["epoch"]), int(state["step"])

    for epoch in range(start_epoch, cfg["train"]["max_epochs"]):
        torch.manual_seed(seed * 100_003 + epoch)  # augmentation draws, resume-consistent
        train_loss, ips, step = train_epoch(model, objective, phases, optimizer,
                                            epoch_loader(cfg, train_ds, epoch), device, cfg, epoch, step)
        result = evaluate(model, objective, val_loader, device, cfg, splits)
        if not math.isfinite(result["val_loss"]):
            raise NonFiniteLoss(f"validation loss is {result['val_loss']} after epoch {epoch + 1}; "
                                "the model diverged. Lower optim.lr.")
        step_schedule(scheduler, result["val_loss"])
        last = {"epoch": epoch + 1, "train_loss": train_loss, "images_per_s": ips,
                "lr": optimizer.param_groups[0]["lr"], **result}
        reporter.report(last, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "step": step})
    return last


def train_fn(config: dict) -> None:
    """The Ray Tune trainable shared by every search."""
    run(config, TuneReporter())


def main(argv=None) -> None:
    import yaml

    parser = argparse.ArgumentParser(description="Train one cxr-tune config outside Ray Tune.")
    parser.add_argument("--config", required=True, help="YAML: a nested trial config, or a file "
                        "written by search/export.py (its 'config' key is used)")
    parser.add_argument("--out", default="runs/train", help="where checkpoints and metrics go")
    parser.add_argument("--max-epochs", type=int, help="override train.max_epochs")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    args = parser.parse_args(argv)
    doc = yaml.safe_load(Path(args.config).read_text()) or {}
    config = doc["config"] if "config" in doc else doc
    if args.max_epochs:
        config.setdefault("train", {})["max_epochs"] = args.max_epochs
    final = run(config, LocalReporter(args.out, resume=args.resume))
    print(f"done: val_auc {final.get('val_auc', float('nan')):.4f}; checkpoints in {args.out}")


if __name__ == "__main__":
    main()
