"""What hundreds of trials cost the driver, the tracking and the UI: simulated searches (the real
runner over a recorded table, `--simulate`) of 100, 300 and 1,000 trials on this machine.

    python benchmarks/scale.py [--sizes 100 300 1000] [--work DIR]

Each size is one `search/dual_weights.py --simulate TABLE --num-samples N` run with epochs that take
no time (`--simulate-speedup 1e6`), so its wall time is Tune's and the tracking's own cost, 8 trials
at once (0.25 CPU each). Printed per size: wall time and overhead per trial (wall / N: Tune, the
tracking and Ray's start of each trial's worker process), the driver's own CPU seconds per trial, its
peak RSS, MLflow runs and metric rows written, how long the tracking queue took to drain at the end,
`python -m search.report` and `python -m search.export --top 5` times, and the MLflow UI's first
screen (the search's printed link in headless Chromium): seconds until the runs table shows val_auc,
and whether the charts render. Figures, not pass/fail; the last line is machine-readable.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TABLE = ROOT / "benchmarks" / "data" / "dualchexnet_cpu_curves.csv"
UI_LIMIT_S = 120


def run(cmd: list[str], cwd: Path, log: Path) -> tuple[float, float, float, str]:
    """(wall seconds, peak RSS of the command's own process in MiB, its own CPU seconds, its output)."""
    import psutil

    start, peak, cpu = time.perf_counter(), 0, 0.0
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
                times = watched.cpu_times()
                cpu = times.user + times.system
            except psutil.Error:
                pass
            time.sleep(0.2)
    wall = time.perf_counter() - start
    text = log.read_text()
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[1:3])} failed (exit {proc.returncode}); see {log}")
    return wall, peak / 2 ** 20, cpu, text


def rows(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as con:
        count = [con.execute(f"select count(*) from {table}").fetchone()[0] for table in ("runs", "metrics")]
    return count[0], count[1]


def first_screen(db: Path, printed: str, work: Path) -> tuple[float, bool]:
    """(seconds from opening the printed link until the runs table shows val_auc, whether the chart
    view draws its learning curves and parallel coordinates), with `mlflow ui` on the search's store."""
    from tests import browser

    with browser.mlflow_ui(db, work, printed) as link, browser.page() as page:
        start = time.perf_counter()
        page.goto(link)
        page.locator(".ag-header").get_by_text("val_auc").first.wait_for(timeout=UI_LIMIT_S * 1000)
        page.locator(".ag-row").first.wait_for(timeout=UI_LIMIT_S * 1000)
        table_s = time.perf_counter() - start
        page.screenshot(path=str(work / "mlflow-ui-runs.png"))
        page.goto(f"{link}&compareRunsMode=CHART")
        try:
            page.get_by_text("Parallel Coordinates").wait_for(timeout=UI_LIMIT_S * 1000)
            cards = page.locator("[data-testid=experiment-view-compare-runs-card]")
            cards.nth(0).get_by_text("(val_auc)").first.wait_for(timeout=UI_LIMIT_S * 1000)
            charts = cards.nth(0).locator("svg").count() > 0 and cards.nth(1).locator("svg").count() > 0
        except Exception:   # noqa: BLE001 - a chart that never draws is the finding, not a crash
            charts = False
        page.screenshot(path=str(work / "mlflow-ui-charts.png"))
    return table_s, charts


def measure(n: int, work: Path, speedup: float) -> dict:
    shutil.rmtree(work, ignore_errors=True)   # a rerun's runs must not count twice
    work.mkdir(parents=True)
    db = work / "mlflow.db"
    uri = f"sqlite:///{db}"
    cmd = [sys.executable, str(ROOT / "search" / "dual_weights.py"), "--simulate", str(TABLE), "--num-samples", str(n),
           "--simulate-speedup", str(speedup), "--cpus-per-trial", "0.25", "--storage-path", str(work / "rr"),
           "--name", "scale", "--tracking-uri", uri]
    wall, rss, cpu, out = run(cmd, work, work / "search.log")
    drained = re.search(r"MLflow took the last (\d+) queued tracking event\(s\) in ([\d.]+) s", out)
    report_s, _, _, _ = run([sys.executable, "-m", "search.report", "--tracking-uri", uri, "--experiment",
                          "dual_weights", "--out", str(work / "report")], ROOT, work / "report.log")
    export_s, _, _, _ = run([sys.executable, "-m", "search.export", "--tracking-uri", uri, "--experiment",
                             "dual_weights", "--top", "5", "--out", str(work / "exports")], ROOT, work / "export.log")
    runs, metric_rows = rows(db)
    link = next(line.strip() for line in out.splitlines() if "viewStateShareKey=" in line)
    ui_s, charts = first_screen(db, link, work)
    return {"trials": n, "wall_s": wall, "overhead_s_per_trial": wall / n, "driver_cpu_s_per_trial": cpu / n,
            "driver_rss_mib": rss, "runs": runs,
            "metric_rows": metric_rows, "drain_s": float(drained.group(2)) if drained else 0.0,
            "drained_events": int(drained.group(1)) if drained else 0, "report_s": report_s, "export_s": export_s,
            "ui_first_screen_s": ui_s, "charts": charts}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    p.add_argument("--speedup", type=float, default=1e6, help="--simulate-speedup: 1e6 makes epochs take no time")
    p.add_argument("--work", type=Path, default=Path("scale-work"))
    args = p.parse_args(argv)
    results = []
    print("| trials | wall (s) | overhead per trial (s) | driver CPU per trial (s) | driver peak RSS (MiB) | "
          "MLflow runs | metric rows | queue drained at the end (s) | report (s) | export --top 5 (s) | "
          "UI first screen (s) | charts render |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in args.sizes:
        r = measure(n, args.work.resolve() / f"n{n}", args.speedup)
        results.append(r)
        print(f"| {n} | {r['wall_s']:.0f} | {r['overhead_s_per_trial']:.2f} | {r['driver_cpu_s_per_trial']:.2f} | "
              f"{r['driver_rss_mib']:.0f} | {r['runs']} | "
              f"{r['metric_rows']} | {r['drain_s']:.1f} ({r['drained_events']} events) | {r['report_s']:.1f} | "
              f"{r['export_s']:.1f} | {r['ui_first_screen_s']:.1f} | {'yes' if r['charts'] else 'no'} |", flush=True)
    first, last = results[0], results[-1]
    print(f"scale: trials={last['trials']} wall_s={last['wall_s']:.0f} "
          f"overhead_s_per_trial={last['overhead_s_per_trial']:.2f} "
          f"driver_rss_mib_{first['trials']}={first['driver_rss_mib']:.0f} "
          f"driver_rss_mib_{last['trials']}={last['driver_rss_mib']:.0f} report_s={last['report_s']:.1f} "
          f"ui_first_screen_s={last['ui_first_screen_s']:.1f}")


if __name__ == "__main__":
    main()
