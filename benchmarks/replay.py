"""Replay benchmark: how good is the pick of each search method, for how much compute, over many seeds?

    python benchmarks/replay.py record [--seeds 0 1 2] [--work DIR]   # the table (hours on 2 cores; resumes)
    python benchmarks/replay.py [--table PATH] [--runs 100]           # simulate over it (minutes)
    python benchmarks/replay.py --table PATH --only anytime [--trials 10 20 40]   # any table's anytime curves

`record` (benchmarks/replay_record.py) trains DualCheXNet's 35-cell grid on the CPU profile once per
seed and writes every cell's val AUC per epoch to benchmarks/data/dualchexnet_cpu_curves.csv.
The simulation (benchmarks/replay_sim.py) runs, for --runs seeds each: the grid with one seed per
cell, random search + ASHA, TPE + ASHA as the runner had it (Optuna's default start-up of 10, cut
trials told as COMPLETE, grace 1, eta 2, 6 trials, the best last value of any trial picked) and as
it has it now (search/scheduling/proposals.py), over
grace periods, reduction factors, budgets and confirmation. It prints per method the trial-epochs
spent and the regret of the pick (the best cell's seed-mean val AUC minus the pick's), median and
90th percentile. Confirmation counts in the trial-epochs. The last line is machine-readable.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))        # replay_sim, replay_record
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # search, spaces

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from replay_sim import Method, grid, search  # noqa: E402
from search.simulation.table import Table  # noqa: E402
from trainables.errors import UserError  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "dualchexnet_cpu_curves.csv"
CPUS = 2   # the laptop the CPU profile is for: two trials at once
# A no-argument run must end within 300 s on that laptop. Its wall time is about 28 s + 16 s per
# trial-epoch (least squares over the six search runs of benchmarks/search_efficiency.py, an earlier README,
# 13-29 trial-epochs), so it affords about 16 trial-epochs.
CPU_RUN_EPOCHS = 16


def default_method() -> Method:
    """The no-argument dual_weights run, as the runner configures it (spaces/dualchexnet.py's CPU profile)."""
    from search.scheduling import proposals
    from search.runner import defaults
    from spaces.dualchexnet import SPEC

    n = SPEC.cpu["num_samples"]
    chosen = defaults(SPEC, SPEC.cpu)
    return Method("default", sampler=chosen["sampler"], num_samples=n,
                  grace=chosen["grace_period"], eta=chosen["reduction_factor"],
                  concurrency=min(CPUS, proposals.default_concurrency(n)), confirm=chosen["confirm"],
                  confirm_seeds=chosen["confirm_seeds"])


OLD = Method("TPE as it was (start-up 10, cut = COMPLETE, 6 trials, grace 1, eta 2)", sampler="tpe-old",
             num_samples=6, grace=1, eta=2, concurrency=CPUS, pruned=False, pick_any_epoch=True)


def sweep(default: Method) -> list[Method]:
    """The settings compared: budgets x ASHA x confirmation, for TPE as it is and random search."""
    out = []
    for sampler in ("tpe", "random"):
        for n in (4, 5, 6, 8, 10, 12, 16, 20):
            for grace, eta in ((1, 2), (1, 3), (2, 2), (2, 3), (3, 2), (3, 3), (4, 2), (4, 3), (6, 2)):
                for top, seeds in ((0, 0), (2, 1), (2, 2), (3, 1)):
                    out.append(default.with_(name=f"{sampler} n={n} grace={grace} eta={eta} confirm={top}x{seeds}",
                                             sampler=sampler, num_samples=n, grace=grace, eta=eta,
                                             confirm=top, confirm_seeds=seeds))
    return out


def stats(outcomes) -> dict:
    regrets = [o.regret for o in outcomes]
    epochs = [o.trial_epochs for o in outcomes]
    return {"regret_median": statistics.median(regrets), "regret_p90": float(np.percentile(regrets, 90)),
            "epochs": statistics.median(epochs), "epochs_p90": float(np.percentile(epochs, 90))}


def replayed(table: Table, m: Method, runs: int) -> dict:
    return stats([search(table, m, s) for s in range(runs)])


def rung_agreement(table: Table) -> dict[int, list[float]]:
    """Per seed, Spearman over the cells of each epoch's val AUC against the last epoch's: how well
    an ASHA cut at that epoch ranks configs as full training does. -> {epoch: [rho per seed]}"""
    from scipy.stats import spearmanr

    last = table.max_t - 1
    agreement = {}
    for k in range(last):
        rhos = []
        for s in table.all_seeds:
            cells = [c for c in sorted(table.curves) if s in table.curves[c]]
            rhos.append(float(spearmanr([table.curves[c][s][k] for c in cells],
                                        [table.curves[c][s][last] for c in cells]).statistic))
        agreement[k + 1] = rhos
    return agreement


def seed_noise(table: Table) -> tuple[float, float]:
    """(median over cells of the standard deviation of a cell's final val AUC across seeds, standard
    deviation of the cells' seed-means): how far one seed moves a config against how far configs differ."""
    finals = [[c[table.max_t - 1] for c in seeds.values()] for seeds in table.curves.values()]
    return (statistics.median(statistics.stdev(f) for f in finals if len(f) > 1),
            statistics.stdev(table.mean(cell, table.all_seeds) for cell in table.curves))


def describe(table: Table) -> None:
    for epoch, rhos in rung_agreement(table).items():
        print(f"epoch {epoch} vs epoch {table.max_t}: Spearman over the cells, per seed "
              f"{', '.join(f'{r:.2f}' for r in rhos)} (median {statistics.median(rhos):.2f})")
    if min(len(c) for c in table.curves.values()) > 1:
        within, between = seed_noise(table)
        print(f"a cell's final val AUC across seeds: standard deviation {within:.4f} (median over cells); "
              f"the cells' seed-means: {between:.4f}")
    print()


def simulate(table: Table, runs: int, budget: float) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    grid_epochs = len(table.curves) * table.max_t
    g = stats([grid(table, s) for s in range(runs)])
    default = default_method()
    rows = {"grid, one seed per cell": g}
    for m in [OLD, default.with_(sampler="random", name="random + ASHA, the default's settings"), default]:
        rows[m.name] = replayed(table, m, runs)
    scored = f"held-out seeds {table.held_out}" if table.held_out else \
        f"all seeds {table.all_seeds}, the ones the picks read too (the table holds none out)"
    print(f"replay over {len(table.curves)} configs x {len(table.all_seeds)} seeds x {table.max_t} epochs, {runs} "
          f"simulated searches per method; picks read seeds {table.pool_seeds} and are scored on {scored}; best "
          f"config's mean val AUC there {table.best_mean():.4f}; default = {default}\n")
    describe(table)
    _print(rows, grid_epochs)
    ablation = [default.with_(name="default, Optuna's start-up of 10", startup=10),
                default.with_(name="default, cut trials told as COMPLETE", pruned=False),
                default.with_(name="default, every trial at once", concurrency=default.num_samples),
                default.with_(name="default, one trial at a time", concurrency=1)]
    print("\nwhat each change does (the default with one setting as it was, or as a large cluster would run it):\n")
    _print({"default": rows["default"], **{m.name: replayed(table, m, runs) for m in ablation}}, grid_epochs)
    swept = {m.name: replayed(table, m, runs) for m in sweep(default)}
    _best_of(swept, lambda r: r["epochs"] <= budget * grid_epochs, grid_epochs,
             f"within {budget:.0%} of the grid's trial-epochs (median), lowest median regret first")
    _best_of(swept, lambda r: r["epochs_p90"] <= CPU_RUN_EPOCHS, grid_epochs,
             f"that a no-argument run can afford (at most {CPU_RUN_EPOCHS} trial-epochs in 9 searches of 10), "
             "lowest median regret first")
    _best_of(swept, lambda r: r["regret_median"] <= g["regret_median"] and r["regret_p90"] <= g["regret_p90"],
             grid_epochs, "as good as the grid or better (median and p90), the cheapest first",
             key=lambda r: (r["epochs"], r["epochs_p90"], r["regret_median"]))
    d = rows["default"]
    print(f"\nreplay default: regret_median={d['regret_median']:.4f} regret_p90={d['regret_p90']:.4f} "
          f"epochs_share={d['epochs'] / grid_epochs:.3f} grid_regret_median={g['regret_median']:.4f} "
          f"grid_regret_p90={g['regret_p90']:.4f}")


def _best_of(swept: dict, fits, grid_epochs: int, what: str, key=None) -> None:
    """The 15 settings that `fits` admits, by `key` (default: lowest median regret, then p90)."""
    within = {k: v for k, v in swept.items() if fits(v)}
    key = key or (lambda r: (r["regret_median"], r["regret_p90"]))
    print(f"\nsweep, {min(15, len(within))} settings {what} ({len(within)} of {len(swept)} settings fit):\n")
    _print(dict(sorted(within.items(), key=lambda kv: key(kv[1]))[:15]), grid_epochs)


def _print(rows: dict, grid_epochs: int) -> None:
    print("| method | trial-epochs (median) | trial-epochs (p90) | share of the grid's | regret median | regret p90 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        print(f"| {name} | {r['epochs']:.0f} | {r['epochs_p90']:.0f} | {r['epochs'] / grid_epochs:.2f} | "
              f"{r['regret_median']:.4f} | {r['regret_p90']:.4f} |")


FAMILIES = ("samplers", "noise-aware", "asha-cuts", "retraining", "stop-rules")


def anytime(table: Table, runs: int, samplers: list[str], trials: list[int] | None, plot_path: Path,
            families=FAMILIES, workers: int = 1, shares=None) -> None:
    import replay_anytime as ra

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    budgets = f"at {', '.join(map(str, trials))} trials" if trials else \
        f"at {', '.join(f'{f:.0%}' for f in shares or ra.SHARES)} of the grid's trial-epochs"
    print(f"\nanytime: the runner's real-data default and other samplers {budgets}, {runs} searches each; "
          f"default = {ra.real_default(table)}\n")
    ms = ra.methods(table, samplers if "samplers" in families else ["random"])
    ms += (ra.noise_aware(table) if "noise-aware" in families else []) + \
        (ra.asha_cuts(table) if "asha-cuts" in families else []) + \
        (ra.retraining(table) if "retraining" in families else []) + \
        (ra.stop_rules(ms[0], table) if "stop-rules" in families else [])
    rows, full = ra.curves(table, ms, runs, shares=shares or ra.SHARES, trials=trials, workers=workers)
    ra.print_lines(table, rows, full, trials)
    ra.plot(table, rows, full, plot_path, trials)
    print(f"plot: {plot_path}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", nargs="?", choices=["simulate", "record"], default="simulate")
    p.add_argument("--table", "--data", dest="data", type=Path, default=DATA,
                   help="the recorded table (docs/recorded_tables.md)")
    p.add_argument("--runs", type=int, default=100, help="simulated searches per method")
    p.add_argument("--budget", type=float, default=0.3, help="the sweep shows settings within this share of the "
                   "grid's trial-epochs")
    p.add_argument("--trials", type=int, nargs="+", help="anytime budgets as trial counts (--num-samples), for a "
                   "table whose grid is too large to run; default: shares of the grid's trial-epochs")
    p.add_argument("--samplers", nargs="+", default=["tpe", "random", "gp", "qmc"],
                   choices=["tpe", "random", "gp", "qmc"], help="the anytime curves' samplers beside the default's")
    p.add_argument("--shares", type=float, nargs="+", help="anytime budgets as shares of the grid's trial-epochs "
                   "(default: 0.1 0.2 0.25 0.3 0.5 1)")
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES,
                   help="the anytime curves' method families beside the default and random search")
    p.add_argument("--workers", type=int, default=1, help="processes the anytime searches run in")
    p.add_argument("--only", choices=["sweep", "anytime"], help="print only the CPU run's tables and sweep, or "
                   "only the anytime curves")
    p.add_argument("--plot", type=Path, help="the anytime plot (default: docs/replay_<table>.png)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="record: the seeds to train the grid with")
    p.add_argument("--work", type=Path, default=Path("replay-work"), help="record: where the grid runs go")
    args = p.parse_args(argv)
    if args.command == "record":
        from replay_record import record
        from spaces.dualchexnet import SPEC
        record(args.work.resolve(), args.seeds, args.data, SPEC.cpu["config"]["train"]["max_epochs"])
        return
    if not args.data.exists():
        sys.exit(f"error: no recorded table at {args.data}; make it with: python benchmarks/replay.py record")
    try:
        table = Table.read(args.data)
    except UserError as err:
        sys.exit(f"error: {err}")
    if args.only != "anytime":
        simulate(table, args.runs, args.budget)
    if args.only != "sweep":
        from replay_anytime import slug
        plot = args.plot or Path(__file__).resolve().parents[1] / "docs" / f"replay_{slug(table.name)}.png"
        anytime(table, args.runs, args.samplers, args.trials, plot, args.families, args.workers, args.shares)


if __name__ == "__main__":
    main()
