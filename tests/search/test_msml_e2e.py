"""The user's command, as a subprocess: search/msml_weights.py --smoke-test on a hand-written NIH root, then MLflow."""
import pytest

pytestmark = pytest.mark.slow


def test_smoke_search_logs_a_parent_and_three_trials(smoke_search, tiny_nih, tmp_path):
    _, _, parent, trials = smoke_search("msml_weights", tmp_path / "search", "--data", str(tiny_nih))
    assert parent.data.tags["cxr.dataset"] == "nih"
    for run in trials:
        p = run.data.params
        assert p["model.name"] == "fmsml" and p["loss.name"] == "bce"
        assert {"heads.alpha", "heads.beta", "model.backbone", "model.strategy", "optim.lr"} <= set(p)
        assert p["optim.name"] == "adam" and p["sched.name"] == "step"
        assert p["model.strategy"] in {"global", "local", "local_fixed"}
    # warm start: the paper's alpha 0.2, beta 0.6, Global is the first trial
    first = trials[0].data.params
    assert (first["heads.alpha"], first["heads.beta"], first["model.strategy"]) == ("0.2", "0.6", "global")
