"""A search replayed over recorded learning curves: the way HPO benchmarks measure schedulers
(tabular benchmarks: every config of a grid trained once per seed, every epoch kept).

A simulated search proposes configs with the same Optuna sampler the runner builds
(search/proposals.py), maps each proposal to the nearest cell of DualCheXNet's grid, and reads the
cell's recorded val AUC epoch by epoch (one recorded seed per trial, drawn at random). ASHA's
decisions are Ray's own (`_Bracket`, as ASHAScheduler makes them); `concurrency` trials run at
once, an epoch each per time step. The pick is scored by its cell's mean over all recorded seeds:
regret = best cell's seed-mean - the pick's seed-mean.
"""
from __future__ import annotations

import csv
import random
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from ray.tune.schedulers.async_hyperband import _Bracket

from search import proposals

LAMBDAS = (0.0, 0.5, 1.0, 1.5, 2.0)
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4)   # Concat0..Concat4: w_D = w_R
# The searched dimensions the grid covers, as the real space has them (spaces/dualchexnet.py); the
# learning rate, backbones and iterative training stay at the CPU profile's values, as in the grid.
SPACE = {"loss/lam": FloatDistribution(0.0, 2.0), "heads/fusion": CategoricalDistribution(["concat", "avg", "max"]),
         "heads/w_d": FloatDistribution(0.0, 0.5), "heads/w_r": FloatDistribution(0.0, 0.5)}
WARM = {"loss/lam": 0.5, "heads/fusion": "concat", "heads/w_d": 0.3, "heads/w_r": 0.3}  # the paper's best


def cell_of(params: dict) -> tuple[float, str]:
    """The grid cell nearest a proposal: λ to the nearest grid value; Concat's weights, whose grid ties
    w_D = w_R, to the nearest grid weight of their mean."""
    lam = min(LAMBDAS, key=lambda v: abs(v - params["loss/lam"]))
    if params["heads/fusion"] != "concat":
        return lam, params["heads/fusion"]
    w = (params["heads/w_d"] + params["heads/w_r"]) / 2
    return lam, f"concat{min(range(len(WEIGHTS)), key=lambda k: abs(WEIGHTS[k] - w))}"


@dataclass
class Table:
    curves: dict     # (lam, fusion) -> {seed: [val AUC at epoch 1..max_t]}

    @classmethod
    def read(cls, path: Path) -> Table:
        curves: dict = {}
        with open(path) as f:
            for row in csv.DictReader(line for line in f if not line.startswith("#")):
                per_seed = curves.setdefault((float(row["lam"]), row["fusion"]), {}).setdefault(int(row["seed"]), {})
                per_seed[int(row["epoch"])] = float(row["val_auc"])
        return cls({c: {s: [e[k] for k in sorted(e)] for s, e in seeds.items()} for c, seeds in curves.items()})

    @property
    def max_t(self) -> int:
        return min(len(c) for seeds in self.curves.values() for c in seeds.values())

    def seeds(self, cell) -> list[int]:
        return sorted(self.curves[cell])

    @property
    def all_seeds(self) -> list[int]:
        return sorted({s for seeds in self.curves.values() for s in seeds})

    def mean(self, cell) -> float:
        return statistics.fmean(c[self.max_t - 1] for c in self.curves[cell].values())

    @property
    def best_mean(self) -> float:
        return max(self.mean(c) for c in self.curves)

    def regret(self, cell) -> float:
        return self.best_mean - self.mean(cell)


@dataclass(frozen=True)
class Method:
    name: str
    sampler: str = "tpe"         # tpe (search/proposals.py) | tpe-old (Optuna's defaults) | random
    num_samples: int = 8
    grace: int = 1
    eta: int = 2
    concurrency: int = 2
    startup: int | None = None   # None: proposals.startup_trials(num_samples)
    pruned: bool = True          # a cut trial reaches Optuna as PRUNED (else COMPLETE at its cut)
    confirm: int = 0             # top K re-trained ...
    confirm_seeds: int = 0       # ... with S other seeds
    pick_any_epoch: bool = False  # the pick by last value over every trial, cut ones too (the runner before
                                  # search/ranking.py); else over the trials that ran every epoch

    def with_(self, **kw) -> Method:
        return replace(self, **kw)


@dataclass
class Outcome:
    regret: float
    trial_epochs: int
    cell: tuple


class _Trial:
    def __init__(self, tid: int, ot, cell, seed: int):
        self.trial_id, self.ot, self.cell, self.seed, self.epoch = str(tid), ot, cell, seed, 0


def _sampler(m: Method, seed: int) -> optuna.samplers.BaseSampler:
    if m.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if m.sampler == "tpe-old":
        return optuna.samplers.TPESampler(seed=seed)   # what the runner built before search/proposals.py
    return proposals.tpe_sampler(seed, m.num_samples, m.startup)


def search(table: Table, m: Method, seed: int) -> Outcome:
    """One simulated search: (regret of its pick, trial-epochs spent, the picked cell)."""
    rng = random.Random(seed)
    study = optuna.create_study(direction="maximize", sampler=_sampler(m, seed))
    study.enqueue_trial(WARM)
    max_t = table.max_t
    bracket = _Bracket(m.grace, max_t, m.eta, 0, stop_last_trials=True)
    running, finished, cut, started, spent = [], [], [], 0, 0
    while started < m.num_samples or running:
        while len(running) < m.concurrency and started < m.num_samples:
            ot = study.ask(SPACE)
            cell = cell_of(ot.params)
            running.append(_Trial(started, ot, cell, rng.choice(table.seeds(cell))))
            started += 1
        for t in list(running):
            t.epoch += 1
            spent += 1
            value = table.curves[t.cell][t.seed][t.epoch - 1]
            t.ot.report(value, t.epoch)
            if t.epoch >= max_t:
                study.tell(t.ot, value)
                finished.append((value, t))
            elif bracket.on_result(t, t.epoch, value) == "STOP":
                study.tell(t.ot, state=optuna.trial.TrialState.PRUNED) if m.pruned else study.tell(t.ot, value)
                cut.append((value, t))
            else:
                continue
            running.remove(t)
    if m.pick_any_epoch:
        pick, extra = max(finished + cut, key=lambda vt: vt[0])[1].cell, 0
    else:
        pick, extra = confirm(table, m, finished, rng, max_t)
    return Outcome(table.regret(pick), spent + extra, pick)


def confirm(table: Table, m: Method, finished: list, rng: random.Random, max_t: int) -> tuple[tuple, int]:
    """The pick: the best final value, or with confirmation the best mean over the trial's seed and
    `confirm_seeds` others, among the top `confirm` cells. -> (cell, trial-epochs spent confirming)."""
    ranked, seen = [], set()
    for value, t in sorted(finished, key=lambda vt: -vt[0]):
        if t.cell not in seen:   # two proposals in one cell are one config here
            seen.add(t.cell)
            ranked.append((value, t))
    if not m.confirm or not m.confirm_seeds:
        return ranked[0][1].cell, 0
    means, extra = [], 0
    for value, t in ranked[:m.confirm]:
        others = [s for s in table.seeds(t.cell) if s != t.seed]
        seeds = rng.sample(others, min(m.confirm_seeds, len(others)))
        extra += len(seeds) * max_t
        means.append((statistics.fmean([value] + [table.curves[t.cell][s][max_t - 1] for s in seeds]), t.cell))
    return max(means)[1], extra


def grid(table: Table, seed: int) -> Outcome:
    """The paper's grid, one seed per cell: every cell trained to the end, the best final value picked."""
    rng = random.Random(seed)
    finals = {c: table.curves[c][rng.choice(table.seeds(c))][table.max_t - 1] for c in sorted(table.curves)}
    pick = max(finals, key=finals.get)
    return Outcome(table.regret(pick), len(finals) * table.max_t, pick)
