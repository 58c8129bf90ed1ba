"""The live view and the library messages it leaves out (search/console.py), with hand-made trials."""
import io
import logging
import os
import pickle
from types import SimpleNamespace

import pytest

from search import console, terminal
from search.scheduling.rungs import milestones


class Tracking:
    """What the view reads from the MLflow callback: each trial's status, name and error."""

    def __init__(self):
        self.trials, self.errors = {}, {}

    def run_name(self, trial):
        return f"λ{trial.config['lam']:.2f}"

    def is_warm(self, trial):
        return trial.config["lam"] == 0.5


def trial(tid, lam):
    return SimpleNamespace(trial_id=tid, config={"lam": lam})


class LongNames(Tracking):
    def run_name(self, trial):
        return "x" * 300


class Terminal(io.StringIO):
    def isatty(self):
        return True


def events(text: str) -> list[list[str]]:
    """Each line without its clock, split on runs of spaces."""
    return [line.split()[1:] for line in text.splitlines() if line.strip()]


def test_one_line_per_event_named_as_in_mlflow_with_the_rungs_passed_and_the_cuts():
    track, out = Tracking(), io.StringIO()
    view = console.LiveView(track, num_samples=2, max_epochs=4, rung_epochs=milestones(1, 2, 4), out=out)
    a, b = trial("a", 0.5), trial("b", 1.25)
    view.setup()
    for t in (a, b):
        track.trials[t.trial_id] = "running"
        view.on_trial_start(0, [], t)
    view.on_trial_result(0, [], a, {"epoch": 1, "val_auc": 0.61})
    view.on_trial_result(0, [], b, {"epoch": 1, "val_auc": 0.58})
    view.on_trial_result(0, [], a, {"epoch": 2, "val_auc": 0.66})   # a passed rung 1
    view.on_trial_result(0, [], b, {"epoch": 2, "val_auc": 0.57})   # so did b
    track.trials["b"] = "stopped_early"                            # then ASHA cut b at rung 2
    view.on_trial_complete(0, [], b)
    for epoch, value in ((3, 0.68), (4, 0.70)):
        view.on_trial_result(0, [], a, {"epoch": epoch, "val_auc": value})
    track.trials["a"] = "completed"
    view.on_trial_complete(0, [], a)
    view.on_experiment_end([a, b])
    assert events(out.getvalue()) == [
        ["started", "λ0.50", "the", "paper's", "config"], ["started", "λ1.25"],
        ["rung", "1", "ok", "λ0.50", "val_auc", "0.610"], ["rung", "1", "ok", "λ1.25", "val_auc", "0.580"],
        ["cut", "λ1.25", "val_auc", "0.570", "at", "epoch", "2"],
        ["rung", "2", "ok", "λ0.50", "val_auc", "0.660"],
        ["finished", "λ0.50", "val_auc", "0.700", "at", "epoch", "4"],
        ["search", "done:", "6", "trial-epochs,", "best", "val_auc", "0.7000", "at", "epoch", "4"]]
    # the cut trial's two epochs are taken off the total, so a search that ends has run all of it
    assert (view.done, view.total) == (6, 6)


def test_statuses_the_search_decides_at_its_end_and_errors_and_retries():
    track, out = Tracking(), io.StringIO()
    view = console.LiveView(track, num_samples=3, max_epochs=5, out=out)
    late, bad, lost = trial("l", 0.7), trial("e", 0.9), trial("r", 1.1)
    for t in (late, bad, lost):
        track.trials[t.trial_id] = "running"
        view.on_trial_start(0, [], t)
        view.on_trial_result(0, [], t, {"epoch": 1, "val_auc": 0.6})
    track.trials["r"] = "retrying from checkpoint"
    view.on_trial_recover(0, [], lost)
    view.on_trial_start(0, [], lost)
    track.trials["e"], track.errors["e"] = "errored", "CUDA out of memory"
    view.on_trial_error(0, [], bad)
    track.trials["l"], track.trials["r"] = "out_of_time", "out_of_time"   # as mark_interrupted decides
    view.on_experiment_end([late, bad, lost])
    said = [e[:2] for e in events(out.getvalue())]
    assert said == [["started", "λ0.70"], ["started", "λ0.90"], ["started", "λ1.10"], ["retrying", "λ1.10"],
                    ["resumed", "λ1.10"], ["errored", "λ0.90"], ["out", "of"], ["out", "of"], ["search", "done:"]]
    assert "CUDA out of memory" in out.getvalue()
    assert view.total == view.done == 3


def test_lines_fit_the_width_and_a_terminal_gets_a_bar_without_rates():
    track, out = LongNames(), Terminal()
    view = console.LiveView(track, num_samples=1, max_epochs=2, out=out)
    view.setup()
    t = trial("a", 0.3)
    track.trials["a"] = "running"
    view.on_trial_start(0, [], t)
    view.on_trial_result(0, [], t, {"epoch": 1, "val_auc": 0.61})
    text = out.getvalue()
    assert "best val_auc 0.610" in text and "1/2 trial-epochs" in text and "it/s" not in text
    assert max(len(line) for line in text.replace("\r", "\n").splitlines()) <= terminal.WIDTH
    view.on_experiment_end([t])
    # Tune pickles it with the experiment and saves its state: a resumed search goes on counting
    pickle.dumps(view)
    again = console.LiveView(LongNames(), num_samples=1, max_epochs=2)   # as pickled when the search began
    again.set_state(pickle.loads(pickle.dumps(view.get_state())))
    assert (again.done, again.epochs, again.best) == (1, {"a": 1}, (1, 0.61))


def test_the_rungs_are_asha_s_milestones_before_the_last_epoch():
    assert milestones(1, 2, 8) == (1, 2, 4)
    assert milestones(1, 3, 10) == (1, 3, 9)
    assert milestones(6, 2, 6) == ()   # the real-data default: no cuts


@pytest.fixture
def ray_logger():
    logger = logging.getLogger("ray")
    saved = logger.handlers[:]
    logger.handlers = []
    yield logger
    logger.handlers = saved


def test_library_messages_a_user_cannot_act_on_are_dropped_and_the_rest_shown_once(ray_logger, capsys):
    console.quiet_libraries(verbose=False)
    console.quiet_libraries(verbose=False)   # before and after Ray starts: filters are not stacked
    snapshot = logging.getLogger("ray.tune.execution.experiment_state")
    snapshot.warning("Experiment state snapshotting has been triggered multiple times in the last 5.0 seconds")
    for _ in range(3):
        logging.getLogger("ray.tune.search").warning("max_concurrent_trials is ignored")
    for _ in range(2):   # a trial's second failure may have another traceback behind the same words
        logging.getLogger("ray.tune.execution.tune_controller").error("Trial task failed for trial t1")
    assert capsys.readouterr().err.splitlines() == ["max_concurrent_trials is ignored"] + \
        ["Trial task failed for trial t1"] * 2
    assert len(ray_logger.handlers) == 1 and len(snapshot.filters) == 1


def test_a_trial_that_runs_again_counts_again_and_its_next_end_is_shown():
    """A second retry, or an errored trial --resume runs again: said once per run, the bar's total
    restored when it starts again."""
    track, out = Tracking(), io.StringIO()
    view = console.LiveView(track, num_samples=1, max_epochs=4, out=out)
    t = trial("a", 0.3)
    for attempt in range(2):
        track.trials["a"] = "running"
        view.on_trial_start(0, [], t)
        view.on_trial_result(0, [], t, {"epoch": 1, "val_auc": 0.6})
        track.trials["a"], track.errors["a"] = "errored", f"failure {attempt}"
        view.on_trial_error(0, [], t)
        assert view.total == 1   # three epochs it will not run, taken off once
    assert [e[0] for e in events(out.getvalue())] == ["started", "errored", "resumed", "errored"]
    assert "failure 1" in out.getvalue()


def test_a_grid_counts_its_own_trials(capsys):
    """The runner passes num_samples 1 for --grid; Tune's setup says how many trials the grid has."""
    view = console.LiveView(Tracking(), num_samples=1, max_epochs=3, out=io.StringIO())
    view.setup(stop=None, num_samples=1, total_num_samples=35)
    assert view.total == 105


def test_env_defaults_sets_only_what_the_user_left_unset_and_only_for_the_block(monkeypatch):
    """How a search's fit() gets Tune's quiet console and MLflow's per-call limits (search/runner.py)."""
    monkeypatch.setenv("RAY_AIR_NEW_OUTPUT", "1")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    with console.env_defaults({**console.tune_console(verbose=False), "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}):
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1" and os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "20"
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "1" and "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ
    assert console.tune_console(verbose=True) == {}
