"""A search replayed over a recorded table (search/simulation/table.py, docs/recorded_tables.md): the
way HPO benchmarks measure schedulers (tabular benchmarks: every config of a grid or a design trained
once per seed, every epoch kept).

A simulated search proposes configs with the sampler the runner builds (search/scheduling/proposals.py), maps
each proposal to the nearest recorded config, and reads one recorded seed of it epoch by epoch: the
seed the product's simulated trainable reads (search/simulation/trainable.py's `recorded_seed`), only
from the table's pick pool. ASHA's decisions are Ray's own (`_Bracket`, as ASHAScheduler makes them);
`concurrency` trials run at once, each epoch taking its recorded seconds, so results reach ASHA and
Optuna in the order they would in the product (benchmarks/agreement.py: stepping every trial an epoch
at a time instead let the first trial, the warm start, reach every rung first and never be cut, and
understated the product's regret). The pick is scored on the seeds it
never read: regret = best config's held-out mean - the pick's held-out mean (all seeds where the table
holds none out, which flatters a confirmed pick; the replay says so).
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from collections import deque
from dataclasses import dataclass, replace

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from ray.tune.schedulers.async_hyperband import _Bracket

from search.scheduling import proposals
from search.scheduling.replicas import promoted
from search.simulation.table import Param, Table
from search.simulation.trainable import recorded_seed


def distribution(p: Param):
    if p.kind == "choice":
        return CategoricalDistribution(list(p.choices))
    if p.kind == "int":
        return IntDistribution(int(p.low), int(p.high), log=p.log)
    return FloatDistribution(p.low, p.high, log=p.log)


def space(table: Table) -> dict:
    return {p.name: distribution(p) for p in table.params}


@dataclass(frozen=True)
class Method:
    name: str
    sampler: str = "tpe"         # tpe (search/scheduling/proposals.py) | tpe-old (Optuna's defaults) | random | gp | qmc
    num_samples: int = 8
    grace: int = 1
    eta: int = 2
    concurrency: int = 2         # 0: the runner's default for num_samples (proposals.default_concurrency)
    startup: int | None = None   # None: proposals.startup_trials(num_samples)
    pruned: bool = True          # a cut trial reaches Optuna as PRUNED (else COMPLETE at its cut)
    confirm: int = 0             # top K re-trained ...
    confirm_seeds: int = 0       # ... with S other seeds
    replicates: int = 0          # seeds as a fidelity: up to R more seeds per config while the search runs
    replicate_eta: int = 2       # ... each to the top 1/eta of the configs with as many seeds
    pick_any_epoch: bool = False  # the pick by last value over every trial, cut ones too (the runner before
                                  # search/picking/ranking.py); else over the trials that ran every epoch
    patience: int = 0            # stop rule: end the search when this many configs in a row ran every epoch
    min_gain: float = 0.0        # ... without raising the best final value by more than this (0: no rule)
    retrain_share: float = 0.5   # confirmation may take at most this share of a budget (at_budget)
    paired_p: float = 0.0        # stop rule: end it when the best config beats the runner-up on their common
                                 # seeds, one-sided paired t-test p below this (replicates only; 0: no rule)

    def with_(self, **kw) -> Method:
        return replace(self, **kw)


@dataclass
class Outcome:
    regret: float
    trial_epochs: int
    cell: int          # the picked config's index in the table


class _Trial:
    def __init__(self, tid: int, ot, cell: int, seed: int, offset: int = 0):
        self.trial_id, self.ot, self.cell, self.seed, self.epoch = str(tid), ot, cell, seed, 0
        self.offset = offset   # 0: a proposal (Optuna's trial `ot`); k: its config's k-th replicate


class Replicas:
    """Seeds as a fidelity, asynchronous successive halving over seeds: a config that ran every epoch
    is re-trained with the next seed (the search seed + 1, + 2, ..., as confirmation's, so configs are
    compared on the same seeds) while the search goes on, when its mean over the seeds it has is in the
    top 1/eta of the configs that reached as many seeds (the first to get there goes on, as in ASHA);
    up to 1 + `most` seeds. Replicates run every epoch (ASHA does not cut them) and Optuna is not told
    of them."""

    def __init__(self, most: int, eta: int):
        self.most, self.eta = most, eta
        self.finals: dict[int, dict[int, float]] = {}   # config -> {seed offset: signed final value}
        self.rungs: dict[int, dict[int, float]] = {}    # seeds -> {config: its mean when it got them}
        self.queue: deque = deque()                     # (config, seed offset) to train next

    def finished(self, cell: int, offset: int, value: float) -> None:
        got = self.finals.setdefault(cell, {})
        if offset in got:                                # a second proposal of one recorded config
            return
        got[offset] = value
        k = len(got)
        if promoted(self.rungs.setdefault(k, {}), cell, got, self.eta) and k <= self.most:
            self.queue.append((cell, k))

    def next(self) -> tuple[int, int] | None:
        return self.queue.popleft() if self.queue else None


def replicate_pick(results: list[Result], max_t: int) -> int | None:
    """The config with the most seeds trained to the end, by its mean over them."""
    finals: dict[int, dict[int, float]] = {}
    for r in results:
        if r.epoch >= max_t:
            finals.setdefault(r.trial.cell, {}).setdefault(r.trial.offset, r.value)
    if not finals:
        return None
    return max(finals, key=lambda c: (len(finals[c]), statistics.fmean(finals[c].values())))


def _sampler(m: Method, seed: int) -> optuna.samplers.BaseSampler:
    if m.sampler == "tpe-old":
        return optuna.samplers.TPESampler(seed=seed)   # what the runner built before search/scheduling/proposals.py
    return proposals.sampler(m.sampler, seed, m.num_samples, m.startup)


class StopRule:
    """The search's stop rules (search/scheduling/stopping.py builds the same as a Tune Stopper): patience (no
    config that ran every epoch raised the best final value by more than `min_gain` in the last
    `patience`) and the paired test (the best config by mean over seeds beats the runner-up on the
    seeds both have, one-sided paired t-test p < `paired_p`; needs replicates)."""

    def __init__(self, m: Method):
        self.patience, self.min_gain, self.paired_p = m.patience, m.min_gain, m.paired_p
        self.best, self.since, self.fired = -math.inf, 0, False
        self.finals: dict[int, dict[int, float]] = {}

    def finished(self, cell: int, offset: int, value: float) -> None:
        if self.patience and offset == 0:
            if value > self.best + self.min_gain:
                self.best, self.since = value, 0
            else:
                self.since += 1
            self.fired |= self.since >= self.patience
        if self.paired_p:
            self.finals.setdefault(cell, {}).setdefault(offset, value)
            self.fired |= separated(self.finals, self.paired_p)


def separated(finals: dict, p: float) -> bool:
    """The best config by mean (among those with the most seeds) beats every other config with at least
    3 seeds in common on those seeds, one-sided paired t-test p < `p`."""
    from scipy.stats import ttest_rel

    most = max(len(v) for v in finals.values())
    if most < 3:
        return False
    best = max((c for c in finals if len(finals[c]) == most), key=lambda c: statistics.fmean(finals[c].values()))
    rivals = [c for c in finals if c != best and len(finals[best].keys() & finals[c].keys()) >= 3]
    if not rivals:
        return False
    for c in rivals:
        common = sorted(finals[best].keys() & finals[c].keys())
        a, b = [finals[best][k] for k in common], [finals[c][k] for k in common]
        if a == b or ttest_rel(a, b, alternative="greater").pvalue >= p:
            return False
    return True


@dataclass
class Result:
    """One reported epoch, in the order results reach ASHA; the n-th costs the n-th trial-epoch."""
    trial: _Trial
    epoch: int
    value: float      # signed: higher is better


def trajectory(table: Table, m: Method, seed: int, limit: int | None = None) -> list[Result]:
    """Every epoch one simulated search reports, in order (the first `limit` of them)."""
    study = optuna.create_study(direction="maximize" if table.mode == "max" else "minimize",
                                sampler=_sampler(m, seed))
    if table.warm:
        study.enqueue_trial(table.warm)
    dists, max_t, sign = space(table), table.max_t, table.sign()
    bracket = _Bracket(min(m.grace, max_t), max_t, m.eta, 0, stop_last_trials=True) if max_t > 1 else None
    events, order = [], itertools.count()     # (time the trial's next epoch ends, tie-break, trial)
    results, started = [], 0

    def next_epoch(t: _Trial, now: float) -> None:
        heapq.heappush(events, (now + table.epoch_seconds(t.cell, t.seed, t.epoch), next(order), t))

    replicas = Replicas(m.replicates, m.replicate_eta) if m.replicates else None
    stop = StopRule(m)
    now, at_once = 0.0, m.concurrency or proposals.default_concurrency(m.num_samples)
    while (started < m.num_samples or events) and (limit is None or len(results) < limit) and not stop.fired:
        while len(events) < at_once and started < m.num_samples:
            job = replicas.next() if replicas else None
            if job is not None:     # a replicate goes before a new proposal, as a trial of the search
                cell, offset = job
                t = _Trial(started, None, cell, recorded_seed(table, cell, seed + offset), offset)
            else:
                ot = study.ask(dists)
                cell = table.nearest(ot.params)
                t = _Trial(started, ot, cell, recorded_seed(table, cell, seed))
            next_epoch(t, now)
            started += 1
        now, _, t = heapq.heappop(events)
        t.epoch += 1
        value = table.curves[t.cell][t.seed][t.epoch - 1]
        results.append(Result(t, t.epoch, sign * value))
        if t.ot is not None:
            t.ot.report(value, t.epoch)
        if t.epoch >= max_t:
            if t.ot is not None:
                study.tell(t.ot, value)
            if replicas:
                replicas.finished(t.cell, t.offset, sign * value)
            stop.finished(t.cell, t.offset, sign * value)
        elif t.ot is None:
            next_epoch(t, now)
        elif bracket.on_result(t, t.epoch, sign * value) == "STOP":
            study.tell(t.ot, state=optuna.trial.TrialState.PRUNED) if m.pruned else study.tell(t.ot, value)
        else:
            next_epoch(t, now)
    return results


def search(table: Table, m: Method, seed: int) -> Outcome:
    """One simulated search: (regret of its pick, trial-epochs spent, the picked config)."""
    return pick(table, m, seed, trajectory(table, m, seed))


def pick(table: Table, m: Method, seed: int, results: list[Result]) -> Outcome:
    """The pick from the results a search got (all of them, or those its budget paid for): the best
    trial trained to the end, confirmed where `m` says; where none was, the furthest-trained best (the
    runner's ranking, search/picking/ranking.py)."""
    last = {r.trial: r for r in results}      # each trial's last report: where it finished or was cut
    finished = [(r.value, r.trial) for r in last.values() if r.epoch >= table.max_t]
    if m.pick_any_epoch:
        cell, extra = max(last.values(), key=lambda r: r.value).trial.cell, 0
    elif m.replicates and finished:
        cell, extra = replicate_pick(results, table.max_t), 0
    elif finished:
        cell, extra = confirm(table, m, finished, seed, table.max_t)
    else:
        cell, extra = max(last.values(), key=lambda r: (r.epoch, r.value)).trial.cell, 0
    return Outcome(table.regret(cell), len(results) + extra, cell)


def expected_epochs(m: Method, max_t: int) -> float:
    """A trial's trial-epochs under ASHA when its rungs keep a random 1/eta: grace epochs, then each
    rung's survivors to the next."""
    rungs, r = [], min(m.grace, max_t)
    while r < max_t:
        rungs.append(r)
        r *= m.eta
    points = rungs + [max_t]
    return points[0] + sum((b - a) / m.eta ** (i + 1) for i, (a, b) in enumerate(zip(points, points[1:])))


def at_budget(table: Table, m: Method, seed: int, budget_epochs: float) -> Outcome:
    """The method given `budget_epochs` trial-epochs in all, re-training included: re-training takes at
    most `m.retrain_share` of it (fewer configs confirmed when it is small, none where fewer than 2
    fit: confirming one config cannot change the pick), the search is sized to the rest
    (trials = 1.25 x what that affords under ASHA, as a user sets --num-samples) and stopped when it
    is spent; the pick is made from what it got by then."""
    per_config = m.confirm_seeds * table.max_t
    k = min(m.confirm, int(budget_epochs * m.retrain_share // per_config)) if m.confirm and per_config else 0
    k = k if k >= 2 else 0
    search_budget = int(budget_epochs - k * per_config)
    n = max(2, math.ceil(1.25 * search_budget / expected_epochs(m, table.max_t)))
    sized = m.with_(num_samples=n, confirm=k)
    return pick(table, sized, seed, trajectory(table, sized, seed, limit=search_budget))


def confirm(table: Table, m: Method, finished: list, seed: int, max_t: int) -> tuple[int, int]:
    """The pick: the best final value, or with confirmation the best mean over the trial's seed and
    `confirm_seeds` others (the runner's seed+1..seed+S, read as the simulated trainable reads them),
    among the top `confirm` configs. -> (config, trial-epochs spent confirming)."""
    ranked, seen = [], set()
    for value, t in sorted(finished, key=lambda vt: -vt[0]):
        if t.cell not in seen:   # two proposals of one recorded config are one config here
            seen.add(t.cell)
            ranked.append((value, t))
    if not m.confirm or not m.confirm_seeds:
        return ranked[0][1].cell, 0
    means, extra = [], 0
    for value, t in ranked[:m.confirm]:
        others = [recorded_seed(table, t.cell, seed + k) for k in range(1, m.confirm_seeds + 1)]
        extra += len(others) * max_t
        finals = [value] + [table.sign() * table.final(t.cell, s) for s in others]
        means.append((statistics.fmean(finals), t.cell))
    return max(means)[1], extra


def grid_seed(table: Table, config: int, seed: int) -> int:
    """The seed a grid run trains every config with (`--grid --seed S`: one seed for all, here the pool's
    S mod its size), where the config has it recorded; else the one --simulate would read."""
    pool = table.pool_seeds
    s = pool[seed % len(pool)]
    return s if s in table.curves[config] else recorded_seed(table, config, seed)


def grid(table: Table, seed: int) -> Outcome:
    """The paper's grid (every recorded config), one seed for every config as `--grid --seed S` trains
    it: every config trained to the end, the best final value picked."""
    return _best_trained(table, sorted(table.curves), seed)


def truncated_grid(table: Table, seed: int, budget_epochs: float) -> Outcome:
    """The grid stopped when the budget runs out, its configs in a random order: the best of those done."""
    order = sorted(table.curves)
    random.Random(seed).shuffle(order)
    return _best_trained(table, order[:max(1, int(budget_epochs // table.max_t))], seed)


def _best_trained(table: Table, configs: list[int], seed: int) -> Outcome:
    finals = {c: table.sign() * table.final(c, grid_seed(table, c, seed)) for c in configs}
    pick = max(finals, key=finals.get)
    return Outcome(table.regret(pick), len(finals) * table.max_t, pick)
