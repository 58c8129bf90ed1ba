"""GPU packing: how many images/s do K trials sharing one GPU train, against one trial alone?

For each paper setup at the paper's image size and batch size (trainables/papers.py; ImageNet
weights off, since only speed and memory are measured), K = 1..4 real trials run at once on one
GPU, each in its own process as Ray runs packed trials: the trial's own model (train.build_trial,
with train.compile), InputPipeline (1/K of the CPUs as loader workers) and train_epoch. Each process
warms up (compilation counts there, reported as compile_s), waits for the others, then trains
--steps timed steps. Printed per setup, K and compile mode: the K trials' images/s together (all
their timed images over the span from the first start to the last end), the gain over K = 1
without compile, the largest peak GPU memory of a process (max_memory_allocated; for cb_focal,
two-stage, over a few stage-2 steps at twice the image size too) and any out-of-memory. One line
per setup is machine-readable:

    packing SETUP: k1_img_s=X best_img_s=Y gain=G at k=K compile=MODE peak_gib=M

`--write` stores the figures in search/data/gpu_packing.json under the GPU's name, where
`--trials-per-gpu auto` reads them (search/scheduling/packing.py). `--smoke`: the same on the CPU with tiny
images, K = 1, 2 and no compile, to check the script runs (its figures mean nothing). Imports only
`trainables` and `search.scheduling.packing`, so it runs from a checkout with PYTHONPATH=.:

    PYTHONPATH=. python benchmarks/gpu_packing.py --setups dualchexnet cb_focal --write
    PYTHONPATH=. python benchmarks/gpu_packing.py --smoke
"""
from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # trainables, search

import torch  # noqa: E402

from trainables.config import merge, resolve  # noqa: E402
from trainables.papers import SETUPS  # noqa: E402

SMOKE = {"data": {"image_size": 32, "resize": 36, "batch_size": 4}, "model": {"backbone": "resnet10t",
         "backbones": "resnet10t+resnet10t"}, "train": {"device": "cpu", "threads": 1}}


def setup_config(setup: str, root: str, smoke: bool, compile_mode: str) -> dict:
    cfg = merge(SETUPS[setup], {"model": {"pretrained": False}, "data": {"root": root},
                                "train": {"compile": compile_mode, "check_every": 50}})
    if smoke:
        model = cfg["model"]
        cfg = merge(cfg, {**SMOKE, "model": {k: v for k, v in SMOKE["model"].items() if k in model}})
    return resolve(cfg)


def worker(cfg: dict, cpus: int, warmup: int, steps: int, barrier, out) -> None:
    """One packed trial: warm up, wait for the others, time `steps` train steps; a two-stage setup
    then trains `warmup` steps of stage 2 (twice the image size, half the batch), whose peak memory
    is the trial's too."""
    from trainables.data.sources import load_splits
    from trainables.devices import pick_device
    from trainables.stages import for_stage, make_pipeline
    from trainables.train import build_trial, fresh_optimizer, train_epoch

    try:
        torch.manual_seed(0)
        if cfg["train"]["threads"]:
            torch.set_num_threads(cfg["train"]["threads"])
        device = pick_device(cfg)
        splits = load_splits(cfg["data"])
        # at least one positive per label: a generated set may lack Hernia, which the class-balanced
        # loss refuses; the weights' values do not change the speed
        model, objective, phases = build_trial(cfg, splits, device, splits.train.positive_counts().clip(min=1))
        optimizer, _ = fresh_optimizer(model, cfg, 1, None)
        pipeline = make_pipeline(cfg, splits, device, cpus)
        batches = itertools.chain.from_iterable(pipeline.train_batches(e) for e in itertools.count())
        start = time.perf_counter()
        train_epoch(model, objective, phases, optimizer, itertools.islice(batches, warmup), device, cfg, 0, 0)
        compile_s = time.perf_counter() - start
        barrier.wait(timeout=1800)
        begin = time.monotonic()   # one clock for every process on the machine
        ips = train_epoch(model, objective, phases, optimizer, itertools.islice(batches, steps), device, cfg, 0, 0)[1]
        end = time.monotonic()     # train_epoch has waited for the GPU (its loss .item())
        if cfg["train"]["two_stage"]:
            big = for_stage(cfg, 2)
            tail = make_pipeline(big, splits, device, cpus).train_batches(0)
            train_epoch(model, objective, phases, optimizer, itertools.islice(tail, warmup), device, big, 0, 0)
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else 0.0
        out.put({"images": ips * (end - begin), "begin": begin, "end": end, "peak_gib": peak,
                 "compile_s": compile_s, "oom": False})
    except torch.cuda.OutOfMemoryError:
        barrier.abort()
        out.put({"images": 0.0, "begin": float("nan"), "end": float("nan"), "peak_gib": float("nan"),
                 "compile_s": float("nan"), "oom": True})
    except threading.BrokenBarrierError:   # another trial ran out of memory (or failed): it says which
        out.put({"aborted": True})
    except Exception as err:  # noqa: BLE001 - the parent says what failed instead of waiting forever
        barrier.abort()
        out.put({"error": f"{type(err).__name__}: {err}"})


def packed(cfg: dict, k: int, cpus: int, warmup: int, steps: int) -> dict:
    """K processes at once on one GPU: their images/s together, largest peak, whether any ran out of memory."""
    ctx = mp.get_context("spawn")   # CUDA cannot be forked
    barrier, out = ctx.Barrier(k), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(cfg, max(1, cpus // k), warmup, steps, barrier, out)) for _ in range(k)]
    for p in procs:
        p.start()
    got = [out.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    errors = {g["error"] for g in got if "error" in g}
    if errors:
        sys.exit(f"error: a packed trial failed: {'; '.join(sorted(errors))}")
    return together(got)


def together(got: list[dict]) -> dict:
    """The K trials' figures as one: all their timed images over the span from the first start to the
    last end (a trial that finishes early leaves the GPU to the others, so summing each trial's own
    rate would count that time twice), the largest peak and warm-up; nothing but the out-of-memory
    when any trial ran out."""
    if any(g.get("oom") for g in got):
        return {"img_s": 0.0, "peak_gib": float("nan"), "compile_s": float("nan"), "oom": True}
    span = max(g["end"] for g in got) - min(g["begin"] for g in got)
    return {"img_s": sum(g["images"] for g in got) / span, "peak_gib": max(g["peak_gib"] for g in got),
            "compile_s": max(g["compile_s"] for g in got), "oom": False}


def measure(setup: str, root: str, args, modes: list[str]) -> dict:
    from trainables.data.sources import load_splits
    from trainables.stages import for_stage, split_cache

    first = setup_config(setup, root, args.smoke, "off")
    for stage in (1, 2) if first["train"]["two_stage"] else (1,):   # built once here, not by K trials at once
        split_cache(for_stage(first, stage)["data"], load_splits(first["data"]))
    rows = {}
    for mode in modes:
        cfg = setup_config(setup, root, args.smoke, mode)
        for k in args.k:
            rows[(mode, k)] = r = packed(cfg, k, args.cpus, args.warmup, args.steps)
            print(f"{setup} compile={mode} k={k}: {r['img_s']:.1f} images/s, peak {r['peak_gib']:.2f} GiB per "
                  f"trial, warm-up {r['compile_s']:.0f} s{', OUT OF MEMORY' if r['oom'] else ''}", flush=True)
    return rows


def summary(setup: str, rows: dict) -> str:
    base = rows[("off", 1)]["img_s"]
    ok = {key: r for key, r in rows.items() if not r["oom"]}
    (mode, k), best = max(ok.items(), key=lambda kv: kv[1]["img_s"])
    return (f"packing {setup}: k1_img_s={base:.1f} best_img_s={best['img_s']:.1f} gain={best['img_s'] / base:.2f} "
            f"at k={k} compile={mode} peak_gib={best['peak_gib']:.2f}")


def write(setup: str, cfg: dict, rows: dict, path: Path) -> None:
    """Per compile mode, the setup's peak memory and images/s per K under the GPU's name."""
    from search.scheduling.packing import setup_key

    data = json.loads(path.read_text()) if path.exists() else {}
    gpu = torch.cuda.get_device_name(0)
    for mode in {m for m, _ in rows}:
        fine = {k: r for (m, k), r in rows.items() if m == mode and not r["oom"]}
        key = setup_key(merge(cfg, {"train": {"compile": mode}}))
        data.setdefault(gpu, {})[key] = {"peak_gib": round(max(r["peak_gib"] for r in fine.values()), 3),
                                         "img_s": {str(k): round(r["img_s"], 1) for k, r in fine.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True))


def main(argv=None) -> None:
    from search.scheduling.packing import MEASURED

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setups", nargs="+", choices=sorted(SETUPS), default=["dualchexnet", "cb_focal"])
    p.add_argument("--k", type=int, nargs="+", default=None, help="trials at once (default 1 2 3 4; smoke 1 2)")
    p.add_argument("--compile", nargs="+", choices=["off", "default", "reduce-overhead"], default=None,
                   help="default: off and reduce-overhead (smoke: off)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per trial (default 60; smoke 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10; smoke 1)")
    p.add_argument("--cpus", type=int, default=os.cpu_count(), help="CPUs the K trials share")
    p.add_argument("--smoke", action="store_true", help="on the CPU, tiny: checks that the script runs")
    p.add_argument("--write", action="store_true", help=f"store the figures in {MEASURED}")
    args = p.parse_args(argv)
    args.k = args.k or ([1, 2] if args.smoke else [1, 2, 3, 4])
    args.steps, args.warmup = args.steps or (2 if args.smoke else 60), args.warmup or (1 if args.smoke else 10)
    modes = args.compile or (["off"] if args.smoke else ["off", "reduce-overhead"])
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("error: no CUDA device; run on a GPU machine, or pass --smoke to check the script on the CPU")
    if 1 not in args.k or "off" not in modes:
        sys.exit("error: the gain is over one trial without compile: --k must include 1 and --compile off")
    from trainables.data import synthetic

    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        for setup in args.setups:
            resize = setup_config(setup, tmp, args.smoke, "off")["data"]["resize"]
            root = synthetic.generate(Path(tmp) / f"nih-{resize}", n_patients=240,
                                      image_size=resize, progress=False)
            rows = measure(setup, str(root), args, modes)
            lines.append(summary(setup, rows))
            if args.write and not args.smoke:
                write(setup, setup_config(setup, str(root), False, "off"), rows, MEASURED)
        print("\n".join(lines))


if __name__ == "__main__":
    main()
