"""Five gaps in Ray Tune's bookkeeping, closed on the driver.

`NoRetryOnUserError`: Tune retries every failed trial up to FailureConfig.max_failures, the
right thing for a lost node or a preempted VM, a waste for a config error or a diverged loss,
which fail again the same way. The trainable reports `ERROR_KEY` (`cxr_error`) just before it
raises such an error (trainables.train.train_fn); this callback then sets that trial's max_failures to 0, so
Tune ends it on the first failure and tells the searcher it failed.

`AshaState`: Tune saves the searcher and the callbacks with the experiment but not the
scheduler (ray-project/ray#30838), so a resumed ASHA forgets what earlier trials reached at
each rung and stops or keeps trials by a fresh cutoff. This callback carries the rungs in its
saved state and puts them back into the same scheduler object on `--resume`.

`ResumableOptunaSearch` tells Optuna a trial ASHA stopped as PRUNED, with its per-epoch values
(Ray's OptunaSearch tells it as COMPLETE at its cut; see the class).

`ResumableSearchGenerator` and `ResumableOptunaSearch`: Tune uploads the experiment state,
the search generator's and the searcher's to storage as separate files, in the background. A
driver killed between them (a lost SSH session, a reboot; seen with s3:// storage) leaves an
experiment whose trial list disagrees with the restored search: the generator's count of trials
made is off, so the resumed search runs more (or fewer) trials than --num-samples, and Optuna's
study lacks trials the experiment has, so OptunaSearch ends the resumed search with a KeyError
on their first result. The experiment's trial list is taken as the truth: the count comes from
it, and a trial the study lacks joins it, at its end, with the config it ran.

`LimitedSearch`: Tune applies `max_concurrent_trials` only to a bare `Searcher`; handed a
`SearchGenerator` (ours above) it warns and runs as many trials as the resources allow, so every
proposal on a large cluster would be made before any result is back. The searcher is wrapped in
Ray's `ConcurrencyLimiter` here instead, with two changes for `--resume`: the restored limiter
counts the trials the experiment will run again (its unfinished and errored ones, from the same
experiment state the trials come from) as running, and a trial it does not count still reaches the
searcher when it ends (Ray's limiter drops it, and Optuna would never hear of it).
"""
from __future__ import annotations

import json
import logging

import optuna
from ray.tune import Callback
from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint
from ray.tune.result import TRAINING_ITERATION
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter, SearchGenerator
from ray.tune.search.optuna import OptunaSearch

from trainables.checkpoints import ERROR_KEY
from trainables.errors import one_line

EPOCH = "epoch"  # what the trainable reports per epoch, and ASHA's time attribute

logger = logging.getLogger(__name__)


def error_line(result: dict | None, error_text: str = "") -> str | None:
    """The one line a trial failed with: what it reported itself (a user error), else the last
    line of its exception's text."""
    reported = (result or {}).get(ERROR_KEY)
    if reported:
        return reported
    lines = [line for line in error_text.splitlines() if line.strip()]
    return one_line(lines[-1]) if lines else None


class NoRetryOnUserError(Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get(ERROR_KEY):
            trial.max_failures = 0


class AshaState(Callback):
    def __init__(self, scheduler: ASHAScheduler):
        self.scheduler = scheduler

    def get_state(self):
        return {"rungs": [[(milestone, dict(recorded)) for milestone, recorded in bracket._rungs]
                          for bracket in self.scheduler._brackets],
                "num_stopped": self.scheduler._num_stopped}

    def set_state(self, state):
        saved = state.get("rungs", [])
        if len(saved) != len(self.scheduler._brackets):
            return  # a different ASHA configuration: keep its fresh rungs
        for bracket, rungs in zip(self.scheduler._brackets, saved):
            if [m for m, _ in rungs] == [m for m, _ in bracket._rungs]:
                bracket._rungs = [(m, dict(recorded)) for m, recorded in rungs]
        self.scheduler._num_stopped = state.get("num_stopped", 0)


class ResumableOptunaSearch(OptunaSearch):
    """OptunaSearch that tells Optuna the truth about ASHA's cuts and survives a torn save.

    Ray's OptunaSearch reports intermediate values by Tune's iteration count and tells Optuna a
    trial the scheduler stopped as COMPLETE with its last value, so TPE compares an epoch-1 value
    of a cut trial with the epoch-6 value of a finished one. Here each value is reported at its
    `epoch`, and a trial that ends before `max_t` epochs without an error is told as PRUNED: TPE
    ranks pruned trials below finished ones, among themselves by the epoch they reached and their
    value there (optuna.samplers.TPESampler).
    """

    def __init__(self, *args, max_t: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_t = max_t

    def _step(self, result: dict) -> int:
        return int(result.get(EPOCH, result[TRAINING_ITERATION]))

    def _reported(self) -> dict[str, set]:
        """Epochs reported to Optuna per trial (absent from a pickle of an older version)."""
        return self.__dict__.setdefault("_reported_steps", {})

    def _cut(self, result: dict | None, error: bool) -> bool:
        """Did the scheduler stop this trial before its last epoch? (None max_t: a pickle of an older version.)"""
        max_t = self.__dict__.get("max_t")
        return bool(max_t and result and not error and result.get(self.metric) is not None
                    and self._step(result) < max_t)

    def _orphan(self, trial_id: str, result: dict | None) -> dict | None:
        """The record of a trial the study does not know, started on its first sight."""
        if trial_id in self._ot_trials or trial_id in self._completed_trials:
            return None
        adopted = self.__dict__.setdefault("_adopted", {})  # absent from a pickle of an older version
        if trial_id not in adopted:
            if not result:
                logger.warning("trial %s failed before the restored Optuna study saw it; it is left out of the "
                               "study (the trial itself is in the results)", trial_id)
                self._completed_trials.add(trial_id)
                return None
            params = {k: result[f"config/{k}"] for k in self._space}
            logger.warning("trial %s is not in the restored Optuna study (the driver stopped while saving the "
                           "experiment); it joins the study with its config when it ends", trial_id)
            adopted[trial_id] = {"params": params, "values": {}}
        return adopted[trial_id]

    def on_trial_result(self, trial_id: str, result: dict):
        orphan = self._orphan(trial_id, result)
        if orphan is not None:
            orphan["values"][self._step(result)] = result[self.metric]
        elif trial_id not in self._completed_trials:
            super().on_trial_result(trial_id, {**result, TRAINING_ITERATION: self._step(result)})
            self._reported().setdefault(trial_id, set()).add(self._step(result))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        orphan = self._orphan(trial_id, result)
        value = (result or {}).get(self.metric)
        if value is not None:
            # Tune hands a result the scheduler answered STOP (a cut, or the last epoch) only to
            # on_trial_complete: it is the trial's last intermediate value
            step = self._step(result)
            if orphan is not None:
                orphan["values"][step] = value
            elif trial_id in self._ot_trials and trial_id not in self._completed_trials \
                    and step not in self._reported().get(trial_id, ()):
                self._ot_trials[trial_id].report(value, step)
        if orphan is None:
            if trial_id in self._completed_trials:
                return
            if self._cut(result, error):
                # PRUNED takes no value: Optuna keeps the last intermediate one as the trial's value
                self._ot_study.tell(self._ot_trials[trial_id], state=optuna.trial.TrialState.PRUNED)
                self._completed_trials.add(trial_id)
            else:
                super().on_trial_complete(trial_id, result, error)
            return
        del self._adopted[trial_id]
        state = optuna.trial.TrialState.PRUNED if self._cut(result, error) or (value is None and not error) else \
            optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
        value = value if state == optuna.trial.TrialState.COMPLETE else None
        self._ot_study.add_trial(optuna.trial.create_trial(
            params=orphan["params"], distributions=self._space, state=state,
            value=value, intermediate_values=orphan["values"]))
        self._completed_trials.add(trial_id)


class LimitedSearch(ConcurrencyLimiter):
    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        self.searcher.on_trial_complete(trial_id, result=result, error=error)
        if trial_id in self.live_trials:
            self.live_trials.remove(trial_id)
            self.num_unfinished_live_trials -= 1

    def running_again(self, trial_ids: list[str]) -> None:
        """The trials a resumed experiment runs again, counted against the limit until they end."""
        self.live_trials = set(trial_ids)
        self.num_unfinished_live_trials = len(self.live_trials)


# Trial states that `Tuner.restore(resume_unfinished=True, resume_errored=True)` runs again
RUN_AGAIN = {"PENDING", "RUNNING", "PAUSED", "ERROR"}


def unfinished(trial_data: list) -> list[str]:
    """The ids of the trials in an experiment state's trial list that a resume runs again."""
    ids = []
    for state, _ in trial_data:
        trial = json.loads(state)
        if trial.get("status") in RUN_AGAIN:
            ids.append(trial["trial_id"])
    return ids


class ResumableSearchGenerator(SearchGenerator):
    def restore_from_dir(self, dirpath: str):
        # Tune has just downloaded the experiment's state files to dirpath and restored its trials
        # from the newest experiment state there: the same file is read here.
        super().restore_from_dir(dirpath)
        newest = _find_newest_experiment_checkpoint(dirpath)
        if newest is None:
            return
        with open(newest) as f:
            trial_data = json.load(f)["trial_data"]
        if isinstance(self.searcher, LimitedSearch):
            self.searcher.running_again(unfinished(trial_data))
        made = len(trial_data)
        if made != self._counter:
            logger.warning("the experiment has %d trial(s), its saved search state counted %d (the driver stopped "
                           "while saving the experiment); going on from %d", made, self._counter, made)
            self._counter = made
