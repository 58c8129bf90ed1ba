"""Is the MLflow tracking store there? Asked once, before a search or a command starts work.

A mistyped or dead `--tracking-uri` must not cost minutes of client retries (MLflow's default
window is about 4 minutes per call) or a search whose results have nowhere to go: it is
reported within TIMEOUT_S seconds, naming the URI and the fix.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from trainables.errors import UserError, one_line

TIMEOUT_S = 15.0
FIX = ("start it (deploy/start_mlflow.sh, or `mlflow server --host 0.0.0.0 --port 5000`), or pass "
       "--tracking-uri (env MLFLOW_TRACKING_URI) naming one that runs")


class TrackingUnavailable(UserError):
    pass


def check_tracking(uri: str, timeout: float | None = None) -> None:
    timeout = TIMEOUT_S if timeout is None else timeout
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https"):
        _check_http(uri, timeout)
    elif scheme == "sqlite":
        _check_folder(uri, uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else "")
    elif scheme in ("", "file"):
        _check_folder(uri, urlparse(uri).path if scheme else uri, is_dir=True)
    elif scheme not in ("databricks", "databricks-uc", "uc"):  # a database URI: ask the store itself
        _check_store(uri, timeout)


def _check_http(uri: str, timeout: float) -> None:
    import requests

    deadline, cause = time.monotonic() + timeout, "no answer"
    while True:
        left = deadline - time.monotonic()
        try:
            requests.get(uri.rstrip("/") + "/health", timeout=max(0.5, min(5.0, left)), **tls_options())
            return  # any HTTP answer: a server is there (auth or API errors show up on first use)
        except requests.RequestException as err:
            cause = _cause(err)
        if time.monotonic() + 1.0 >= deadline:
            raise TrackingUnavailable(f"MLflow tracking server {uri} did not answer within {timeout:g} s "
                                      f"({cause}); {FIX}")
        time.sleep(1.0)


def tls_options() -> dict:
    """MLflow's own TLS settings, so the check trusts what the MLflow client trusts."""
    verify = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or True
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        verify = False
    cert = os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH")
    return {"verify": verify, **({"cert": cert} if cert else {})}


# What a socket error says, without urllib3's nested reprs around it.
REASONS = ("Connection refused", "Name or service not known", "nodename nor servname", "timed out",
           "No route to host", "Network is unreachable", "certificate verify failed")


def _cause(err: Exception) -> str:
    text = str(err)
    reason = next((r for r in REASONS if r in text), None)
    return f"{type(err).__name__}: {reason}" if reason else f"{type(err).__name__}: {one_line(text)[:160]}"


def _check_folder(uri: str, path: str, is_dir: bool = False) -> None:
    if not path or path == ":memory:":
        return
    target = Path(path).expanduser()
    folder = target if is_dir and target.exists() else target.parent
    while is_dir and not folder.exists() and folder != folder.parent:
        folder = folder.parent  # MLflow creates a file store's missing folders itself
    if not folder.is_dir():
        raise TrackingUnavailable(f"--tracking-uri {uri}: folder {folder} does not exist; create it, or "
                                  "pass another --tracking-uri (env MLFLOW_TRACKING_URI)")
    if not os.access(folder, os.W_OK):
        raise TrackingUnavailable(f"--tracking-uri {uri}: folder {folder} is not writable; fix its "
                                  "permissions, or pass another --tracking-uri (env MLFLOW_TRACKING_URI)")


def _check_store(uri: str, timeout: float) -> None:
    from mlflow.tracking import MlflowClient

    outcome: list = []

    def ask():
        try:
            MlflowClient(uri).search_experiments(max_results=1)
            outcome.append(None)
        except Exception as err:  # noqa: BLE001 - any failure means the store is not usable
            outcome.append(err)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        raise TrackingUnavailable(f"MLflow tracking store {uri} did not answer within {timeout:g} s; {FIX}")
    if outcome[0] is not None:
        err = outcome[0]
        raise TrackingUnavailable(f"MLflow tracking store {uri} failed ({type(err).__name__}: "
                                  f"{one_line(err)[:200]}); {FIX}")
