"""ASHA's rungs survive a save/restore of the experiment; a user error ends a trial's retries."""
from types import SimpleNamespace

import ray.cloudpickle as pickle
from ray.tune.schedulers import ASHAScheduler

from search.trial_state import AshaState, NoRetryOnUserError

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
