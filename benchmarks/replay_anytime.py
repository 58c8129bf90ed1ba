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

from replay_sim import Method, Outcome, at_budget, grid, search, truncated_grid
from search.simulation.table import Table

SHARES = (0.1, 0.2, 0.3, 0.5, 1.0)


def real_default(table: Table) -> Method:
    """What the runner does on real data, over the table's dimensions: TPE as search/proposals.py
    builds it, ASHA and confirmation at the runner's defaults, a quarter of the trials at once."""
    from search.runner import ASHA, CONFIRM

    return Method("default", sampler="tpe", grace=min(ASHA["grace_period"], table.max_t),
                  eta=ASHA["reduction_factor"], concurrency=0, confirm=CONFIRM["confirm"],
                  confirm_seeds=min(CONFIRM["confirm_seeds"], len(table.pool_seeds) - 1))


def methods(table: Table, samplers=("tpe", "random", "gp", "qmc")) -> list[Method]:
    """The default and the same settings with each other sampler (named by it)."""
    default = real_default(table)
    return [default if s == "tpe" else default.with_(name=s, sampler=s) for s in samplers]


def noise_aware(table: Table) -> list[Method]:
    """The default with seeds as a fidelity instead of confirmation after the search: replicate rungs
    of up to R more seeds keeping the top 1/eta (search/replicas.py), over the pool's seeds."""
    default, most = real_default(table), len(table.pool_seeds) - 1
    return [default.with_(name=f"replicate rungs R={r} eta={eta}", confirm=0, replicates=r, replicate_eta=eta)
            for r in range(1, most + 1) for eta in (2, 3)]


def stats(outcomes: list[Outcome]) -> dict:
    regrets = [o.regret for o in outcomes]
    epochs = [o.trial_epochs for o in outcomes]
    return {"regret_median": statistics.median(regrets), "regret_p90": float(np.percentile(regrets, 90)),
            "trial_epochs": statistics.median(epochs)}


def curves(table: Table, ms: list[Method], runs: int, shares=SHARES, trials=None) -> tuple[dict, dict]:
    """({method name: {budget: stats}}, the full grid's stats). Budgets are shares of the grid's
    trial-epochs, or trial counts with `trials`; "grid, stopped early" is the grid in a random cell
    order stopped at each budget (share budgets only)."""
    grid_epochs = len(table.curves) * table.max_t
    full = stats([grid(table, s) for s in range(runs)])
    out = {}
    for m in ms:
        if trials:
            out[m.name] = {n: stats([search(table, m.with_(num_samples=n), s) for s in range(runs)]) for n in trials}
        else:
            out[m.name] = {f: stats([at_budget(table, m, s, f * grid_epochs) for s in range(runs)]) for f in shares}
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


def plot(table: Table, rows: dict, full: dict, path: Path, trials=None) -> None:
    """Median regret (line) and 90th percentile (dashed) per method against the budget; the grid's
    median and 90th percentile as horizontal lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for i, (name, by_budget) in enumerate(rows.items()):
        xs = list(by_budget)
        color = f"C{i}"
        ax.plot(xs, [by_budget[x]["regret_median"] for x in xs], marker="o", color=color, label=f"{name}, median")
        ax.plot(xs, [by_budget[x]["regret_p90"] for x in xs], ls="--", color=color, alpha=0.6)
    ax.axhline(full["regret_median"], color="black", lw=1, label="grid, one seed per config: median")
    ax.axhline(full["regret_p90"], color="black", lw=1, ls="--", label="grid: 90th percentile (dashed: p90)")
    ax.set_xlabel("trials (--num-samples)" if trials else "share of the grid's trial-epochs, re-training included")
    ax.set_ylabel("regret on held-out seeds" if table.held_out else "regret (all seeds)")
    ax.set_title(f"{table.name}: regret of the pick against budget")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
