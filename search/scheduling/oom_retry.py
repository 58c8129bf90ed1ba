"""A packed trial that runs out of GPU memory is retried alone, from its checkpoint.

Trials sharing a GPU (search/scheduling/packing.py) share its memory with no fence between them: a trial
whose neighbours happen to peak together can run out of it although it fits alone. That is not
a property of its config, so it is neither a failure to report nor one to repeat as it was: Tune
retries it (FailureConfig.max_failures), and this scheduler first gives the retry a whole GPU.

Tune calls the scheduler's on_trial_error twice per failure with different meanings: with the
trial still RUNNING when it fails for good, and with the trial in ERROR just before it is requeued
for a retry (TuneController._try_recover, then _requeue_trial: on_trial_error, PENDING,
on_trial_add). Only in the second case may its resources change (Trial.update_resources refuses a
RUNNING trial), and changing them here, before it is PENDING, files it under the new request.
"""
from __future__ import annotations

import os

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler

from search.scheduling.replicas import replica_of

OOM_MARKERS = ("outofmemoryerror", "cuda out of memory", "cuda error: out of memory")


def out_of_memory(trial: Trial) -> bool:
    """Whether the trial's latest failure was a CUDA out-of-memory error: the driver's copy of its
    error file (written by Trial.handle_error before the scheduler hears of it; one "Failure #" block
    per failure)."""
    path = trial.error_file
    if not path or not os.path.exists(path):
        return False
    with open(path) as f:
        latest = f.read().split("Failure #")[-1].lower()
    return any(marker in latest for marker in OOM_MARKERS)


class PackedASHA(ASHAScheduler):
    """ASHA, and a packed trial that ran out of GPU memory gets `alone` (a whole GPU and its CPUs)
    for its retry. `retried`: trial id -> the resources it had, for the printout and MLflow."""

    def __init__(self, *args, alone: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.alone = alone
        self.retried: dict[str, dict] = {}

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        # a replicate (search/scheduling/replicas.py) re-trains a config that already ran every epoch: its seed
        # is the fidelity measured, not its epochs, and its values stay out of the rungs
        if replica_of(trial.config):
            return self.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        if replica_of(trial.config):    # its last value would land in the top rung and raise its cutoff
            self._trial_info.pop(trial.trial_id, None)
            return
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_error(self, tune_controller, trial: Trial):
        if self.alone and trial.status == Trial.ERROR and trial.should_recover() and out_of_memory(trial):
            shared = trial.placement_group_factory.required_resources
            if shared.get("GPU", 0) < self.alone["gpu"]:
                trial.update_resources(self.alone)
                self.retried[trial.trial_id] = shared
                print(f"trial {trial.trial_id} ran out of GPU memory sharing a GPU ({shared.get('GPU', 0):g} of "
                      f"one): retried alone on a whole GPU from its last checkpoint", flush=True)
        return super().on_trial_error(tune_controller, trial)
