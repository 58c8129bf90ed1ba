"""A config that diverges costs one attempt, not 1 + FailureConfig.max_failures, and is marked
failed in MLflow (with its message) and in Optuna."""
from __future__ import annotations

import re

import optuna
import pytest
from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from search.tracking.callback import Delivery, MLflowSearchCallback, ParentRun
from search.scheduling.trial_state import NoRetryOnUserError
from tests.trainables.test_train import tiny_config
from trainables.train import train_fn

pytestmark = pytest.mark.slow


def diverge(root, tmp_path, name, callbacks):
    config = tiny_config(root)
    config["optim"] = {"name": "sgd", "lr": tune.choice([1e12])}  # NaN loss in the first epoch
    searcher = OptunaSearch(metric="val_auc", mode="max", sampler=optuna.samplers.TPESampler(seed=0))
    tuner = tune.Tuner(tune.with_resources(train_fn, {"cpu": 1}), param_space=config,
                       tune_config=tune.TuneConfig(search_alg=searcher, num_samples=1),
                       run_config=tune.RunConfig(name=name, storage_path=str(tmp_path / "rr"), callbacks=callbacks,
                                                 failure_config=tune.FailureConfig(max_failures=2), verbose=0))
    tuner.fit()
    failures = sum(path.read_text().count("Failure #") for path in (tmp_path / "rr" / name).glob("*/error.txt"))
    return failures, searcher._ot_study.trials[0].state


def test_a_diverging_config_is_tried_once(tiny_nih, tmp_path):
    before, _ = diverge(tiny_nih, tmp_path, "plain", [])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = MLflowSearchCallback(Delivery(uri, "failures", drain_timeout=30), ParentRun("s"), max_epochs=2)
    after, state = diverge(tiny_nih, tmp_path, "no-retry", [tracking, NoRetryOnUserError()])
    assert (before, after) == (3, 1)
    assert state == optuna.trial.TrialState.FAIL
    client = MlflowClient(uri)
    (trial,) = [r for r in client.search_runs([client.get_experiment_by_name("failures").experiment_id])
                if r.data.tags["cxr.role"] == "trial"]
    assert trial.info.status == "FAILED" and trial.data.tags["cxr.status"] == "errored"
    assert re.match(r"NonFiniteLoss: training loss became (nan|inf) at epoch 1", trial.data.tags["cxr.error"])
