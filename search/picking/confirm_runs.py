"""`--confirm K --confirm-seeds S` run: the top K trials' configs trained again with S other seeds, as
a Tune run of its own (`<search>-confirm`, beside the search, so `--resume` continues it too) whose
trials are child runs of the search's parent run (search/picking/confirmation.py says what is computed).
"""
from __future__ import annotations

import copy
import json

from ray import tune
from ray.tune.search.basic_variant import BasicVariantGenerator

from search.picking import confirmation, ranking
from search.console import LiveView, env_defaults, old_reporter, tune_console
from search.scheduling.replicas import REPLICA, replica_of
from search.tracking.callback import MLflowSearchCallback
from search.scheduling.trial_state import NoRetryOnUserError

METRIC = ranking.METRIC


def candidates(results, top: int, max_epochs: int) -> list[confirmation.Candidate]:
    """The top `top` configs that ran every epoch, each with the value of every seed it ran to the end
    (its replicates', search/scheduling/replicas.py, too; a proposal's trial names it): ranked by how many seeds,
    then by their mean (one seed each: the search's ranking, search/picking/ranking.py)."""
    full = [r for r in results
            if not r.error and ranking.scored(r.metrics) and int(r.metrics.get("epoch", 0)) >= max_epochs]
    by_key: dict[str, confirmation.Candidate] = {}
    for r in sorted(full, key=lambda r: replica_of(r.config)):
        seed, value = int(r.config["train"]["seed"]), float(r.metrics[METRIC])
        c = by_key.get(config_key(r.config))
        if c is None:
            by_key[config_key(r.config)] = confirmation.Candidate(
                name=r.metrics.get("trial_id", ""), config=r.config, trial_id=r.metrics.get("trial_id", ""),
                values={seed: value})
        else:
            c.values.setdefault(seed, value)
    return sorted(by_key.values(), key=lambda c: (len(c.values), c.mean), reverse=True)[:top]


def config_key(config: dict) -> str:
    """A config without its seed: what a confirmation run or a replicate shares with the trial it re-trains."""
    rest = copy.deepcopy(config)
    rest.get("train", {}).pop("seed", None)
    rest.get("train", {}).pop(REPLICA, None)
    return json.dumps(rest, sort_keys=True, default=str)


def points(cands: list[confirmation.Candidate], seeds: list[int]) -> list[dict]:
    """Each candidate with each seed it has no value for yet (its replicates ran some)."""
    out = []
    for c in cands:
        for seed in seeds:
            if seed in c.values:
                continue
            config = copy.deepcopy(c.config)
            config["train"]["seed"] = seed
            out.append(config)
    return out


class ConfirmationCallback(MLflowSearchCallback):
    """Logs the confirmation trials under an existing parent run, named after the trial they re-train."""

    def __init__(self, delivery, parent, max_epochs: int, parent_run_id: str, origins: dict[str, tuple[str, str]]):
        super().__init__(delivery, parent, max_epochs)
        self.origins = origins   # config_key of a candidate -> (its trial's run id, its run name)
        self._restored = {"runs": {self.uid: parent_run_id}, "pending": []}
        self.started = True      # the parent run exists: never create it

    def setup(self, **info):
        pass

    def new_run(self, trial) -> tuple[str, dict]:
        origin = self.origins[config_key(trial.config)]
        return self.run_name(trial), {"cxr.role": confirmation.ROLE, confirmation.CONFIRMS_TAG: origin[0]}

    def run_name(self, trial) -> str:
        return f"{self.origins[config_key(trial.config)][1]} seed={trial.config['train']['seed']}"

    def on_experiment_end(self, trials, **info):
        self.mark_interrupted(trials)   # the parent's status and best are the search's, set already
        self.close()


def run(cands: list[confirmation.Candidate], seeds: list[int], trainable, callback: ConfirmationCallback,
        exp_path: str, name: str, storage: str, verbose: bool = False) -> list[confirmation.Candidate]:
    """Train every candidate with every seed (or continue that run); -> the candidates, values filled.
    `verbose`: Tune's own console, else the live view (search/console.py)."""
    if tune.Tuner.can_restore(exp_path):
        tuner = tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        todo = points(cands, seeds)
        if not todo:     # the replicate rungs trained every seed already
            return cands
        tuner = tune.Tuner(
            trainable, param_space=todo[0],
            tune_config=tune.TuneConfig(search_alg=BasicVariantGenerator(points_to_evaluate=todo),
                                        num_samples=len(todo), trial_dirname_creator=lambda t: f"trial_{t.trial_id}"),
            run_config=tune.RunConfig(
                name=name, storage_path=storage, failure_config=tune.FailureConfig(max_failures=2),
                callbacks=[callback, NoRetryOnUserError(),
                           *([] if verbose else [LiveView(callback, len(todo), callback.max_epochs)])],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1), verbose=1 if verbose else 0,
                progress_reporter=old_reporter(verbose, metric_columns=["epoch", METRIC], max_report_frequency=30)))
    by_key = {config_key(c.config): c for c in cands}
    with env_defaults(tune_console(verbose)):
        results = tuner.fit()
    for r in results:
        if not r.error and ranking.scored(r.metrics):
            by_key[config_key(r.config)].values[int(r.config["train"]["seed"])] = float(r.metrics[METRIC])
    return cands


