"""ASHA's rungs measured against a later epoch, and importance on one epoch, on hand-built searches."""
from types import SimpleNamespace

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from search.report import fidelity
from search.report.data import MIN_TRIALS_FOR_IMPORTANCE, Search, Trial, importances_at_one_epoch


def trial(name, curve, status, lam=0.5, fusion="avg"):
    return Trial(run_id=name, name=name, status=status, params={"loss.lam": str(lam), "heads.fusion": fusion},
                 val_auc=curve[-1][1], curve=list(curve),
                 per_label={}, warm=False, started=0)


def search_of(trials, grace=1, eta=2, max_t=4):
    parent = SimpleNamespace(info=SimpleNamespace(run_name="s"), data=SimpleNamespace(params={
        "asha.max_t": str(max_t), "asha.grace_period": str(grace), "asha.reduction_factor": str(eta)}, tags={}))
    return Search(parent=parent, trials=trials, dists={"loss.lam": FloatDistribution(0, 2),
                                                       "heads.fusion": CategoricalDistribution(["avg", "max"])})


def curve(*values):
    return [(e, v) for e, v in enumerate(values, start=1)]


# Five trials ran all 4 epochs. Epoch 1 ranks them 1,2,3,4,5; epoch 4 ranks them 5,4,3,1,2:
# d = (-4, -2, 0, 3, 3), sum d^2 = 38, rho = 1 - 6*38 / (5*24) = -0.9. Epoch 2 ranks them as epoch 4
# does (rho 1). Two more were cut at epoch 1 and one at epoch 2.
FULL = [curve(0.50, 0.60, 0.61, 0.70), curve(0.51, 0.59, 0.60, 0.69), curve(0.52, 0.58, 0.59, 0.68),
        curve(0.53, 0.56, 0.57, 0.66), curve(0.54, 0.57, 0.58, 0.67)]
CUT = [curve(0.45), curve(0.44), curve(0.49, 0.50)]


def test_each_rung_is_ranked_against_the_last_epoch_by_spearman():
    s = search_of([trial(f"f{i}", c, "completed") for i, c in enumerate(FULL)]
                  + [trial(f"c{i}", c, "stopped_early") for i, c in enumerate(CUT)])
    got = fidelity.agreement(s)
    assert [(a.rung, a.against, a.pairs, a.cut) for a in got] == [(1, 4, 5, 2), (2, 4, 5, 1)]
    assert got[0].rho == pytest.approx(1 - 6 * 38 / (5 * 24)) and got[1].rho == pytest.approx(1.0)
    assert got[0].uninformative and not got[1].uninformative
    (warning,) = fidelity.warnings(s, got)
    assert "2 at epoch 1 (Spearman -0.90 vs epoch 4)" in warning and "--grace-period 2" in warning
    assert fidelity.lines(got)[0] == "epoch 1 vs epoch 4: Spearman -0.90 over 5 trials; 2 cut at epoch 1"


def test_a_rung_few_trials_passed_is_compared_with_the_furthest_epoch_enough_reached():
    # only 2 trials ran to epoch 4; 4 reached epoch 2: epoch 1 is measured against epoch 2, where
    # a..d rise at epoch 1 (0.50..0.53) and fall at epoch 2 (0.60..0.56): exactly reversed, rho -1
    trials = [trial("a", FULL[0], "completed"), trial("b", FULL[1], "completed"),
              trial("c", FULL[2][:2], "stopped_early"), trial("d", FULL[3][:2], "stopped_early"),
              trial("e", CUT[0], "stopped_early")]
    rung1, rung2 = fidelity.agreement(search_of(trials))
    assert (rung1.against, rung1.pairs) == (2, 4) and rung1.rho == pytest.approx(-1.0)
    assert (rung2.against, rung2.pairs, rung2.rho) == (4, 2, None)
    assert "too few trials reached both (2; 4 needed); 2 cut at epoch 2" in fidelity.lines([rung2])[0]


def test_importance_uses_the_last_epoch_enough_trials_reached_not_each_trials_last_value():
    trials = [trial(f"f{i}", c, "completed", lam=0.2 * i) for i, c in enumerate(FULL)] \
        + [trial(f"c{i}", c, "stopped_early", lam=1.5 + 0.1 * i, fusion="max") for i, c in enumerate(CUT)]
    s = search_of(trials)
    epoch, values = s.comparable(MIN_TRIALS_FOR_IMPORTANCE)
    assert epoch == 4 and sorted(t.name for t, _ in values) == [f"f{i}" for i in range(5)]
    imp, note, epoch = importances_at_one_epoch(s)
    # the cut trials are the only ones with fusion max: on mixed fidelities it would look decisive
    assert set(imp) == {"loss.lam"} or imp.get("heads.fusion", 0) == 0
    assert epoch == 4
    assert note == "val AUC at epoch 4, the last epoch 5 trials reached (3 cut earlier left out); few trials: a rough guide"


def test_importance_at_a_rung_that_ranked_trials_poorly_says_so():
    s = search_of([trial(f"f{i}", c, "completed") for i, c in enumerate(FULL)]
                  + [trial(f"c{i}", c, "stopped_early") for i, c in enumerate(CUT)])
    found = fidelity.agreement(s)
    assert fidelity.caveat(found, 1) == ("; epoch 1 ranked trials poorly here (Spearman -0.90 vs epoch 4), so this "
                                         "says little about the end")
    assert fidelity.caveat(found, 2) == "" and fidelity.caveat(found, 4) == ""


def test_importance_with_no_epoch_reached_by_enough_trials_says_so():
    s = search_of([trial("a", FULL[0], "completed"), trial("b", CUT[0], "stopped_early")])
    imp, note, epoch = importances_at_one_epoch(s)
    assert imp == {} and "no epoch was reached by 5 trials" in note and epoch is None


def test_ranked_puts_trials_trained_further_first():
    s = search_of([trial("cut-high", curve(0.9), "stopped_early"), trial("full", FULL[3], "completed")])
    assert [t.name for t in s.ranked()] == ["full", "cut-high"]


def test_with_no_cuts_the_epochs_grace_1_would_cut_at_are_still_ranked():
    # grace = max_t (the real-data default): no rungs, but the report still says how epochs 1 and 2
    # ranked the five trials that ran every epoch, and that nothing was cut
    s = search_of([trial(f"f{i}", c, "completed") for i, c in enumerate(FULL)], grace=4)
    assert s.rungs() == [] and s.rank_epochs() == [1, 2]
    got = fidelity.agreement(s)
    assert [(a.rung, a.against, a.pairs, a.cut) for a in got] == [(1, 4, 5, 0), (2, 4, 5, 0)]
    assert got[0].rho == pytest.approx(-0.9) and got[1].rho == pytest.approx(1.0)
