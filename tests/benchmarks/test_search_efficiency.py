"""The live benchmark scores a search by its pick, ranked as best_config.yaml ranks trials."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from search_efficiency import epochs_to_reach, highest, pick  # noqa: E402

# (timestamp, trial, epoch, val AUC): trial a is cut at epoch 2 on a lucky 0.74; b trains all 3 epochs
EPOCHS = [(1, "a", 1, 0.60), (2, "b", 1, 0.55), (3, "a", 2, 0.74), (4, "b", 2, 0.62), (5, "b", 3, 0.71)]


def test_the_pick_is_the_trial_trained_furthest_not_the_highest_value():
    assert pick(EPOCHS) == 0.71
    assert highest(EPOCHS) == 0.74


def test_a_high_value_on_a_lower_fidelity_does_not_reach_the_target():
    late = EPOCHS + [(6, "c", 1, 0.90)]   # a new trial's first epoch, after b finished
    assert highest(late) == 0.90
    assert epochs_to_reach(late, 0.80) is None
    assert epochs_to_reach(late, 0.73) == 3   # after 3 trial-epochs a (2 epochs, 0.74) was the furthest trained
