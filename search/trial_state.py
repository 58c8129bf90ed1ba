"""Two gaps in Ray Tune's bookkeeping, closed with driver callbacks.

`NoRetryOnUserError`: Tune retries every failed trial up to FailureConfig.max_failures, the
right thing for a lost node or a preempted VM, a waste for a config error or a diverged loss,
which fail again the same way. The trainable reports `cxr_error` just before it raises such an
error (trainables.train.train_fn); this callback then sets that trial's max_failures to 0, so
Tune ends it on the first failure and tells the searcher it failed.

`AshaState`: Tune saves the searcher and the callbacks with the experiment but not the
scheduler (ray-project/ray#30838), so a resumed ASHA forgets what earlier trials reached at
each rung and stops or keeps trials by a fresh cutoff. This callback carries the rungs in its
saved state and puts them back into the same scheduler object on `--resume`.
"""
from __future__ import annotations

from ray.tune import Callback
from ray.tune.schedulers import ASHAScheduler

ERROR_KEY = "cxr_error"


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
