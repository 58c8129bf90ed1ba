"""A search started before search/tracking/ resumes: Tune unpickles its callback by the old module
path (search.mlflow_logging) with the old attributes. The fixture was pickled (ray.cloudpickle, as
Tune does) by cxr-tune at 5ef6d3d, the last commit with the old layout."""
import dataclasses
from pathlib import Path
from types import SimpleNamespace

import ray.cloudpickle as pickle
from mlflow.tracking import MlflowClient

from search.tracking.callback import Delivery, MLflowSearchCallback, ParentRun

from ray.tune.execution.placement_groups import PlacementGroupFactory

ONE_CPU = PlacementGroupFactory([{"CPU": 1}])   # what a trial on the laptop holds

OLD = Path(__file__).resolve().parents[1] / "data" / "callback_5ef6d3d.pkl"


def test_an_old_pickled_callback_keeps_its_settings_and_logs_the_same_parent_and_trials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the old callback logs to sqlite:///mlflow.db, relative to the driver
    cb = pickle.loads(OLD.read_bytes())
    assert isinstance(cb, MLflowSearchCallback)
    assert cb.delivery == Delivery("sqlite:///mlflow.db", "old_search", "rr/old/mlflow_pending.jsonl",
                                   "rr/old/mlflow_events.jsonl", 10.0)
    assert cb.parent.name == "dual_weights-old" and cb.parent.name_keys == ("loss.lam", "optim.lr")
    assert cb.parent.log_keys == frozenset({"optim.lr"}) and cb.parent.warm == ({"loss.lam": 0.5, "optim.lr": 0.001},)
    assert cb.max_epochs == 2 and not cb.started
    # its 10 s drain is the pickle's; a loaded machine may need longer to create the store and deliver
    cb.delivery = dataclasses.replace(cb.delivery, drain_timeout=120.0)

    cb.setup()
    warm = SimpleNamespace(placement_group_factory=ONE_CPU, trial_id="t1", status="PENDING",
                           config={"loss": {"lam": 0.5}, "optim": {"lr": 0.001}},
                           last_result={"epoch": 2, "val_auc": 0.7}, error_file=None)
    cut = SimpleNamespace(placement_group_factory=ONE_CPU, trial_id="t2", status="PENDING",
                          config={"loss": {"lam": 1.5}, "optim": {"lr": 0.01}},
                          last_result={"epoch": 1, "val_auc": 0.6}, error_file=None)
    for t in (warm, cut):
        cb.on_trial_start(0, [warm, cut], t)
        cb.on_trial_result(1, [warm, cut], t, {**t.last_result, "timestamp": 5})
        cb.on_trial_complete(1, [warm, cut], t)
    cb.on_experiment_end([warm, cut])

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("old_search").experiment_id])
    parent = next(r for r in runs if r.data.tags["cxr.role"] == "search")
    trials = {r.info.run_name: r for r in runs if r.data.tags["cxr.role"] == "trial"}
    assert parent.info.run_name == "dual_weights-old" and parent.data.tags["cxr.space"] == "dualchexnet"
    assert parent.data.params["space.loss.lam"] == "uniform(0, 2)"
    assert "search_space.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert set(trials) == {"λ0.50 lr1e-3", "λ1.50 lr1e-2"}
    assert trials["λ0.50 lr1e-3"].data.tags["cxr.warm_start"] == "paper"
    assert trials["λ1.50 lr1e-2"].data.tags["cxr.status"] == "stopped_early"
    assert parent.data.tags["cxr.best_run_id"] == trials["λ0.50 lr1e-3"].info.run_id


def test_a_new_callback_pickles_by_its_new_path_and_round_trips(tmp_path):
    cb = MLflowSearchCallback(Delivery("sqlite:///x.db", "e"), ParentRun("s", name_keys=("loss.lam",)), 3)
    again = pickle.loads(pickle.dumps(cb))
    assert b"search.tracking.callback" in pickle.dumps(cb)
    assert again.delivery == cb.delivery and again.parent == cb.parent and again.uid == cb.uid
