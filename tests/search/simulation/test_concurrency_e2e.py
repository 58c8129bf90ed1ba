"""The concurrency rule as the real stack applies it: a simulated search (recorded curves, the real
runner, Tune, ASHA, Optuna and MLflow) whose CPUs would run 8 trials at once runs what the rule says."""
import pytest

from tests.search.simulation.simulated import overlap, run_simulated


@pytest.mark.parametrize("extra, limit", [((), 2),                          # the default: a quarter of 8, at least 2
                                          (("--max-concurrent", "3"), 3)])
def test_no_more_trials_run_at_once_than_the_rule_says(tmp_path, extra, limit):
    # 8 trials of 0.25 CPU fit 2 CPUs at once; each epoch takes ~2.5 s, long enough that Tune would
    # start more than `limit` trials before the first ends
    out, parent, trials = run_simulated(tmp_path, "--num-samples", "8", "--cpus-per-trial", "0.25",
                                        "--max-epochs", "2", "--grace-period", "2", "--simulate-speedup", "10", *extra)
    assert len(trials) == 8
    # from the trial runs' own start and end times; at least 2, so the test sees trials overlap at all
    # (the old code ran 4 at once where the rule said 2)
    assert 2 <= overlap(trials) <= limit
    assert "will be ignored" not in out   # Ray's warning that it drops max_concurrent_trials
    assert 2 <= parent.data.metrics["peak_concurrent_trials"] <= limit
    assert parent.data.params["search.max_concurrent"] == str(limit)
