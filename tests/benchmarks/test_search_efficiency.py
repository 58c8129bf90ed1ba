"""The live benchmark scores a search by its pick, ranked as best_config.yaml ranks trials."""
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from search_efficiency import confirmed, epochs_to_reach, highest, pick, result_epochs, score  # noqa: E402

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


def _trial(folder: Path, epochs: list[tuple[int, float]]) -> None:
    folder.mkdir(parents=True)
    (folder / "result.json").write_text("".join(
        json.dumps({"timestamp": 100 + e, "epoch": e, "val_auc": v}) + "\n" for e, v in epochs))


def test_a_confirmed_pick_is_scored_by_its_own_seed_and_pays_for_the_confirmation(tmp_path):
    _trial(tmp_path / "s" / "trial_a", [(1, 0.6), (2, 0.74)])
    _trial(tmp_path / "s-confirm" / "trial_c0", [(1, 0.5), (2, 0.70)])
    _trial(tmp_path / "s-confirm" / "trial_c1", [(1, 0.5), (2, 0.71)])
    (tmp_path / "s" / "best_config.yaml").write_text(yaml.safe_dump(
        {"config": {}, "metrics": {"val_auc": 0.74, "val_auc_mean": 0.7167, "seeds": [0, 1, 2]}}))
    run = {"epochs": result_epochs(tmp_path / "s"), "confirmed": confirmed(tmp_path, "s")}
    assert run["confirmed"] == {"value": 0.74, "mean": 0.7167, "epochs": 4}
    assert score(run, target=0.73) == (0.74, "0.7167", 6, 6)   # known only after all 6 trial-epochs
    assert score(run, target=0.75)[3] is None


def test_a_search_without_confirmation_is_scored_as_before(tmp_path):
    _trial(tmp_path / "s" / "trial_a", [(1, 0.6), (2, 0.74)])
    (tmp_path / "s" / "best_config.yaml").write_text(yaml.safe_dump({"config": {}, "metrics": {"val_auc": 0.74}}))
    run = {"epochs": result_epochs(tmp_path / "s"), "confirmed": confirmed(tmp_path, "s")}
    assert run["confirmed"] is None
    assert score(run, target=0.6) == (0.74, "-", 2, 1)
