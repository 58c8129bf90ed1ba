"""search.evaluate on a hand-written ChestX-ray14 root: the test split scored from a checkpoint
(or a retrained model), the files, the MLflow run and its artifacts, and the mistakes a user
can make, each named."""
import math
import os
import re

import pandas as pd
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from search.evaluation import candidates, cli as E, pipeline
from tests.trainables.test_train import tiny_config
from tests.user_errors import user_error
from trainables import metrics as M
from trainables.config import merge
from trainables.data import fingerprint
from trainables.data.sources import load_splits
from trainables.predict import final_config, scores, trained_model
from trainables.checkpoints import LocalReporter, load_state
from trainables.train import run


@pytest.fixture
def trained(tiny_nih, tmp_path):
    """A 1-epoch model of the tiny set and an exported-style YAML pointing at its checkpoint."""
    config = merge(tiny_config(tiny_nih, max_epochs=1), {"data": {"num_workers": 0}})
    run(config, LocalReporter(tmp_path / "trial"))
    doc = tmp_path / "trial.yaml"
    doc.write_text(yaml.safe_dump({"config": config, "checkpoint": str(tmp_path / "trial" / "last")}))
    return config, doc, tmp_path


def evaluate(tmp_path, *args):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    results = E.main([*map(str, args), "--out", str(tmp_path / "ev"), "--tracking-uri", uri, "--bootstrap", "100"])
    return results, MlflowClient(uri)


def test_a_checkpoint_scored_on_the_test_split_into_files_and_mlflow(trained):
    config, doc, tmp_path = trained
    (result,), client = evaluate(tmp_path, doc, "--space", "dualchexnet")
    out = tmp_path / "ev" / "trial"
    assert result["out"] == out and all((out / f).is_file() for f in ("test_auc.csv", "roc.png", "comparison.md"))

    # the numbers: the checkpoint scored independently on the test split
    state = load_state(tmp_path / "trial" / "last")
    cfg = final_config(config, state["epoch"])
    splits = load_splits(cfg["data"])
    y = scores(trained_model(cfg, state, 14, "cpu"), cfg, pipeline.rows_of_test_split(splits, cfg["data"]), "cpu")
    aucs = M.per_label_auc(splits.test.labels, y, splits.labels, splits.test.mask)
    table = pd.read_csv(out / "test_auc.csv", index_col="label")
    for label, auc in aucs.items():
        assert (math.isnan(table.loc[label, "auc"]) if auc is None else table.loc[label, "auc"] == pytest.approx(auc))
    assert table.loc["mean", "auc"] == pytest.approx(M.mean_auc(aucs))
    assert table.loc["Effusion", "positives"] == int(splits.test.labels[:, 2].sum())

    run_ = client.get_run(result["run_id"])
    tags, metrics = run_.data.tags, run_.data.metrics
    assert tags["cxr.role"] == "evaluation" and tags["cxr.mode"] == "checkpoint" and tags["cxr.synthetic"] == "false"
    assert "mlflow.parentRunId" not in tags  # no search behind a plain config
    assert client.get_experiment(run_.info.experiment_id).name == E.DEFAULT_EXPERIMENT
    assert metrics["test_auc"] == pytest.approx(table.loc["mean", "auc"])
    assert metrics["test_auc_ci_low"] <= metrics["test_auc"] <= metrics["test_auc_ci_high"]
    assert metrics["test_auc/Effusion"] == pytest.approx(table.loc["Effusion", "auc"])
    assert metrics["test_positives/Effusion"] == table.loc["Effusion", "positives"]
    assert {"test_wauc", "test_wauc_ci_low", "test_auc_ci_high/Effusion"} <= set(metrics)
    files = {a.path for a in client.list_artifacts(run_.info.run_id)} | \
        {a.path for a in client.list_artifacts(run_.info.run_id, "weights")}
    assert files == {"test_auc.csv", "roc.png", "comparison.md", "weights", "weights/state_dict.pt",
                     "weights/config.yaml"}
    saved = torch.load(client.download_artifacts(run_.info.run_id, "weights/state_dict.pt", str(tmp_path)),
                       weights_only=True)
    assert all(torch.equal(saved["model"][k], v) for k, v in state["model"].items())
    text = (out / "comparison.md").read_text()
    assert f"**Part of the paper's test set.** Ours has {len(splits.test)} images; the paper's has 25,596" in text
    assert "| **mean** |" in text and "| 0.818 |" in text
    # the evaluation's input: the test split it scored, digested
    (test_input,) = run_.inputs.dataset_inputs
    assert test_input.dataset.digest == fingerprint.split_digest(splits.test, splits.root, splits.labels)
    assert [(t.key, t.value) for t in test_input.tags] == [("mlflow.data.context", "test")]


def test_a_checkpoint_in_object_storage_reads_like_a_local_one(trained):
    _, _, tmp_path = trained
    local = load_state(tmp_path / "trial" / "last")
    remote = candidates.read_state(f"file://{tmp_path / 'trial' / 'last'}")
    assert remote["epoch"] == local["epoch"] and all(torch.equal(remote["model"][k], v)
                                                      for k, v in local["model"].items())


def test_retrain_trains_from_scratch_and_scores_the_best_validation_epoch(trained):
    _, doc, tmp_path = trained
    (result,), client = evaluate(tmp_path, doc, "--retrain", "--max-epochs", "2")
    folder = tmp_path / "ev" / "trial" / "retrain"
    history = [yaml.safe_load(l) for l in (folder / "metrics.jsonl").read_text().splitlines()]
    best = max(history, key=lambda m: m["val_auc"])
    assert len(history) == 2 and load_state(folder / "best")["epoch"] == best["epoch"]
    tags = client.get_run(result["run_id"]).data.tags
    assert tags["cxr.mode"] == "retrain" and tags["cxr.checkpoint_epoch"] == str(best["epoch"])


def test_mistakes_are_named(trained, tmp_path, capsys):
    config, doc, _ = trained
    assert "pass SOURCE" in user_error(capsys, E.main, [])
    assert "--max-epochs only applies with --retrain" in user_error(capsys, E.main, [str(doc), "--max-epochs", "2"])
    assert "must be >= 1" in user_error(capsys, E.main, [str(doc), "--bootstrap", "0"])
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({"config": config}))
    assert re.search("no checkpoint recorded .* --retrain", user_error(capsys, evaluate, tmp_path, bare))
    gone = tmp_path / "gone.yaml"
    gone.write_text(yaml.safe_dump({"config": config, "checkpoint": str(tmp_path / "nowhere")}))
    assert "has no state.pt: the trial's storage must be reachable" in user_error(capsys, evaluate, tmp_path, gone)
    assert "missing.yaml does not exist" in user_error(capsys, evaluate, tmp_path, tmp_path / "missing.yaml")
    assert re.search("'0123abcd' is neither a YAML file nor a run id at sqlite:",
                     user_error(capsys, evaluate, tmp_path, "0123abcd"))


def test_each_registered_version_takes_the_champion_alias(trained, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _, doc, tmp_path = trained
    (first,), client = evaluate(tmp_path, doc, "--register", "cxr-alias")
    assert client.get_model_version_by_alias("cxr-alias", "champion").run_id == first["run_id"]
    (second,), _ = evaluate(tmp_path, doc, "--register", "cxr-alias")
    champion = client.get_model_version_by_alias("cxr-alias", "champion")
    assert int(champion.version) == 2 and champion.run_id == second["run_id"]
    assert {k: int(v) for k, v in client.get_registered_model("cxr-alias").aliases.items()} == {"champion": 2}
    assert "MLFLOW_TRACKING_URI" not in os.environ  # registering left the process's tracking URI as it was
