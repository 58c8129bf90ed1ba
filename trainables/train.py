"""The trainable: one nested config -> model, loss, data -> epochs -> one report per epoch.

`train_fn(config)` is what Ray Tune runs for every paper; `python -m trainables.train --config
FILE.yaml` runs the same `run()` outside Tune (a plain or an exported config), with a local
reporter in place of `tune.report`. Checkpoints hold state dicts only and are loaded with
weights_only=True; a resumed trial continues at the epoch after its checkpoint.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from trainables import metrics as M
from trainables.config import resolve
from trainables.data import DataError
from trainables.data.cache import get_cache
from trainables.data.loaders import InputPipeline
from trainables.data.sources import load_splits
from trainables.losses import FUSIONS, build_loss, fuse
from trainables.models import build_model
from trainables.models.backbone import set_frozen
from trainables.optim import build_optimizer, build_schedule, step_schedule
from trainables.errors import Parser, UserError, at_least, cli, one_line
from trainables.registry import ConfigError
from trainables.reporting import LocalReporter, TuneReporter


class NonFiniteLoss(UserError, FloatingPointError):
    """The loss diverged: deterministic for a config and seed, so never worth a retry."""


def pick_device(cfg: dict) -> torch.device:
    want = cfg["train"]["device"]
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device='cuda' but no CUDA device is visible to this trial; "
                          "request GPUs with --gpus-per-trial or use train.device='auto'")
    return torch.device("cuda" if want != "cpu" and torch.cuda.is_available() else "cpu")


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


def split_cache(data_cfg: dict, splits):
    """The cache a trial trains from; the runner prebuilds exactly this one on the driver."""
    return get_cache(splits.train.paths + splits.val.paths, data_cfg["resize"], data_cfg["cache_dir"])


def make_pipeline(cfg: dict, splits, device: torch.device, cpus: float | None = None) -> InputPipeline:
    return InputPipeline(cfg["data"], cfg["train"]["seed"], splits, split_cache(cfg["data"], splits), device, cpus)


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


def _better(auc: float, best: dict | None) -> bool:
    # a NaN val_auc (no label with both classes) never replaces a real one
    return best is None or (math.isfinite(auc) and not best["val_auc"] >= auc)


def autocast(device: torch.device, cfg: dict):
    # bf16 needs Ampere or newer; on older GPUs (T4, V100) it is emulated or refused: run fp32 there.
    enabled = device.type == "cuda" and cfg["train"]["amp"] and torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _check_finite(total: torch.Tensor, epoch: int, first: int, last: int, phase: dict, cfg: dict) -> None:
    # `total` sums every batch's loss, so one NaN or inf batch leaves it non-finite.
    if not torch.isfinite(total):
        where = f"batch {last}" if first == last else f"batches {first}-{last}"
        raise NonFiniteLoss(
            f"training loss became {total.item()} at epoch {epoch + 1}, {where} "
            f"(phase {phase['name']}); lower optim.lr (now {cfg['optim']['lr']}), set "
            "train.grad_clip, or check the loss parameters. The trial stops here instead of "
            "training on NaN.")


def train_epoch(model, objective, phases, optimizer, batches, device, cfg, epoch, step):
    """One pass over `batches` of (x, y, mask), already on `device` (InputPipeline). The loss
    stays there: the host waits for the GPU only every train.check_every steps, to check that
    it is finite, and at the end."""
    total, count, start = torch.zeros((), device=device), 0, time.perf_counter()
    clip, every = cfg["train"]["grad_clip"], cfg["train"]["check_every"]
    checked, last = 0, -1
    for last, (x, y, mask) in enumerate(batches):
        phase = phases.at(epoch, step)
        phases.apply(model, phase)
        with autocast(device, cfg):
            loss = objective(model(x), y, mask, phase["heads"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        total += loss.detach().float() * len(x)
        count += len(x)
        step += 1
        if (last + 1) % every == 0:
            _check_finite(total, epoch, checked, last, phase, cfg)
            checked = last + 1
    if last >= checked:
        _check_finite(total, epoch, checked, last, phase, cfg)
    mean = total.item() / max(count, 1)
    model.train()
    model.requires_grad_(True)
    elapsed = time.perf_counter() - start
    return mean, count / max(elapsed, 1e-9), step


@torch.no_grad()
def evaluate(model, objective, batches, device, cfg, splits) -> dict:
    model.eval()
    scores, loss_sum, n = [], torch.zeros((), device=device), 0
    for x, y, mask in batches:  # already on the device (InputPipeline)
        with autocast(device, cfg):
            out = model(x)
        loss_sum += objective(out, y, mask).float() * len(x)
        n += len(x)
        scores.append(torch.sigmoid(out[model.predict_head].float()))
    y_score = torch.cat(scores).cpu().numpy()  # one transfer for the whole split
    aucs = M.per_label_auc(splits.val.labels, y_score, splits.labels, splits.val.mask)
    out = {"val_loss": loss_sum.item() / max(n, 1),
           "val_auc": M.mean_auc(aucs, splits.eval_labels),
           "val_wauc": M.weighted_auc(splits.val.labels, y_score, splits.val.mask),
           "val_auc_labels": sum(aucs[k] is not None for k in splits.eval_labels)}
    out.update({f"val_auc/{k}": v for k, v in aucs.items() if v is not None})
    return out


def run(config: dict, reporter) -> dict:
    """Train epoch by epoch, one report (metrics + checkpoint) per epoch.

    train.two_stage: epochs [0, stage2) train at data.image_size; at epoch stage2 the model
    takes stage 1's best-val_auc weights (kept in the checkpoint as `stage1_best`, so a trial
    resumed at the switch still has them), a fresh optimizer and schedule, and the 2x data of
    `for_stage`. A checkpoint from stage 2 resumes in stage 2.
    """
    cfg = resolve(config)
    seed = cfg["train"]["seed"]
    torch.manual_seed(seed)
    np.random.seed(seed)
    if cfg["train"]["threads"]:
        torch.set_num_threads(cfg["train"]["threads"])
    device = pick_device(cfg)
    max_epochs, stage2 = cfg["train"]["max_epochs"], stage2_epoch(cfg)

    splits = load_splits(cfg["data"])
    model = build_model(cfg["model"], num_classes=len(splits.labels)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    objective = Objective(cfg, model, splits.train.positive_counts(), splits.labels)
    phases = Phases(cfg, model)

    start_epoch, step, last, best = 0, 0, {}, None
    state = reporter.restore()
    if state is not None:
        start_epoch, step = int(state["epoch"]), int(state["step"])
        best = state.get("stage1_best")
    stage = 2 if stage2 is not None and start_epoch > stage2 else 1

    def fresh_optimizer():
        stage_len = max_epochs if stage2 is None else (stage2 if stage == 1 else max_epochs - stage2)
        opt = build_optimizer(model, cfg["optim"])
        return opt, build_schedule(opt, cfg["sched"], stage_len)

    optimizer, scheduler = fresh_optimizer()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    stage_cfg = for_stage(cfg, stage)
    # a reporter that cannot say how many CPUs the trial has counts as one: no loader workers
    cpus = reporter.cpus() if hasattr(reporter, "cpus") else None
    pipeline = make_pipeline(stage_cfg, splits, device, cpus)

    for epoch in range(start_epoch, max_epochs):
        if epoch == stage2:  # stage 2: best stage-1 weights, fresh optimizer, 2x images
            stage, stage_cfg = 2, for_stage(cfg, 2)
            if best is not None:
                model.load_state_dict(best["model"])
            best = None
            optimizer, scheduler = fresh_optimizer()
            pipeline = make_pipeline(stage_cfg, splits, device, cpus)
        torch.manual_seed(seed * 100_003 + epoch)  # device augmentation draws, resume-consistent
        train_loss, ips, step = train_epoch(model, objective, phases, optimizer,
                                            pipeline.train_batches(epoch), device, cfg, epoch, step)
        result = evaluate(model, objective, pipeline.val_batches(), device, cfg, splits)
        if not math.isfinite(result["val_loss"]):
            raise NonFiniteLoss(f"validation loss is {result['val_loss']} after epoch {epoch + 1}; "
                                "the model diverged. Lower optim.lr.")
        step_schedule(scheduler, result["val_loss"])
        # Ray's trial table shows the first four metrics of a result: the headline ones go first.
        last = {"epoch": epoch + 1, "val_auc": result["val_auc"], "val_loss": result["val_loss"],
                "train_loss": train_loss, "images_per_s": ips, "lr": optimizer.param_groups[0]["lr"],
                "image_size": stage_cfg["data"]["image_size"], **result}
        checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "step": step}
        if stage2 is not None and stage == 1:
            if _better(result["val_auc"], best):
                best = {"model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
                        "val_auc": result["val_auc"]}
            checkpoint["stage1_best"] = best
        reporter.report(last, checkpoint)
    return last


# A retry of the same config fails the same way. (Missing ImageNet weights are not here: a
# download can fail on one node and work on the next.)
DETERMINISTIC = (ConfigError, DataError, NonFiniteLoss)


def train_fn(config: dict) -> None:
    """The Ray Tune trainable shared by every search."""
    reporter = TuneReporter()
    try:
        run(config, reporter)
    except DETERMINISTIC as err:
        reporter.fail(f"{type(err).__name__}: {one_line(err)}")
        raise


def read_config_doc(path) -> dict:
    """A YAML file as a mapping: a nested trial config, or a file search/export.py wrote."""
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} not found; pass a YAML trial config or an exported one")
    try:
        doc = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file} is not valid YAML ({one_line(err)}); fix the file or re-export it") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise ConfigError(f"{file} holds a {type(doc).__name__}, not a mapping of config sections "
                          "(model, loss, heads, optim, sched, data, train)")
    return doc


def config_of(doc: dict, path) -> dict:
    """The nested trial config of a YAML mapping (an exported one keeps it under 'config')."""
    config = doc.get("config", doc)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: 'config' holds a {type(config).__name__}, not a mapping of config sections "
                          "(model, loss, heads, optim, sched, data, train)")
    return config


@cli
def main(argv=None) -> None:
    parser = Parser(description="Train one cxr-tune config outside Ray Tune.")
    parser.add_argument("--config", required=True, help="YAML: a nested trial config, or a file "
                        "written by search/export.py (its 'config' key is used)")
    parser.add_argument("--out", default="runs/train", help="where checkpoints and metrics go")
    parser.add_argument("--max-epochs", type=at_least(1), help="override train.max_epochs")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    args = parser.parse_args(argv)
    config = config_of(read_config_doc(args.config), args.config)
    if args.max_epochs:
        config.setdefault("train", {})["max_epochs"] = args.max_epochs
    final = run(config, LocalReporter(args.out, resume=args.resume))
    print(f"done: val_auc {final.get('val_auc', float('nan')):.4f}; checkpoints in {args.out}")


if __name__ == "__main__":
    main()
