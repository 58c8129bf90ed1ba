"""The replay's simulation on hand-built tables: proposals map to grid cells, ASHA cuts as Ray's does,
trial-epochs and regret are counted as the benchmark reports them."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from replay_sim import LAMBDAS, WARM, Method, Table, cell_of, grid, search  # noqa: E402

FUSIONS = ["avg", "max"] + [f"concat{k}" for k in range(5)]


def test_a_proposal_maps_to_the_nearest_grid_cell():
    assert cell_of(WARM) == (0.5, "concat3")
    assert cell_of({"loss/lam": 1.26, "heads/fusion": "concat", "heads/w_d": 0.5, "heads/w_r": 0.4}) == (1.5, "concat4")
    assert cell_of({"loss/lam": 0.24, "heads/fusion": "max", "heads/w_d": 0.0, "heads/w_r": 0.5}) == (0.0, "max")
    assert cell_of({"loss/lam": 0.26, "heads/fusion": "concat", "heads/w_d": 0.0, "heads/w_r": 0.12}) == (0.5, "concat1")


def write_table(path: Path, value) -> Path:
    """Every cell, seeds 0-2, 6 epochs; value(cell, seed, epoch) -> val AUC."""
    rows = ["# a comment line, as the recorder writes them", "seed,lam,fusion,epoch,val_auc,trial_s"]
    rows += [f"{s},{lam},{f},{e},{value((lam, f), s, e)},1.0"
             for lam in LAMBDAS for f in FUSIONS for s in range(3) for e in range(1, 7)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_the_table_reads_back_and_scores_cells_by_their_seed_mean(tmp_path):
    t = Table.read(write_table(tmp_path / "t.csv", lambda c, s, e: 0.5 + 0.01 * e + (0.03 * s if c == (2.0, "avg") else 0)))
    assert t.max_t == 6 and len(t.curves) == 35 and t.seeds((2.0, "avg")) == [0, 1, 2]
    assert t.mean((2.0, "avg")) == pytest.approx(0.59) and t.best_mean == pytest.approx(0.59)
    assert t.regret((0.0, "max")) == pytest.approx(0.03)


def test_asha_cuts_the_weaker_trials_at_the_first_rung_and_the_pick_is_the_finished_best(tmp_path):
    # the paper's cell (the warm start, tried first) leads at every epoch; all others tie below it
    t = Table.read(write_table(tmp_path / "t.csv", lambda c, s, e: (0.7 if c == (0.5, "concat3") else 0.6) + 0.01 * e))
    m = Method("m", num_samples=3, grace=1, eta=2, concurrency=1)
    out = search(t, m, seed=0)
    assert out.cell == (0.5, "concat3") and out.regret == 0.0
    assert out.trial_epochs == 6 + 1 + 1   # the warm start runs 6 epochs; both proposals are cut at epoch 1
    # confirming the top 2 with one other seed: only one config ran every epoch, 6 epochs more
    assert search(t, m.with_(confirm=2, confirm_seeds=1), seed=0).trial_epochs == 8 + 6


def test_confirmation_picks_the_best_mean_over_a_lucky_seed(tmp_path):
    lucky, solid = (0.5, "concat3"), (2.0, "avg")
    finals = {lucky: {0: 0.80, 1: 0.60, 2: 0.60}, solid: {0: 0.75, 1: 0.74, 2: 0.76}}

    def value(c, s, e):
        return finals[c][s] if c in finals else 0.5
    t = Table.read(write_table(tmp_path / "t.csv", value))
    assert t.best_mean == pytest.approx(0.75)
    # the grid with one seed per cell picks the lucky cell whenever it drew seed 0 for it
    regrets = {round(grid(t, seed).regret, 6) for seed in range(30)}
    assert regrets == {0.0, round(0.75 - 2 / 3, 6)} and grid(t, 0).trial_epochs == 210


def test_the_old_search_tells_cut_trials_as_complete_and_the_new_one_as_pruned(tmp_path, monkeypatch):
    import optuna

    told = []
    real_tell = optuna.Study.tell
    monkeypatch.setattr(optuna.Study, "tell", lambda self, trial, values=None, state=None, **kw:
                        told.append(state) or real_tell(self, trial, values, state=state, **kw))
    t = Table.read(write_table(tmp_path / "t.csv", lambda c, s, e: (0.7 if c == (0.5, "concat3") else 0.6) + 0.01 * e))
    search(t, Method("new", num_samples=3, concurrency=1), seed=0)
    assert told == [None, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.PRUNED]
    told.clear()
    search(t, Method("old", sampler="tpe-old", num_samples=3, concurrency=1, pruned=False), seed=0)
    assert told == [None, None, None]   # COMPLETE, at the cut's value
