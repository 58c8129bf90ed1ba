"""Trial throughput: does a trial's input path keep its device busy, and what does it cost the host?

For one paper's setup (trainables/papers.py; ImageNet weights off, since only speed is measured)
it prints, in one run:
1. the model-only ceiling: train steps on one batch already on the device;
2. the trainable's real path: cache -> loader workers -> augmentation -> train step, through
   the same InputPipeline and train_epoch a trial uses, in images/s;
3. `feed_ratio` = 2 / 1 (1.0: the input path never makes the device wait);
4. the host CPU milliseconds spent per delivered image by the CPU path (per-sample PIL
   augmentation) and by the device path (uint8 rows into a batch, plus, on a GPU, the
   augmentation's kernel launches), each with the copy into pinned memory, measured in this
   process with no workers, and their ratio as `cpu_cost_ratio`.
Without a GPU, 1-3 run on the CPU, and 4 is the figure that matters. The images are generated
(the embedded synthetic set's generator) at the setup's cached resolution. Imports only
`trainables`, so it runs from a checkout with PYTHONPATH=. on a machine without Ray or MLflow:

    PYTHONPATH=. python benchmarks/trial_throughput.py --space dualchexnet --image-size 512 --batch-size 8
    PYTHONPATH=. python benchmarks/trial_throughput.py --space cb_focal --image-size 224 --batch-size 32
"""
from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch

from trainables.config import merge, resolve
from trainables.data import synthetic
from trainables.data.loaders import InputPipeline
from trainables.data.sources import load_splits
from trainables.models import build_model
from trainables.optim import build_optimizer
from trainables.papers import SETUPS
from trainables.devices import pick_device
from trainables.objective import Objective
from trainables.stages import Phases, split_cache
from trainables.train import train_epoch


def trial_config(args, root: Path, device: str) -> dict:
    paper = SETUPS[args.space]
    size = args.image_size or paper["data"]["image_size"]
    resize = round(size * paper["data"]["resize"] / paper["data"]["image_size"])
    return resolve(merge(paper, {
        "model": {"pretrained": False},
        "data": {"root": str(root), "image_size": size, "resize": resize,
                 "batch_size": args.batch_size or paper["data"]["batch_size"], "augment_on": args.augment_on},
        "train": {"device": device, "two_stage": False, "check_every": 50}}))


def synced(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def steps_per_s(model, objective, phases, optimizer, batches, device, cfg) -> float:
    synced(device)
    return train_epoch(model, objective, phases, optimizer, batches, device, cfg, 0, 0)[1]


def real_batches(pipeline: InputPipeline, steps: int):
    """`steps` batches from consecutive epochs, as a trial's epochs would draw them."""
    return itertools.islice(itertools.chain.from_iterable(pipeline.train_batches(e) for e in itertools.count()), steps)


def host_ms_per_image(pipeline: InputPipeline, images: int, device) -> float:
    """Process CPU time to deliver `images` training images with no loader workers."""
    start, n = time.process_time(), 0
    for x, _, _ in real_batches(pipeline, max(1, images // pipeline.train_loader.batch_size)):
        if device.type != "cuda":
            x.clone()  # stands in for the copy into pinned memory that a GPU trial's loader makes
        n += len(x)
    cost = time.process_time() - start
    synced(device)  # outside the measurement: waiting for the GPU is not host work
    return 1000 * cost / n


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", choices=sorted(SETUPS), default="dualchexnet")
    p.add_argument("--image-size", type=int, default=None, help="crop fed to the network (default: the paper's)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the paper's")
    p.add_argument("--cpus", type=int, default=8, help="CPUs of the trial (loader workers = CPUs - 1); 8: "
                   "what a g5.2xlarge-like node gives its one trial")
    p.add_argument("--steps", type=int, default=None, help="timed train steps (default: 40 on a GPU, 3 on a CPU)")
    p.add_argument("--cost-images", type=int, default=256, help="images per path for the host-cost figure")
    p.add_argument("--patients", type=int, default=240, help="size of the generated set (~2.9 images each)")
    p.add_argument("--augment-on", choices=["auto", "cpu", "device"], default="auto",
                   help="the real path's augmentation (auto: on the device when it is a GPU)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        probe = trial_config(args, Path(tmp), args.device)
        device = pick_device(probe)
        steps = args.steps or (40 if device.type == "cuda" else 3)
        t0 = time.perf_counter()
        root = synthetic.generate(Path(tmp) / "nih", n_patients=args.patients, image_size=probe["data"]["resize"],
                                  progress=False)
        cfg = trial_config(args, root, args.device)
        splits = load_splits(cfg["data"])
        cache = split_cache(cfg["data"], splits)
        d = cfg["data"]
        print(f"{len(splits.train)} training images generated and cached at {d['resize']} px in "
              f"{time.perf_counter() - t0:.0f} s")

        torch.manual_seed(0)
        model = build_model(cfg["model"], num_classes=len(splits.labels)).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        # at least one positive per label: a small generated set may lack Hernia, which the
        # class-balanced loss refuses; the weights' values do not change the speed
        objective = Objective(cfg, model, splits.train.positive_counts().clip(min=1), splits.labels)
        phases = Phases(cfg, model)
        optimizer = build_optimizer(model, cfg["optim"])
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        pipeline = InputPipeline(d, 0, splits, cache, device, args.cpus)
        print(f"space {args.space}: {cfg['model'].get('backbones') or cfg['model'].get('backbone')}, "
              f"{d['image_size']} px crops of {d['resize']} px rows, batch {d['batch_size']}, on {name}; "
              f"{args.cpus} CPUs -> {pipeline.workers} loader workers; "
              f"augmentation on the {'device' if pipeline.on_device else 'CPU'}")

        # 1. model-only ceiling: one batch, already on the device and transformed
        x, y, mask = next(pipeline.train_batches(0))
        fixed = [(x, y, mask)] * steps
        steps_per_s(model, objective, phases, optimizer, fixed[:2], device, cfg)  # warm-up (cuDNN, allocator)
        ceiling = steps_per_s(model, objective, phases, optimizer, fixed, device, cfg)
        # 2. the real path, its workers already started by the batch above
        steps_per_s(model, objective, phases, optimizer, real_batches(pipeline, 2), device, cfg)
        real = steps_per_s(model, objective, phases, optimizer, real_batches(pipeline, steps), device, cfg)
        print(f"model-only ceiling: {ceiling:8.1f} images/s ({steps} steps on one batch on the device)")
        print(f"real path:          {real:8.1f} images/s ({steps} steps: cache -> {pipeline.workers} workers -> "
              f"{'device' if pipeline.on_device else 'CPU'} augmentation -> step)")
        print(f"feed_ratio {real / ceiling:.2f}")

        # 4. host cost per delivered image, each path in this process (no workers)
        costs = {}
        for path in ("cpu", "device"):
            one = InputPipeline({**d, "augment_on": path, "num_workers": 0}, 0, splits, cache, device, 1)
            host_ms_per_image(one, 2 * d["batch_size"], device)  # warm-up
            if path == "device" and device.type != "cuda":
                one.augment.train = lambda rows: rows  # on a GPU trial the GPU augments; here, count the host part
            costs[path] = host_ms_per_image(one, args.cost_images, device)
        print(f"host CPU per delivered image: CPU path {costs['cpu']:.3f} ms, device path {costs['device']:.3f} ms"
              + ("" if device.type == "cuda" else " (uint8 rows into a batch; the augmentation itself would run "
                 "on the GPU)"))
        print(f"cpu_cost_ratio {costs['cpu'] / costs['device']:.1f}")


if __name__ == "__main__":
    main()
