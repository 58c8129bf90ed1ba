"""The report reads MLflow alone: importing it, and running its command's --help, loads no Ray."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_report_and_the_tracking_store_import_without_ray():
    code = ("import sys, search.report, search.report.cli, search.tracking.store, search.tracking.sync, "
            "search.evaluation.cli; print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_python_m_search_report_help_runs():
    out = subprocess.run([sys.executable, "-m", "search.report", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and "--tracking-uri" in out.stdout and "--parent" in out.stdout, out.stderr
