"""Confirmed picks: the search's top K configs trained again with S other seeds, the pick by mean.

The differences between a search's top configs are often smaller than what the training seed alone
moves val AUC (the same DualCheXNet config ends at 0.739 with one seed and 0.656 with another on the
CPU profile), so one seed decides nothing. `--confirm K --confirm-seeds S` trains each of the top K
configs (trials that ran every epoch, best first by search/picking/ranking.py) for the full schedule with
seeds seed+1..seed+S, as child runs of the search tagged `cxr.role=confirmation` and `cxr.confirms`
(the original trial's run id). Each config then has 1+S values; its mean and a 95 % Student-t
interval are shown, and the pick is the best mean.

Are the top two distinguishable? Every config ran with the same seeds, and a seed fixes the data
order and augmentation, so the values pair by seed: a paired t-test of the best mean against the
runner-up (scipy.stats.ttest_rel) uses that pairing, where overlapping intervals would ignore it.
With 3 seeds it has 2 degrees of freedom: it says "distinguishable" only for large, consistent
gaps, and says so.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from scipy import stats

ROLE = "confirmation"
CONFIRMS_TAG = "cxr.confirms"     # on a confirmation run: the run id of the trial it re-trains
MEAN_TAG = "cxr.confirmed_mean"   # on a confirmed trial's run: its mean val AUC over the seeds
RANK_TAG = "cxr.confirmed_rank"   # ... and its rank by that mean (1 = the pick)
ALPHA = 0.05


@dataclass
class Candidate:
    name: str
    config: dict
    trial_id: str
    values: dict[int, float] = field(default_factory=dict)   # seed -> val AUC at the last epoch

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values.values())

    def interval(self) -> tuple[float, float] | None:
        """95 % Student-t interval of the mean (None with fewer than 2 values)."""
        v = list(self.values.values())
        if len(v) < 2:
            return None
        half = float(stats.t.ppf(1 - ALPHA / 2, len(v) - 1)) * statistics.stdev(v) / math.sqrt(len(v))
        return self.mean - half, self.mean + half


@dataclass
class Verdict:
    ranked: list[Candidate]     # best mean first
    p_value: float | None       # paired t-test, the pick against the runner-up
    seeds: list[int]            # the seeds both were compared on

    @property
    def pick(self) -> Candidate:
        return self.ranked[0]

    @property
    def distinguishable(self) -> bool | None:
        return None if self.p_value is None else self.p_value < ALPHA

    def text(self) -> str:
        if len(self.ranked) < 2:
            return f"only {self.pick.name} was confirmed: nothing to tell it apart from"
        second = self.ranked[1]
        if self.p_value is None:
            return (f"{self.pick.name} has the best mean, but {second.name} shares fewer than 2 seeds with it: "
                    "no paired test")
        seeds = f"paired t-test over seeds {', '.join(map(str, self.seeds))}, p = {self.p_value:.3f}"
        if self.distinguishable:
            return f"{self.pick.name} is better than {second.name} ({seeds})"
        return (f"the top configs are not distinguishable: {self.pick.name} vs {second.name}, {seeds}; "
                "any of them is as good a pick on this evidence (more --confirm-seeds may tell them apart)")


def judge(candidates: list[Candidate]) -> Verdict:
    """The candidates ranked by mean val AUC over their seeds, and the paired test of the top two."""
    ranked = sorted((c for c in candidates if c.values), key=lambda c: -c.mean)
    if not ranked:
        raise ValueError("no candidate has a value")
    if len(ranked) < 2:
        return Verdict(ranked, None, sorted(ranked[0].values))
    a, b = ranked[0], ranked[1]
    shared = sorted(set(a.values) & set(b.values))
    p = None
    if len(shared) >= 2:
        diffs = [a.values[s] - b.values[s] for s in shared]
        if statistics.pstdev(diffs) < 1e-12:   # t undefined (up to rounding): the same gap on every seed
            p = 1.0 if abs(diffs[0]) < 1e-12 else 0.0
        else:
            p = float(stats.ttest_rel([a.values[s] for s in shared], [b.values[s] for s in shared]).pvalue)
    return Verdict(ranked, p, shared)


def other_seeds(seed: int, count: int) -> list[int]:
    return [seed + i for i in range(1, count + 1)]


def lines(verdict: Verdict) -> list[str]:
    """The table the printout and the report show."""
    out = []
    for i, c in enumerate(verdict.ranked, 1):
        ci = c.interval()
        spread = f"95% CI [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "one value"
        out.append(f"{i}. mean val_auc {c.mean:.4f} over {len(c.values)} seeds, {spread}  {c.name}")
    return out
