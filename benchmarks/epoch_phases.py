"""Where a CPU-profile trial's time goes: the no-argument run's 300 s promise on other 2-core machines.

A no-argument run of `search/dual_weights.py` trains about 15 trial-epochs, two trials at once, one
torch thread each. This builds one trial of a paper's CPU profile (its warm-start config, the embedded
set) as `trainables/train.py` does, in this process, and times:
- setup, once per trial: reading the embedded set and its cache, building the model;
- per epoch: drawing the epoch's batches alone (cache -> loader -> augmentation), the train steps on
  those batches (forward, backward, optimizer), and validation.
Run it on the machine in question, with the other core busy or idle (--busy starts a second copy, as
the second trial of a run):

    PYTHONPATH=. python benchmarks/epoch_phases.py [--space dualchexnet] [--epochs 2] [--busy]

The last line is machine-readable:
`epoch_phases: space=S cpu=NAME data_s=D train_s=T validate_s=V epoch_s=E setup_s=U`
(medians over the epochs).
"""
from __future__ import annotations

import argparse
import multiprocessing
import platform
import statistics
import time

import torch

import spaces
from trainables.config import merge, resolve
from trainables.data.sources import load_splits, resolve_root
from trainables.optim import build_optimizer
from trainables.stages import make_pipeline
from trainables.train import build_trial, train_epoch, validate


def trial_config(space: str) -> dict:
    """The CPU profile's warm-start trial, as the runner builds it (search/runner.py build_param_space)."""
    spec = spaces.get(space)
    base = merge(spec.base, spec.cpu.get("config", {}))
    best = merge(spec.best, spec.cpu.get("best", {}))
    return resolve(merge(merge(base, best), {"data": {"root": str(resolve_root(None))}, "train": {"device": "cpu"}}))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def measure(space: str, epochs: int) -> dict:
    t0 = time.perf_counter()
    cfg = trial_config(space)
    torch.manual_seed(0)
    if cfg["train"]["threads"]:
        torch.set_num_threads(cfg["train"]["threads"])
    splits = load_splits(cfg["data"])
    model, objective, phases = build_trial(cfg, splits, torch.device("cpu"))
    optimizer = build_optimizer(model, cfg["optim"])
    pipeline = make_pipeline(cfg, splits, torch.device("cpu"), 1)    # a CPU-profile trial: 1 CPU, no workers
    setup = time.perf_counter() - t0
    rows = []
    for epoch in range(epochs):
        t = time.perf_counter()
        batches = list(pipeline.train_batches(epoch))
        data = time.perf_counter() - t
        t = time.perf_counter()
        train_epoch(model, objective, phases, optimizer, batches, torch.device("cpu"), cfg, epoch, 0)
        train = time.perf_counter() - t
        t = time.perf_counter()
        validate(model, objective, pipeline.val_batches(), torch.device("cpu"), cfg, splits)
        rows.append({"data_s": data, "train_s": train, "validate_s": time.perf_counter() - t})
        rows[-1]["epoch_s"] = sum(rows[-1].values())
        print(f"epoch {epoch + 1}: " + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in rows[-1].items()), flush=True)
    return {"setup_s": setup, **{k: statistics.median(r[k] for r in rows) for k in rows[0]}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", choices=spaces.names(), default="dualchexnet")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--busy", action="store_true", help="a second copy on the other core, as a run's second trial")
    args = p.parse_args(argv)
    cfg = trial_config(args.space)
    d = cfg["data"]
    print(f"{args.space} CPU profile: {cfg['model'].get('backbones') or cfg['model'].get('backbone')}, "
          f"{d['epoch_images']} images per epoch at {d['image_size']} px, batch {d['batch_size']}, "
          f"{cfg['train']['threads']} thread(s); {cpu_name()}, {multiprocessing.cpu_count()} CPUs"
          + ("; a second copy runs beside it" if args.busy else ""))
    other = None
    if args.busy:
        other = multiprocessing.get_context("spawn").Process(target=measure, args=(args.space, args.epochs + 1))
        other.start()
    got = measure(args.space, args.epochs)
    if other is not None:
        other.terminate()
    share = {k: got[k] / got["epoch_s"] for k in ("data_s", "train_s", "validate_s")}
    print(f"per epoch (median of {args.epochs}): data {share['data_s']:.0%}, train steps {share['train_s']:.0%}, "
          f"validation {share['validate_s']:.0%} of {got['epoch_s']:.1f} s; setup {got['setup_s']:.1f} s per trial")
    print(f"epoch_phases: space={args.space} cpu={cpu_name().replace(' ', '_')} "
          + " ".join(f"{k}={got[k]:.2f}" for k in ("data_s", "train_s", "validate_s", "epoch_s", "setup_s")))


if __name__ == "__main__":
    main()
