"""--confirm as the user runs it: the top configs trained again with other seeds as child runs, and the
pick by mean is what best_config.yaml, --export and --evaluate use."""
import math

import pytest
import yaml

from search.picking.confirmation import CONFIRMS_TAG, MEAN_TAG, RANK_TAG

pytestmark = pytest.mark.slow


def test_confirmation_runs_and_the_confirmed_pick(smoke_search, tmp_path):
    # grace period = the smoke profile's 2 epochs: no trial is cut, all 4 are candidates
    out, client, parent, trials = smoke_search(
        "dual_weights", tmp_path, "--num-samples", "4", "--grace-period", "2", "--confirm", "2",
        "--confirm-seeds", "1", "--export", str(tmp_path / "exports"), "--evaluate", trials=4)
    exp = parent.info.experiment_id
    confirms = client.search_runs([exp], "tags.`cxr.role` = 'confirmation'")
    by_val = sorted(trials, key=lambda r: -r.data.metrics["val_auc"])
    top2 = {r.info.run_id: r for r in by_val[:2]}
    assert len(confirms) == 2 and {r.data.tags[CONFIRMS_TAG] for r in confirms} == set(top2)
    for run in confirms:
        origin = top2[run.data.tags[CONFIRMS_TAG]]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
        assert run.data.tags["cxr.status"] == "completed" and run.data.params["train.seed"] == "1"
        assert run.info.run_name == f"{origin.info.run_name} seed=1"
        same = {k: v for k, v in origin.data.params.items() if k != "train.seed"}
        assert {k: v for k, v in run.data.params.items() if k != "train.seed"} == same
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_auc")] == [1, 2]

    means = {r.data.tags[CONFIRMS_TAG]: (top2[r.data.tags[CONFIRMS_TAG]].data.metrics["val_auc"]
                                         + r.data.metrics["val_auc"]) / 2 for r in confirms}
    pick = max(means, key=means.get)
    parent = client.get_run(parent.info.run_id)
    assert parent.data.tags["cxr.best_run_id"] == pick
    assert "paired t-test over seeds 0, 1, p = " in parent.data.tags["cxr.confirmation"]
    assert parent.data.metrics["best_val_auc_mean"] == pytest.approx(means[pick])
    for run_id in top2:
        tags = client.get_run(run_id).data.tags
        assert float(tags[MEAN_TAG]) == pytest.approx(means[run_id], abs=1e-6)
        assert tags[RANK_TAG] == ("1" if run_id == pick else "2")
    assert "**Confirmed**" in parent.data.tags["mlflow.note.content"]

    best = yaml.safe_load((tmp_path / "rr" / "smoke" / "best_config.yaml").read_text())
    assert best["metrics"]["val_auc_mean"] == pytest.approx(means[pick]) and best["metrics"]["seeds"] == [0, 1]
    assert str(best["config"]["loss"]["lam"]) == client.get_run(pick).data.params["loss.lam"]
    first = yaml.safe_load(sorted((tmp_path / "exports").glob("*.yaml"))[0].read_text())
    assert first["mlflow_run_id"] == pick and math.isclose(first["confirmed_val_auc_mean"], means[pick], abs_tol=1e-6)
    (evaluation,) = client.search_runs([exp], "tags.`cxr.role` = 'evaluation'")
    assert evaluation.data.tags["cxr.source_run_id"] == pick
    assert "confirmation: pick" in out and "confirmed (val_auc at the last epoch" in out
