"""What a search cost and where its trials ran: per trial the GPU-hours it held (its wall time per
epoch x its GPU share, so trials packed onto one GPU split it) and its trial-epochs, with the node
and GPU share as tags; for the parent run the totals. Kept in the tracking callback's saved state,
so `--resume` adds to them."""
from __future__ import annotations

SYSTEM_PREFIX = "system/"   # trainables/system_metrics.py


def gpu_share(resources: dict) -> str:
    gpu = resources.get("GPU", 0)
    if not gpu:
        return "no GPU"
    if gpu < 1:
        return f"{gpu:g} GPU (one of {round(1 / gpu)} trials on it)"
    return f"{gpu:g} GPU"


class Usage:
    def __init__(self, state: dict | None = None):
        state = state or {}
        self.gpu_hours: dict[str, float] = dict(state.get("gpu_hours", {}))
        self.epochs: dict[str, int] = dict(state.get("epochs", {}))
        self.placed: dict[str, list] = dict(state.get("placed", {}))

    def state(self) -> dict:
        return {"gpu_hours": dict(self.gpu_hours), "epochs": dict(self.epochs), "placed": dict(self.placed)}

    def on_result(self, trial_id: str, result: dict, resources: dict) -> tuple[dict, dict | None]:
        """(the trial's cost so far as metrics, its placement tags when they are new or changed)."""
        hours = self.gpu_hours.get(trial_id, 0.0) + float(result.get("time_this_iter_s") or 0) \
            * resources.get("GPU", 0) / 3600
        self.gpu_hours[trial_id] = hours
        self.epochs[trial_id] = self.epochs.get(trial_id, 0) + 1
        place = [f"{result.get('hostname', '?')} ({result.get('node_ip', '?')})", gpu_share(resources)]
        tags = None
        if self.placed.get(trial_id) != place:
            self.placed[trial_id] = place
            tags = {"cxr.node": place[0], "cxr.gpu_share": place[1]}
        return {"gpu_hours": hours, "trial_epochs": float(self.epochs[trial_id])}, tags

    def restore(self, trial_id: str, cost: dict) -> None:
        """A cost the saved state missed, read back from the metrics logged with a result."""
        if "gpu_hours" in cost:
            self.gpu_hours[trial_id] = max(self.gpu_hours.get(trial_id, 0.0), cost["gpu_hours"])
        if "trial_epochs" in cost:
            self.epochs[trial_id] = max(self.epochs.get(trial_id, 0), int(cost["trial_epochs"]))

    def totals(self) -> dict[str, float]:
        return {"search_gpu_hours": sum(self.gpu_hours.values()),
                "search_trial_epochs": float(sum(self.epochs.values()))}
