"""Anytime curves: a method held to its budget, re-training inside it, the summary line's share,
and the budgets as trial counts."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from replay_anytime import curves, print_lines, real_default  # noqa: E402
from replay_sim import Method, at_budget, expected_epochs  # noqa: E402

from search.simulation.table import Table  # noqa: E402
from tests.tables import write_dual  # noqa: E402

PAPER = "0.5 concat3"


def test_expected_epochs_follow_ashas_rungs():
    # grace 1, eta 2, 6 epochs: rungs 1, 2, 4; halves reach 2, quarters 4, eighths 6
    assert expected_epochs(Method("m", grace=1, eta=2), 6) == pytest.approx(1 + 1 / 2 + 2 / 4 + 2 / 8)
    assert expected_epochs(Method("m", grace=3, eta=2), 6) == pytest.approx(3 + 3 / 2)
    assert expected_epochs(Method("m", grace=6, eta=2), 6) == 6


def test_a_method_never_spends_more_than_its_budget_and_confirms_inside_it(tmp_path):
    def value(cell, s, e):
        return 0.6 + 0.01 * e + (0.05 if cell == "2.0 avg" else 0.0)
    t = Table.read(write_dual(tmp_path / "t.csv", value, seeds=(0, 1, 2, 3), pool="0 1 2"))
    m = Method("random", sampler="random", grace=1, eta=2, concurrency=0, confirm=3, confirm_seeds=2)
    for budget in (21, 42, 105, 210):
        outs = [at_budget(t, m, s, budget) for s in range(5)]
        assert max(o.trial_epochs for o in outs) <= budget
        # the budget is spent, not left over: at most a confirmation's worth short of it
        assert min(o.trial_epochs for o in outs) >= budget - 2 * 6
    # at 21 trial-epochs confirming even one config (12) would take more than half: none is confirmed,
    # so a search's whole 21 are search; at 210 three configs are (36 of 210)
    assert at_budget(t, m, 0, 21).trial_epochs == 21


def test_the_summary_line_gives_the_smallest_share_that_reaches_the_grid(capsys):
    class T:
        name = "t"
    rows = {"default": {0.1: {"regret_median": 0.05, "regret_p90": 0.06, "trial_epochs": 21},
                        0.2: {"regret_median": 0.02, "regret_p90": 0.04, "trial_epochs": 42},
                        0.3: {"regret_median": 0.01, "regret_p90": 0.02, "trial_epochs": 63}},
            "random": {0.1: {"regret_median": 0.05, "regret_p90": 0.06, "trial_epochs": 21},
                       0.2: {"regret_median": 0.03, "regret_p90": 0.05, "trial_epochs": 42},
                       0.3: {"regret_median": 0.02, "regret_p90": 0.03, "trial_epochs": 63}}}
    # 0.2 reaches the grid's median but not its p90; 0.3 reaches both
    print_lines(T(), rows, {"regret_median": 0.02, "regret_p90": 0.03})
    out = capsys.readouterr().out.splitlines()
    assert "replay t budget_share=0.2 method=random regret_median=0.0300 regret_p90=0.0500 trial_epochs=42" in out
    assert out[-1] == ("replay t: share_to_grid=0.3 regret_median=0.0100 regret_p90=0.0200 grid_regret_median=0.0200 "
                       "grid_regret_p90=0.0300 random_regret_median=0.0200")
    # a dip at 0.2 that 0.3 does not keep is not "reached"
    dip = {"default": {**rows["default"], 0.2: {"regret_median": 0.0, "regret_p90": 0.0, "trial_epochs": 42},
                       0.3: {"regret_median": 0.05, "regret_p90": 0.06, "trial_epochs": 63}}}
    print_lines(T(), dip, {"regret_median": 0.02, "regret_p90": 0.03})
    assert capsys.readouterr().out.splitlines()[-1].startswith("replay t: share_to_grid=none")
    print_lines(T(), rows, {"regret_median": 0.001, "regret_p90": 0.001})
    assert capsys.readouterr().out.splitlines()[-1].startswith("replay t: share_to_grid=none regret_median=0.0100")


def test_budgets_as_trial_counts_run_that_many_trials(tmp_path):
    t = Table.read(write_dual(tmp_path / "t.csv", lambda c, s, e: 0.6 + 0.01 * e, seeds=(0, 1, 2, 3), pool="0 1 2"))
    m = real_default(t).with_(name="default", sampler="random", confirm=0)
    rows, full = curves(t, [m], runs=3, trials=[2, 4])
    # every trial runs at least grace (1) and at most 6 epochs
    assert 2 <= rows["default"][2]["trial_epochs"] <= 12 and 4 <= rows["default"][4]["trial_epochs"] <= 24
    assert "grid, stopped early" not in rows and full["trial_epochs"] == 210


def test_the_noise_aware_variants_replicate_within_the_pool_and_confirm_nothing_after(tmp_path):
    from replay_anytime import noise_aware

    t = Table.read(write_dual(tmp_path / "t.csv", lambda c, s, e: 0.6, seeds=(0, 1, 2, 3), pool="0 1 2"))
    got = {(m.replicates, m.replicate_eta, m.confirm) for m in noise_aware(t)}
    assert got == {(1, 2, 0), (1, 3, 0), (2, 2, 0), (2, 3, 0)}    # the pool's 3 seeds: 2 more at most


def test_the_default_is_the_runners_real_data_default_and_its_variants_change_one_thing(tmp_path):
    from replay_anytime import asha_cuts, methods, retraining, stop_rules

    from search import runner

    t = Table.read(write_dual(tmp_path / "t.csv", lambda c, s, e: 0.6, seeds=(0, 1, 2, 3), pool="0 1 2"))
    d = real_default(t)
    # no cuts (grace = the table's 6 epochs), the runner's sampler, 3 configs x 2 seeds within a fifth
    assert (d.sampler, d.grace, d.confirm, d.confirm_seeds, d.retrain_share) == (runner.SAMPLER, 6, 3, 2, 0.2)
    assert [m.name for m in methods(t, ["tpe"])] == ["default", "tpe", "random"]
    assert {(m.sampler, m.grace) for m in asha_cuts(t)} == {("tpe", 1), ("tpe", 3), ("random", 1), ("random", 3)}
    assert [(m.confirm, m.retrain_share) for m in retraining(t)] == [(0, 0.2), (3, 0.5), (3, 0.35)]
    patience4, patience8, paired = stop_rules(d, t)
    assert (patience4.patience, patience8.patience, paired.replicates, paired.paired_p) == (4, 8, 2, 0.1)
    assert patience4.min_gain == 0.0     # every cell alike: no seed noise, so any gain counts


def test_a_printout_reads_back_into_the_rows_it_printed(tmp_path, capsys):
    from replay_anytime import read_lines

    class T:
        name = "t"
    rows = {"default": {0.1: {"regret_median": 0.05, "regret_p90": 0.06, "trial_epochs": 21.0}},
            "grid, stopped early": {0.1: {"regret_median": 0.04, "regret_p90": 0.07, "trial_epochs": 18.0}}}
    print_lines(T(), {**rows, "random": rows["default"]}, {"regret_median": 0.02, "regret_p90": 0.03})
    (tmp_path / "out.txt").write_text(capsys.readouterr().out)
    name, got = read_lines(tmp_path / "out.txt")
    assert name == "t" and got["default"] == rows["default"]
    assert got["grid-stopped-early"] == rows["grid, stopped early"]
