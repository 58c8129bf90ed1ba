"""The sampler and concurrency rules the runner uses and the replay benchmark measures."""
import pytest

from search.scheduling import proposals


@pytest.mark.parametrize("n, startup", [(1, 2), (6, 2), (8, 2), (12, 3), (20, 5), (40, 10), (200, 10)])
def test_the_random_start_up_is_a_quarter_of_the_budget_within_2_to_10(n, startup):
    assert proposals.startup_trials(n) == startup


@pytest.mark.parametrize("n, concurrent", [(4, 2), (8, 2), (12, 3), (100, 25)])
def test_at_most_a_quarter_of_the_trials_run_at_once(n, concurrent):
    assert proposals.default_concurrency(n) == concurrent


def test_the_sampler_is_multivariate_tpe_with_a_constant_liar_and_the_sized_start_up():
    s = proposals.tpe_sampler(3, 12)
    assert (s._n_startup_trials, s._multivariate, s._constant_liar) == (3, True, True)
    assert proposals.tpe_sampler(3, 12, startup=5)._n_startup_trials == 5
