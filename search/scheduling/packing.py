"""Several trials on one GPU (`--trials-per-gpu N|auto`): what each trial asks Ray for, and how many fit.

At the papers' batch sizes a train step is bound by kernel launches, not arithmetic, so one trial
leaves most of a GPU idle; trials sharing it fill the gaps. Ray shares a GPU by fractions (a trial
asking for 1/N of one gets CUDA_VISIBLE_DEVICES of a GPU it shares with N-1 others) but does not
divide its memory: N is sized here from the trial's measured peak memory, and a trial that still
runs out of it is retried alone (search/scheduling/oom_retry.py).

`auto` takes, in order: the K with the most images/s among those measured on this GPU model
(benchmarks/gpu_packing.py's table, shipped in search/data/gpu_packing.json), else as many as the
measured peak memory allows; at most MAX_PER_GPU, at most one per CPU the GPU brings, and 1 with
the reason when nothing is measured for the setup.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ray.tune import Callback

from trainables.errors import UsageError

MEASURED = Path(__file__).parents[1] / "data" / "gpu_packing.json"   # search/data/, as pyproject ships it
# Peaks the user's own trials measured (PeakRecorder below), merged over MEASURED.
USER_MEASURED = Path(os.environ.get("CXR_TUNE_CACHE", "~/.cache/cxr-tune")).expanduser() / "gpu_packing.json"
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


def parse(value: str, name: str = "--trials-per-gpu") -> int | str:
    """--trials-per-gpu (or its variable `name`): a whole number 1..MAX_PER_GPU, or auto."""
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_PER_GPU:
        raise UsageError(f"{name} {value!r}: give a whole number 1-{MAX_PER_GPU} or auto")
    return n


def share(per_gpu: int, cpus_per_gpu: float) -> dict:
    """Ray resources of one of `per_gpu` trials on a GPU node that has `cpus_per_gpu` CPUs per GPU:
    1/N of the GPU (rounded down to Ray's resolution, so N of them fit) and 1/N of its CPUs."""
    gpu = math.floor(1 / per_gpu / FRACTION_STEP) * FRACTION_STEP
    return {"gpu": round(gpu, 4), "cpu": max(1, math.floor(cpus_per_gpu / per_gpu))}


def setup_keys(param_space: dict) -> list[str]:
    """The setup key of every model a search's space may build (a searched backbone: each choice)."""
    model = param_space.get("model", {})
    for field in ("backbones", "backbone"):
        choices = getattr(model.get(field), "categories", None)
        if choices:
            return [setup_key({**param_space, "model": {**model, field: c}}) for c in choices]
    return [setup_key(param_space)]


def setup_key(config: dict) -> str:
    """What a trial's GPU memory depends on: model and backbones, image size, batch size, compile mode."""
    model, data, train = config.get("model", {}), config.get("data", {}), config.get("train", {})
    arch = model.get("backbones") or model.get("backbone") or ""
    return (f"{model.get('name', '?')}{'/' + arch if arch else ''} {data.get('image_size')}px "
            f"batch {data.get('batch_size')} compile={train.get('compile', 'off')}")


def load(path: Path = MEASURED, user: Path | None = None) -> dict:
    """{gpu model: {setup key: {"peak_gib": float, "img_s": {K: float}}}}: the shipped measurements,
    each peak raised to what the user's own trials reached (`user`, default USER_MEASURED)."""
    out = json.loads(path.read_text()) if path.exists() else {}
    user = USER_MEASURED if user is None else user
    for gpu, setups in _read(user).items():
        for key, entry in setups.items():
            have = out.setdefault(gpu, {}).setdefault(key, {})
            have["peak_gib"] = max(have.get("peak_gib", 0.0), entry["peak_gib"])
    return out


def remember(peaks: dict, user: Path | None = None) -> None:
    """Add {gpu model: {setup key: peak GiB}} from a search's trials to the user's measurements."""
    user = USER_MEASURED if user is None else user
    mine = _read(user)
    for gpu, setups in peaks.items():
        for key, peak in setups.items():
            entry = mine.setdefault(gpu, {}).setdefault(key, {"peak_gib": 0.0})
            entry["peak_gib"] = max(entry["peak_gib"], peak)
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text(json.dumps(mine, indent=1, sort_keys=True))


def _read(user: Path) -> dict:
    """The user's measurements; a damaged file is named with the fix, not a traceback."""
    try:
        return json.loads(user.read_text()) if user.exists() else {}
    except (OSError, ValueError) as err:
        raise UsageError(f"{user}: cannot read the measured GPU peaks ({err}); delete the file (the next "
                         "search measures them again) or set CXR_TUNE_CACHE to another folder") from None


def _entry(key: str, gpu_name: str, measured: dict) -> dict | None:
    """The setup's measurement on this GPU model, else its peak memory measured on another."""
    here = measured.get(gpu_name, {}).get(key)
    if here and "peak_gib" in here:
        return here
    peaks = [m[key]["peak_gib"] for m in measured.values() if "peak_gib" in m.get(key, {})]
    return {"peak_gib": max(peaks)} if peaks else None


def auto_for_space(keys: list[str], gpu_name: str, gpu_gib: float, cpus_per_gpu: float, measured: dict) -> Packing:
    """`auto` for a search whose trials may build any of `keys`: sized for the one with the largest
    measured peak; one per GPU while any of them is unmeasured."""
    entries = {k: _entry(k, gpu_name, measured) for k in keys}
    missing = [k for k, e in entries.items() if e is None]
    if missing:
        return auto(missing[0], gpu_name, gpu_gib, cpus_per_gpu, {})
    worst = max(keys, key=lambda k: entries[k]["peak_gib"])
    return auto(worst, gpu_name, gpu_gib, cpus_per_gpu, measured)


def auto(key: str, gpu_name: str, gpu_gib: float, cpus_per_gpu: float, measured: dict) -> Packing:
    """How many trials of setup `key` share one `gpu_name` GPU with `gpu_gib` GiB, and why."""
    entry = _entry(key, gpu_name, measured)
    if not entry:
        return Packing(1, f"no measured peak GPU memory for {key}: one trial per GPU (measure it with "
                          "benchmarks/gpu_packing.py or one search with --trials-per-gpu 1, "
                          "or pass --trials-per-gpu N)")
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


def cpus_per_gpu(nodes: list[dict], declared: float | None = None) -> float | None:
    """CPUs per GPU on the scarcest alive GPU node, at most `declared` (CXR_TUNE_CPUS_PER_GPU: what
    every GPU node type of an autoscaling cluster brings, deploy/cluster_env.sh); None: neither."""
    ratios = [n["Resources"]["CPU"] / n["Resources"]["GPU"] for n in nodes
              if n.get("Alive") and n["Resources"].get("GPU") and n["Resources"].get("CPU")]
    ratios += [declared] if declared else []
    return min(ratios) if ratios else None


def gpu_node_up(nodes: list[dict]) -> bool:
    return any(n.get("Alive") and n["Resources"].get("GPU") for n in nodes)


def plan(choice: int | str, param_space: dict, nodes: list[dict], probe, measured: dict | None = None,
         declared: float | None = None) -> tuple[dict, dict, str]:
    """(what each trial asks for, what a trial retried alone asks for, the line that says why).
    `probe(gpu_node_up)` -> (GPU model, GiB) of a GPU node's GPU, or None when none answers."""
    per_cpu = cpus_per_gpu(nodes, declared)
    if per_cpu is None:
        raise UsageError("--trials-per-gpu: no GPU node is up, so the CPUs a GPU brings are unknown; on an "
                         "autoscaling cluster set CXR_TUNE_CPUS_PER_GPU (deploy/cluster_env.sh sets 8), else "
                         "start the search where GPU nodes are up (or drop the flag)")
    if choice == "auto":
        gpu = probe(gpu_node_up(nodes))
        if gpu is None:
            packed = Packing(1, "no GPU answered the probe for its model and memory: one trial per GPU")
        else:
            packed = auto_for_space(setup_keys(param_space), gpu[0], gpu[1], per_cpu,
                                    load() if measured is None else measured)
    else:
        packed = Packing(int(choice), f"{choice} per GPU (--trials-per-gpu)")
    alone = {"cpu": max(1, math.floor(per_cpu)), "gpu": 1}
    return share(packed.per_gpu, per_cpu), alone, f"trials per GPU: {packed.reason}"


def probe_gpu(gpu_node_up: bool = True) -> tuple[str, float] | None:
    """(model, GiB) of a GPU on a GPU node, from a task that holds it for a moment; None when no GPU
    answers in time. With no GPU node up, the task's demand makes an autoscaler start one (which
    the trials need anyway): that gets 15 minutes, a GPU node already up 2."""
    import ray

    @ray.remote(num_gpus=1, num_cpus=0)
    def describe() -> tuple[str, float]:
        import torch

        props = torch.cuda.get_device_properties(0)
        return props.name, props.total_memory / 2 ** 30

    timeout_s = 120 if gpu_node_up else 900
    if not gpu_node_up:
        print("--trials-per-gpu auto: waiting for a GPU node to start (up to 15 min) to read its GPU's model "
              "and memory", flush=True)
    ref = describe.remote()
    try:
        return ray.get(ref, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        return None


class PeakRecorder(Callback):
    """The peak GPU memory each setup reached in this search's trials (reported per epoch as
    gpu_peak_gib with gpu_name, trainables/system_metrics.py), added to the user's measurements at
    the end, so the next `--trials-per-gpu auto` of the same setup can pack by it."""

    def __init__(self, user: Path | None = None):
        self.user = user
        self.peaks: dict[str, dict[str, float]] = {}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        peak, gpu = result.get("gpu_peak_gib"), result.get("gpu_name")
        if isinstance(peak, float) and isinstance(gpu, str):
            setups = self.peaks.setdefault(gpu, {})
            key = setup_key(trial.config)
            setups[key] = max(setups.get(key, 0.0), peak)

    def on_experiment_end(self, trials, **info):
        if not self.peaks:
            return
        try:   # the search's own results are saved already; a cache it cannot write must not fail it
            remember(self.peaks, self.user)
        except (OSError, UsageError) as err:
            print(f"the trials' peak GPU memory was not saved for --trials-per-gpu auto: {err}", flush=True)
