"""--time-budget through the real stack (--simulate): Tune stops the search when the budget runs out,
the trials it stops end out_of_time (not cut by ASHA), nothing stays RUNNING, and the summary says so;
the no-argument run gets the demo's budget."""
from tests.search.simulation.simulated import run_simulated


def test_the_time_budget_stops_the_search_and_says_which_trials_it_cut_short(tmp_path):
    # epochs of about 6.5 s: a trial needs about 40 s, the budget allows 25 (a loaded machine starts
    # Ray's workers in seconds: a shorter budget can run out before the first epoch)
    out, parent, trials = run_simulated(tmp_path, "--num-samples", "6", "--time-budget", "25", "--grace-period", "3",
                                        "--simulate-speedup", "4")
    assert parent.data.params["search.time_budget_s"] == "25.0" and parent.info.status == "FINISHED"
    late = [r for r in trials if r.data.tags["cxr.status"] == "out_of_time"]
    assert late and all(int(r.data.tags["cxr.stopped_at_epoch"]) < 6 for r in late), \
        [(r.info.run_name, r.data.tags) for r in trials]
    assert {r.info.status for r in trials} == {"FINISHED"}
    assert len(trials) < 6   # proposals stop with the search
    assert (parent.info.end_time - parent.info.start_time) / 1000 < 45
    assert "time budget: the search stopped at 25 s (--time-budget)" in out
    assert f"{len(late)} out of time" in out and "(time budget)" in out


def test_the_no_argument_run_has_the_demo_budget_and_a_larger_search_has_none(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    out, parent, _ = run_simulated(tmp_path / "a", "--simulate-speedup", "1000")
    assert parent.data.params["search.time_budget_s"] == "230.0"
    assert "a demo: this few trials on the embedded set show how a search runs, not which config is best" in out
    _, parent, _ = run_simulated(tmp_path / "b", "--num-samples", "3", "--simulate-speedup", "1000")
    assert parent.data.params["search.time_budget_s"] == "none"
