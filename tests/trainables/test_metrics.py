import numpy as np
import pytest

from trainables.metrics import mean_auc, per_label_auc, skipped_labels, weighted_auc


def test_auc_against_hand_computed_values():
    # label A: positives score 0.8, 0.4; negatives 0.5, 0.1 -> 3 of 4 pairs ordered -> 0.75
    # label B: perfectly ranked -> 1.0; label C: no positives -> skipped
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0]])
    s = np.array([[0.8, 0.9, 0.1], [0.4, 0.2, 0.2], [0.5, 0.3, 0.3], [0.1, 0.7, 0.4]])
    aucs = per_label_auc(y, s, ["A", "B", "C"])
    assert aucs == {"A": 0.75, "B": 1.0, "C": None}
    assert skipped_labels(aucs) == ["C"]
    assert mean_auc(aucs) == pytest.approx(0.875)
    assert mean_auc(aucs, over=["A", "C"]) == 0.75
    assert weighted_auc(y, s) == pytest.approx((2 * 0.75 + 2 * 1.0) / 4)


def test_masked_entries_do_not_count():
    y = np.array([[1], [0], [1], [0]])
    s = np.array([[0.9], [0.1], [0.0], [0.5]])
    assert per_label_auc(y, s, ["A"])["A"] == 0.5  # 0.9 beats both negatives, 0.0 neither
    mask = np.array([[1], [1], [0], [1]])  # the badly ranked positive is U-Ignore
    assert per_label_auc(y, s, ["A"], mask)["A"] == 1.0


def test_weighted_auc_uses_support():
    y = np.array([[1, 1], [1, 0], [1, 0], [0, 0], [0, 1]])
    s = np.array([[0.9, 0.1], [0.8, 0.5], [0.7, 0.5], [0.1, 0.9], [0.2, 0.2]])
    a = per_label_auc(y, s, ["A", "B"])
    assert weighted_auc(y, s) == pytest.approx((3 * a["A"] + 2 * a["B"]) / 5)


def test_no_label_with_both_classes_gives_nan_not_error():
    assert np.isnan(mean_auc({"A": None}))


def test_weighted_auc_leaves_masked_entries_out():
    # label A: unmasked rows 0, 3, 4 -> y (1, 0, 0), scores (0.2, 0.1, 0.3): AUC 0.5, 1 positive.
    # Rows 1-2 (masked, e.g. U-Ignore) would otherwise count as two well-ranked positives.
    y = np.array([[1, 1], [1, 0], [1, 0], [0, 0], [0, 1]])
    s = np.array([[0.2, 0.1], [0.9, 0.5], [0.8, 0.5], [0.1, 0.9], [0.3, 0.2]])
    mask = np.array([[1, 1], [0, 1], [0, 1], [1, 1], [1, 1]])
    b = per_label_auc(y, s, ["A", "B"])["B"]
    assert weighted_auc(y, s, mask) == pytest.approx((1 * 0.5 + 2 * b) / 3)
    assert weighted_auc(y, s) != pytest.approx(weighted_auc(y, s, mask))
