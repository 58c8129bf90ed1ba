"""--patience through the real stack (--simulate): Tune's stopper ends the search once P trials in a
row ran every epoch without a gain above --min-gain; the trials it stops end search_stopped, nothing
stays RUNNING, and the summary says why the search ended."""
from tests.search.simulation.simulated import run_simulated


def test_patience_ends_the_search_and_says_so(tmp_path):
    # a min-gain of 1 AUC: no gain counts, so the first trial to finish sets the best and the search
    # ends when 2 more have finished, far short of --num-samples 20
    out, parent, trials = run_simulated(tmp_path, "--num-samples", "20", "--patience", "2", "--min-gain", "1",
                                        "--grace-period", "6", "--max-concurrent", "2", "--simulate-speedup", "200")
    assert parent.data.params["search.patience"] == "2" and parent.info.status == "FINISHED"
    status = [r.data.tags["cxr.status"] for r in trials]
    assert 3 <= status.count("completed") <= 4 and len(trials) < 20, status
    assert set(status) <= {"completed", "search_stopped"}
    assert {r.info.status for r in trials} == {"FINISHED"}
    assert "stop rule: --patience 2 ended the search" in out
