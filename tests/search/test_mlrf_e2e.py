"""search/mlrf_lambdas.py: the space on NIH vs CheXpert roots (fast), then the user's command as a
subprocess with --smoke-test on a hand-written NIH root and on a small CheXpert-format root (slow)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ray.tune.search.sample import Categorical

from search import runner
from spaces.mlrfnet import SPEC
from trainables.data.chexpert import CHEXPERT_EVAL_LABELS

ROOT = Path(__file__).resolve().parents[2]
SEARCHED = {"model.lam1", "model.lam2", "model.lam3", "model.temperature", "loss.alpha", "loss.beta",
            "loss.shift", "optim.lr"}


def space_for(argv):
    args = runner.parse_args(SPEC, argv)
    return runner.build_param_space(SPEC, args, runner.pick_profile(SPEC, args))


def test_policy_is_searched_only_on_a_chexpert_root(small_chexpert, tiny_nih):
    space, warm = space_for(["--data", str(small_chexpert), "--smoke-test"])
    assert isinstance(space["data"]["policy"], Categorical)
    assert sorted(space["data"]["policy"].categories) == ["ignore", "mixed", "ones", "zeros"]
    assert warm[0]["data/policy"] == "mixed" and warm[0]["model/temperature"] == 99
    assert space["data"]["image_size"] == 32  # the smoke profile still applies
    space, warm = space_for(["--data", str(tiny_nih)])
    assert space["data"].get("policy") is None and "data/policy" not in warm[0]
    assert space["data"]["image_size"] == 224 and space["sched"] == {"name": "step", "step_size": 2, "gamma": 0.9}
    # --grid on CheXpert: the paper's 27 λ combinations with its mixed policy fixed
    grid, warm = space_for(["--data", str(small_chexpert), "--grid"])
    assert grid["data"]["policy"] == "mixed" and warm == []
    assert all(grid["model"][f"lam{i}"] == {"grid_search": [0.1, 0.3, 0.5]} for i in (1, 2, 3))


def run_search(work, extra, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "search" / "mlrf_lambdas.py"), "--smoke-test",
         "--storage-path", str(work / "rr"), "--name", "smoke", *extra],
        cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"search failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "best val_auc" in out and "mlflow ui --backend-store-uri" in out
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("mlrf_lambdas").experiment_id])
    trials = [r for r in runs if r.data.tags.get("cxr.role") == "trial"]
    parents = [r for r in runs if r.data.tags.get("cxr.role") == "search"]
    assert len(parents) == 1 and len(trials) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED" and "best_val_auc" in parent.data.metrics
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["cxr.status"] in {"completed", "stopped_early"}
        assert run.data.params["model.name"] == "mlrfnet" and run.data.params["loss.name"] == "biased_focal"
        assert SEARCHED <= set(run.data.params)
        assert run.data.params["optim.name"] == "adam" and run.data.params["sched.name"] == "step"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_auc")]
        expected = 2 if run.data.tags["cxr.status"] == "completed" else int(run.data.tags["cxr.stopped_at_epoch"])
        assert steps == list(range(1, expected + 1))
    # warm start: the paper's best (β: Lin et al.'s 2) is the first trial
    first = min(trials, key=lambda r: r.info.start_time)
    p = first.data.params
    assert (p["model.lam1"], p["model.lam2"], p["model.lam3"], p["model.temperature"]) == ("0.5", "0.3", "0.1", "99")
    assert (p["loss.alpha"], p["loss.beta"], p["loss.shift"]) == ("0.4", "2.0", "0.2")
    assert not any("Patient" in k for r in trials for k in r.data.params)
    return parent, trials


@pytest.mark.slow
def test_smoke_search_on_nih(tiny_nih, tmp_path):
    parent, trials = run_search(tmp_path, ["--data", str(tiny_nih)])
    assert parent.data.tags["cxr.dataset"] == "nih"
    assert not any("data.policy" in r.data.params for r in trials)  # no policy outside CheXpert


@pytest.mark.slow
def test_smoke_search_on_chexpert_searches_the_policy_and_scores_5_observations(small_chexpert, tmp_path):
    parent, trials = run_search(tmp_path, ["--data", str(small_chexpert)])
    assert parent.data.tags["cxr.dataset"] == "chexpert"
    policies = [r.data.params["data.policy"] for r in sorted(trials, key=lambda r: r.info.start_time)]
    assert policies[0] == "mixed" and set(policies) <= {"mixed", "ones", "zeros", "ignore"}
    assert len(set(policies)) > 1, f"policy not searched: {policies}"
    for run in trials:
        m = run.data.metrics
        per_label = [m[f"val_auc/{lab}"] for lab in CHEXPERT_EVAL_LABELS]
        assert m["val_auc"] == pytest.approx(sum(per_label) / 5, abs=1e-6)
        # AUCs of the other nine observations are logged but not averaged in
        assert any(k.startswith("val_auc/") and k[8:] not in CHEXPERT_EVAL_LABELS for k in m)
