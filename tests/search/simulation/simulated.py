"""Runs a search script with --simulate on the committed DualCheXNet table, as a user does (a
subprocess), and reads what it left in MLflow."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[3]
TABLE = ROOT / "benchmarks" / "data" / "dualchexnet_cpu_curves.csv"


def run_simulated(work: Path, *extra: str, script: str = "dual_weights", table: Path = TABLE, timeout: int = 600):
    """-> (printed output, the parent run, the trial runs sorted by start time)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, str(ROOT / "search" / f"{script}.py"), "--simulate", str(table),
                           "--storage-path", str(work / "rr"), "--name", "sim", *extra],
                          cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"simulated search failed:\n{out[-5000:]}"
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(script).experiment_id], max_results=5000)
    parents = [r for r in runs if r.data.tags.get("cxr.role") == "search"]
    assert len(parents) == 1
    trials = sorted((r for r in runs if r.data.tags.get("cxr.role") == "trial"), key=lambda r: r.info.start_time)
    return prose(out), parents[0], trials


def prose(out: str) -> str:
    """The output as one line of words: the summary wraps its lines at 100 columns (search/console.py),
    so a phrase a test looks for may span two."""
    return " ".join(out.split())


def overlap(runs) -> int:
    """The most runs whose [start, end) intervals overlap at one instant."""
    events = sorted([(r.info.end_time, -1) for r in runs] + [(r.info.start_time, 1) for r in runs])
    most = now = 0
    for _, step in events:   # an end at the same millisecond as a start comes first
        now += step
        most = max(most, now)
    return most


def trial_runs(work: Path, name: str) -> list:
    """The trial runs of experiment `name` in <work>/mlflow.db by start time, while a search writes them."""
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    try:
        exp = client.get_experiment_by_name(name)
        return client.search_runs([exp.experiment_id], "tags.`cxr.role` = 'trial'",
                                  order_by=["attributes.start_time ASC"]) if exp else []
    except Exception:  # noqa: BLE001 - the store may be mid-creation
        return []


def interrupt_after(args: list, env: dict, work: Path, name: str, trials: int) -> list:
    """Runs the search `args` and presses Ctrl-C once experiment `name` has `trials` trial runs (Tune
    saves the experiment and stops); -> its trial runs then."""
    proc = subprocess.Popen(args, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(trial_runs(work, name)) < trials and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the search ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=300)
    return trial_runs(work, name)
