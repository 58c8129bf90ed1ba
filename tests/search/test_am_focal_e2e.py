"""The user's command, as a subprocess: search/am_focal.py --smoke-test on a hand-written NIH root, then MLflow."""
import pytest

pytestmark = pytest.mark.slow


def test_smoke_search_logs_a_parent_and_three_trials(smoke_search, tiny_nih, tmp_path):
    _, _, parent, trials = smoke_search("am_focal", tmp_path / "search", "--data", str(tiny_nih))
    assert parent.data.tags["cxr.dataset"] == "nih"
    for run in trials:
        p = run.data.params
        assert p["model.name"] == "am_densenet" and p["loss.name"] == "focal" and p["optim.name"] == "adam"
        assert {"loss.alpha", "loss.gamma", "model.reduction", "optim.lr"} <= set(p)
    # warm start: Lin et al.'s focal defaults are the first trial
    first = trials[0].data.params
    assert (first["loss.alpha"], first["loss.gamma"], first["model.reduction"]) == ("0.25", "2.0", "16")
