"""Scoring a finished model: the checkpoint rebuilt from its config reproduces the trial's own
validation AUC, the test-time transform is the validation one, and the config is the one the
checkpoint's last epoch ran with."""
import json

import numpy as np
import pytest
import torch

from tests.trainables.test_train import tiny_config
from trainables import metrics as M
from trainables.config import merge, resolve
from trainables.data.cache import get_cache
from trainables.data.sources import load_splits
from trainables.models import build_model
from trainables.predict import final_config, scores, trained_model
from trainables.checkpoints import LocalReporter, load_state
from trainables.stages import make_pipeline
from trainables.train import run


def val_rows(cfg, splits):
    cache = get_cache(splits.val.paths, cfg["data"]["resize"], cfg["data"]["cache_dir"])
    return cache.array[cache.rows(splits.val.paths)]


def test_a_checkpoint_scored_again_gives_the_trials_val_auc(tiny_nih, tmp_path):
    config = merge(tiny_config(tiny_nih, max_epochs=2), {"data": {"num_workers": 0}})
    run(config, LocalReporter(tmp_path))
    best = max((json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()),
               key=lambda m: m["val_auc"])
    state = load_state(tmp_path / "best")
    cfg = final_config(config, state["epoch"])
    splits = load_splits(cfg["data"])
    model = trained_model(cfg, state, len(splits.labels), "cpu")
    assert not model.training
    got = scores(model, cfg, val_rows(cfg, splits), "cpu")
    aucs = M.per_label_auc(splits.val.labels, got, splits.labels, splits.val.mask)
    assert state["epoch"] == best["epoch"]
    assert M.mean_auc(aucs, splits.eval_labels) == pytest.approx(best["val_auc"], abs=1e-6)


def test_test_time_transform_is_the_validation_transform(tiny_nih):
    cfg = resolve(merge(tiny_config(tiny_nih), {"data": {"num_workers": 0, "augment_on": "cpu", "eval_batch_size": 16}}))
    splits = load_splits(cfg["data"])
    torch.manual_seed(0)
    model = build_model(cfg["model"], num_classes=len(splits.labels)).eval()
    with torch.no_grad():
        expected = torch.cat([torch.sigmoid(model(x)[model.predict_head])
                              for x, _, _ in make_pipeline(cfg, splits, torch.device("cpu")).val_batches()]).numpy()
    got = scores(model, cfg, val_rows(cfg, splits), "cpu", batch_size=16)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("epoch, size, resize", [(2, 32, 37), (3, 64, 74)])
def test_final_config_follows_two_stage_training_and_never_downloads(tiny_nih, epoch, size, resize):
    config = merge(tiny_config(tiny_nih, max_epochs=4, two_stage=True), {"model": {"pretrained": True}})
    cfg = final_config(config, epoch)  # stage 2 starts after epoch 2 of 4
    assert (cfg["data"]["image_size"], cfg["data"]["resize"]) == (size, resize)
    assert cfg["model"]["pretrained"] is False


def test_rows_of_the_wrong_size_or_type_are_refused(tiny_nih):
    cfg = resolve(tiny_config(tiny_nih))
    model = build_model(cfg["model"], num_classes=14).eval()
    with pytest.raises(ValueError, match=r"\(N, 37, 37\) \(data.resize\), got \(2, 40, 40\) uint8"):
        scores(model, cfg, np.zeros((2, 40, 40), np.uint8), "cpu")
    with pytest.raises(ValueError, match="float32"):
        scores(model, cfg, np.zeros((2, 37, 37), np.float32), "cpu")
