"""Several trials on one GPU (`--trials-per-gpu N|auto`): what each trial asks Ray for, and how many fit.

At the papers' batch sizes a train step is bound by kernel launches, not arithmetic, so one trial
leaves most of a GPU idle; trials sharing it fill the gaps. Ray shares a GPU by fractions (a trial
asking for 1/N of one gets CUDA_VISIBLE_DEVICES of a GPU it shares with N-1 others) but does not
divide its memory: N is sized here from the trial's measured peak memory, and a trial that still
runs out of it is retried alone (search/oom_retry.py).

`auto` takes, in order: the K with the most images/s among those measured on this GPU model
(benchmarks/gpu_packing.py's table, shipped in search/data/gpu_packing.json), else as many as the
measured peak memory allows; at most MAX_PER_GPU, at most one per CPU the GPU brings, and 1 with
the reason when nothing is measured for the setup.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from trainables.errors import UsageError

MEASURED = Path(__file__).parent / "data" / "gpu_packing.json"
# Left free on the GPU: every process holds its own CUDA context (~0.5 GiB, outside
# max_memory_allocated) and the caching allocator fragments; 10 % plus a context per trial.
HEADROOM = 0.10
CONTEXT_GIB = 0.5
MAX_PER_GPU = 4   # what the benchmark measures (K = 1..4)
FRACTION_STEP = 1e-4   # Ray's resolution for fractional resources


@dataclass(frozen=True)
class Packing:
    per_gpu: int
    reason: str


def parse(value: str) -> int | str:
    """--trials-per-gpu: a whole number 1..MAX_PER_GPU, or auto."""
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_PER_GPU:
        raise UsageError(f"--trials-per-gpu {value!r}: give a whole number 1-{MAX_PER_GPU} or auto")
    return n


def share(per_gpu: int, cpus_per_gpu: float) -> dict:
    """Ray resources of one of `per_gpu` trials on a GPU node that has `cpus_per_gpu` CPUs per GPU:
    1/N of the GPU (rounded down to Ray's resolution, so N of them fit) and 1/N of its CPUs."""
    gpu = math.floor(1 / per_gpu / FRACTION_STEP) * FRACTION_STEP
    return {"gpu": round(gpu, 4), "cpu": max(1, math.floor(cpus_per_gpu / per_gpu))}


def setup_key(config: dict) -> str:
    """What a trial's GPU memory depends on: model and backbones, image size, batch size, compile mode."""
    model, data, train = config.get("model", {}), config.get("data", {}), config.get("train", {})
    arch = model.get("backbones") or model.get("backbone") or ""
    return (f"{model.get('name', '?')}{'/' + arch if arch else ''} {data.get('image_size')}px "
            f"batch {data.get('batch_size')} compile={train.get('compile', 'off')}")


def load(path: Path = MEASURED) -> dict:
    """{gpu model: {setup key: {"peak_gib": float, "img_s": {K: float}}}}; empty when none is shipped."""
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def auto(key: str, gpu_name: str, gpu_gib: float, cpus_per_gpu: float, measured: dict) -> Packing:
    """How many trials of setup `key` share one `gpu_name` GPU with `gpu_gib` GiB, and why."""
    entry = measured.get(gpu_name, {}).get(key) or next(
        (m[key] for m in measured.values() if key in m and "peak_gib" in m[key]), None)
    if not entry or "peak_gib" not in entry:
        return Packing(1, f"no measured peak GPU memory for {key}: one trial per GPU "
                          "(measure it with benchmarks/gpu_packing.py, or pass --trials-per-gpu N)")
    room = gpu_gib * (1 - HEADROOM)
    by_memory = int(room // (entry["peak_gib"] + CONTEXT_GIB))
    by_cpu = int(max(1, cpus_per_gpu))
    fits = max(1, min(MAX_PER_GPU, by_memory, by_cpu))
    limits = (f"{entry['peak_gib']:.1f} GiB peak per trial + {CONTEXT_GIB} GiB context in {room:.0f} of "
              f"{gpu_gib:.0f} GiB: {by_memory}; CPUs per GPU: {by_cpu}; at most {MAX_PER_GPU}")
    speed = {int(k): v for k, v in entry.get("img_s", {}).items() if int(k) <= fits}
    if gpu_name in measured and key in measured[gpu_name] and speed:
        best = max(speed, key=speed.get)
        gain = speed[best] / speed[1] if 1 in speed else float("nan")
        return Packing(best, f"{best} per GPU: the most images/s measured on {gpu_name} for {key} "
                             f"({gain:.2f}x one trial), within what fits ({limits})")
    return Packing(fits, f"{fits} per GPU: what fits ({limits}); no images/s measured on {gpu_name}")
