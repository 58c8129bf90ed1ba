"""Recording the replay's table: DualCheXNet's grid on the CPU profile, every cell to the last epoch,
once per seed, each as the user runs it (`search/dual_weights.py --grid`), then every cell's val AUC
per epoch written to a CSV with the command and code version that made it.

Each seed is one grid run under `<work>/ray_results/grid-s<seed>`; a run that was interrupted is
continued with `--resume` (Ray Tune restores it), a finished one is only read. So the recording may
be made in parts, in several sessions, or on another machine whose `<work>` is copied here.
"""
from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "search" / "dual_weights.py"
PARAMS = ["loss.lam", "heads.fusion", "heads.w_d", "heads.w_r"]
FIELDS = ["seed", *PARAMS, "epoch", "val_auc", "seconds"]
HEADER = """# table: dualchexnet-cpu
# metric: val_auc max
# param: loss.lam float 0 2
# param: heads.fusion choice concat|avg|max
# param: heads.w_d float 0 0.5
# param: heads.w_r float 0 0.5
# warm: loss.lam=0.5 heads.fusion=concat heads.w_d=0.3 heads.w_r=0.3
# pool: {pool}
# DualCheXNet grid (5 lambdas x 7 fusions), CPU profile, {max_t} epochs, embedded synthetic set
# recorded by: python benchmarks/replay.py record --seeds S (one seed at a time, resumable)
# each seed S: python search/dual_weights.py {command}
"""
POOL = "0 1 2"   # the seeds a replayed search may read; the rest score its pick


def grid_command(work: Path, seed: int | str, max_t: int) -> list[str]:
    return [sys.executable, str(SCRIPT), "--grid", "--grace-period", str(max_t), "--seed", str(seed),
            "--storage-path", str(work / "ray_results"), "--name", f"grid-s{seed}",
            "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"]


def run_grid(work: Path, seed: int, max_t: int) -> None:
    """The seed's grid run, continued if an earlier one was interrupted; its output in grid-s<seed>.log."""
    done = work / f"done-s{seed}"
    if done.exists():
        return
    cmd = grid_command(work, seed, max_t)
    if (work / "ray_results" / f"grid-s{seed}").exists():
        cmd.append("--resume")
    print(f"recording seed {seed}: {' '.join(cmd[1:])}", flush=True)
    start = time.perf_counter()
    with open(work / f"grid-s{seed}.log", "a") as log:
        proc = subprocess.run(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        sys.exit(f"error: the seed-{seed} grid failed (exit {proc.returncode}); see {work / f'grid-s{seed}.log'} "
                 "and run the same command again to continue it")
    done.write_text(f"{time.perf_counter() - start:.0f}\n")


def params_of(config: dict) -> list:
    """The table's param cells of a grid trial: Concat's weights; none for avg and max, which ignore them."""
    heads = config["heads"]
    weights = [heads["w_d"], heads["w_r"]] if heads["fusion"] == "concat" else ["", ""]
    return [config["loss"]["lam"], heads["fusion"], *weights]


def trial_epochs(trial: Path, max_t: int) -> tuple[dict, dict]:
    """({epoch: (val AUC, seconds)}, config) of one finished trial from its Ray results (a retried
    epoch: its last report); exits naming the trial when it did not run every epoch."""
    per_epoch, config = {}, None
    for line in (trial / "result.json").read_text().splitlines():
        r = json.loads(line)
        if isinstance(r.get("val_auc"), float) and math.isfinite(r["val_auc"]):
            per_epoch[r["epoch"]] = (r["val_auc"], r.get("time_this_iter_s", math.nan))
            config = r["config"]
    if sorted(per_epoch) != list(range(1, max_t + 1)):
        sys.exit(f"error: {trial} has epochs {sorted(per_epoch)}, not 1..{max_t}; run the same command to finish it")
    return per_epoch, config


def read_grid(work: Path, seed: int, max_t: int) -> list[dict]:
    """Every cell's per-epoch val AUC from the seed's Ray results (a retried epoch: its last report)."""
    rows = []
    for trial in sorted((work / "ray_results" / f"grid-s{seed}").glob("trial_*")):
        per_epoch, config = trial_epochs(trial, max_t)
        cells = dict(zip(PARAMS, params_of(config)))
        rows += [{"seed": seed, **cells, "epoch": e, "val_auc": f"{auc:.6f}", "seconds": f"{secs:.1f}"}
                 for e, (auc, secs) in sorted(per_epoch.items())]
    if len(rows) != 35 * max_t:
        sys.exit(f"error: seed {seed}'s grid has {len(rows) // max_t} finished cells, not 35")
    return rows


def code_versions(work: Path) -> dict[str, str]:
    """The code version each grid ran (its parent run's cxr.code_version tag), by search name."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, filter_string="tags.`cxr.role` = 'search'")
    return {r.info.run_name: r.data.tags.get("cxr.code_version", "unknown") for r in runs}


def kept(out: Path, seeds: list[int]) -> tuple[list[dict], list[str]]:
    """The rows and per-seed lines of `out` for seeds recorded before and not among `seeds`."""
    if not out.is_file():
        return [], []
    lines = out.read_text().splitlines()
    notes = [line for line in lines if line.startswith("# seed ") and int(line.split()[2].rstrip(":")) not in seeds]
    rows = [r for r in csv.DictReader(line for line in lines if not line.startswith("#"))
            if int(r["seed"]) not in seeds]
    return rows, notes


def seed_note(results: Path, seed: int, version: str, rows: list[dict]) -> str:
    """The seed's line in the table's header: its code version and what it cost. A seed recorded in
    parts (Tune restores its run in `results`; one experiment state file per part) has no one wall
    time, so the cost is its configs' epochs summed."""
    trial_seconds = sum(float(r["seconds"]) for r in rows if int(r["seed"]) == seed)
    parts = len(list(results.glob("experiment_state-*.json")))
    return (f"# seed {seed}: code {version}, {trial_seconds:.0f} trial-seconds over its cells, "
            f"recorded in {parts} part(s)")


def record(work: Path, seeds: list[int], out: Path, max_t: int) -> None:
    """Run what is missing of `seeds`, then write `out` with them and every seed recorded there before."""
    work.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        run_grid(work, seed, max_t)
    rows, notes = kept(out, seeds)
    new = [r for seed in seeds for r in read_grid(work, seed, max_t)]
    rows += new
    versions = code_versions(work)
    notes += [seed_note(work / "ray_results" / f"grid-s{s}", s, versions.get(f"grid-s{s}", "unknown"), new)
              for s in seeds]
    notes.sort(key=lambda line: int(line.split()[2].rstrip(":")))
    rows.sort(key=lambda r: int(r["seed"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(grid_command(Path("<work>"), "S", max_t)[2:])
    with open(out, "w", newline="") as f:
        f.write(HEADER.format(pool=POOL, max_t=max_t, command=command) + "\n".join(notes) + "\n")
        writer = csv.DictWriter(f, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    recorded = sorted({int(r["seed"]) for r in rows})
    print(f"wrote {len(rows)} rows (seeds {recorded} x 35 cells x {max_t} epochs) to {out}")
