"""The MLflow outbox: ordered delivery through outages, idempotent replays, the pending file and
search.sync, against a real SQLite store."""
import json
import time
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search import sync
from search.tracking.callback import Delivery, MLflowSearchCallback, ParentRun
from search.tracking.outbox import Outbox, Sender
from tests.user_errors import user_error

from ray.tune.execution.placement_groups import PlacementGroupFactory

ONE_CPU = PlacementGroupFactory([{"CPU": 1}])   # what a trial on the laptop holds

EXPERIMENT = "queue-test"
DATASET = {"name": "nih train", "digest": "a" * 12, "source_type": "local", "source": '{"uri": "/data/nih"}',
           "profile": '{"images": 3}', "context": "train"}


def callback(uri: str, max_epochs: int, **delivery) -> MLflowSearchCallback:
    return MLflowSearchCallback(Delivery(uri, EXPERIMENT, **delivery), ParentRun("s"), max_epochs)


def journal(epochs=3):
    """A parent and one trial: what the search callback puts for a 3-epoch trial."""
    events = [{"op": "run", "key": "p", "name": "search", "tags": {"cxr.role": "search"}, "parent": None, "time": 1000},
              {"op": "view", "key": "p", "search": "search", "searched": ["loss.lam", "heads.fusion"]},
              {"op": "run", "key": "p/t1", "name": "trial-t1", "tags": {"cxr.role": "trial"}, "parent": "p", "time": 1001},
              {"op": "params", "key": "p/t1", "params": {"loss.lam": "0.5", "heads.fusion": "concat"}},
              {"op": "inputs", "key": "p/t1", "datasets": [DATASET, {**DATASET, "digest": "b" * 12, "context": "val"}]}]
    events += [{"op": "metrics", "key": "p/t1", "metrics": [["val_auc", 0.5 + e / 10, 2000 + e, e]]}
               for e in range(1, epochs + 1)]
    events += [{"op": "tags", "key": "p/t1", "tags": {"cxr.status": "completed"}},
               {"op": "status", "key": "p/t1", "status": "FINISHED", "time": 3000},
               {"op": "tags", "key": "p", "tags": {"cxr.trials_total": "1"}, "run_tags": {"cxr.best_run_id": "p/t1"}},
               {"op": "artifact", "key": "p", "name": "best_config.yaml", "text": "config: {}\n"},
               {"op": "status", "key": "p", "status": "FINISHED", "time": 3001}]
    return events


def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return uri, MlflowClient(uri)


def assert_logged_once(client, epochs=3):
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = {r.data.tags["cxr.role"]: r for r in client.search_runs([exp.experiment_id])}
    assert len(client.search_runs([exp.experiment_id])) == 2
    parent, trial = runs["search"], runs["trial"]
    assert trial.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert parent.data.tags["cxr.best_run_id"] == trial.info.run_id
    history = client.get_metric_history(trial.info.run_id, "val_auc")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
        [(e, 0.5 + e / 10) for e in range(1, epochs + 1)]
    assert trial.data.params == {"loss.lam": "0.5", "heads.fusion": "concat"}
    assert {parent.info.status, trial.info.status} == {"FINISHED"}
    assert (parent.info.start_time, trial.info.end_time) == (1000, 3000)
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["best_config.yaml"]
    seen = sorted((d.dataset.name, d.dataset.digest, d.tags[0].value) for d in trial.inputs.dataset_inputs)
    assert seen == [("nih train", "a" * 12, "train"), ("nih train", "b" * 12, "val")]
    tags = client.get_experiment(exp.experiment_id).tags
    assert json.loads(tags["mlflow.sharedViewState.cxr-tune"])["compareRunCharts"][1]["selectedParams"] == \
        ["loss.lam", "heads.fusion"]
    assert tags["mlflow.note.content"].count("Latest search: **search**") == 1
    return parent, trial


def test_a_careful_replay_of_the_whole_journal_logs_everything_once(tmp_path):
    uri, client = store(tmp_path)
    sender = Sender(uri, EXPERIMENT)
    for event in journal():
        sender.deliver(event)
    again = Sender(uri, EXPERIMENT)  # a driver that lost its run map, or a second sync
    for event in journal():
        again.deliver(event, careful=True)
    assert again.runs == sender.runs
    assert_logged_once(client)


class Flaky(Sender):
    """Fails every call while `down` is set, like a stopped server."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.down, self.calls = False, 0

    def deliver(self, event, careful=False):
        self.calls += 1
        if self.down:
            raise MlflowException("API request failed with exception ConnectionError")
        super().deliver(event, careful)


def test_an_outage_delays_events_in_order_and_loses_none(tmp_path, monkeypatch):
    monkeypatch.setattr("search.tracking.outbox.BACKOFF", (0.05, 0.2))
    uri, client = store(tmp_path)
    sender, warnings = Flaky(uri, EXPERIMENT), []
    outbox = Outbox(sender, warn=warnings.append)
    events = journal()
    for event in events[:4]:
        outbox.put(event)
    assert outbox.drain(10)
    sender.down = True
    for event in events[4:]:
        outbox.put(event)  # returns at once: the caller never waits on the server
    time.sleep(0.5)
    assert len(outbox.pending()) == len(events) - 4 and sender.calls > 4  # retried, kept, in order
    assert [e["op"] for e in outbox.pending()] == [e["op"] for e in events[4:]]
    sender.down = False
    assert outbox.drain(10)
    outbox.close()
    assert len(warnings) == 2 and "goes on" in warnings[0] and "answers again" in warnings[1]
    assert_logged_once(client)


def test_a_refused_event_is_kept_aside_and_does_not_block_the_queue(tmp_path):
    uri, client = store(tmp_path)
    outbox = Outbox(Sender(uri, EXPERIMENT), warn=lambda m: None)
    events = journal()
    bad = {"op": "params", "key": "p/t1", "params": {"loss.lam": "0.9"}}  # MLflow refuses a changed param
    after = next(i for i, e in enumerate(events) if e["op"] == "params") + 1
    for event in events[:after] + [bad] + events[after:]:
        outbox.put(event)
    assert outbox.drain(10)
    outbox.close()
    assert [e["params"] for e in outbox.rejected] == [{"loss.lam": "0.9"}]
    assert_logged_once(client)


class Broken(Sender):
    """The server answers, but one kind of event always fails (an artifact store it cannot write)."""

    def _artifact(self, event, careful):
        raise PermissionError("[Errno 13] Permission denied: '/mlartifacts'")


def test_an_event_that_keeps_failing_while_the_server_answers_is_set_aside(tmp_path, monkeypatch):
    monkeypatch.setattr("search.tracking.outbox.BACKOFF", (0.01, 0.02))
    uri, client = store(tmp_path)
    warnings = []
    outbox = Outbox(Broken(uri, EXPERIMENT), warn=warnings.append, journal=tmp_path / "events.jsonl")
    for event in journal():
        outbox.put(event)
    assert outbox.drain(10)  # the parent's final status came through behind the broken artifact
    outbox.close()
    (bad,) = outbox.rejected
    assert bad["op"] == "artifact" and bad["attempts"] == 5 and "Permission denied" in bad["rejected"]
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert {r.info.status for r in client.search_runs([exp.experiment_id])} == {"FINISHED"}
    lines = [json.loads(l) for l in outbox.write_pending(tmp_path / "p.jsonl").read_text().splitlines()[1:]]
    assert lines == [{**e, "rejected": bad["rejected"]} if e["op"] == "artifact" else e for e in journal()]
    sync.main([str(tmp_path / "p.jsonl"), "--tracking-uri", uri])  # the sync tries it again: now it works
    assert_logged_once(client)


def test_new_events_do_not_cut_the_backoff_short(tmp_path, monkeypatch):
    monkeypatch.setattr("search.tracking.outbox.BACKOFF", (0.5, 0.5))
    sender = Flaky("http://127.0.0.1:9", EXPERIMENT)
    sender.down = True
    outbox = Outbox(sender, warn=lambda m: None)
    for event in journal() * 5:
        outbox.put(event)
        time.sleep(0.02)
    outbox.close()
    assert sender.calls <= 3  # ~1 s of puts at a 0.5 s backoff, not one attempt per put


def test_an_unreachable_server_leaves_a_pending_file_that_sync_delivers_once(tmp_path, capsys):
    sender = Flaky("http://127.0.0.1:9", EXPERIMENT)
    sender.down = True
    outbox = Outbox(sender, warn=lambda m: None)
    for event in journal():
        outbox.put(event)
    assert not outbox.drain(0.3)
    path = outbox.write_pending(tmp_path / "rr" / "mlflow_pending.jsonl")
    outbox.close()
    header = json.loads(path.read_text().splitlines()[0])
    assert header["undelivered"] == len(journal()) and header["experiment"] == EXPERIMENT
    uri, client = store(tmp_path)
    first = sync.main([str(path), "--tracking-uri", uri])
    second = sync.main([str(path), "--tracking-uri", uri])  # replaying twice logs once
    assert first["delivered"] == second["delivered"] == len(journal()) and first["parent"] == second["parent"]
    parent, _ = assert_logged_once(client)
    assert parent.info.run_id == first["parent"]
    assert "not found" in user_error(capsys, sync.main, [str(tmp_path / "nope.jsonl")])
    (tmp_path / "other.jsonl").write_text('{"a": 1}\n')
    assert "pending-events header" in user_error(capsys, sync.main, [str(tmp_path / "other.jsonl")])


@pytest.mark.parametrize("down", [False, True])
def test_the_callback_state_carries_undelivered_events_to_a_restarted_driver(tmp_path, monkeypatch, down):
    from types import SimpleNamespace

    monkeypatch.setattr("search.tracking.outbox.BACKOFF", (0.05, 0.2))
    uri, client = store(tmp_path)
    cb = callback(uri if not down else "http://127.0.0.1:9", 2, pending_path=str(tmp_path / "p.jsonl"), drain_timeout=5)
    trial = SimpleNamespace(placement_group_factory=ONE_CPU, trial_id="t1", config={"loss": {"lam": 0.5}},
                            last_result={"epoch": 1, "val_auc": 0.6}, error_file=None)
    cb.setup()
    cb.on_trial_start(0, [trial], trial)
    first = {"epoch": 1, "val_auc": 0.6, "timestamp": 5, "hostname": "h", "node_ip": "10.0.0.2",
             "cxr_inputs": json.dumps([DATASET])}   # a trial's first report
    cb.on_trial_result(1, [trial], trial, first)
    if not down:
        assert cb.outbox.drain(10)
    state = cb.get_state()  # what Tune saves with the experiment
    # the parent's run and view (it has no params); the trial's run, params, metrics, placement tags and inputs
    assert len(state["pending"]) == (7 if down else 0)
    cb.outbox.close()
    restarted = callback(uri, 2, pending_path=str(tmp_path / "p.jsonl"), drain_timeout=10)
    restarted.set_state(state)
    restarted.setup()
    restarted.on_trial_complete(2, [trial], trial)
    restarted.on_experiment_end([trial])
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    child = next(r for r in runs if r.data.tags["cxr.role"] == "trial")
    assert [m.value for m in client.get_metric_history(child.info.run_id, "val_auc")] == [0.6]
    assert child.data.tags["cxr.status"] == "stopped_early"
    assert [d.dataset.digest for d in child.inputs.dataset_inputs] == ["a" * 12]
    assert "cxr_inputs" not in child.data.metrics and "cxr_inputs" not in child.data.params


def test_state_saved_before_the_outbox_keeps_logging_to_the_same_runs(tmp_path):
    from types import SimpleNamespace

    uri, client = store(tmp_path)
    exp_id = client.create_experiment(EXPERIMENT)
    parent = client.create_run(exp_id, tags={"cxr.role": "search"}).info.run_id
    child = client.create_run(exp_id, tags={"cxr.role": "trial", "mlflow.parentRunId": parent}).info.run_id
    cb = callback(uri, 1, drain_timeout=10)
    cb.set_state({"parent_id": parent, "runs": {"t1": child}})  # saved by a cxr-tune without the outbox
    trial = SimpleNamespace(placement_group_factory=ONE_CPU, trial_id="t1", config={},
                            last_result={"epoch": 1, "val_auc": 0.7}, error_file=None)
    cb.setup()
    cb.on_trial_result(1, [trial], trial, {"epoch": 1, "val_auc": 0.7, "timestamp": 5})
    cb.on_trial_complete(1, [trial], trial)
    cb.on_experiment_end([trial])
    assert len(client.search_runs([exp_id])) == 2
    assert [m.value for m in client.get_metric_history(child, "val_auc")] == [0.7]
    assert client.get_run(parent).data.tags["cxr.best_run_id"] == child
    assert {client.get_run(r).info.status for r in (parent, child)} == {"FINISHED"}


def test_the_journal_spans_driver_sessions_and_a_clean_end_removes_stale_pending(tmp_path):
    from types import SimpleNamespace

    files = {"pending_path": str(tmp_path / "rr" / "mlflow_pending.jsonl"),
             "journal_path": str(tmp_path / "rr" / "mlflow_events.jsonl")}
    trial = SimpleNamespace(placement_group_factory=ONE_CPU, trial_id="t1", config={"loss": {"lam": 0.5}},
                            last_result={"epoch": 1, "val_auc": 0.6}, error_file=None)
    dead = callback("http://127.0.0.1:9", 2, drain_timeout=0.2, **files)
    dead.setup()
    dead.on_trial_start(0, [trial], trial)
    dead.on_trial_result(1, [trial], trial, {"epoch": 1, "val_auc": 0.6, "timestamp": 5})
    state = dead.get_state()  # Tune's last snapshot before the driver went away
    dead.on_experiment_end([trial])
    assert Path(files["pending_path"]).is_file()

    uri, client = store(tmp_path)
    resumed = callback(uri, 2, drain_timeout=10, **files)
    resumed.set_state(state)
    resumed.setup()
    trial.last_result = {"epoch": 2, "val_auc": 0.7}
    resumed.on_trial_result(2, [trial], trial, {"epoch": 2, "val_auc": 0.7, "timestamp": 6})
    resumed.on_trial_complete(2, [trial], trial)
    resumed.on_experiment_end([trial])
    assert not Path(files["pending_path"]).exists()  # delivered now: no stale file to replay later
    events = [json.loads(l) for l in Path(files["journal_path"]).read_text().splitlines()]
    assert [e["op"] for e in events].count("run") == 2 and events[0]["op"] == "run"  # session 1's events kept
    exp = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([exp.experiment_id])
    child = next(r for r in runs if r.data.tags["cxr.role"] == "trial")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(m.step for m in client.get_metric_history(child.info.run_id, "val_auc")) == [1, 2]


@pytest.mark.parametrize("delivered", [False, True])
def test_a_torn_save_loses_no_epoch_and_leaves_no_run_running(tmp_path, delivered):
    """Tune's trial state reached storage, the callback's older state with it (search/tracking/tail.py):
    the resumed trial goes on at epoch 2, and epoch 1's metrics come from the journal's tail."""
    from types import SimpleNamespace

    uri, client = store(tmp_path)
    files = {"pending_path": str(tmp_path / "rr" / "mlflow_pending.jsonl"),
             "journal_path": str(tmp_path / "rr" / "mlflow_events.jsonl")}
    t1, t2, t3 = (SimpleNamespace(placement_group_factory=ONE_CPU, trial_id=t, config={"loss": {"lam": 0.5}},
                                  last_result={}, error_file=None, status="RUNNING") for t in ("t1", "t2", "t3"))
    first = callback(uri if delivered else "http://127.0.0.1:9", 2, drain_timeout=0.2, **files)
    first.setup()
    first.on_trial_start(0, [t1], t1)
    state = first.get_state()  # the callback's state as the resumed driver finds it
    first.on_trial_result(1, [t1], t1, {"epoch": 1, "val_auc": 0.61, "timestamp": 5})
    first.on_trial_start(1, [t1, t2], t2)   # started after that state; Tune's newer state has it
    first.on_trial_result(2, [t1, t2], t2, {"epoch": 1, "val_auc": 0.71, "timestamp": 6})
    first.on_trial_start(2, [t1, t2, t3], t3)   # in neither: the resumed search never sees it
    if delivered:
        assert first.outbox.drain(10)
    first.outbox.close()   # the driver is killed: nothing more is delivered or saved
    with open(files["journal_path"], "a") as f:
        f.write('{"op": "metrics", "key"')   # a line the kill cut short

    resumed = callback(uri, 2, drain_timeout=10, **files)
    resumed.set_state(state)
    resumed.setup()
    resumed.on_step_begin(0, [t1, t2])
    for t, auc in ((t1, 0.62), (t2, 0.72)):
        resumed.on_trial_start(1, [t1, t2], t)
        t.last_result = {"epoch": 2, "val_auc": auc}
        resumed.on_trial_result(2, [t1, t2], t, {**t.last_result, "timestamp": 7})
        resumed.on_trial_complete(3, [t1, t2], t)
    resumed.on_experiment_end([t1, t2])

    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    trials = {r.data.tags["cxr.trial_id"]: r for r in runs if r.data.tags["cxr.role"] == "trial"}
    assert sorted(trials) == (["t1", "t2", "t3"] if delivered else ["t1", "t2"])
    for tid, aucs in (("t1", [0.61, 0.62]), ("t2", [0.71, 0.72])):
        history = sorted(client.get_metric_history(trials[tid].info.run_id, "val_auc"), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(1, aucs[0]), (2, aucs[1])]
        assert (trials[tid].info.status, trials[tid].data.tags["cxr.status"]) == ("FINISHED", "completed")
        assert trials[tid].data.metrics["trial_epochs"] == 2
    if delivered:
        assert (trials["t3"].info.status, trials["t3"].data.tags["cxr.status"]) == ("KILLED", "lost with the driver")
    parent = next(r for r in runs if r.data.tags["cxr.role"] == "search")
    assert parent.info.status == "FINISHED" and parent.data.metrics["search_trial_epochs"] == 4
    assert parent.data.tags["cxr.trials_completed"] == "2"
    seqs = [json.loads(line)["seq"] for line in Path(files["journal_path"]).read_text().splitlines()
            if line.endswith("}")]
    assert len(seqs) == len(set(seqs))   # numbers go on across sessions: a later resume finds its tail


def _session(cb, t1, t2, finish=True):
    """t1 started before the callback's saved state; after it, both trials report epochs 1-2 and end."""
    for i, t in enumerate((t1, t2)):
        if i:
            cb.on_trial_start(1, [t1, t2], t)
        for epoch in (1, 2):
            t.last_result = {"epoch": epoch, "val_auc": 0.6 + i / 10 + epoch / 100}
            cb.on_trial_result(epoch, [t1, t2], t, {**t.last_result, "timestamp": 5 + epoch})
        if finish:
            cb.on_trial_complete(3, [t1, t2], t)


@pytest.mark.parametrize("saved", [True, False])
def test_a_resumed_search_with_nothing_left_to_run_still_gets_the_tail(tmp_path, saved):
    """Tune's newer state shows both trials finished, so the resumed driver never steps; with `saved`
    False no callback state reached storage at all (the callback comes from the pickle made at the start)."""
    import pickle
    from types import SimpleNamespace

    uri, client = store(tmp_path)
    files = {"journal_path": str(tmp_path / "rr" / "mlflow_events.jsonl")}
    t1, t2 = (SimpleNamespace(placement_group_factory=ONE_CPU, trial_id=t, config={}, last_result={},
                              error_file=None, status="RUNNING") for t in ("t1", "t2"))
    first = callback("http://127.0.0.1:9", 2, drain_timeout=0.2, **files)
    at_start = pickle.dumps(first)   # what tuner.pkl holds
    first.setup()
    first.on_trial_start(0, [t1], t1)
    state = first.get_state()
    _session(first, t1, t2)
    first.outbox.close()

    resumed = pickle.loads(at_start)
    resumed.delivery = Delivery(uri, EXPERIMENT, drain_timeout=10, **files)
    if saved:
        resumed.set_state(state)
    resumed.setup()
    resumed.on_experiment_end([t1, t2])
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    trials = {r.data.tags["cxr.trial_id"]: r for r in runs if r.data.tags["cxr.role"] == "trial"}
    assert sorted(trials) == ["t1", "t2"] and len(runs) == 3
    for i, tid in enumerate(("t1", "t2")):
        history = sorted(client.get_metric_history(trials[tid].info.run_id, "val_auc"), key=lambda m: m.step)
        assert [(m.step, round(m.value, 2)) for m in history] == [(1, 0.61 + i / 10), (2, 0.62 + i / 10)]
        assert (trials[tid].info.status, trials[tid].data.tags["cxr.status"]) == ("FINISHED", "completed")
    parent = next(r for r in runs if r.data.tags["cxr.role"] == "search")
    assert parent.data.tags["cxr.trials_completed"] == "2" and parent.data.metrics["search_trial_epochs"] == 4
    seqs = [json.loads(line)["seq"] for line in Path(files["journal_path"]).read_text().splitlines()]
    assert len(seqs) == len(set(seqs))


def test_a_new_search_under_the_same_name_leaves_the_old_ones_runs_alone(tmp_path):
    from types import SimpleNamespace

    uri, client = store(tmp_path)
    files = {"journal_path": str(tmp_path / "rr" / "mlflow_events.jsonl")}
    t1, t2 = (SimpleNamespace(placement_group_factory=ONE_CPU, trial_id=t, config={}, last_result={},
                              error_file=None, status="RUNNING") for t in ("t1", "t2"))
    old = callback(uri, 2, drain_timeout=10, **files)
    old.setup()
    old.on_trial_start(0, [t1], t1)
    _session(old, t1, t2)
    old.on_experiment_end([t1, t2])
    new = callback(uri, 2, drain_timeout=10, **files)
    new.setup()
    new.on_experiment_end([])
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert all(len(client.get_metric_history(r.info.run_id, "val_auc")) == 2 for r in runs
               if r.data.tags["cxr.role"] == "trial")
