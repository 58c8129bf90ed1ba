"""The confirmed pick: best mean over seeds, a t interval and a paired test, against hand-computed values."""
import math

import pytest

from search.picking.confirmation import Candidate, judge, lines, other_seeds

T_975_DF2 = 4.302652729911275  # Student t, 97.5th percentile, 2 degrees of freedom


def test_the_pick_is_the_best_mean_not_the_best_single_seed():
    # A won the search with its one lucky seed (0.74); over three seeds B is better
    a = Candidate("A", {}, "ta", {0: 0.74, 1: 0.64, 2: 0.66})
    b = Candidate("B", {}, "tb", {0: 0.71, 1: 0.70, 2: 0.69})
    c = Candidate("C", {}, "tc", {0: 0.60, 1: 0.61, 2: 0.59})
    v = judge([a, b, c])
    assert [x.name for x in v.ranked] == ["B", "A", "C"]
    assert v.pick.mean == pytest.approx(0.70) and a.mean == pytest.approx(0.68)
    # B - A per seed: -0.03, 0.06, 0.03; mean 0.02, sd 0.0458258, t = 0.02 / (0.0458258 / sqrt 3) = 0.755929
    # two-sided p with 2 df: 1 - |t| / sqrt(2 + t^2) = 0.529
    t = 0.02 / (math.sqrt(((-0.05) ** 2 + 0.04 ** 2 + 0.01 ** 2) / 2) / math.sqrt(3))
    assert v.p_value == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-9)
    assert v.distinguishable is False and v.seeds == [0, 1, 2]
    assert "not distinguishable" in v.text() and "p = 0.529" in v.text()


def test_the_interval_is_student_t_with_n_minus_1_degrees_of_freedom():
    b = Candidate("B", {}, "tb", {0: 0.71, 1: 0.70, 2: 0.69})
    lo, hi = b.interval()
    half = T_975_DF2 * 0.01 / math.sqrt(3)
    assert (lo, hi) == pytest.approx((0.70 - half, 0.70 + half))
    assert Candidate("one", {}, "t", {0: 0.7}).interval() is None
    assert "95% CI [0.6752, 0.7248]" in lines(judge([b]))[0]


def test_a_consistent_gap_is_distinguishable():
    a = Candidate("A", {}, "ta", {0: 0.80, 1: 0.79, 2: 0.81, 3: 0.80})
    b = Candidate("B", {}, "tb", {0: 0.70, 1: 0.70, 2: 0.72, 3: 0.71})
    v = judge([b, a])
    assert v.pick.name == "A" and v.p_value < 0.001 and v.distinguishable
    assert v.text().startswith("A is better than B")
    same_gap = judge([Candidate("A", {}, "a", {0: 0.8, 1: 0.9}), Candidate("B", {}, "b", {0: 0.7, 1: 0.8})])
    assert same_gap.p_value == 0.0  # no variance in the differences: t undefined, the gap certain


def test_only_shared_seeds_are_paired():
    a = Candidate("A", {}, "ta", {0: 0.75, 1: 0.74})
    b = Candidate("B", {}, "tb", {0: 0.70, 2: 0.71})  # its seed-1 run failed
    v = judge([a, b])
    assert v.seeds == [0] and v.p_value is None and "no paired test" in v.text()


def test_other_seeds_follow_the_search_seed():
    assert other_seeds(7, 3) == [8, 9, 10]
