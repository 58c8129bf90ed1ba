"""The shared trainable on a hand-written NIH root: resume, iterative phases, errors, spaces."""
import copy

import pytest
import torch
from ray import tune

from trainables.config import merge, resolve
from trainables.models import build_model
from trainables.registry import ConfigError
from trainables.reporting import LocalReporter
from trainables.train import Objective, Phases, run, train_epoch


def tiny_config(root, **train):
    return {"model": {"name": "dualchexnet", "backbones": "resnet10t+resnet10t", "pretrained": False},
            "loss": {"name": "modulated_wce", "lam": 0.5}, "heads": {"w_d": 0.3, "w_r": 0.3},
            "data": {"root": str(root), "image_size": 32, "batch_size": 8, "epoch_images": 32},
            "train": {"max_epochs": 2, "threads": 1, **train}}


class Recorder:
    def __init__(self, state=None):
        self.state, self.reports = state, []

    def restore(self):
        return self.state

    def report(self, metrics, state):
        self.reports.append((metrics, copy.deepcopy(state)))


def test_reports_every_epoch_with_the_promised_metrics(tiny_nih):
    rec = Recorder()
    run(tiny_config(tiny_nih), rec)
    assert [m["epoch"] for m, _ in rec.reports] == [1, 2]
    metrics = rec.reports[-1][0]
    for key in ("val_auc", "val_loss", "train_loss", "images_per_s", "val_wauc"):
        assert isinstance(metrics[key], float)
    assert 0 <= metrics["val_auc"] <= 1 and any(k.startswith("val_auc/") for k in metrics)
    assert set(rec.reports[-1][1]) == {"model", "optimizer", "scheduler", "epoch", "step"}


def test_resume_from_epoch_k_reports_k_plus_1_and_matches_an_uninterrupted_run(tiny_nih):
    cfg = tiny_config(tiny_nih, max_epochs=3)
    full = Recorder()
    run(cfg, full)
    first_two = Recorder()
    run(merge(cfg, {"train": {"max_epochs": 2}}), first_two)
    resumed = Recorder(state=first_two.reports[-1][1])
    run(cfg, resumed)
    assert [m["epoch"] for m, _ in resumed.reports] == [3]
    # same data order, augmentation and optimizer state: the same third epoch
    assert resumed.reports[0][0]["train_loss"] == pytest.approx(full.reports[-1][0]["train_loss"], rel=1e-4)
    assert resumed.reports[0][0]["val_auc"] == pytest.approx(full.reports[-1][0]["val_auc"], abs=1e-6)


def test_local_reporter_round_trip(tiny_nih, tmp_path):
    cfg = tiny_config(tiny_nih, max_epochs=1)
    run(cfg, LocalReporter(tmp_path))
    last = run(merge(cfg, {"train": {"max_epochs": 2}}), LocalReporter(tmp_path, resume=True))
    assert last["epoch"] == 2 and (tmp_path / "best" / "state.pt").is_file()


@pytest.mark.parametrize("phase_index, frozen_attrs", [(0, ("stream_r", "classifier_r")),
                                                         (1, ("stream_d", "classifier_d"))])
def test_iterative_phase_leaves_the_frozen_stream_bit_identical(tiny_nih, phase_index, frozen_attrs):
    torch.manual_seed(0)
    cfg = resolve(tiny_config(tiny_nih, iterative=True, iterative_unit="epoch"))
    model = build_model(cfg["model"], 14)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    objective = Objective(cfg, model, None)
    phases = Phases(cfg, model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    x, y = torch.randn(8, 3, 32, 32), (torch.rand(8, 14) > 0.7).float()
    loader = [(x, y, torch.ones_like(y))] * 3
    train_epoch(model, objective, phases, optimizer, loader, torch.device("cpu"), cfg, phase_index, 0)
    after = model.state_dict()
    for name, value in after.items():
        frozen = name.split(".")[0] in frozen_attrs
        changed = not torch.equal(before[name], value)
        if frozen:
            assert not changed, f"{name} moved in phase {phase_index}"
    trained = [n for n in after if n.split(".")[0] not in frozen_attrs and n.endswith("weight")]
    assert any(not torch.equal(before[n], after[n]) for n in trained)


def test_batch_unit_cycles_the_three_phases():
    cfg = {"train": {"iterative": True, "iterative_unit": "batch"}, "model": {"name": "x"}}
    class M:
        def phases(self):
            return [{"name": n} for n in ("densenet", "resnet", "joint")]
    p = Phases(cfg, M())
    assert [p.at(epoch=0, step=s)["name"] for s in range(4)] == ["densenet", "resnet", "joint", "densenet"]


def test_non_finite_loss_ends_the_trial(tiny_nih):
    cfg = merge(tiny_config(tiny_nih), {"optim": {"lr": 1e30}, "sched": {"name": "none"}})
    with pytest.raises(FloatingPointError, match="lower optim.lr"):
        run(cfg, Recorder())


@pytest.mark.parametrize("bad, match", [
    ({"loss": {"name": "modulated_wce", "lamda": 1}}, "loss.lamda"),
    ({"heads": {"w_x": 1}}, "heads.w_x"),
    ({"data": {"imagesize": 64}}, "data.imagesize"),
    ({"optim": {"name": "sgd", "lr": -1}}, "optim.lr"),
    ({"trian": {}}, "trian"),
])
def test_config_errors_name_the_key(tiny_nih, bad, match):
    with pytest.raises(ConfigError, match=match):
        run(merge(tiny_config(tiny_nih), bad), Recorder())


def test_space_samples_are_accepted_by_the_trainable(tiny_nih):
    from ray.tune.search.variant_generator import generate_variants

    from spaces.dualchexnet import SPEC
    space = merge(merge(SPEC.base, SPEC.smoke["config"]), merge(SPEC.space, SPEC.smoke["space"]))
    space = merge(space, {"data": {"root": str(tiny_nih), "epoch_images": 16}, "train": {"max_epochs": 1}})
    for i in range(3):
        sampled = space
        for _, sampled in generate_variants(space):
            break
        rec = Recorder()
        run(sampled, rec)
        assert rec.reports[-1][0]["epoch"] == 1
