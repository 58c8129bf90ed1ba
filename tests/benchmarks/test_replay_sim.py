"""The replay's simulated search over a hand-built table: ASHA's cuts, the pick, confirmation, the
grid, and what Optuna is told."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from replay_sim import Method, grid, search, trajectory, truncated_grid  # noqa: E402

from search.simulation.table import Table  # noqa: E402
from search.simulation.trainable import recorded_seed  # noqa: E402
from tests.tables import write_dual  # noqa: E402

PAPER = "0.5 concat3"


def leader(cell, s, e):
    """The paper's cell (the warm start, tried first) leads at every epoch; all others tie below it."""
    return (0.7 if cell == PAPER else 0.6) + 0.01 * e


def test_asha_cuts_the_weaker_trials_at_the_first_rung_and_the_pick_is_the_finished_best(tmp_path):
    t = Table.read(write_dual(tmp_path / "t.csv", leader))
    m = Method("m", num_samples=3, grace=1, eta=2, concurrency=1)
    out = search(t, m, seed=0)
    assert t.label(out.cell) == "loss.lam=0.5 heads.fusion=concat heads.w_d=0.3 heads.w_r=0.3" and out.regret == 0.0
    assert out.trial_epochs == 6 + 1 + 1   # the warm start runs 6 epochs; both proposals are cut at epoch 1
    # confirming the top 2 with one other seed: only one config ran every epoch, 6 epochs more
    assert search(t, m.with_(confirm=2, confirm_seeds=1), seed=0).trial_epochs == 8 + 6


def test_results_reach_asha_in_the_order_of_the_recorded_seconds(tmp_path):
    """As in the product: two trials start together and the one with the faster epochs reaches the
    rung first. Stepping both an epoch at a time would let the warm start (started first) reach every
    rung first and never be cut."""
    def trailer(cell, s, e):
        return (0.6 if cell == PAPER else 0.7) + 0.01 * e
    m = Method("m", num_samples=2, grace=1, eta=2, concurrency=2)
    even = Table.read(write_dual(tmp_path / "even.csv", trailer))
    assert search(even, m, seed=0).trial_epochs == 12          # the warm start is first at each rung
    slow = Table.read(write_dual(tmp_path / "slow.csv", trailer,
                                 seconds=lambda cell, s, e: 2.0 if cell == PAPER else 1.0))
    out = search(slow, m, seed=0)
    assert out.trial_epochs == 1 + 6 and slow.label(out.cell) != slow.label(slow.nearest(slow.warm))


def test_the_grid_with_one_seed_per_cell_falls_for_a_lucky_seed(tmp_path):
    finals = {PAPER: {0: 0.80, 1: 0.60, 2: 0.60}, "2.0 avg": {0: 0.75, 1: 0.74, 2: 0.76}}

    def value(c, s, e):
        return finals[c][s] if c in finals else 0.5
    t = Table.read(write_dual(tmp_path / "t.csv", value))
    assert t.best_mean() == pytest.approx(0.75)    # no held-out seed: scored on all three
    # the grid with one seed per cell picks the lucky cell whenever it drew seed 0 for it
    regrets = {round(grid(t, seed).regret, 6) for seed in range(30)}
    assert regrets == {0.0, round(0.75 - 2 / 3, 6)} and grid(t, 0).trial_epochs == 210
    # as `--grid --seed S` trains it: every cell with seed S (mod 3), so seeds 0, 3, 6 all fall for it
    paper = t.nearest(t.warm)
    assert [grid(t, seed).cell for seed in (0, 3, 6)] == [paper] * 3
    assert {round(grid(t, seed).regret, 6) for seed in (1, 2, 4, 5)} == {0.0}


def test_a_truncated_grid_spends_its_budget_in_whole_cells(tmp_path):
    t = Table.read(write_dual(tmp_path / "t.csv", leader))
    runs = [truncated_grid(t, seed, budget_epochs=40) for seed in range(50)]
    assert {r.trial_epochs for r in runs} == {36}     # 6 whole cells of 6 epochs
    # it finds the one good cell in 6 of 35 cells: sometimes, not always
    assert 0 < sum(r.regret == 0 for r in runs) < 50


def test_the_old_search_tells_cut_trials_as_complete_and_the_new_one_as_pruned(tmp_path, monkeypatch):
    import optuna

    told = []
    real_tell = optuna.Study.tell
    monkeypatch.setattr(optuna.Study, "tell", lambda self, trial, values=None, state=None, **kw:
                        told.append(state) or real_tell(self, trial, values, state=state, **kw))
    t = Table.read(write_dual(tmp_path / "t.csv", leader))
    search(t, Method("new", num_samples=3, concurrency=1), seed=0)
    assert told == [None, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.PRUNED]
    told.clear()
    search(t, Method("old", sampler="tpe-old", num_samples=3, concurrency=1, pruned=False), seed=0)
    assert told == [None, None, None]   # COMPLETE, at the cut's value


def two_config_table(path, value, seconds) -> Table:
    """λ 0 (the warm start) and λ 2, seeds 0-2, 2 epochs; value(λ, seed) and seconds(λ) per epoch."""
    rows = [f"{s},{lam},{e},{value(lam, s)},{seconds(lam)}" for lam in (0, 2) for s in (0, 1, 2) for e in (1, 2)]
    path.write_text("# table: two\n# metric: val_auc max\n# param: loss.lam float 0 2\n# warm: loss.lam=0\n"
                    "seed,loss.lam,epoch,val_auc,seconds\n" + "\n".join(rows) + "\n")
    return Table.read(path)


def test_replicate_rungs_retrain_the_survivors_with_more_seeds_and_pick_by_their_mean(tmp_path):
    """A race by hand: the good config (λ 2: 0.75 with every seed) finishes first; the lucky one (λ 0,
    the warm start: 0.80 with seed 0, 0.60 with the others) second. On its first seed alone the search
    picks the lucky one. With one replicate rung each beats the cutoff when it gets there, each is
    re-trained with the next seed, and the mean over the two picks the good one."""
    t = two_config_table(tmp_path / "t.csv", lambda lam, s: 0.75 if lam == 2 else (0.80 if s == 0 else 0.60),
                         lambda lam: 1.0 if lam == 2 else 2.0)
    lucky, good = t.nearest({"loss.lam": 0}), t.nearest({"loss.lam": 2})
    m = Method("m", sampler="random", num_samples=2, grace=2, eta=2, concurrency=2)

    def fits(seed):   # the proposal lands on λ 2 and the lucky config reads seed 0 first
        return {r.trial.cell for r in trajectory(t, m, seed)} == {lucky, good} and recorded_seed(t, lucky, seed) == 0
    seed = next(s for s in range(200) if fits(s))
    assert search(t, m, seed).cell == lucky
    raced = search(t, m.with_(num_samples=4, replicates=1), seed)
    assert raced.cell == good and raced.trial_epochs == 4 * 2    # 2 proposals + 2 replicates, 2 epochs each


def test_patience_ends_the_search_after_configs_that_do_not_raise_the_best(tmp_path):
    # every config alike: the first to finish sets the best, the next 3 do not raise it; one trial at
    # once and no cuts, so the search ends after exactly 4 trials of 6 epochs
    t = Table.read(write_dual(tmp_path / "t.csv", lambda c, s, e: 0.7, seeds=(0, 1, 2)))
    m = Method("m", sampler="random", grace=6, concurrency=1, num_samples=20, patience=3, min_gain=0.0)
    assert len(trajectory(t, m, 0)) == 4 * 6
    # gains below min_gain do not reset it: configs 0.7-0.91 apart (every row a little higher) with a
    # min_gain of 0.5 still stop at 4
    rows = iter(range(1000))
    t2 = Table.read(write_dual(tmp_path / "t2.csv", lambda c, s, e: 0.7 + 0.001 * next(rows), seeds=(0,)))
    assert len(trajectory(t2, m.with_(min_gain=0.5), 0)) == 4 * 6
    assert len(trajectory(t, m.with_(patience=0), 0)) == 20 * 6        # no rule: every trial


def test_the_paired_test_separates_a_config_better_on_every_common_seed():
    from replay_sim import separated

    # seeds 0-2 common; config 1 beats config 2 on every seed by 0.02 +- 0.001: p ~ 0.001
    finals = {1: {0: 0.80, 1: 0.82, 2: 0.81}, 2: {0: 0.78, 1: 0.801, 2: 0.789}, 3: {0: 0.9}}
    assert separated(finals, 0.05)
    # one seed against it: no longer separated
    finals[2][1] = 0.83
    assert not separated(finals, 0.05)
    # fewer than 3 common seeds: no test, no stop
    assert not separated({1: {0: 0.9, 1: 0.9}, 2: {0: 0.1, 1: 0.1}}, 0.5)
