"""The shared trainable on a hand-written NIH root: resume, iterative phases, errors, spaces."""
import copy

import pytest
import torch

from trainables.config import merge, resolve
from trainables.models import build_model
from trainables.registry import ConfigError
from trainables.checkpoints import LocalReporter
from trainables.objective import Objective
from trainables.stages import Phases
from trainables.train import run, train_epoch


def tiny_config(root, **train):
    return {"model": {"name": "dualchexnet", "backbones": "resnet10t+resnet10t", "pretrained": False},
            "loss": {"name": "modulated_wce", "lam": 0.5}, "heads": {"w_d": 0.3, "w_r": 0.3},
            "data": {"root": str(root), "image_size": 32, "batch_size": 8, "epoch_images": 32},
            "train": {"max_epochs": 2, "threads": 1, **train}}


class Recorder:
    def __init__(self, state=None):
        self.state, self.reports, self.datasets = state, [], None

    def inputs(self, datasets):
        self.datasets = datasets

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
    # the machine's use per epoch (trainables/system_metrics.py); no GPU here, so no GPU figures
    assert 0 <= metrics["system/cpu_utilization_percentage"] <= 100 and "gpu_peak_gib" not in metrics


def test_compile_is_for_gpus_a_cpu_trial_runs_as_before(tiny_nih):
    from trainables.data.sources import load_splits
    from trainables.train import build_trial

    cfg = resolve(tiny_config(tiny_nih, compile="reduce-overhead"))
    model, _, _ = build_trial(cfg, load_splits(cfg["data"]), torch.device("cpu"))
    assert model._compiled_call_impl is None   # nn.Module.compile() was not called


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


@pytest.mark.parametrize("workers", [0, 1])
def test_device_augmentation_trains_and_resumes_like_an_uninterrupted_run(tiny_nih, workers):
    """data.augment_on: device on a CPU trial runs the GPU trial's batched augmentation, drawn
    from the global RNG: persistent loader workers must not shift that stream on resume."""
    cfg = merge(tiny_config(tiny_nih, max_epochs=2), {"data": {"augment_on": "device", "num_workers": workers}})
    full = Recorder()
    run(cfg, full)
    resumed = Recorder(state=full.reports[0][1])
    run(cfg, resumed)
    assert [m["epoch"] for m, _ in resumed.reports] == [2]
    assert resumed.reports[0][0]["train_loss"] == pytest.approx(full.reports[-1][0]["train_loss"], rel=1e-4)
    assert resumed.reports[0][0]["val_auc"] == pytest.approx(full.reports[-1][0]["val_auc"], abs=1e-6)
    cpu = Recorder()
    run(tiny_config(tiny_nih, max_epochs=2), cpu)
    assert cpu.reports[0][0]["train_loss"] != full.reports[0][0]["train_loss"]  # another random stream


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


@pytest.mark.parametrize("every, nan_at, batches, message", [
    (4, 1, 10, "batches 0-3"), (4, 5, 10, "batches 4-7"), (3, 9, 10, "batch 9"), (50, 2, 10, "batches 0-9")])
def test_a_non_finite_loss_stops_within_check_every_steps(every, nan_at, batches, message):
    """The loss is checked every train.check_every steps (and at the end), not after each step."""
    cfg = resolve({"model": {"name": "timm_classifier", "backbone": "resnet10t"}, "optim": {"lr": 0.1},
                   "train": {"check_every": every}})
    model = build_model({"name": "timm_classifier", "backbone": "resnet10t", "pretrained": False}, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    steps = []
    optimizer.register_step_post_hook(lambda *_: steps.append(1))

    def objective(out, y, mask, heads=None):
        loss = out["out"].float().mean() * 0
        return loss + (float("nan") if len(steps) >= nan_at else 0.0)

    x, y = torch.randn(2, 3, 32, 32), torch.zeros(2, 3)
    loader = [(x, y, torch.ones_like(y))] * batches
    phases = Phases(cfg, model)
    with pytest.raises(FloatingPointError, match=f"loss became nan at epoch 1, {message} .*lower optim.lr"):
        train_epoch(model, objective, phases, optimizer, loader, torch.device("cpu"), cfg, 0, 0)
    assert nan_at < len(steps) <= min(batches, (nan_at // every + 1) * every)


@pytest.mark.parametrize("bad, match", [
    ({"loss": {"name": "modulated_wce", "lamda": 1}}, "loss.lamda"),
    ({"heads": {"w_x": 1}}, "heads.w_x"),
    ({"data": {"imagesize": 64}}, "data.imagesize"),
    ({"optim": {"name": "sgd", "lr": -1}}, "optim.lr"),
    ({"trian": {}}, "trian"),
    ({"train": {"compile": "max-autotune"}}, r"train.compile='max-autotune'; choose one of \['off', 'default'"),
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


# --- F-MSML (Ge et al. 2018): eq. 5 weights, epoch-sequenced Local / Local-Fixed stages ---

def fmsml_config(root, strategy="global", **model):
    return {"model": {"name": "fmsml", "backbone": "resnet10t", "pretrained": False, "strategy": strategy,
                      "stage1_epochs": 1, "bilinear_dim": 8, "embed_dim": 16, **model},
            "loss": {"name": "bce"}, "heads": {"alpha": 0.2, "beta": 0.6},
            "optim": {"name": "adam", "lr": 1e-3, "betas": [0.9, 0.999]},
            "sched": {"name": "step", "step_size": 3, "gamma": 0.1},
            "data": {"root": str(root), "image_size": 32, "batch_size": 8, "epoch_images": 32},
            "train": {"max_epochs": 2, "threads": 1}}


def test_fmsml_objective_is_eq5_with_one_alpha_for_two_heads():
    from trainables.losses import msml
    cfg = resolve({"model": {"name": "fmsml"}, "heads": {"alpha": 0.2, "beta": 0.6}})
    model = build_model({"name": "fmsml", "backbone": "resnet10t", "pretrained": False,
                         "bilinear_dim": 4, "embed_dim": 8}, 4)
    objective = Objective(cfg, model, None)
    assert objective.weights == {"ce": 0.2, "msml": 0.2, "fce": 0.6}
    g = torch.Generator().manual_seed(0)
    out = {h: torch.randn(5, 4, generator=g) for h in ("ce", "msml", "fce")}
    y, mask = (torch.rand(5, 4, generator=g) > 0.5).float(), torch.ones(5, 4)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = 0.2 * (msml(out["msml"], y) + bce(out["ce"], y)) + 0.6 * bce(out["fce"], y)
    torch.testing.assert_close(objective(out, y, mask), expected)
    torch.testing.assert_close(objective(out, y, mask, ("fce",)), 0.6 * bce(out["fce"], y))
    for bad in ({"w_fce": 1.0}, {"alpha": 0.2, "gamma": 1.0}):
        with pytest.raises(ConfigError, match=r"heads\.(w_fce|gamma).*heads\.alpha"):
            Objective(resolve({"model": {"name": "fmsml"}, "heads": bad}), model, None)
    with pytest.raises(ConfigError, match=">= 0"):
        Objective(resolve({"model": {"name": "fmsml"}, "heads": {"beta": -1}}), model, None)


def test_dualchexnet_weights_keep_their_w_keys():
    cfg = resolve({"heads": {"w_d": 0.3, "w_r": 0.5}})
    model = build_model({"name": "dualchexnet", "backbones": "resnet10t+resnet10t", "pretrained": False}, 3)
    assert Objective(cfg, model, None).weights == {"f": 1.0, "d": 0.3, "r": 0.5}
    with pytest.raises(ConfigError, match=r"heads\.alpha.*heads\.w_d"):
        Objective(resolve({"heads": {"alpha": 0.2}}), model, None)


def test_stages_follow_the_epoch_and_set_the_prediction_head(tiny_nih):
    cfg = resolve(fmsml_config(tiny_nih, "local", stage1_epochs=2) | {"train": {"max_epochs": 4}})
    model = build_model(cfg["model"], 14)
    phases = Phases(cfg, model)
    names = [phases.at(epoch=e, step=100 * e)["name"] for e in range(4)]
    assert names == ["streams", "streams", "fce", "fce"]
    Phases.apply(model, phases.at(0, 0))
    assert model.predict_head == "ce" and not model.classifier_fce.weight.requires_grad
    assert not model.conv1x1.training and model.stream1.training
    Phases.apply(model, phases.at(2, 0))
    assert model.predict_head == "fce" and model.stream1.conv1[0].weight.requires_grad
    glob = resolve(fmsml_config(tiny_nih))
    assert Phases(glob, build_model(glob["model"], 14)).at(5, 0)["heads"] is None  # Global: all heads
    too_short = resolve(fmsml_config(tiny_nih, "local_fixed", stage1_epochs=2))
    with pytest.raises(ConfigError, match="model.stage1_epochs"):
        Phases(too_short, build_model(too_short["model"], 14))


@pytest.mark.parametrize("strategy", ["local_fixed", "local"])
def test_local_fixed_leaves_the_streams_bit_identical_in_the_fce_stage(tiny_nih, strategy):
    torch.manual_seed(0)
    cfg = resolve(fmsml_config(tiny_nih, strategy))
    model = build_model(cfg["model"], 14)
    objective, phases = Objective(cfg, model, None), Phases(cfg, model)
    # Adam with weight decay, and a stage-1 epoch first so the streams carry Adam momentum
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-2)
    x, y = torch.randn(8, 3, 32, 32), (torch.rand(8, 14) > 0.7).float()
    loader = [(x, y, torch.ones_like(y))] * 2
    step = train_epoch(model, objective, phases, optimizer, loader, torch.device("cpu"), cfg, 0, 0)[2]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train_epoch(model, objective, phases, optimizer, loader, torch.device("cpu"), cfg, 1, step)
    after = model.state_dict()
    streams = ("stream1", "stream2", "classifier_ce", "classifier_msml")
    moved = {k for k in after if not torch.equal(before[k], after[k])}
    stream_moved = {k for k in moved if k.split(".")[0] in streams}
    if strategy == "local_fixed":
        assert not stream_moved, f"frozen stream entries moved: {sorted(stream_moved)[:5]}"
    else:
        assert any(k.startswith("stream1.") and k.endswith("weight") for k in stream_moved)
    assert "classifier_fce.weight" in moved and "conv1x1.conv.weight" in moved


def test_fmsml_trains_end_to_end_per_strategy(tiny_nih):
    for strategy in ("global", "local_fixed"):
        rec = Recorder()
        run(fmsml_config(tiny_nih, strategy), rec)
        assert [m["epoch"] for m, _ in rec.reports] == [1, 2]
        assert all(0 <= m["val_auc"] <= 1 for m, _ in rec.reports)


# --- two-stage progressive resizing (Nugroho 2021, train.two_stage) ---

def two_stage_config(root, **train):
    return {"model": {"name": "timm_classifier", "backbone": "resnet10t", "pretrained": False},
            "loss": {"name": "cb_focal", "one_minus_beta": 2e-4, "alpha": 0.5, "gamma": 1.0},
            "optim": {"name": "lookahead_radam", "lr": 1e-3},
            "data": {"root": str(root), "image_size": 32, "batch_size": 8, "epoch_images": 32},
            "train": {"max_epochs": 4, "threads": 1, "two_stage": True, "stage1_epochs": 2, **train}}


def _spy_epochs(monkeypatch):
    """Record, per trained epoch, the batch size, the crop size and the weights it starts from."""
    import trainables.train as T

    seen, real_epoch = {}, T.train_epoch

    def epoch_fn(model, objective, phases, optimizer, batches, device, cfg, epoch, step):
        batches = list(batches)
        seen[epoch] = {"batch_size": len(batches[0][0]), "image": tuple(batches[0][0].shape[1:]),
                       "start": {k: v.clone() for k, v in model.state_dict().items()}}
        return real_epoch(model, objective, phases, optimizer, batches, device, cfg, epoch, step)

    monkeypatch.setattr(T, "train_epoch", epoch_fn)
    return seen


def test_two_stage_doubles_the_image_halves_the_batch_and_starts_from_stage1_best(tiny_nih, monkeypatch):
    seen = _spy_epochs(monkeypatch)
    rec = Recorder()
    run(two_stage_config(tiny_nih), rec)
    assert [m["epoch"] for m, _ in rec.reports] == [1, 2, 3, 4]  # one counter for ASHA
    assert [m["image_size"] for m, _ in rec.reports] == [32, 32, 64, 64]
    assert [seen[e]["batch_size"] for e in range(4)] == [8, 8, 4, 4]
    assert [seen[e]["image"] for e in range(4)] == [(3, 32, 32)] * 2 + [(3, 64, 64)] * 2
    # the stage-1 best (by val_auc, earliest on ties) travels in the stage-1 checkpoints only
    aucs = [m["val_auc"] for m, _ in rec.reports[:2]]
    best = rec.reports[1][1]["stage1_best"]
    assert best["val_auc"] == max(aucs) and "stage1_best" not in rec.reports[2][1]
    best_epoch = aucs.index(max(aucs))
    for k, v in rec.reports[best_epoch][1]["model"].items():
        assert torch.equal(best["model"][k], v), k
    # stage 2 begins from those weights
    for k, v in best["model"].items():
        assert torch.equal(seen[2]["start"][k], v), k


def test_resumed_at_the_switch_stage2_starts_from_the_checkpointed_best(tiny_nih, monkeypatch):
    cfg = two_stage_config(tiny_nih, max_epochs=3)
    first = Recorder()
    run(merge(cfg, {"train": {"max_epochs": 2}}), first)
    state = copy.deepcopy(first.reports[-1][1])
    torch.manual_seed(123)  # a stage-1 best that differs from the last stage-1 weights
    other = build_model(resolve(cfg)["model"], 14).state_dict()
    state["stage1_best"] = {"model": other, "val_auc": 0.99}
    seen = _spy_epochs(monkeypatch)
    resumed = Recorder(state=state)
    run(cfg, resumed)
    assert [(m["epoch"], m["image_size"]) for m, _ in resumed.reports] == [(3, 64)]
    for k, v in other.items():
        assert torch.equal(seen[2]["start"][k], v), k


@pytest.mark.parametrize("resume_after", [2, 3])  # at the switch, and mid stage 2
def test_two_stage_resume_matches_an_uninterrupted_run(tiny_nih, resume_after):
    cfg = two_stage_config(tiny_nih)
    full = Recorder()
    run(cfg, full)
    resumed = Recorder(state=full.reports[resume_after - 1][1])
    run(cfg, resumed)
    assert [m["epoch"] for m, _ in resumed.reports] == list(range(resume_after + 1, 5))
    for (got, _), (want, _) in zip(resumed.reports, full.reports[resume_after:]):
        assert got["image_size"] == want["image_size"]
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-4)
        assert got["val_auc"] == pytest.approx(want["val_auc"], abs=1e-6)


def test_single_stage_checkpoints_are_unchanged_and_bad_stage1_epochs_is_named(tiny_nih):
    rec = Recorder()
    run(two_stage_config(tiny_nih, two_stage=False, max_epochs=1), rec)
    assert rec.reports[0][0]["image_size"] == 32 and "stage1_best" not in rec.reports[0][1]
    with pytest.raises(ConfigError, match="train.stage1_epochs=0"):
        run(two_stage_config(tiny_nih, stage1_epochs=0), Recorder())
