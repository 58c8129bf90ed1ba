"""A real headless browser for the tests that check what a person sees: Debian's Chromium (or
another Chromium-family browser on PATH) driven by Playwright, which downloads no browser of its own.
`tests/install_chromium.sh` (run by the README's test command) installs Chromium where it is missing."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# As root in a sandbox, with no network beyond localhost: no sandbox, no GPU, no background calls.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def executable() -> str:
    found = os.environ.get("CXR_CHROMIUM") or next(filter(None, map(shutil.which, NAMES)), None)
    if not found:
        pytest.fail("no Chromium on PATH: run `bash tests/install_chromium.sh` (Debian's chromium), "
                    "or set CXR_CHROMIUM to a Chromium-family browser")
    return found


@contextmanager
def page(width: int = 2400, height: int = 1300):
    """A fresh browser profile's page, closed (with its browser) on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable(), args=FLAGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


@contextmanager
def mlflow_ui(db, cwd, link: str | None = None):
    """`mlflow ui` on the SQLite store `db`, as a user starts it; -> its base URL, or `link` (a link a
    search printed, for the default port 5000) moved to the port it listens on. Stopped on the way out."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.ports import free_port, stop, wait_http

    port = free_port()
    with open(Path(cwd) / "mlflow-ui.log", "w") as log:
        ui = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{db}",
                               "--host", "127.0.0.1", "--port", str(port)], cwd=cwd, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", ui)
        base = f"http://127.0.0.1:{port}"
        yield link.replace("http://127.0.0.1:5000", base) if link else base
    finally:
        stop(ui, group=True)
    assert ui.poll() is not None
