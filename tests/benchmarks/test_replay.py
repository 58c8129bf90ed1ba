"""The replay's report: medians and 90th percentiles of regret and trial-epochs, and which settings
a budget admits."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from replay import CPU_RUN_EPOCHS, _best_of, stats  # noqa: E402
from replay_sim import Outcome  # noqa: E402


def test_stats_are_medians_and_90th_percentiles_over_the_simulated_searches():
    outcomes = [Outcome(regret=r, trial_epochs=e, cell=None) for r, e in zip(range(11), range(10, 21))]
    got = stats(outcomes)
    assert got == {"regret_median": 5, "regret_p90": 9.0, "epochs": 15, "epochs_p90": 19.0}


def test_a_budget_admits_only_the_settings_within_it(capsys):
    swept = {"cheap": {"regret_median": 0.02, "regret_p90": 0.03, "epochs": 12, "epochs_p90": CPU_RUN_EPOCHS},
             "dear": {"regret_median": 0.0, "regret_p90": 0.0, "epochs": 40, "epochs_p90": 60}}
    _best_of(swept, lambda r: r["epochs_p90"] <= CPU_RUN_EPOCHS, 210, "that fit")
    out = capsys.readouterr().out
    assert "(1 of 2 settings fit)" in out and "| cheap | 12 | 16 | 0.06 | 0.0200 | 0.0300 |" in out
    assert "dear" not in out
