"""The search's stop rule (`--patience P --min-gain D`): end the whole search once P trials in a row
ran every epoch without raising the best val AUC by more than D.

Measured in the replay (benchmarks/replay_anytime.py, `stop_rules`; docs/replay.md) against the
other rule the issue names, a paired test of the best config against every rival with 3 common
replicate seeds:
patience saved compute on both recorded tables but raised DualCheXNet's 90th-percentile regret, and
the paired test needs 3 or more seeds per config, which a search rarely affords. Patience needs no
replicates; a D of about half a seed's standard deviation (the replay's setting) keeps seed noise from
resetting it. Off by default.

Trials still running when it fires end `search_stopped` (search/tracking/callback.py): the pick is
made from what they reached, as for --time-budget. A search interrupted before it fired keeps its
patience and min-gain on --resume (saved with the search, not re-read from the flags) and counts again
from zero; one it ended has nothing left to run.
"""
from __future__ import annotations

import math

from ray.tune.stopper import Stopper

from search.picking.ranking import METRIC
from search.scheduling.replicas import replica_of


class PatienceStopper(Stopper):
    def __init__(self, patience: int, min_gain: float, max_t: int):
        self.patience, self.min_gain, self.max_t = patience, min_gain, max_t
        self.best, self.since, self.fired = -math.inf, 0, False

    def __call__(self, trial_id: str, result: dict) -> bool:
        """Counts a proposal's last epoch (replicates are not new configs); never stops one trial."""
        if result.get("epoch", 0) < self.max_t or METRIC not in result:
            return False
        if replica_of(result.get("config") or {}):
            return False
        value = result[METRIC]
        if value > self.best + self.min_gain:
            self.best, self.since = value, 0
        else:    # a gain within D is noise: neither a new best nor a reset (as the replay's StopRule)
            self.since += 1
        self.fired |= self.since >= self.patience
        return False

    def stop_all(self) -> bool:
        return self.fired
