"""A search interrupted (Ctrl-C) and resumed makes the same ASHA stop decisions as the same search,
same seed, run without a break: the rungs come back with the experiment (search/scheduling/trial_state.py), and
so does the Optuna study with the cut trials as PRUNED."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.search.simulation.simulated import interrupt_after, trial_runs

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
# One trial at a time, so the order of results (and so every ASHA decision) is fixed.
FLAGS = ["--smoke-test", "--num-samples", "4", "--max-concurrent", "1", "--seed", "3"]


def command(work: Path, name: str, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CXR_TUNE_CACHE": str(work / "cxr-cache")}
    env.pop("RAY_ADDRESS", None)
    args = [sys.executable, str(ROOT / "search" / "dual_weights.py"), *FLAGS, "--storage-path", str(work / "rr"),
            "--name", name, "--experiment-name", name, "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}", *extra]
    return args, env


def run(work, name, *extra):
    args, env = command(work, name, *extra)
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def decisions(work: Path, name: str) -> list[tuple]:
    """(searched values, outcome, stop epoch) of every trial, in the order the trials started."""
    return [(tuple(sorted(r.data.params.items())), r.data.tags["cxr.status"], r.data.tags.get("cxr.stopped_at_epoch"))
            for r in trial_runs(work, name)]


def test_a_resumed_search_stops_the_same_trials(tmp_path):
    run(tmp_path, "whole")
    whole = decisions(tmp_path, "whole")
    # The cut comes as the first trial after the second that ASHA stopped at epoch 1 starts, so that
    # trial's epoch-1 result is the first ASHA sees after the resume. It was stopped at that rung in
    # the uninterrupted search: a resumed ASHA with empty rungs (Tune's own) has no cutoff there and
    # would let it go on.
    assert len(whole) == 4
    k = next((i for i, d in enumerate(whole) if i >= 2 and d[1:] == ("stopped_early", "1")), None)
    assert k is not None, f"no trial after the second was stopped at epoch 1: {[d[1:] for d in whole]}"

    cut = interrupt_after(*command(tmp_path, "cut"), tmp_path, "cut", k + 1)
    assert len(cut) == k + 1 and "val_auc" not in cut[k].data.metrics, f"trial {k + 1} reported before the cut"
    assert cut[k].data.tags["cxr.status"] == "interrupted" and cut[k].info.status == "KILLED"
    run(tmp_path, "cut", "--resume")
    assert decisions(tmp_path, "cut") == whole
    # the resumed study told Optuna what ASHA did: the cut trials PRUNED with their epoch values
    study = searcher_study(tmp_path / "rr" / "cut")
    states = sorted((t.state.name, tuple(t.intermediate_values.values())) for t in study.get_trials())
    expected = sorted(("PRUNED" if r.data.tags["cxr.status"] == "stopped_early" else "COMPLETE",
                       tuple(m.value for m in sorted(MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
                                                     .get_metric_history(r.info.run_id, "val_auc"),
                                                     key=lambda m: m.step)))
                      for r in trial_runs(tmp_path, "cut"))
    assert states == expected and "PRUNED" in {s for s, _ in states}


def searcher_study(exp: Path):
    """The Optuna study in the search's newest saved searcher state."""
    from search.scheduling.trial_state import ResumableOptunaSearch

    searcher = ResumableOptunaSearch(metric="val_auc", mode="max")
    searcher.restore(str(max(exp.glob("searcher-state-*.pkl"))))  # named by session start; synced together
    return searcher._ot_study
