"""Patient-level bootstrap of per-label AUC: exact against scikit-learn on the resampled data,
wider than an image-level bootstrap for clustered patients, seeded, honest about degenerate draws."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from search.evaluation import bootstrap as B


def test_weighted_auc_is_the_auc_of_the_duplicated_sample_ties_included():
    rng = np.random.default_rng(3)
    t = rng.integers(0, 2, 300).astype(float)
    s = np.round(rng.random(300), 1)  # many ties
    w = rng.integers(0, 4, (5, 300)).astype(float)
    got = B._weighted_auc(t, s, w)
    for row, auc in zip(w, got):
        dup = np.repeat(np.arange(300), row.astype(int))
        assert auc == pytest.approx(roc_auc_score(t[dup], s[dup]), abs=1e-12)


def test_hand_computed_auc_and_a_draw_without_positives_is_nan():
    t, s = np.array([1.0, 0, 1, 0]), np.array([0.9, 0.8, 0.3, 0.1])
    w = np.array([[1.0, 1, 1, 1], [0, 1, 0, 1], [2, 1, 0, 1]])
    got = B._weighted_auc(t, s, w)
    assert got[0] == pytest.approx(0.75)  # 3 of the 4 (positive, negative) pairs ordered
    assert np.isnan(got[1])               # no positive drawn
    assert got[2] == pytest.approx(1.0)   # 0.9 twice, above 0.8 and 0.1


def clustered(patients=60, per_patient=6, seed=0):
    """Each patient's images share one label and nearly one score: an image says little more
    than its patient."""
    rng = np.random.default_rng(seed)
    y_patient = rng.random(patients) < 0.4
    s_patient = rng.normal(y_patient * 0.8, 1.0)
    groups = np.repeat(np.arange(patients), per_patient)
    y = y_patient[groups].astype(float)[:, None]
    s = (s_patient[groups] + rng.normal(0, 0.05, len(groups)))[:, None]
    return y, s, groups


def test_patient_bootstrap_is_wider_than_image_bootstrap_and_contains_the_estimate():
    y, s, groups = clustered()
    estimate = roc_auc_score(y[:, 0], s[:, 0])
    by_patient = B.intervals(B.resampled_aucs(y, s, groups, n=500, seed=1)[0])[0]
    by_image = B.intervals(B.resampled_aucs(y, s, np.arange(len(y)), n=500, seed=1)[0])[0]
    assert by_patient.low <= estimate <= by_patient.high
    assert by_image.low <= estimate <= by_image.high
    # six near-copies per patient: the image-level interval is about sqrt(6) too narrow
    assert (by_patient.high - by_patient.low) > 1.8 * (by_image.high - by_image.low)


def test_seeded_masked_and_degenerate_draws_counted():
    y, s, groups = clustered(patients=40, per_patient=2)
    rare = np.zeros((len(y), 1))
    rare[0] = 1  # one positive image: (1 - 1/40)^40 = 36% of resamples miss its patient
    y2, s2 = np.hstack([y, rare]), np.hstack([s, s])
    a1, p1 = B.resampled_aucs(y2, s2, groups, n=200, seed=7)
    a2, _ = B.resampled_aucs(y2, s2, groups, n=200, seed=7)
    a3, _ = B.resampled_aucs(y2, s2, groups, n=200, seed=8)
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)
    ci = B.intervals(a1)
    assert ci[0].dropped == 0 and ci[1].dropped == int(np.isnan(a1[:, 1]).sum()) > 40
    assert np.all(p1[:, 1][np.isnan(a1[:, 1])] == 0)  # dropped exactly where no positive was drawn
    # a masked-out image never counts: masking the only positive leaves no AUC at all
    mask = np.ones_like(y2, dtype=bool)
    mask[0, 1] = False
    assert np.isnan(B.resampled_aucs(y2, s2, groups, mask, n=20)[0][:, 1]).all()


def test_mean_and_weighted_mean_per_resample_skip_missing_labels():
    aucs = np.array([[0.6, 0.8, np.nan], [np.nan, np.nan, np.nan]])
    positives = np.array([[10.0, 30.0, 0.0], [0.0, 0.0, 0.0]])
    mean = B.mean_over(aucs, [0, 1, 2])
    assert mean[0] == pytest.approx(0.7) and np.isnan(mean[1])
    wauc = B.weighted_over(aucs, positives)
    assert wauc[0] == pytest.approx((0.6 * 10 + 0.8 * 30) / 40) and np.isnan(wauc[1])


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "resamples must be >= 1"),
    ({"groups": np.arange(3)}, "3 group ids for 8 images"),
])
def test_bad_arguments_are_named(kwargs, message):
    y, s = np.zeros((8, 2)), np.zeros((8, 2))
    args = {"groups": np.arange(8), **kwargs}
    with pytest.raises(ValueError, match=message):
        B.resampled_aucs(y, s, **args)
