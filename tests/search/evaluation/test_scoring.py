"""The evaluation table from known scores: AUCs computable by hand (and equal to scikit-learn's),
patient-level CIs around them, positives counted and flagged, eval labels and masks honoured."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from search.evaluation.scoring import MEAN, WAUC, score_split
from trainables.data import Split

LABELS = ("A", "B", "C")


def known_split():
    """8 images of 4 patients. A: 11 of 15 pairs ranked right; B: perfect; C: one entry masked."""
    y = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 1],
                  [1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=np.float32)
    s = np.array([[.9, .8, .1], [.8, .2, .7], [.3, .1, .6], [.1, .9, .2],
                  [.7, .3, .3], [.2, .4, .9], [.6, .7, .5], [.4, .2, .4]], dtype=np.float32)
    mask = np.ones_like(y)
    mask[3, 2] = 0  # C's third positive is uncertain (CheXpert U-Ignore): left out
    split = Split(paths=[f"{i}.png" for i in range(8)], labels=y, mask=mask,
                  patients=np.array([1, 1, 2, 2, 3, 3, 4, 4]))
    return split, s


def test_per_label_auc_is_sklearns_and_the_hand_computed_one():
    split, s = known_split()
    got = score_split(split, s, LABELS, LABELS, resamples=200, seed=0)
    t = got.table
    # B: positives .8 .9 .7 above every negative (.2 .1 .3 .4 .2): AUC 1
    assert t.loc["B", "auc"] == 1.0
    for k, label in enumerate(LABELS):
        keep = split.mask[:, k] > 0
        assert t.loc[label, "auc"] == pytest.approx(roc_auc_score(split.labels[keep, k], s[keep, k]))
    # A: positives .9 .3 .7 vs negatives .8 .1 .2 .6 .4: .9 beats 5, .3 beats 2, .7 beats 4
    assert t.loc["A", "auc"] == pytest.approx(11 / 15)
    assert list(t["positives"].iloc[:3]) == [3, 3, 2] and list(t["negatives"].iloc[:3]) == [5, 5, 5]
    assert t.loc[MEAN, "auc"] == pytest.approx(t.loc[list(LABELS), "auc"].mean())
    weights = np.array([3, 3, 2])
    assert t.loc[WAUC, "auc"] == pytest.approx((t.loc[list(LABELS), "auc"] * weights).sum() / weights.sum())
    assert t["few_positives"].iloc[:3].all()  # under 30 positives each
    assert got.images == 8 and got.patients == 4
    assert "resamples of patients" in got.method and "seed 0" in got.method


def test_every_interval_contains_its_estimate_and_eval_labels_select_rows():
    rng = np.random.default_rng(0)
    n = 400
    y = (rng.random((n, 3)) < 0.3).astype(np.float32)
    s = y * 0.6 + rng.random((n, 3))
    split = Split(paths=[str(i) for i in range(n)], labels=y, mask=np.ones_like(y),
                  patients=np.repeat(np.arange(n // 4), 4))
    got = score_split(split, s, LABELS, ("C", "A"), resamples=300, seed=2)
    assert list(got.table.index) == ["C", "A", MEAN, WAUC]
    for label, r in got.table.iterrows():
        assert r["ci_low"] <= r["auc"] <= r["ci_high"], label
        assert r["ci_high"] - r["ci_low"] < 0.2
    assert got.table.loc[MEAN, "auc"] == pytest.approx(got.table.loc[["C", "A"], "auc"].mean())
    np.testing.assert_array_equal(got.y_true, y[:, [2, 0]])  # for the ROC panels, in row order
    assert not got.table["few_positives"].any()
