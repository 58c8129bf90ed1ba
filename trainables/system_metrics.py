"""What a trial uses of its machine, as means per epoch: GPU utilisation, memory and power, CPU and
host memory, reported with the epoch's result under `system/` (the MLflow UI's System metrics).

MLflow's own monitors take the samples (mlflow.system_metrics); its SystemMetricsMonitor is not
used because it logs straight to a run from the worker, past the driver's tracking outbox, so an
MLflow outage would lose them. The GPU figures are the whole device's (NVML does not divide a GPU
between processes): a trial sharing a GPU reports what the GPU did for all its trials, labelled
with its share (TuneReporter.placement). Only the trial's own GPUs (CUDA_VISIBLE_DEVICES, as Ray
sets it) are kept; the CPU and host memory figures are the node's, the process_ ones the trial's.
"""
from __future__ import annotations

import logging
import os
import threading

PREFIX = "system/"
logger = logging.getLogger(__name__)


def visible_gpus() -> list[int] | None:
    """The NVML indices of the trial's GPUs (None: every GPU is visible, no Ray assignment)."""
    ids = os.environ.get("CUDA_VISIBLE_DEVICES")
    if ids is None:
        return None
    return [int(i) for i in ids.split(",") if i.strip().isdigit()]


def _monitors() -> list:
    try:
        from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
    except ImportError:   # trainables alone (a checkout on a GPU machine): the process figures only
        return []
    monitors = [CPUMonitor()]
    try:
        import torch

        if torch.cuda.is_available():
            from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor

            monitors.append(GPUMonitor())
    except (ImportError, RuntimeError) as err:  # no nvidia-ml-py, or NVML cannot start: CPU figures only
        logger.warning("GPU system metrics off: %s", err)
    return monitors


class SystemSampler:
    """Samples every `interval` seconds in a daemon thread; `take()` samples once more and returns
    the means since the last take as `system/<name>` metrics, and starts over."""

    def __init__(self, interval: float = 2.0, monitors: list | None = None, gpus: list[int] | None = None):
        import psutil

        self.monitors = _monitors() if monitors is None else monitors
        self.gpus = visible_gpus() if gpus is None else gpus
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first call only starts the measurement
        self.own: dict[str, list[float]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, args=(interval,), daemon=True, name="system-metrics")
        self.thread.start()

    def _loop(self, interval: float) -> None:
        while not self.stop.wait(interval):
            self.sample()

    def sample(self) -> None:
        with self.lock:
            for monitor in self.monitors:
                monitor.collect_metrics()
            self.own.setdefault("process_cpu_percentage", []).append(self.process.cpu_percent())
            self.own.setdefault("process_memory_megabytes", []).append(self.process.memory_info().rss / 1e6)

    def take(self) -> dict[str, float]:
        self.sample()   # one at the epoch's end too: an epoch shorter than the interval still has a figure
        with self.lock:
            out = {}
            for monitor in self.monitors:
                if monitor.metrics:
                    out.update(monitor.aggregate_metrics())
                monitor.clear_metrics()
            out.update({k: round(sum(v) / len(v), 1) for k, v in self.own.items() if v})
            self.own.clear()
        return {PREFIX + k: float(v) for k, v in out.items() if self._mine(k)}

    def _mine(self, name: str) -> bool:
        if not name.startswith("gpu_") or self.gpus is None:
            return True
        return int(name.split("_")[1]) in self.gpus

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def __enter__(self) -> SystemSampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def gpu_peak(device) -> dict:
    """The trial's peak GPU memory so far (what its tensors held at most; the CUDA context and the
    allocator's cache come on top): what `--trials-per-gpu auto` sizes packing by (search/scheduling/packing.py)."""
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return {}
    return {"gpu_peak_gib": torch.cuda.max_memory_allocated(device) / 2 ** 30,
            "gpu_name": torch.cuda.get_device_name(device)}
