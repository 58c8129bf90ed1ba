"""The user's command, as a subprocess: search/msml_weights.py --smoke-test on a hand-written NIH root, then MLflow."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_smoke_search_logs_a_parent_and_three_trials(tiny_nih, tmp_path):
    work = tmp_path / "search"
    work.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "search" / "msml_weights.py"), "--smoke-test", "--data", str(tiny_nih),
         "--storage-path", str(work / "rr"), "--name", "smoke"],
        cwd=work, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"search failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "best val_auc" in out and "mlflow ui --backend-store-uri" in out

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("msml_weights").experiment_id])
    trials = [r for r in runs if r.data.tags.get("cxr.role") == "trial"]
    parents = [r for r in runs if r.data.tags.get("cxr.role") == "search"]
    assert len(parents) == 1 and len(trials) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["cxr.dataset"] == "nih"
    assert "best_val_auc" in parent.data.metrics
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["cxr.status"] in {"completed", "stopped_early"}
        assert run.data.params["model.name"] == "fmsml" and run.data.params["loss.name"] == "bce"
        assert {"heads.alpha", "heads.beta", "model.backbone", "model.strategy", "optim.lr"} <= set(run.data.params)
        assert run.data.params["optim.name"] == "adam" and run.data.params["sched.name"] == "step"
        assert run.data.params["model.strategy"] in {"global", "local", "local_fixed"}
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_auc")]
        expected = 2 if run.data.tags["cxr.status"] == "completed" else int(run.data.tags["cxr.stopped_at_epoch"])
        assert steps == list(range(1, expected + 1))
    # warm start: the paper's alpha 0.2, beta 0.6, Global is the first trial
    first = min(trials, key=lambda r: r.info.start_time)
    assert (first.data.params["heads.alpha"], first.data.params["heads.beta"]) == ("0.2", "0.6")
    assert first.data.params["model.strategy"] == "global"
    assert not any("Patient" in k for r in trials for k in r.data.params)
