"""`--replicates` through the real stack (--simulate): configs that ran every epoch are trained again
with the next seeds inside the search's --num-samples, ASHA does not cut them, and the pick is by mean
over the seeds, with nothing trained after the search (tests/search/scheduling/test_replicas.py: the rule)."""
import yaml

from search.simulation.table import Table
from search.simulation.trainable import recorded_seed
from tests.search.simulation.simulated import TABLE, run_simulated


def test_replicate_rungs_retrain_the_survivors_within_the_budget_and_pick_by_mean(tmp_path):
    out, parent, trials = run_simulated(tmp_path, "--num-samples", "8", "--replicates", "2", "--grace-period", "1",
                                        "--cpus-per-trial", "0.5", "--simulate-speedup", "1000")
    t = Table.read(TABLE)
    assert len(trials) == 8 and parent.data.params["search.replicates"] == "2"
    replicas = [r for r in trials if r.data.params.get("train.replica", "0") != "0"]
    proposals = [r for r in trials if r.data.params.get("train.replica", "0") == "0"]
    assert replicas, out[-3000:]
    for r in replicas:
        k = int(r.data.params["train.replica"])
        # the config again with seed + k, every epoch (never cut), reading seed + k's curve
        assert r.data.params["train.seed"] == str(k) and r.data.metrics["epoch"] == 6
        assert r.info.run_name.endswith(f"seed+{k}") and r.data.tags["cxr.replica"] == str(k)
        config = int(r.data.metrics["recorded_config"])
        assert int(r.data.metrics["recorded_seed"]) == recorded_seed(t, config, k)
        origin = [p for p in proposals if p.info.run_name == r.info.run_name.rsplit(" seed+", 1)[0]]
        assert origin and origin[0].data.metrics["epoch"] == 6     # only a config that ran every epoch
    # the pick: among the configs with the most seeds, the best mean; no confirmation run
    best = yaml.safe_load((tmp_path / "rr" / "sim" / "best_config.yaml").read_text())
    most = 1 + max(int(r.data.params["train.replica"]) for r in replicas)
    assert best["metrics"]["seeds"] == list(range(most)) and "replicate rungs (--replicates)" in out
    assert not (tmp_path / "rr" / "sim-confirm").exists()
    # the report counts the proposals as the search's trials and shows the replicated configs' means
    assert f"of {len(proposals)} trials" in out and f"over {most} seeds" in out
    assert best["config"]["train"].get("replica", 0) == 0
