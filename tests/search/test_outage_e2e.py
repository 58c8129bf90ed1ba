"""A real `mlflow server` dies in the middle of a smoke search: the search must finish, and every
trial and every epoch's metrics must reach MLflow exactly once, now or through search.sync."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow



class Server:
    def __init__(self, db: Path, port: int):
        self.db, self.port, self.proc = db, port, None
        self.url = f"http://127.0.0.1:{port}"

    def start(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{self.db}", "--default-artifact-root", str(self.db.parent / "art"),
             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2)
                return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not start")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the server and its gunicorn/uvicorn workers
            self.proc.wait()


def search(work: Path, uri: str, *flags) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CXR_TUNE_CACHE": str(work.parent / "cxr-cache")}
    env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, str(ROOT / "search" / "dual_weights.py"), "--smoke-test",
                             "--storage-path", str(work / "rr"), "--name", "smoke", "--tracking-uri", uri, *flags],
                            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_metrics(db: Path, timeout=300):
    """Until a trial has logged its first epoch (read straight from the server's database)."""
    client, deadline = MlflowClient(f"sqlite:///{db}"), time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            exp = client.get_experiment_by_name("dual_weights")
            if exp and client.search_runs([exp.experiment_id], "metrics.val_auc > 0"):
                return
        except Exception:  # noqa: BLE001 - the server may be creating its tables
            pass
        time.sleep(0.5)
    raise AssertionError("no trial logged a metric")


def ray_epochs(work: Path) -> dict[str, list[int]]:
    """Epochs each trial reported to Tune: the truth MLflow must match."""
    out = {}
    for result in (work / "rr" / "smoke").glob("trial_*/result.json"):
        rows = [json.loads(l) for l in result.read_text().splitlines() if l.strip()]
        out[result.parent.name[len("trial_"):]] = [r["epoch"] for r in rows if "epoch" in r]
    return out


def assert_exactly_once(uri: str, work: Path):
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("dual_weights")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags["cxr.role"] == "search"]
    trials = {r.data.tags["cxr.trial_id"]: r for r in runs if r.data.tags["cxr.role"] == "trial"}
    expected = ray_epochs(work)
    assert len(parents) == 1 and set(trials) == set(expected) and len(expected) >= 3
    for trial_id, run in trials.items():
        history = client.get_metric_history(run.info.run_id, "val_auc")
        assert sorted(m.step for m in history) == expected[trial_id], trial_id  # each epoch once
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    assert {r.info.status for r in runs} == {"FINISHED"}  # nothing left RUNNING
    assert parents[0].data.tags["cxr.best_run_id"] in {r.info.run_id for r in trials.values()}
    return parents[0]


def test_a_server_down_past_the_retry_window_and_back_loses_nothing(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    server = Server(tmp_path / "mlflow.db", free_port()).start()
    try:
        proc = search(work, server.url)
        wait_for_metrics(server.db)
        server.kill()
        time.sleep(25)  # the client gives up on a call after 1 retry (~2 s); the outbox keeps the events
        server.start()
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out[-4000:]
        assert "the search goes on" in out and "answers again" in out
        assert not (work / "rr" / "smoke" / "mlflow_pending.jsonl").exists()
        assert_exactly_once(server.url, work)
    finally:
        server.kill()


def test_a_server_that_never_comes_back_leaves_a_file_that_sync_delivers_to_a_fresh_one(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    server = Server(tmp_path / "mlflow.db", free_port()).start()
    try:
        proc = search(work, server.url, "--tracking-drain-timeout", "5")
        wait_for_metrics(server.db)
        server.kill()
        out, _ = proc.communicate(timeout=900)
    finally:
        server.kill()
    assert proc.returncode == 0, out[-4000:]
    pending = work / "rr" / "smoke" / "mlflow_pending.jsonl"
    assert pending.is_file() and f"python -m search.sync {pending}" in out
    fresh = Server(tmp_path / "fresh.db", free_port()).start()
    try:
        for _ in range(2):  # the second sync must change nothing
            sync = subprocess.run([sys.executable, "-m", "search.sync", str(pending), "--tracking-uri", fresh.url],
                                  cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert sync.returncode == 0, sync.stdout + sync.stderr
            assert_exactly_once(fresh.url, work)
    finally:
        fresh.kill()
