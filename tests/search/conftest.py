"""Runs a search script as the user does (a subprocess, --smoke-test) and checks what every search
must leave in MLflow; each paper's test then checks its own params."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.search.simulation.simulated import prose

ROOT = Path(__file__).resolve().parents[2]
SMOKE_EPOCHS = 2


def _run_smoke_search(script: str, work: Path, *extra: str, trials: int = 3, timeout: int = 900):
    """-> (printed output, MLflow client, parent run, trial runs: the warm start first, the rest by start time)."""
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "search" / f"{script}.py"), "--smoke-test",
         "--storage-path", str(work / "rr"), "--name", "smoke", *extra],
        cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"search failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "best val_auc" in out and "mlflow ui --backend-store-uri" in out

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(script).experiment_id])
    children = sorted((r for r in runs if r.data.tags.get("cxr.role") == "trial"), key=lambda r: r.info.start_time)
    parents = [r for r in runs if r.data.tags.get("cxr.role") == "search"]
    assert len(parents) == 1 and len(children) == trials
    # the warm start (the paper's config) is proposed first; two proposals wait to start together
    # (the concurrency limit), so it is one of the first two to start, and the one tagged so
    warm = [r for r in children if r.data.tags.get("cxr.warm_start") == "paper"]
    assert len(warm) == 1 and warm[0] in children[:2], [r.data.tags.get("cxr.warm_start") for r in children]
    children = warm + [r for r in children if r is not warm[0]]
    parent = parents[0]
    assert parent.info.status == "FINISHED" and "best_val_auc" in parent.data.metrics
    for run in children:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        status = run.data.tags["cxr.status"]
        assert status in {"completed", "stopped_early"}
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_auc")]
        last = SMOKE_EPOCHS if status == "completed" else int(run.data.tags["cxr.stopped_at_epoch"])
        assert steps == list(range(1, last + 1))  # one val_auc per epoch, none repeated
        assert not any("Patient" in k for k in run.data.params)
    return prose(out), client, parent, children


@pytest.fixture
def smoke_search():
    return _run_smoke_search
