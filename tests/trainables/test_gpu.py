"""GPU trials (marker `gpu`, skipped where no CUDA device is visible): bf16 + channels_last
training on device-augmented batches, checkpoints across devices, device augmentation on CUDA,
train.compile and the GPU figures a trial reports.

Imports only `trainables`, so it runs from a checkout on a GPU machine without Ray or MLflow:
`PYTHONPATH=. python -m pytest -m gpu tests/trainables`. The packed out-of-memory retry's GPU test
needs Ray too: tests/search/scheduling/test_oom_retry.py.
"""
import math

import pytest
import torch

from tests.trainables.data.augment_cases import OUT, cpu_path, gray_levels, params, smooth_row
from tests.trainables.test_train import tiny_config
from trainables.config import merge
from trainables.data.device_augment import augment
from trainables.checkpoints import LocalReporter, load_state
from trainables.train import run

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _spy(monkeypatch):
    """Record what the model is fed, the pipelines built, and the weights each epoch starts from."""
    import trainables.train as T

    seen = {"inputs": [], "pipelines": [], "start": {}}
    real_build, real_pipeline, real_epoch = T.build_model, T.make_pipeline, T.train_epoch

    def build(cfg, num_classes):
        model = real_build(cfg, num_classes)
        model.register_forward_pre_hook(lambda m, args: seen["inputs"].append(
            (args[0].device.type, args[0].is_contiguous(memory_format=torch.channels_last),
             torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"))))
        return model

    def pipeline(*args, **kwargs):
        seen["pipelines"].append(real_pipeline(*args, **kwargs))
        return seen["pipelines"][-1]

    def epoch_fn(model, *args):
        seen["start"][args[-2]] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return real_epoch(model, *args)

    monkeypatch.setattr(T, "build_model", build)
    monkeypatch.setattr(T, "make_pipeline", pipeline)
    monkeypatch.setattr(T, "train_epoch", epoch_fn)
    return seen


def test_two_epochs_on_cuda_in_bf16_and_channels_last_on_device_augmented_batches(tiny_nih, tmp_path, monkeypatch):
    assert torch.cuda.is_bf16_supported(including_emulation=False), "bf16 needs an Ampere or newer GPU"
    seen = _spy(monkeypatch)
    cfg = merge(tiny_config(tiny_nih, device="cuda"), {"data": {"num_workers": 2}})  # workers, pinned batches
    last = run(cfg, LocalReporter(tmp_path))
    assert last["epoch"] == 2 and math.isfinite(last["val_loss"]) and 0 <= last["val_auc"] <= 1
    assert seen["pipelines"][0].on_device and seen["pipelines"][0].train_loader.pin_memory
    rows = next(iter(seen["pipelines"][0].train_loader))[0]
    assert rows.dtype == torch.uint8 and rows.is_pinned()
    training = seen["inputs"]
    assert training and all(dev == "cuda" and autocast and dtype == torch.bfloat16
                            for dev, _, autocast, dtype in training)
    assert all(channels_last for _, channels_last, _, _ in training)


@pytest.mark.parametrize("first, second", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_checkpoint_resumes_on_the_other_device(tiny_nih, tmp_path, monkeypatch, first, second):
    cfg = merge(tiny_config(tiny_nih, max_epochs=1, device=first), {"data": {"num_workers": 0}})
    run(cfg, LocalReporter(tmp_path))
    saved = load_state(tmp_path / "last")["model"]
    seen = _spy(monkeypatch)
    last = run(merge(cfg, {"train": {"max_epochs": 2, "device": second}}), LocalReporter(tmp_path, resume=True))
    assert last["epoch"] == 2 and math.isfinite(last["val_loss"])
    assert seen["inputs"][0][0] == second
    for k, v in saved.items():
        assert torch.equal(seen["start"][1][k], v), k


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_a_compiled_trial_trains_reports_its_gpu_and_its_checkpoint_loads_uncompiled(tiny_nih, tmp_path, mode):
    cfg = merge(tiny_config(tiny_nih, max_epochs=1, device="cuda", compile=mode), {"data": {"num_workers": 0}})
    last = run(cfg, LocalReporter(tmp_path))
    assert math.isfinite(last["val_loss"]) and 0 <= last["val_auc"] <= 1
    assert last["gpu_peak_gib"] > 0 and last["gpu_name"] == torch.cuda.get_device_name(0)
    assert any(k.startswith("system/gpu_") and k.endswith("_utilization_percentage") for k in last)
    # nn.Module.compile works in place: the keys are the eager model's, so a CPU run resumes from it
    resumed = run(merge(cfg, {"train": {"max_epochs": 2, "device": "cpu", "compile": "off"}}),
                  LocalReporter(tmp_path, resume=True))
    assert resumed["epoch"] == 2 and not any(k.startswith("_orig_mod") for k in load_state(tmp_path / "last")["model"])


def test_device_augmentation_on_cuda_matches_the_cpu_path():
    row = smooth_row()
    rows = torch.from_numpy(row)[None, None]
    exact = params((3, 5, OUT, OUT), flip=True)
    got = augment(rows.cuda(), {k: v.cuda() for k, v in exact.items()}, OUT)
    assert got.device.type == "cuda"
    torch.testing.assert_close(got[0].cpu(), cpu_path(row, exact), atol=1e-5, rtol=0)
    mixed = params((10, 2, 60, 66), True, 4.0, 0.93, 1.08)
    got = augment(rows.cuda(), {k: v.cuda() for k, v in mixed.items()}, OUT)[0]
    diff = gray_levels(got, cpu_path(row, mixed))
    assert diff.mean() < 2.5 and diff.quantile(0.99) < 8
    torch.testing.assert_close(got.cpu(), augment(rows, mixed, OUT)[0], atol=1e-3, rtol=0)  # CUDA = CPU kernels
