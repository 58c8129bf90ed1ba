"""A search read back from MLflow: the study rebuilt from the runs is the study the sampler saw."""
import math

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.importance import FanovaImportanceEvaluator

from search.report import data as report_data
from search.tracking import space
from search.tracking.store import param_texts

DISTS = {"loss.lam": FloatDistribution(0.0, 2.0), "heads.fusion": CategoricalDistribution(["concat", "avg", "max"]),
         "optim.lr": FloatDistribution(1e-3, 1e-1, log=True), "train.iterative": CategoricalDistribution([False, True])}


def nested(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        section, leaf = key.split(".")
        out.setdefault(section, {})[leaf] = value
    return out


def objective(p: dict) -> float:
    # λ matters most, fusion some, lr a little, iterative not at all
    return 0.6 + 0.1 * math.sin(2 * p["loss.lam"]) + {"concat": 0.03, "avg": 0.0, "max": -0.02}[p["heads.fusion"]] \
        + 0.005 * math.log10(p["optim.lr"])


@pytest.fixture
def logged(tmp_path):
    """A direct Optuna study of 16 trials, and the same trials logged as a search's MLflow runs."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("dual_weights")
    parent = client.create_run(exp, run_name="search", start_time=1_000, tags={"cxr.role": "search"})
    (tmp_path / "search_space.json").write_text(space.to_json(DISTS))
    client.log_artifact(parent.info.run_id, str(tmp_path / "search_space.json"))
    for i in range(16):
        trial = study.ask(DISTS)
        value = objective(trial.params)
        study.tell(trial, value)
        status = "stopped_early" if i % 3 == 0 else "completed"
        run = client.create_run(exp, run_name=f"t{i}", start_time=2_000 + i, tags={
            "mlflow.parentRunId": parent.info.run_id, "cxr.role": "trial", "cxr.status": status})
        for k, v in param_texts({**nested(trial.params), "data": {"image_size": 64}}).items():
            client.log_param(run.info.run_id, k, v)
        for epoch in (1, 2):
            client.log_metric(run.info.run_id, "val_auc", value - 0.1 / epoch + 0.05, step=epoch)
        client.log_metric(run.info.run_id, "val_auc", value, step=3)
    # an errored trial and an interrupted one: Optuna never got a value from them
    for i, status in enumerate(("errored", "interrupted")):
        run = client.create_run(exp, run_name=f"bad{i}", start_time=3_000 + i, tags={
            "mlflow.parentRunId": parent.info.run_id, "cxr.role": "trial", "cxr.status": status})
        client.log_metric(run.info.run_id, "val_auc", 0.99, step=1)
    return study, client, client.get_run(parent.info.run_id)


def test_the_rebuilt_study_gives_the_direct_studys_importances(logged):
    study, client, parent = logged
    search = report_data.load(client, parent)
    rebuilt = report_data.rebuild_study(search)

    assert [t.params for t in rebuilt.trials] == [t.params for t in study.trials]
    assert [t.value for t in rebuilt.trials] == [t.value for t in study.trials]
    direct = optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    got, note = report_data.importances(rebuilt)
    assert note is None and got == pytest.approx(direct, abs=1e-12)
    assert list(got)[0] == "loss.lam" and set(got) == set(DISTS)


def test_the_search_read_back_has_curves_ranks_and_only_scored_trials(logged):
    study, client, parent = logged
    search = report_data.load(client, parent)
    assert len(search.trials) == 18 and len(search.scored()) == 16
    best = search.ranked()[0]
    assert best.val_auc == pytest.approx(study.best_value)
    assert [step for step, _ in best.curve] == [1, 2, 3] and best.curve[-1][1] == best.val_auc


def test_too_few_trials_say_so():
    study = optuna.create_study(direction="maximize")
    for v in (0.5, 0.6):
        study.add_trial(optuna.trial.create_trial(params={"x": v}, distributions={"x": FloatDistribution(0, 1)}, value=v))
    got, note = report_data.importances(study)
    assert got == {} and "2 trial(s) finished" in note and "at least 5" in note


def test_a_grid_without_a_recorded_space_is_inferred_from_the_params():
    rows = [{"loss.lam": "0.0", "heads.fusion": "avg", "data.image_size": "64"},
            {"loss.lam": "1.5", "heads.fusion": "concat", "data.image_size": "64"}]
    dists = space.infer(rows)
    assert dists == {"heads.fusion": CategoricalDistribution(["avg", "concat"]), "loss.lam": FloatDistribution(0.0, 1.5)}
