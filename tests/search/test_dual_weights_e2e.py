"""The user's command, as a subprocess: search/dual_weights.py --smoke-test, then MLflow, export, train, resume."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def sh(args, cwd, timeout=900):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    work = tmp_path_factory.mktemp("search")
    os.environ["CXR_TUNE_CACHE"] = str(tmp_path_factory.getbasetemp() / "cxr-cache")
    out = sh([str(ROOT / "search" / "dual_weights.py"), "--smoke-test", "--storage-path", str(work / "rr"),
              "--name", "smoke", "--export", str(work / "exports")], cwd=work)
    return work, out


def trial_runs(client):
    exp = client.get_experiment_by_name("dual_weights")
    runs = client.search_runs([exp.experiment_id])
    return [r for r in runs if r.data.tags.get("cxr.role") == "trial"], \
        [r for r in runs if r.data.tags.get("cxr.role") == "search"]


def test_mlflow_has_a_parent_and_its_trials(searched):
    work, out = searched
    assert "best val_auc" in out and "mlflow ui --backend-store-uri" in out
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    trials, parents = trial_runs(client)
    assert len(parents) == 1 and len(trials) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.tags["cxr.dataset"] == "nih"
    assert "best_val_auc" in parent.data.metrics and parent.data.tags["cxr.trials_total"] == "3"
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["best_config.yaml"]
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["cxr.status"] in {"completed", "stopped_early"}
        assert run.info.status == "FINISHED"
        assert run.data.params["loss.name"] == "modulated_wce" and "heads.w_d" in run.data.params
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_auc")]
        expected = 2 if run.data.tags["cxr.status"] == "completed" else int(run.data.tags["cxr.stopped_at_epoch"])
        assert steps == list(range(1, expected + 1))
    # warm start: the paper's best config is the first trial
    first = min(trials, key=lambda r: r.info.start_time)
    assert first.data.params["loss.lam"] == "0.5" and first.data.params["heads.fusion"] == "concat"
    assert not any("Patient" in k for r in trials for k in r.data.params)


def test_exported_yaml_trains(searched):
    work, _ = searched
    files = sorted((work / "exports").glob("*.yaml"))
    assert len(files) == 3
    doc = yaml.safe_load(files[0].read_text())
    assert doc["config"]["loss"]["name"] == "modulated_wce" and doc["mlflow_run_id"]
    assert doc["checkpoint"] and Path(doc["checkpoint"]).exists()
    out = sh(["-m", "trainables.train", "--config", str(files[0]), "--out", str(work / "final"),
              "--max-epochs", "1"], cwd=ROOT)
    assert "done: val_auc" in out and (work / "final" / "best" / "state.pt").is_file()


def test_resume_of_a_finished_search_reruns_nothing(searched):
    work, _ = searched
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    before = {r.info.run_id: len(client.get_metric_history(r.info.run_id, "val_auc")) for r in trial_runs(client)[0]}
    sh([str(ROOT / "search" / "dual_weights.py"), "--smoke-test", "--storage-path", str(work / "rr"),
        "--name", "smoke", "--resume"], cwd=work)
    after = {r.info.run_id: len(client.get_metric_history(r.info.run_id, "val_auc")) for r in trial_runs(client)[0]}
    assert after == before
