"""Seeds as a fidelity: replicate rungs (asynchronous successive halving over seeds), in the search.

One seed moves a config's val AUC about as much as configs differ (docs/replay.md), so a pick
from one seed per config is partly a pick of a seed. Here a config that ran every epoch is
re-trained with the next seed (the search's seed + 1, + 2, ...: the seeds `--confirm` uses, so
configs are compared on the same seeds) while the search goes on, when its mean over the seeds it
has is in the top 1/eta of the configs that reached as many seeds; the first config to get there
goes on, as in ASHA. Up to 1 + `replicates` seeds per config.

- A replicate is a trial of the search: it takes one of --num-samples and a slot under the
  concurrency limit, so re-training is paid from the search's budget, and it goes before the next
  new proposal.
- Its config is its origin's with `train.seed` moved on and `train.replica` = k (0 for a
  proposal): ASHA does not cut it, Optuna is not told of it (the study holds one trial per
  proposed config, at the origin's seed), MLflow and the report group it with its origin.
- The rungs and the queue are saved with the searcher and come back on `--resume`.

benchmarks/replay_sim.py (`Replicas`) models the same rule over recorded curves.
"""
from __future__ import annotations

import copy
import statistics
from collections import deque

import numpy as np
from ray.tune.search import Searcher

from search.picking.ranking import METRIC, scored
from trainables.config import flatten, unflatten

REPLICA = "replica"   # config["train"][REPLICA]: 0 for a proposal, k for its k-th replicate
REPLICA_TAG = "cxr.replica"   # on a replicate's MLflow run: k


def replica_of(config: dict) -> int:
    return int((config.get("train") or {}).get(REPLICA, 0))


def promoted(rung: dict, config, finals: dict, eta: int) -> bool:
    """Enters `config` into the rung of configs with as many seeds (at its mean over `finals`, the first
    time only): whether that mean is in the rung's top 1/eta, as ASHA promotes (the first goes on)."""
    if config in rung:
        return False
    mean = statistics.fmean(finals.values())
    cutoff = float(np.percentile(list(rung.values()), (1 - 1 / eta) * 100)) if rung else None
    rung[config] = mean
    return cutoff is None or mean >= cutoff


def flat(config: dict) -> dict:
    """{'a/b': v}: a nested config as Tune flattens it into a result's `config/...` keys."""
    return flatten(config, sep="/")


def unflattened(config: dict) -> dict:
    return unflatten(config, sep="/")


class ReplicatingSearch(Searcher):
    def __init__(self, searcher: Searcher, replicates: int, eta: int, max_t: int, seed: int):
        super().__init__(metric=searcher.metric, mode=searcher.mode)
        self.searcher, self.replicates, self.eta, self.max_t, self.seed = searcher, replicates, eta, max_t, seed
        self.configs: dict[str, dict] = {}                    # proposal's trial id -> its suggested config
        self.origin: dict[str, tuple[str, int]] = {}          # replicate's trial id -> (proposal's id, k)
        self.finals: dict[str, dict[int, float]] = {}         # proposal's id -> {k: final val AUC}
        self.rungs: dict[int, dict[str, float]] = {}          # seeds -> {proposal's id: mean when it got them}
        self.queue: deque[tuple[str, int]] = deque()          # (proposal's id, k) to train next

    # -- Tune's Searcher interface --------------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        if self.queue:
            origin, k = self.queue.popleft()
            config = copy.deepcopy(self.configs[origin])
            config.setdefault("train", {}).update({"seed": self.seed + k, REPLICA: k})
            self.origin[trial_id] = (origin, k)
            return config
        config = self.searcher.suggest(trial_id)
        if isinstance(config, dict):
            self.configs[trial_id] = copy.deepcopy(config)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._identify(trial_id, result)[1] == 0:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        origin, k = self._identify(trial_id, result)
        if k == 0:
            self.searcher.on_trial_complete(trial_id, result=result, error=error)
        if origin is not None and not error and scored(result) and int(result.get("epoch", 0)) >= self.max_t:
            self.finished(origin, k, float(result[METRIC]))

    def _identify(self, trial_id: str, result: dict | None) -> tuple[str | None, int]:
        """(the proposal's trial id, k) of a trial. A driver stopped while saving can leave trials the
        restored state does not know (search/scheduling/trial_state.py): their flattened config says what they are;
        an unknown proposal's config is kept so it can be replicated, an unknown replicate is matched to
        its proposal by config (None if none matches)."""
        if trial_id in self.origin:
            return self.origin[trial_id]
        config = {key[len("config/"):]: v for key, v in (result or {}).items() if key.startswith("config/")}
        k = int(config.get(f"train/{REPLICA}", 0) or 0)
        if k == 0:
            if trial_id not in self.configs and config:
                self.configs[trial_id] = unflattened(config)
            return trial_id, 0
        own = ("train/seed", f"train/{REPLICA}")
        same = [o for o, c in self.configs.items()
                if all(config.get(key) == v for key, v in flat(c).items() if key not in own)]
        self.origin[trial_id] = (same[0], k) if same else (None, k)
        return self.origin[trial_id]

    # -- the rungs -------------------------------------------------------------------------------
    def finished(self, origin: str, k: int, value: float) -> None:
        """`origin`'s config ran every epoch with seed + k: promote it to the next seed when its mean
        is in the top 1/eta of the configs with as many seeds."""
        got = self.finals.setdefault(origin, {})
        if k in got:
            return
        got[k] = value
        seeds = len(got)
        if promoted(self.rungs.setdefault(seeds, {}), origin, got, self.eta) and seeds <= self.replicates:
            self.queue.append((origin, seeds))

    def standings(self) -> list[tuple[str, int, float]]:
        """(proposal's id, seeds trained to the end, mean over them), the pick first: most seeds, then mean."""
        rows = [(o, len(v), statistics.fmean(v.values())) for o, v in self.finals.items()]
        return sorted(rows, key=lambda r: (r[1], r[2]), reverse=True)

    # -- saved with the experiment: Tune keeps a wrapper's (an object with `.searcher`) get_state in
    # the search generator's file and the innermost searcher's own save beside it
    def get_state(self) -> dict:
        state = self.__dict__.copy()
        del state["searcher"]
        return copy.deepcopy(state)

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)
