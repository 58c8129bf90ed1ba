"""Anytime curves: each method's regret at budgets of 10-100 % of the grid's trial-epochs (or at
given trial counts), over many simulated searches, with the grid and the grid stopped early as
baselines; the printed lines, the summary line per table and the plot under docs/.

A method at a budget is `replay_sim.at_budget`: re-training inside the budget, the search sized to
the rest and stopped when it is spent. With --trials the budget is a trial count instead
(`--num-samples N`, re-training on top, as the runner does).
"""
from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import numpy as np
import optuna

from replay_sim import Method, Outcome, at_budget, grid, search, truncated_grid
from search.simulation.table import Table

SHARES = (0.1, 0.2, 0.25, 0.3, 0.5, 1.0)


def real_default(table: Table) -> Method:
    """What the runner does on real data, over the table's dimensions (search/runner.py's ASHA, CONFIRM,
    SAMPLER and RETRAIN_SHARE; grace None: every epoch), a quarter of the trials at once."""
    from search.runner import ASHA, CONFIRM, RETRAIN_SHARE, SAMPLER

    return Method("default", sampler=SAMPLER, grace=min(ASHA["grace_period"] or table.max_t, table.max_t),
                  eta=ASHA["reduction_factor"], concurrency=0, confirm=CONFIRM["confirm"],
                  confirm_seeds=min(CONFIRM["confirm_seeds"], len(table.pool_seeds) - 1), retrain_share=RETRAIN_SHARE)


def methods(table: Table, samplers=("tpe", "random", "gp", "qmc")) -> list[Method]:
    """The default and the same settings with each sampler (named by it; random always among them,
    the baseline the default is held to, even where it is the default's own)."""
    default = real_default(table)
    return [default] + [default.with_(name=s, sampler=s) for s in dict.fromkeys([*samplers, "random"])]


def noise_aware(table: Table) -> list[Method]:
    """The default with seeds as a fidelity instead of confirmation after the search: replicate rungs
    of up to R more seeds keeping the top 1/eta (search/scheduling/replicas.py), over the pool's seeds."""
    default, most = real_default(table), len(table.pool_seeds) - 1
    return [default.with_(name=f"replicate rungs R={r} eta={eta}", confirm=0, replicates=r, replicate_eta=eta)
            for r in range(1, most + 1) for eta in (2, 3)]


def asha_cuts(table: Table) -> list[Method]:
    """The default with ASHA's cuts: its first rung at epoch 1 (the runner's old default) or half the
    epochs, with TPE and random search."""
    default, half = real_default(table), max(1, table.max_t // 2)
    return [default.with_(name=f"{s} grace {grace}", sampler=s, grace=grace, eta=2)
            for s in ("tpe", "random") for grace in dict.fromkeys((1, half)) if grace < table.max_t]


def retraining(table: Table) -> list[Method]:
    """The default's search with other re-training: none, the runner's old rule (the top 3 with 2
    seeds whenever half the budget affords them; now at least 2 configs), or within 35 %."""
    default = real_default(table)
    return [default.with_(name="no confirmation", confirm=0),
            default.with_(name="confirm within half the budget", retrain_share=0.5),
            default.with_(name="confirm within 35 % of the budget", retrain_share=0.35)]


def pool_seed_sd(table: Table) -> float:
    """The median over configs of the s.d. of a config's final value across the pool's seeds: the
    seed noise a search could measure (0 with one pool seed)."""
    sds = [statistics.stdev(f) for f in ([table.final(c, s) for s in table.pool_seeds if s in table.curves[c]]
                                         for c in table.curves) if len(f) > 1]
    return statistics.median(sds) if sds else 0.0


def stop_rules(base: Method, table: Table) -> list[Method]:
    """`base` with each stop rule: patience 4 or 8 with a gain of half the pool's seed s.d., and the
    paired test at p < 0.1 over replicate rungs of 2 more seeds (where the pool has the 3 seeds it
    needs: fewer would re-read a seed as if it were another)."""
    gain = pool_seed_sd(table) / 2
    paired = [base.with_(name=f"{base.name} R=2, stop: paired test", replicates=2, replicate_eta=2, paired_p=0.1)]
    return [base.with_(name=f"{base.name}, stop: patience {p}", patience=p, min_gain=gain) for p in (4, 8)] + \
        (paired if len(table.pool_seeds) >= 3 else [])


def stats(outcomes: list[Outcome]) -> dict:
    regrets = [o.regret for o in outcomes]
    epochs = [o.trial_epochs for o in outcomes]
    return {"regret_median": statistics.median(regrets), "regret_p90": float(np.percentile(regrets, 90)),
            "trial_epochs": statistics.median(epochs)}


def _method_curves(job) -> dict:
    table, m, runs, shares, trials = job
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if trials:
        return {n: stats([search(table, m.with_(num_samples=n), s) for s in range(runs)]) for n in trials}
    grid_epochs = len(table.curves) * table.max_t
    return {f: stats([at_budget(table, m, s, f * grid_epochs) for s in range(runs)]) for f in shares}


def curves(table: Table, ms: list[Method], runs: int, shares=SHARES, trials=None,
           workers: int = 1) -> tuple[dict, dict]:
    """({method name: {budget: stats}}, the full grid's stats). Budgets are shares of the grid's
    trial-epochs, or trial counts with `trials`; "grid, stopped early" is the grid in a random cell
    order stopped at each budget (share budgets only). `workers` processes share the methods."""
    grid_epochs = len(table.curves) * table.max_t
    full = stats([grid(table, s) for s in range(runs)])
    jobs = [(table, m, runs, shares, trials) for m in ms]
    if workers > 1:
        from multiprocessing import get_context
        with get_context("spawn").Pool(workers) as pool:
            got = pool.map(_method_curves, jobs)
    else:
        got = [_method_curves(j) for j in jobs]
    out = {m.name: g for m, g in zip(ms, got)}
    if not trials:
        out["grid, stopped early"] = {f: stats([truncated_grid(table, s, f * grid_epochs) for s in range(runs)])
                                      for f in shares}
    return out, full


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def print_lines(table: Table, rows: dict, full: dict, trials=None) -> None:
    """One line per method and budget, then the summary line: the smallest share from which on the
    default's median and p90 both reach the grid's, and the regrets there."""
    key = "budget_trials" if trials else "budget_share"
    for name, by_budget in rows.items():
        for b, r in by_budget.items():
            print(f"replay {table.name} {key}={b:g} method={slug(name)} regret_median={r['regret_median']:.4f} "
                  f"regret_p90={r['regret_p90']:.4f} trial_epochs={r['trial_epochs']:g}")
    default, random = rows["default"], rows.get("random", {})

    def meets(r: dict) -> bool:
        return r["regret_median"] <= full["regret_median"] and r["regret_p90"] <= full["regret_p90"]
    # the smallest budget from which every larger one meets the grid too (not a lucky dip)
    reached = [b for b in default if all(meets(default[x]) for x in default if x >= b)]
    at = min(reached) if reached else max(default)
    share = f"{at:g}" if reached else "none"
    r = default[at]
    random_median = random[at]["regret_median"] if at in random else math.nan
    print(f"replay {table.name}: {'trials' if trials else 'share'}_to_grid={share} "
          f"regret_median={r['regret_median']:.4f} regret_p90={r['regret_p90']:.4f} "
          f"grid_regret_median={full['regret_median']:.4f} grid_regret_p90={full['regret_p90']:.4f} "
          f"random_regret_median={random_median:.4f}")


PLOTTED = ("default", "random", "tpe", "gp", "qmc", "tpe grace 1", "random grace 1", "grid, stopped early")


def plot(table: Table, rows: dict, full: dict, path: Path, trials=None, shown=PLOTTED) -> None:
    """Median regret (line) and 90th percentile (dashed) against the budget for the samplers, ASHA
    from epoch 1 and the grid stopped early (the printed lines have every method); the grid's median
    and 90th percentile as horizontal lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=120)
    for i, name in enumerate([n for want in shown for n in rows if slug(n) == slug(want)]):   # names or slugs
        by_budget, color = rows[name], f"C{i}"
        xs = list(by_budget)
        ax.plot(xs, [by_budget[x]["regret_median"] for x in xs], marker="o", color=color, label=f"{name}, median",
                lw=2.5 if name == "default" else 1.2)
        ax.plot(xs, [by_budget[x]["regret_p90"] for x in xs], ls="--", color=color, alpha=0.6)
    ax.axhline(full["regret_median"], color="black", lw=1, label="grid, one seed per config: median")
    ax.axhline(full["regret_p90"], color="black", lw=1, ls="--", label="grid: 90th percentile (dashed: p90)")
    ax.set_xlabel("trials (--num-samples)" if trials else "share of the grid's trial-epochs, re-training included")
    ax.set_ylabel("regret on held-out seeds" if table.held_out else "regret (all seeds)")
    ax.set_title(f"{table.name}: regret of the pick against budget")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def read_lines(path: Path) -> tuple[str, dict]:
    """(table name, {method: {budget: stats}}) back from a printout's `replay ...` lines, to plot again."""
    rows, name = {}, ""
    for line in Path(path).read_text().splitlines():
        m = re.match(r"replay (\S+) budget_(?:share|trials)=(\S+) method=(\S+) regret_median=(\S+) "
                     r"regret_p90=(\S+) trial_epochs=(\S+)", line)
        if m:
            name, budget, method = m.group(1), float(m.group(2)), m.group(3)
            rows.setdefault(method, {})[budget] = {"regret_median": float(m.group(4)),
                                                   "regret_p90": float(m.group(5)), "trial_epochs": float(m.group(6))}
    return name, rows
