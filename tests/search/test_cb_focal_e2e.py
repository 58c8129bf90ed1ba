"""The user's command, as a subprocess: search/cb_focal.py --smoke-test on a hand-written NIH root, then MLflow."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_smoke_search_logs_three_trials_and_two_stage_grows_the_image(tiny_nih, tmp_path):
    work = tmp_path / "search"
    work.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "search" / "cb_focal.py"), "--smoke-test", "--data", str(tiny_nih),
         "--storage-path", str(work / "rr"), "--name", "smoke"],
        cwd=work, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"search failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "best val_auc" in out and "mlflow ui --backend-store-uri" in out

    # the driver built the stage-1 (36 px) and the stage-2 (72 px) caches before any trial
    caches = {p.name.split("-")[-1] for p in (Path(os.environ["CXR_TUNE_CACHE"]) / "images").glob("*px")}
    assert {"36px", "72px"} <= caches

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("cb_focal").experiment_id])
    trials = [r for r in runs if r.data.tags.get("cxr.role") == "trial"]
    parents = [r for r in runs if r.data.tags.get("cxr.role") == "search"]
    assert len(parents) == 1 and len(trials) == 3
    assert parents[0].info.status == "FINISHED" and "best_val_auc" in parents[0].data.metrics
    for run in trials:
        assert run.data.tags["cxr.status"] in {"completed", "stopped_early"}
        params = run.data.params
        assert (params["model.name"], params["loss.name"], params["optim.name"]) == \
            ("timm_classifier", "cb_focal", "lookahead_radam")
        assert 1e-6 <= float(params["loss.one_minus_beta"]) <= 1e-2
        assert 0.25 <= float(params["loss.alpha"]) <= 0.75 and 0 <= float(params["loss.gamma"]) <= 3
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_auc")]
        expected = 2 if run.data.tags["cxr.status"] == "completed" else int(run.data.tags["cxr.stopped_at_epoch"])
        assert steps == list(range(1, expected + 1))
    # warm start: the paper's best is the first trial
    first = min(trials, key=lambda r: r.info.start_time)
    p = first.data.params
    assert (p["loss.one_minus_beta"], p["loss.alpha"], p["loss.gamma"], p["train.two_stage"]) == \
        ("0.0002", "0.5", "1.0", "True")

    # every two-stage trial that reached epoch 2 trained it at twice the size
    results = sorted((work / "rr" / "smoke").glob("trial_*/result.json"))
    assert len(results) == 3
    for result in results:
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        sizes = [r["image_size"] for r in rows]
        two_stage = rows[0]["config"]["train"]["two_stage"]
        assert sizes == ([32, 64] if two_stage else [32, 32])[:len(sizes)]
