"""The patience stop rule over the results Tune hands a stopper: only a proposal's last epoch counts,
gains within --min-gain do not reset it, and it never stops a single trial."""
from search.scheduling.stopping import PatienceStopper


def last(value, replica=0, epoch=6):
    return {"epoch": epoch, "val_auc": value, "config": {"train": {"replica": replica}}}


def test_patience_fires_after_p_finished_trials_without_a_gain_above_min_gain():
    s = PatienceStopper(patience=2, min_gain=0.01, max_t=6)
    assert s("a", last(0.70)) is False and not s.stop_all()     # the first sets the best
    s("b", last(0.705))                                         # +0.005 <= 0.01: noise, 1 in a row
    s("c", last(0.72))                                          # +0.02 from 0.70: a gain, the count resets
    assert not s.stop_all() and s.best == 0.72
    s("d", last(0.60))
    assert not s.stop_all()
    s("e", last(0.729))
    assert s.stop_all()                                         # two in a row within 0.01 of 0.72


def test_intermediate_epochs_and_replicates_do_not_count():
    s = PatienceStopper(patience=1, min_gain=0.0, max_t=6)
    s("a", last(0.8))
    for value in (0.5, 0.6):
        s("b", last(value, epoch=3))          # not its last epoch
        s("c", last(value, replica=1))        # a replicate is a seed of a config already counted
    assert not s.stop_all()
    s("d", last(0.79))
    assert s.stop_all()
