"""Search efficiency: does ASHA + TPE find what the paper's grid finds, for less compute?

On the embedded synthetic set with the CPU profile (the no-argument run's setup), it runs
1. DualCheXNet's grid (`--grid`: λ {0, .5, 1, 1.5, 2} x 7 fusions = 35 cells) once, every cell to
   the last epoch as the paper trains them (ASHA's grace period = max epochs: nothing is cut);
   the grid is deterministic, so one run is its figure;
2. the search (Optuna TPE warm-started at the paper's config, ASHA) at each --budgets number of
   trials, for each --seeds,
each as the user runs it (`search/dual_weights.py`, a subprocess), one at a time. It prints, per
run: the val AUC of its pick (ranked as best_config.yaml ranks trials: trained further first, then val
AUC; with the profile's --confirm, the confirmed pick and its mean over seeds), the highest val AUC any
trial reached (a cut one too), the trial-epochs trained (confirmation included), and the wall
time; then, per search run, the trial-epochs after which its pick first came within --tolerance of
the grid's best, and their ratio to the grid's trial-epochs.
Every seed is printed, not the best one. For the grid it also prints how well each epoch's val AUC
ranks the cells as the last epoch does (Spearman): what ASHA's cut at that epoch can know.

    python benchmarks/search_efficiency.py               # grid + the CPU profile's budget and twice it x seeds 0-2
    python benchmarks/search_efficiency.py --seeds 0 --skip-grid --grid-best 0.7454 --grid-epochs 210
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # search, spaces
SCRIPT = ROOT / "search" / "dual_weights.py"

import yaml  # noqa: E402

from search.picking.ranking import rank_key  # noqa: E402
from search.tracking.store import BEST_CONFIG_FILE  # noqa: E402


def run_search(work: Path, name: str, extra: list[str]) -> dict:
    """One search as a subprocess; its trials' epoch results, read back from Ray's result files."""
    storage = work / "ray_results"
    cmd = [sys.executable, str(SCRIPT), "--storage-path", str(storage), "--name", name,
           "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return {"name": name, "wall": wall, "epochs": result_epochs(storage / name),
            "confirmed": confirmed(storage, name)}


def result_epochs(exp: Path) -> list:
    """Every epoch result of a Tune run's trials: (time, trial, epoch, val_auc), in time order."""
    epochs = []
    for result in exp.glob("trial_*/result.json"):
        for line in result.read_text().splitlines():
            r = json.loads(line)
            if isinstance(r.get("val_auc"), float) and math.isfinite(r["val_auc"]):
                epochs.append((r["timestamp"], result.parent.name, r["epoch"], r["val_auc"]))
    return sorted(epochs)


def confirmed(storage: Path, name: str) -> dict | None:
    """A --confirm search's pick, from its best_config.yaml: the val AUC of its own seed, its mean over
    the seeds, and the trial-epochs the confirmation (`<name>-confirm`, beside the search) trained."""
    path = storage / name / BEST_CONFIG_FILE
    metrics = yaml.safe_load(path.read_text())["metrics"] if path.exists() else {}
    if "val_auc_mean" not in metrics:
        return None
    return {"value": metrics["val_auc"], "mean": metrics["val_auc_mean"],
            "epochs": len(result_epochs(storage / f"{name}-confirm"))}


def score(run: dict, target: float) -> tuple[float, str, int, int | None]:
    """(the pick's val AUC, its mean over seeds or "-", trial-epochs, trial-epochs until the pick is within
    the target or None). A confirmed pick is known only once the confirmation has run: all its epochs count."""
    c, epochs = run["confirmed"], run["epochs"]
    if c is None:
        return pick(epochs), "-", len(epochs), epochs_to_reach(epochs, target)
    spent = len(epochs) + c["epochs"]
    return c["value"], f"{c['mean']:.4f}", spent, spent if c["value"] >= target else None


def latest(epochs: list) -> dict:
    """Each trial's last reported (epoch, val AUC)."""
    last: dict = {}
    for _, trial, epoch, auc in epochs:
        if epoch >= last.get(trial, (0, 0))[0]:
            last[trial] = (epoch, auc)
    return last


def pick(epochs: list) -> float:
    """The val AUC of the search's pick, ranked as best_config.yaml ranks trials (search/picking/ranking.py:
    trained further first, then val AUC)."""
    return max(rank_key(*last) for last in latest(epochs).values())[1]


def highest(epochs: list) -> float:
    """The highest last val AUC of any trial, a cut one too (how this benchmark ranked before)."""
    return max(auc for _, auc in latest(epochs).values())


def epochs_to_reach(epochs: list, target: float) -> int | None:
    """Trial-epochs trained (in the order they finished) until the search's pick reached `target`."""
    for n in range(1, len(epochs) + 1):
        if pick(epochs[:n]) >= target:
            return n
    return None


def rank_agreement(epochs: list) -> dict[int, float]:
    """Spearman correlation, across the trials that ran every epoch, of each epoch's val AUC with the
    last one's: how well a cut at that epoch (an ASHA rung) ranks trials as full training does."""
    from scipy.stats import spearmanr

    curves: dict = {}
    for _, trial, epoch, auc in epochs:
        curves.setdefault(trial, {})[epoch] = auc
    last = max(max(c) for c in curves.values())
    full = [c for c in curves.values() if len(c) == last]
    return {k: float(spearmanr([c[k] for c in full], [c[last] for c in full]).statistic) for k in range(1, last)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="trials per search (default: the CPU profile's and twice it)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--max-epochs", type=int, default=None, help="default: the CPU profile's")
    p.add_argument("--tolerance", type=float, default=0.005)
    p.add_argument("--skip-grid", action="store_true", help="reuse --grid-best and --grid-epochs instead")
    p.add_argument("--grid-best", type=float, default=None)
    p.add_argument("--grid-epochs", type=int, default=None)
    p.add_argument("--work", default=None, help="folder for the runs (default: a new temporary one)")
    args = p.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="cxr-efficiency-")).resolve()  # the runs use it as cwd
    work.mkdir(parents=True, exist_ok=True)
    epochs_flag = ["--max-epochs", str(args.max_epochs)] if args.max_epochs else []
    from spaces.dualchexnet import SPEC  # the profile's epochs: the grid's grace period must equal them

    max_t = args.max_epochs or SPEC.cpu["config"]["train"]["max_epochs"]
    budgets = args.budgets or [SPEC.cpu["num_samples"], 2 * SPEC.cpu["num_samples"]]
    rows = []
    if args.skip_grid:
        grid_best, grid_epochs = args.grid_best, args.grid_epochs
        if grid_best is None or grid_epochs is None:
            sys.exit("error: --skip-grid needs --grid-best and --grid-epochs")
    else:
        g = run_search(work, "grid", ["--grid", "--grace-period", str(max_t), *epochs_flag])
        grid_best, grid_epochs = pick(g["epochs"]), len(g["epochs"])
        rows.append(("grid (35 cells)", "-", grid_best, "-", grid_best, grid_epochs, g["wall"], None))
        agree = ", ".join(f"epoch {k} {r:.2f}" for k, r in rank_agreement(g["epochs"]).items())
        print(f"grid: best {grid_best:.4f}, {grid_epochs} trial-epochs, {g['wall']:.0f} s; "
              f"its cells ranked by an early epoch's val AUC against the last (Spearman): {agree}", flush=True)
    target = grid_best - args.tolerance
    for budget in budgets:
        for seed in args.seeds:
            s = run_search(work, f"asha-tpe-{budget}-s{seed}",
                           ["--num-samples", str(budget), "--seed", str(seed), *epochs_flag])
            best, mean, spent, reach = score(s, target)
            rows.append((f"ASHA+TPE, {budget} trials", seed, best, mean, highest(s["epochs"]), spent, s["wall"], reach))
            print(f"{rows[-1][0]} seed {seed}: pick {best:.4f} (mean over seeds {mean}), {spent} trial-epochs, "
                  f"{s['wall']:.0f} s", flush=True)

    print(f"\nembedded synthetic set, CPU profile, {max_t} epochs per trial; grid best {grid_best:.4f}, "
          f"target = grid best - {args.tolerance} = {target:.4f}\n")
    print(f"| run | seed | pick's val AUC | pick's mean over seeds (confirmed) | highest val AUC | trial-epochs | "
          f"wall (s) | trial-epochs until the pick is within {args.tolerance} of the grid's best | share of the grid's |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for run, seed, best, mean, high, n, wall, reach in rows:
        reached = "-" if run.startswith("grid") else (reach or "not reached")
        share = f"{reach / grid_epochs:.2f}" if reach else "-"
        print(f"| {run} | {seed} | {best:.4f} | {mean} | {high:.4f} | {n} | {wall:.0f} | {reached} | {share} |")
    for budget in budgets:
        walls = [row[6] for row in rows if row[0] == f"ASHA+TPE, {budget} trials"]
        print(f"ASHA+TPE {budget} trials: median wall {statistics.median(walls):.0f} s over {len(walls)} seed(s)")
    print(f"runs kept in {work}")


if __name__ == "__main__":
    main()
