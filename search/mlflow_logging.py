"""Ray Tune callback that mirrors a search into MLflow: one parent run, one child run per trial.

Runs on the driver only. Params are the flattened config (`loss.lam`, `heads.w_d`); metrics
are logged per epoch (step = epoch); each child gets `cxr.status` = completed |
stopped_early (with `cxr.stopped_at_epoch`) | errored, so the MLflow UI alone answers which
configs won, which were cut early and how val AUC evolved. The callback's state (parent and
child run ids) is saved with the experiment, so `--resume` continues the same runs.
"""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune import Callback

from trainables.config import flatten

LOGGED = ("val_auc", "val_wauc", "val_loss", "train_loss", "images_per_s", "lr", "epoch", "image_size")
MAX_PARAM = 500


def _metrics(result: dict) -> dict:
    out = {}
    for key, value in result.items():
        if (key in LOGGED or key.startswith("val_auc/")) and isinstance(value, (int, float)) \
                and math.isfinite(value):
            out[key] = float(value)
    return out


def experiment_id(client: MlflowClient, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp else client.create_experiment(name)


def log_params(client: MlflowClient, run_id: str, config: dict) -> None:
    """The flattened config as params, in MLflow's batches of at most 100."""
    params = [Param(k, str(v)[:MAX_PARAM]) for k, v in sorted(flatten(config).items())]
    for i in range(0, len(params), 100):
        client.log_batch(run_id, params=params[i:i + 100])


class MLflowSearchCallback(Callback):
    def __init__(self, tracking_uri: str, experiment: str, max_epochs: int, tags: dict,
                 parent_name: str):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.max_epochs = max_epochs
        self.tags = tags
        self.parent_name = parent_name
        self.parent_id: str | None = None
        self.runs: dict[str, str] = {}
        self.best: dict = {}
        self._client = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_client"] = None  # pickled with the experiment; clients hold connections
        return state

    def get_state(self):
        return {"parent_id": self.parent_id, "runs": dict(self.runs)}

    def set_state(self, state):
        self.parent_id = state.get("parent_id")
        self.runs = dict(state.get("runs", {}))

    def setup(self, **info):
        exp_id = experiment_id(self.client, self.experiment)
        if self.parent_id is None:
            run = self.client.create_run(exp_id, run_name=self.parent_name,
                                         tags={**self.tags, "cxr.role": "search"})
            self.parent_id = run.info.run_id
        else:
            self.client.update_run(self.parent_id, status="RUNNING")
        self.experiment_id = exp_id

    def on_trial_start(self, iteration, trials, trial, **info):
        if trial.trial_id in self.runs:
            self.client.set_tag(self.runs[trial.trial_id], "cxr.status", "running")
            return
        run = self.client.create_run(self.experiment_id, run_name=f"trial-{trial.trial_id}", tags={
            "mlflow.parentRunId": self.parent_id, "cxr.role": "trial", "cxr.trial_id": trial.trial_id,
            "cxr.status": "running"})
        self.runs[trial.trial_id] = run.info.run_id
        log_params(self.client, run.info.run_id, trial.config)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self.runs.get(trial.trial_id)
        if run_id is None:
            return
        step = int(result.get("epoch", iteration))
        ts = int(result.get("timestamp", 0) * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, ts, step) for k, v in _metrics(result).items()])

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if trial.trial_id in self.runs:
            fs = getattr(checkpoint.filesystem, "type_name", "local")  # keep s3:// etc. in the tag
            where = checkpoint.path if fs == "local" else f"{fs}://{checkpoint.path}"
            self.client.set_tag(self.runs[trial.trial_id], "cxr.checkpoint", where)

    def on_trial_recover(self, iteration, trials, trial, **info):
        if trial.trial_id in self.runs:
            self.client.set_tag(self.runs[trial.trial_id], "cxr.status", "retrying from checkpoint")

    def on_trial_complete(self, iteration, trials, trial, **info):
        run_id = self.runs.get(trial.trial_id)
        if run_id is None:
            return
        epoch = int((trial.last_result or {}).get("epoch", 0))
        if epoch < self.max_epochs:
            tags = [RunTag("cxr.status", "stopped_early"), RunTag("cxr.stopped_at_epoch", str(epoch))]
        else:
            tags = [RunTag("cxr.status", "completed")]
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        run_id = self.runs.get(trial.trial_id)
        if run_id is None:
            return
        message = "see the trial's error.txt in the Ray results folder"
        if trial.error_file and Path(trial.error_file).is_file():
            lines = [l for l in Path(trial.error_file).read_text().splitlines() if l.strip()]
            message = lines[-1] if lines else message
        self.client.log_batch(run_id, tags=[RunTag("cxr.status", "errored"),
                                            RunTag("cxr.error", message[:MAX_PARAM])])
        self.client.set_terminated(run_id, "FAILED")

    def on_experiment_end(self, trials, **info):
        """Best trial's metrics and config onto the parent run, plus counts by outcome."""
        status = {}
        for t in trials:
            run_id = self.runs.get(t.trial_id)
            if run_id:
                s = self.client.get_run(run_id).data.tags.get("cxr.status", "unknown")
                status[s] = status.get(s, 0) + 1
        tags = [RunTag(f"cxr.trials_{k.replace(' ', '_')}", str(v)) for k, v in status.items()]
        tags.append(RunTag("cxr.trials_total", str(len(trials))))
        scored = [t for t in trials if isinstance((t.last_result or {}).get("val_auc"), float)
                  and math.isfinite(t.last_result["val_auc"])]
        metrics = []
        if scored:
            best = max(scored, key=lambda t: t.last_result["val_auc"])
            tags.append(RunTag("cxr.best_run_id", self.runs.get(best.trial_id, "")))
            metrics = [Metric(f"best_{k}", v, 0, 0) for k, v in _metrics(best.last_result).items()]
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / "best_config.yaml"
                path.write_text(yaml.safe_dump({"config": best.config}, sort_keys=False))
                self.client.log_artifact(self.parent_id, str(path))
        self.client.log_batch(self.parent_id, metrics=metrics, tags=tags)
        self.client.set_terminated(self.parent_id, "FINISHED")
