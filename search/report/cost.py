"""What the search cost and how busy it kept its GPUs: the parent run's GPU-hours and trial-epochs
(search/tracking/usage.py) and the mean GPU utilisation over every epoch of every trial (the trials'
system/gpu_<i>_utilization_percentage, a whole GPU's figure even where trials shared it)."""
from __future__ import annotations

import re
import statistics

from mlflow.tracking import MlflowClient

from search.report.data import Search

GPU_UTIL = re.compile(r"^system/gpu_\d+_utilization_percentage$")


def gpu_utilisation(client: MlflowClient, search: Search) -> float | None:
    """Mean over the trials' epochs (each trial's GPU samples per epoch), None without GPU figures."""
    values = []
    for t in search.trials:
        keys = [k for k in t.metric_keys if GPU_UTIL.match(k)]
        values += [m.value for k in keys for m in client.get_metric_history(t.run_id, k)]
    return statistics.fmean(values) if values else None


def lines(client: MlflowClient, search: Search) -> list[str]:
    metrics = search.parent.data.metrics
    if "search_trial_epochs" not in metrics:
        return []   # a search from before these figures were logged
    hours, epochs = metrics.get("search_gpu_hours", 0.0), int(metrics["search_trial_epochs"])
    util = gpu_utilisation(client, search)
    if not hours:
        return [f"cost: {epochs} trial-epochs, on CPUs (no GPU-hours)"]
    busy = f"; the GPUs were {util:.0f} % busy on average over the trials' epochs" if util is not None else ""
    return [f"cost: {hours:.2f} GPU-hours (each trial's time x its GPU share), {epochs} trial-epochs{busy}"]
