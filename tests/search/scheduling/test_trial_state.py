"""ASHA's rungs survive a save/restore of the experiment; a user error ends a trial's retries; a\ntrial the restored searcher never proposed joins its study."""
import json
from types import SimpleNamespace

import optuna
import pytest
import ray.cloudpickle as pickle
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import SearchGenerator
from ray.tune.search.optuna import OptunaSearch

from search.scheduling.trial_state import AshaState, NoRetryOnUserError, ResumableOptunaSearch, ResumableSearchGenerator

# (trial, epoch, val_auc) in arrival order; with eta 2 the cutoff at a rung is its median so far
RESULTS = [("a", 1, 0.60), ("b", 1, 0.70), ("c", 1, 0.55), ("a", 2, 0.62), ("d", 1, 0.65),
           ("b", 2, 0.72), ("e", 1, 0.58), ("d", 2, 0.66), ("f", 1, 0.69), ("b", 4, 0.75), ("d", 4, 0.6)]


def scheduler():
    return ASHAScheduler(time_attr="epoch", metric="val_auc", mode="max", max_t=8, grace_period=1, reduction_factor=2)


def feed(sched, results):
    decisions = []
    for trial_id, epoch, auc in results:
        trial = SimpleNamespace(trial_id=trial_id)
        if trial_id not in sched._trial_info:
            sched.on_trial_add(None, trial)
        decisions.append(sched.on_trial_result(None, trial, {"epoch": epoch, "val_auc": auc}))
    return decisions


def test_rungs_restored_into_the_unpickled_scheduler_give_the_same_decisions():
    whole = feed(scheduler(), RESULTS)
    assert "STOP" in whole and "CONTINUE" in whole  # the sequence exercises both decisions
    sched = scheduler()
    state_cb = AshaState(sched)
    first = feed(sched, RESULTS[:6])
    # Tune pickles the scheduler and the callbacks together (tuner.pkl) before the search starts...
    fresh = scheduler()
    restored_sched, restored_cb = pickle.loads(pickle.dumps((fresh, AshaState(fresh))))
    assert restored_cb.scheduler is restored_sched
    # ...and on --resume sets the callback's saved state, then re-adds every trial.
    restored_cb.set_state(pickle.loads(pickle.dumps(state_cb.get_state())))
    assert first + feed(restored_sched, RESULTS[6:]) == whole
    forgetful = scheduler()  # what Tune alone resumes with: empty rungs
    feed(forgetful, [])
    assert first + feed(forgetful, RESULTS[6:]) != whole


def test_state_of_another_asha_shape_is_ignored():
    sched = scheduler()
    feed(sched, RESULTS)
    other = ASHAScheduler(time_attr="epoch", metric="val_auc", mode="max", max_t=4, grace_period=1, reduction_factor=2)
    before = [(m, dict(r)) for m, r in other._brackets[0]._rungs]
    AshaState(other).set_state(AshaState(sched).get_state())
    assert [(m, dict(r)) for m, r in other._brackets[0]._rungs] == before


def test_a_reported_user_error_ends_the_trial_at_its_first_failure():
    trial = SimpleNamespace(max_failures=2)
    NoRetryOnUserError().on_trial_result(1, [], trial, {"epoch": 1, "val_auc": 0.6})
    assert trial.max_failures == 2
    NoRetryOnUserError().on_trial_result(1, [], trial, {"cxr_error": "NonFiniteLoss: ...", "val_auc": float("nan")})
    assert trial.max_failures == 0


def optuna_search(cls):
    searcher = cls(metric="val_auc", mode="max", points_to_evaluate=[{"loss/lam": 0.5, "heads/fusion": "avg"}])
    searcher.set_search_properties("val_auc", "max", {"loss": {"lam": tune.uniform(0, 2)},
                                                      "heads": {"fusion": tune.choice(["avg", "max"])}})
    return searcher


def result(config: dict, epoch: int, auc: float) -> dict:
    """As Tune hands it to the searcher: flattened with '/', the config included."""
    return {"val_auc": auc, "training_iteration": epoch, "epoch": epoch,
            **{f"config/{k}": v for k, v in config.items()}}


@pytest.mark.parametrize("cls", [OptunaSearch, ResumableOptunaSearch])
def test_a_trial_saved_in_the_experiment_but_not_in_the_searcher_joins_the_study(tmp_path, cls):
    """The driver was killed after the experiment state reached storage, before the searcher state."""
    searcher = optuna_search(cls)
    searcher.suggest("a")
    searcher.save(str(tmp_path / "searcher.pkl"))
    b = searcher.suggest("b")  # proposed, listed in the experiment state, never in the saved searcher
    restored = optuna_search(cls)
    restored.restore(str(tmp_path / "searcher.pkl"))
    b_flat = {"loss/lam": b["loss"]["lam"], "heads/fusion": b["heads"]["fusion"]}
    if cls is OptunaSearch:  # Ray's own: the resumed search ends here
        with pytest.raises(KeyError):
            restored.on_trial_result("b", result(b_flat, 1, 0.61))
        return
    restored.on_trial_result("a", result({"loss/lam": 0.5, "heads/fusion": "avg"}, 1, 0.55))
    restored.on_trial_result("b", result(b_flat, 1, 0.61))
    restored.on_trial_result("b", result(b_flat, 2, 0.64))
    restored.on_trial_complete("b", result(b_flat, 2, 0.64))
    restored.on_trial_complete("b", result(b_flat, 2, 0.64))  # a second completion is ignored
    restored.on_trial_complete("a", result({"loss/lam": 0.5, "heads/fusion": "avg"}, 1, 0.55))
    trials = {t.params["loss/lam"]: t for t in restored._ot_study.get_trials()}
    assert len(trials) == 2
    adopted = trials[b_flat["loss/lam"]]
    assert adopted.state == optuna.trial.TrialState.COMPLETE and adopted.value == 0.64
    assert adopted.params == b_flat and adopted.intermediate_values == {1: 0.61, 2: 0.64}
    assert trials[0.5].state == optuna.trial.TrialState.COMPLETE and trials[0.5].value == 0.55
    # TPE proposes from the study as restored plus the adopted trial, without error
    assert set(restored.suggest("c")) == {"loss", "heads"}


def test_an_unknown_trial_that_failed_before_any_result_is_left_out_of_the_study(tmp_path):
    searcher = optuna_search(ResumableOptunaSearch)
    searcher.on_trial_complete("z", None, error=True)
    searcher.on_trial_result("z", result({"loss/lam": 1.0, "heads/fusion": "max"}, 1, 0.5))  # ignored: it ended
    # only the warm start, waiting to be proposed
    assert [t.state for t in searcher._ot_study.get_trials()] == [optuna.trial.TrialState.WAITING]


@pytest.mark.parametrize("cls, counted", [(SearchGenerator, 1), (ResumableSearchGenerator, 2)])
def test_the_trials_made_are_counted_from_the_experiment_state(tmp_path, cls, counted):
    """The search state was saved after one trial, the experiment state after two."""
    from ray.tune.experiment import Experiment

    gen = cls(optuna_search(ResumableOptunaSearch))
    gen.add_configurations([Experiment("e", lambda config: None, num_samples=3, config={},
                                       storage_path=str(tmp_path / "rr"))])
    assert gen.next_trial() is not None
    gen.save_to_dir(str(tmp_path), "2026-12-02_08-00-00")
    trial = ["{}", "{}"]  # the count is what matters here, not the trials' contents
    (tmp_path / "experiment_state-2026-12-02_08-00-00.json").write_text(json.dumps({"trial_data": [trial, trial]}))
    restored = cls(optuna_search(ResumableOptunaSearch))
    restored.restore_from_dir(str(tmp_path))
    assert restored._counter == counted
    made = 0
    while restored.next_trial() is not None:
        made += 1
    assert made == 3 - counted  # Tune's own would make a 4th trial for a search of 3


def test_a_trial_asha_stopped_reaches_optuna_as_pruned_with_its_values_and_survives_a_restore(tmp_path):
    searcher = ResumableOptunaSearch(metric="val_auc", mode="max", max_t=4)
    searcher.set_search_properties("val_auc", "max", {"loss": {"lam": tune.uniform(0, 2)}})
    for tid in ("full", "cut"):
        searcher.suggest(tid)
    # Tune's iteration count runs on after a retry from a checkpoint; the value belongs at its epoch
    searcher.on_trial_result("cut", {"val_auc": 0.58, "epoch": 1, "training_iteration": 1})
    # ASHA's STOP: Tune hands that result to on_trial_complete alone; Tune's iteration count ran on
    # after a retry from a checkpoint, the value belongs at its epoch
    searcher.on_trial_complete("cut", {"val_auc": 0.61, "epoch": 2, "training_iteration": 3})
    for epoch, auc in enumerate((0.55, 0.60, 0.63), start=1):
        searcher.on_trial_result("full", {"val_auc": auc, "epoch": epoch, "training_iteration": epoch})
    searcher.on_trial_complete("full", {"val_auc": 0.66, "epoch": 4, "training_iteration": 4})
    searcher.save(str(tmp_path / "searcher.pkl"))
    restored = ResumableOptunaSearch(metric="val_auc", mode="max", max_t=4)
    restored.restore(str(tmp_path / "searcher.pkl"))
    for s in (searcher, restored):
        full, cut = s._ot_study.get_trials()
        assert cut.state == optuna.trial.TrialState.PRUNED and cut.intermediate_values == {1: 0.58, 2: 0.61}
        assert full.state == optuna.trial.TrialState.COMPLETE and full.value == 0.66
        assert full.intermediate_values == {1: 0.55, 2: 0.60, 3: 0.63, 4: 0.66}


def test_ray_s_own_search_tells_a_stopped_trial_as_complete():
    """What the runner had before search/scheduling/trial_state.py: TPE saw the epoch-2 value as a final one."""
    searcher = OptunaSearch(metric="val_auc", mode="max")
    searcher.set_search_properties("val_auc", "max", {"loss": {"lam": tune.uniform(0, 2)}})
    searcher.suggest("cut")
    searcher.on_trial_result("cut", {"val_auc": 0.61, "epoch": 2, "training_iteration": 2})
    searcher.on_trial_complete("cut", {"val_auc": 0.61, "epoch": 2, "training_iteration": 2})
    assert searcher._ot_study.get_trials()[0].state == optuna.trial.TrialState.COMPLETE


def test_an_adopted_trial_cut_early_joins_the_study_as_pruned(tmp_path):
    searcher = ResumableOptunaSearch(metric="val_auc", mode="max", max_t=4,
                                     points_to_evaluate=[{"loss/lam": 0.5, "heads/fusion": "avg"}])
    searcher.set_search_properties("val_auc", "max", {"loss": {"lam": tune.uniform(0, 2)},
                                                      "heads": {"fusion": tune.choice(["avg", "max"])}})
    config = {"loss/lam": 1.2, "heads/fusion": "max"}
    searcher.on_trial_complete("x", result(config, 1, 0.52))
    adopted = [t for t in searcher._ot_study.get_trials() if t.state != optuna.trial.TrialState.WAITING]
    assert [(t.state, t.intermediate_values, t.params) for t in adopted] == \
        [(optuna.trial.TrialState.PRUNED, {1: 0.52}, config)]


def test_the_limiter_holds_proposals_at_its_limit_and_tells_optuna_of_every_trial_that_ends():
    from search.scheduling.trial_state import LimitedSearch

    inner = optuna_search(ResumableOptunaSearch)
    limited = LimitedSearch(inner, max_concurrent=2)
    assert limited.suggest("a") and limited.suggest("b")
    assert limited.suggest("c") is None                   # two running: the third waits
    limited.on_trial_complete("a", result({"loss/lam": 0.5, "heads/fusion": "avg"}, 1, 0.6))
    assert limited.suggest("c")
    # a resumed search: Tune runs "x" again without asking for a proposal; Ray's limiter would
    # count it as nothing and drop its end, so Optuna would never hear of it
    limited.running_again(["x", "c"])
    assert limited.suggest("d") is None
    ended = []
    inner.on_trial_complete = lambda trial_id, result=None, error=False: ended.append(trial_id)
    limited.on_trial_complete("x", None, error=True)
    assert ended == ["x"] and limited.suggest("d")
    # a trial the limiter does not count (resumed from a state saved before the limiter existed)
    limited.on_trial_complete("y", result({"loss/lam": 1.0, "heads/fusion": "max"}, 1, 0.6))
    assert ended == ["x", "y"]


def test_a_resume_counts_the_unfinished_and_errored_trials_as_running(tmp_path):
    from ray.tune.experiment import Trial

    from search.scheduling.trial_state import LimitedSearch, unfinished

    trials = []
    for trial_id, status in [("t1", Trial.TERMINATED), ("t2", Trial.RUNNING), ("t3", Trial.ERROR),
                             ("t4", Trial.PENDING), ("t5", Trial.TERMINATED)]:
        trial = Trial("train_fn", trial_id=trial_id, stub=True)
        trial.set_status(status)
        trials.append(list(trial.get_json_state()))   # as Tune writes them into experiment_state-*.json
    assert unfinished(trials) == ["t2", "t3", "t4"]
    gen = ResumableSearchGenerator(LimitedSearch(optuna_search(ResumableOptunaSearch), max_concurrent=3))
    gen.save_to_dir(str(tmp_path), "2026-12-07_08-00-00")
    (tmp_path / "experiment_state-2026-12-07_08-00-00.json").write_text(json.dumps({"trial_data": trials}))
    restored = ResumableSearchGenerator(LimitedSearch(optuna_search(ResumableOptunaSearch), max_concurrent=3))
    restored.restore_from_dir(str(tmp_path))
    assert restored.searcher.live_trials == {"t2", "t3", "t4"}
    assert restored.searcher.suggest("t6") is None        # three run again: the limit is reached
