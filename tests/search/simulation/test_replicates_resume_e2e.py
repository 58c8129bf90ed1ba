"""A simulated search with replicate rungs, interrupted (Ctrl-C) while a replicate runs and resumed,
makes the same decisions as the same search run without a break: the rungs, the queue of seeds to
train and which trial re-trains which come back with the searcher's state (search/scheduling/replicas.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.search.simulation.simulated import ROOT, TABLE, interrupt_after, trial_runs

pytestmark = pytest.mark.slow
# one trial at a time, so the order of results (every ASHA and replicate decision) is fixed
FLAGS = ["--simulate", str(TABLE), "--simulate-speedup", "20", "--num-samples", "7", "--max-concurrent", "1",
         "--replicates", "2", "--grace-period", "2", "--seed", "5"]


def command(work: Path, name: str, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    return [sys.executable, str(ROOT / "search" / "dual_weights.py"), *FLAGS, "--storage-path", str(work / "rr"),
            "--name", name, "--experiment-name", name, "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}",
            *extra], env


def decisions(work: Path, name: str) -> list[tuple]:
    """(searched values and seed, outcome, stop epoch, replica) of every trial, in start order."""
    return [(tuple(sorted(r.data.params.items())), r.data.tags["cxr.status"], r.data.tags.get("cxr.stopped_at_epoch"),
             r.data.tags.get("cxr.replica")) for r in trial_runs(work, name)]


def test_a_search_resumed_in_its_replicate_rungs_makes_the_same_decisions(tmp_path):
    args, env = command(tmp_path, "whole")
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    whole = decisions(tmp_path, "whole")
    first = next((i for i, d in enumerate(whole) if d[3]), None)
    assert first is not None and first + 1 < len(whole), f"no replicate with trials after it: {whole}"

    cut = interrupt_after(*command(tmp_path, "cut"), tmp_path, "cut", first + 1)   # while the first replicate runs
    assert len(cut) == first + 1 and cut[first].data.tags.get("cxr.replica")
    args, env = command(tmp_path, "cut", "--resume")
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert decisions(tmp_path, "cut") == whole
