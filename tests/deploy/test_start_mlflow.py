"""deploy/start_mlflow.sh as on the Ray head: the basic-auth app, credentials from the environment.

SQLite stands in for PostgreSQL and a folder for S3; the script, the auth app and the clients'
login are the real ones. Skipped where Flask-WTF (`mlflow[auth]`, in the deploy image) is missing.
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.ports import free_port

pytest.importorskip("flask_wtf", reason="the basic-auth app needs mlflow[auth]")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow



def script_env(tmp_path, port, password, backend):
    return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "MLFLOW_PORT": str(port), "MLFLOW_WORKERS": "1",
            "MLFLOW_BACKEND_STORE_URI": backend,
            "MLFLOW_AUTH_DATABASE_URI": f"sqlite:///{tmp_path / 'users.db'}",
            "MLFLOW_ARTIFACTS_DESTINATION": str(tmp_path / "artifacts"),
            "MLFLOW_AUTH_ADMIN_USERNAME": "admin", "MLFLOW_AUTH_ADMIN_PASSWORD": password}


@pytest.fixture
def server(tmp_path):
    port, password = free_port(), secrets.token_hex(12)
    env = script_env(tmp_path, port, password, f"sqlite:///{tmp_path / 'runs.db'}")
    started = []

    def start():
        proc = subprocess.run(["bash", str(ROOT / "deploy" / "start_mlflow.sh")], env=env, capture_output=True,
                              text=True, timeout=180, start_new_session=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        pid = int((tmp_path / ".cxr-tune" / "mlflow.pid").read_text())
        started.append(pid)
        return pid

    try:
        yield {"url": f"http://127.0.0.1:{port}", "password": password, "home": tmp_path, "start": start}
    finally:
        for pid in started:  # the server and whatever it forked share the script's session
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def get(url: str, auth: tuple | None = None) -> int:
    req = urllib.request.Request(url + "/api/2.0/mlflow/experiments/search?max_results=1")
    if auth:
        import base64
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_basic_auth_server_from_the_environment(server, monkeypatch):
    first = server["start"]()
    url, password = server["url"], server["password"]
    assert get(url) == 401                                   # nobody browses without a login
    assert get(url, ("admin", "wrong")) == 401
    assert get(url, ("admin", password)) == 200
    ini = server["home"] / ".cxr-tune" / "mlflow_auth.ini"
    assert oct(ini.stat().st_mode & 0o777) == "0o600" and password not in ini.read_text()

    # The search driver logs in the way cluster_env.sh sets it up.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    run = client.create_run(client.create_experiment("dual_weights"))
    client.log_metric(run.info.run_id, "val_auc", 0.5, step=1)
    assert client.get_run(run.info.run_id).data.metrics == {"val_auc": 0.5}

    # A re-run of `ray up` restarts the server: the old process is gone, the runs are kept.
    second = server["start"]()
    assert second != first and not Path(f"/proc/{first}").exists()
    assert client.get_metric_history(run.info.run_id, "val_auc")[0].value == 0.5


@pytest.mark.parametrize("backend, said", [
    # the driver is missing: one line from the script, before the server starts
    ("mysql+pymysql://u:p@127.0.0.1:1/mlflow", "driver (pymysql) is not installed"),
])
def test_a_server_that_cannot_start_fails_the_script_in_seconds(tmp_path, backend, said):
    pytest.importorskip("psycopg")
    if "pymysql" in backend and importlib.util.find_spec("pymysql"):
        pytest.skip("pymysql is installed here")
    env = script_env(tmp_path, free_port(), "x" * 16, backend.format(port=free_port()))
    t0 = time.monotonic()
    proc = subprocess.run(["bash", str(ROOT / "deploy" / "start_mlflow.sh")], env=env, capture_output=True,
                          text=True, timeout=170, start_new_session=True)
    took = time.monotonic() - t0
    assert proc.returncode != 0 and said in proc.stderr, proc.stderr[-2000:]
    assert "u:p@" not in proc.stderr.splitlines()[0]  # the first line names no password
    assert took < 60, f"{took:.0f} s"
    print(f"\nstart_mlflow.sh failed in {took:.1f} s: {proc.stderr.splitlines()[0][:120]}")
