"""The replay's report: medians and 90th percentiles of regret and trial-epochs, which settings a
budget admits, how well each epoch ranks the cells, and how far a seed moves a cell."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from replay import CPU_RUN_EPOCHS, _best_of, rung_agreement, seed_noise, stats  # noqa: E402
from replay_sim import Outcome  # noqa: E402


def test_stats_are_medians_and_90th_percentiles_over_the_simulated_searches():
    outcomes = [Outcome(regret=r, trial_epochs=e, cell=0) for r, e in zip(range(11), range(10, 21))]
    got = stats(outcomes)
    assert got == {"regret_median": 5, "regret_p90": 9.0, "epochs": 15, "epochs_p90": 19.0}


def test_a_budget_admits_only_the_settings_within_it(capsys):
    swept = {"cheap": {"regret_median": 0.02, "regret_p90": 0.03, "epochs": 12, "epochs_p90": CPU_RUN_EPOCHS},
             "dear": {"regret_median": 0.0, "regret_p90": 0.0, "epochs": 40, "epochs_p90": 60}}
    _best_of(swept, lambda r: r["epochs_p90"] <= CPU_RUN_EPOCHS, 210, "that fit")
    out = capsys.readouterr().out
    assert "(1 of 2 settings fit)" in out and "| cheap | 12 | 16 | 0.06 | 0.0200 | 0.0300 |" in out
    assert "dear" not in out


def test_the_settings_as_good_as_the_grid_are_listed_cheapest_first(capsys):
    grid = {"regret_median": 0.03, "regret_p90": 0.033}
    swept = {"dear": {"regret_median": 0.01, "regret_p90": 0.02, "epochs": 60, "epochs_p90": 66},
             "cheap": {"regret_median": 0.03, "regret_p90": 0.033, "epochs": 40, "epochs_p90": 44},
             "noisy": {"regret_median": 0.0, "regret_p90": 0.04, "epochs": 20, "epochs_p90": 22}}
    _best_of(swept, lambda r: r["regret_median"] <= grid["regret_median"] and r["regret_p90"] <= grid["regret_p90"],
             210, "as good as the grid", key=lambda r: (r["epochs"], r["epochs_p90"]))
    out = capsys.readouterr().out
    assert "(2 of 3 settings fit)" in out and "noisy" not in out
    assert out.index("| cheap | 40 |") < out.index("| dear | 60 |")


def test_rung_agreement_and_seed_noise_on_a_hand_built_table(tmp_path):
    from search.simulation.table import Table

    # 5 configs, 2 seeds, 3 epochs. Epoch 3 ranks the configs by λ; epoch 2 the same way for seed 0
    # and reversed for seed 1; epoch 1 is flat but for one config.
    def curve(i, s):
        return [0.5 + (0.01 if i == 2 else 0.0), 0.5 + 0.01 * (i if s == 0 else -i), 0.6 + 0.01 * i + 0.02 * s]

    rows = [f"{s},{lam},{e + 1},{v},1" for i, lam in enumerate((0.0, 0.5, 1.0, 1.5, 2.0)) for s in (0, 1)
            for e, v in enumerate(curve(i, s))]
    path = tmp_path / "t.csv"
    path.write_text("# table: t\n# metric: val_auc max\n# param: loss.lam float 0 2\n"
                    "seed,loss.lam,epoch,val_auc,seconds\n" + "\n".join(rows) + "\n")
    t = Table.read(path)
    got = rung_agreement(t)
    assert got[2] == pytest.approx([1.0, -1.0])
    # epoch 1 ranks the configs (2.5, 2.5, 5, 2.5, 2.5), uncorrelated with (1, 2, 3, 4, 5): rho = 0
    assert got[1] == pytest.approx([0.0, 0.0])
    within, between = seed_noise(t)
    assert within == pytest.approx(0.02 / 2 ** 0.5)          # two finals 0.02 apart
    assert between == pytest.approx(0.01 * 2.5 ** 0.5)        # seed-means 0.61 .. 0.65, step 0.01
