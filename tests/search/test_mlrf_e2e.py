"""search/mlrf_lambdas.py: the space on NIH vs CheXpert roots (fast), then the user's command as a
subprocess with --smoke-test on a hand-written NIH root and on a small CheXpert-format root (slow)."""

import pytest
from ray.tune.search.sample import Categorical

from search import runner
from spaces.mlrfnet import SPEC
from trainables.data.chexpert import CHEXPERT_EVAL_LABELS

SEARCHED = {"model.lam1", "model.lam2", "model.lam3", "model.temperature", "loss.alpha", "loss.beta",
            "loss.shift", "optim.lr"}


def space_for(argv):
    args = runner.parse_args(SPEC, argv)
    return runner.build_param_space(SPEC, args, runner.pick_profile(SPEC, args))


def test_policy_is_searched_only_on_a_chexpert_root(small_chexpert, tiny_nih):
    space, warm = space_for(["--data", str(small_chexpert), "--smoke-test"])
    assert isinstance(space["data"]["policy"], Categorical)
    assert sorted(space["data"]["policy"].categories) == ["ignore", "mixed", "ones", "zeros"]
    assert warm[0]["data/policy"] == "mixed" and warm[0]["model/temperature"] == 99
    assert space["data"]["image_size"] == 32  # the smoke profile still applies
    space, warm = space_for(["--data", str(tiny_nih)])
    assert space["data"].get("policy") is None and "data/policy" not in warm[0]
    assert space["data"]["image_size"] == 224 and space["sched"] == {"name": "step", "step_size": 2, "gamma": 0.9}
    # --grid on CheXpert: the paper's 27 λ combinations with its mixed policy fixed
    grid, warm = space_for(["--data", str(small_chexpert), "--grid"])
    assert grid["data"]["policy"] == "mixed" and warm == []
    assert all(grid["model"][f"lam{i}"] == {"grid_search": [0.1, 0.3, 0.5]} for i in (1, 2, 3))


def run_search(smoke_search, work, extra):
    _, _, parent, trials = smoke_search("mlrf_lambdas", work, *extra)
    for run in trials:
        assert run.data.params["model.name"] == "mlrfnet" and run.data.params["loss.name"] == "biased_focal"
        assert SEARCHED <= set(run.data.params)
        assert run.data.params["optim.name"] == "adam" and run.data.params["sched.name"] == "step"
    # warm start: the paper's best (β: Lin et al.'s 2) is the first trial
    p = trials[0].data.params
    assert (p["model.lam1"], p["model.lam2"], p["model.lam3"], p["model.temperature"]) == ("0.5", "0.3", "0.1", "99")
    assert (p["loss.alpha"], p["loss.beta"], p["loss.shift"]) == ("0.4", "2.0", "0.2")
    return parent, trials


@pytest.mark.slow
def test_smoke_search_on_nih(smoke_search, tiny_nih, tmp_path):
    parent, trials = run_search(smoke_search, tmp_path, ["--data", str(tiny_nih)])
    assert parent.data.tags["cxr.dataset"] == "nih"
    assert not any("data.policy" in r.data.params for r in trials)  # no policy outside CheXpert


@pytest.mark.slow
def test_smoke_search_on_chexpert_searches_the_policy_and_scores_5_observations(smoke_search, small_chexpert, tmp_path):
    parent, trials = run_search(smoke_search, tmp_path, ["--data", str(small_chexpert)])
    assert parent.data.tags["cxr.dataset"] == "chexpert"
    policies = [r.data.params["data.policy"] for r in trials]
    assert policies[0] == "mixed" and set(policies) <= {"mixed", "ones", "zeros", "ignore"}
    assert len(set(policies)) > 1, f"policy not searched: {policies}"
    for run in trials:
        m = run.data.metrics
        per_label = [m[f"val_auc/{lab}"] for lab in CHEXPERT_EVAL_LABELS]
        assert m["val_auc"] == pytest.approx(sum(per_label) / 5, abs=1e-6)
        # AUCs of the other nine observations are logged but not averaged in
        assert any(k.startswith("val_auc/") and k[8:] not in CHEXPERT_EVAL_LABELS for k in m)
