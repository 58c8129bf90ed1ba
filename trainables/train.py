"""The trainable: one nested config -> model, loss, data -> epochs -> one report per epoch.

`train_fn(config)` is what Ray Tune runs for every paper; `python -m trainables.train --config
FILE.yaml` runs the same `run()` outside Tune (a plain or an exported config), with a local
reporter in place of `tune.report`. Checkpoints hold state dicts only and are loaded with
weights_only=True; a resumed trial continues at the epoch after its checkpoint.

The objective is in objective.py, the phases and the two stages in stages.py, where metrics and
checkpoints go in checkpoints.py.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from trainables import metrics as M
from trainables.checkpoints import LocalReporter, TuneReporter
from trainables.config import config_of, read_config_doc, resolve
from trainables.data import DataError, fingerprint
from trainables.data.sources import load_splits
from trainables.devices import autocast, pick_device
from trainables.errors import Parser, UserError, at_least, cli, one_line
from trainables.models import build_model
from trainables.objective import Objective
from trainables.optim import build_optimizer, build_schedule, step_schedule
from trainables.registry import ConfigError
from trainables.stages import Phases, for_stage, make_pipeline, stage2_epoch
from trainables.system_metrics import SystemSampler, gpu_peak


class NonFiniteLoss(UserError, FloatingPointError):
    """The loss diverged: deterministic for a config and seed, so never worth a retry."""


def _better(auc: float, best: dict | None) -> bool:
    # a NaN val_auc (no label with both classes) never replaces a real one
    return best is None or (math.isfinite(auc) and not best["val_auc"] >= auc)


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
def validate(model, objective, batches, device, cfg, splits) -> dict:
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


def build_trial(cfg: dict, splits, device: torch.device, positives=None):
    """The model on its device, its objective and its phases. `positives`: per-label counts for the
    class-balanced losses (default: the training split's)."""
    model = build_model(cfg["model"], num_classes=len(splits.labels)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        if cfg["train"]["compile"] != "off":   # in place: the state dict keeps its keys, checkpoints load as before
            model.compile(mode=None if cfg["train"]["compile"] == "default" else cfg["train"]["compile"])
    positives = splits.train.positive_counts() if positives is None else positives
    return model, Objective(cfg, model, positives, splits.labels), Phases(cfg, model)


def fresh_optimizer(model, cfg: dict, stage: int, stage2: int | None):
    """Optimizer and schedule for one stage; the schedule spans that stage's epochs."""
    max_epochs = cfg["train"]["max_epochs"]
    stage_len = max_epochs if stage2 is None else (stage2 if stage == 1 else max_epochs - stage2)
    opt = build_optimizer(model, cfg["optim"])
    return opt, build_schedule(opt, cfg["sched"], stage_len)


def _cpu_copy(model, auc: float) -> dict:
    return {"model": {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}, "val_auc": auc}


def _start(state: dict | None, model, cfg: dict, stage2: int | None):
    """(first epoch, step, stage 1's best so far, optimizer and schedule), from a checkpoint if there is one."""
    start_epoch, step = (int(state["epoch"]), int(state["step"])) if state is not None else (0, 0)
    stage = 2 if stage2 is not None and start_epoch > stage2 else 1
    optimizer, scheduler = fresh_optimizer(model, cfg, stage, stage2)
    if state is None:
        return 0, 0, None, (optimizer, scheduler)
    for part, target in (("model", model), ("optimizer", optimizer), ("scheduler", scheduler)):
        target.load_state_dict(state[part])
    return start_epoch, step, state.get("stage1_best"), (optimizer, scheduler)


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
    reporter.inputs(fingerprint.inputs(splits))
    model, objective, phases = build_trial(cfg, splits, device)
    start_epoch, step, best, (optimizer, scheduler) = _start(reporter.restore(), model, cfg, stage2)
    stage = 2 if stage2 is not None and start_epoch > stage2 else 1
    # a reporter that cannot say how many CPUs the trial has counts as one: no loader workers
    cpus = reporter.cpus() if hasattr(reporter, "cpus") else None
    pipeline = make_pipeline(for_stage(cfg, stage), splits, device, cpus)

    last = {}
    with SystemSampler() as usage:  # the machine's use, per epoch
        for epoch in range(start_epoch, max_epochs):
            if epoch == stage2:  # stage 2: best stage-1 weights, fresh optimizer, 2x images
                stage = 2
                if best is not None:
                    model.load_state_dict(best["model"])
                best = None
                optimizer, scheduler = fresh_optimizer(model, cfg, stage, stage2)
                pipeline = make_pipeline(for_stage(cfg, 2), splits, device, cpus)
            torch.manual_seed(seed * 100_003 + epoch)  # device augmentation draws, resume-consistent
            train_loss, ips, step = train_epoch(model, objective, phases, optimizer,
                                                pipeline.train_batches(epoch), device, cfg, epoch, step)
            result = validate(model, objective, pipeline.val_batches(), device, cfg, splits)
            if not math.isfinite(result["val_loss"]):
                raise NonFiniteLoss(f"validation loss is {result['val_loss']} after epoch {epoch + 1}; "
                                    "the model diverged. Lower optim.lr.")
            step_schedule(scheduler, result["val_loss"])
            # Ray's trial table shows the first four metrics of a result: the headline ones go first.
            last = {"epoch": epoch + 1, "val_auc": result["val_auc"], "val_loss": result["val_loss"],
                    "train_loss": train_loss, "images_per_s": ips, "lr": optimizer.param_groups[0]["lr"],
                    "image_size": for_stage(cfg, stage)["data"]["image_size"], **result, **usage.take(),
                    **gpu_peak(device)}
            checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "step": step}
            if stage2 is not None and stage == 1:
                best = _cpu_copy(model, result["val_auc"]) if _better(result["val_auc"], best) else best
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
