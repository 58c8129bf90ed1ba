"""A trained model rebuilt from its config and a checkpoint's state dict, and its scores on images.

One scoring path for everything that scores a finished model: the test-set evaluation
(search/evaluation/) and the registered MLflow model (search/evaluation/pyfunc_model.py) both feed uint8
cache rows (B, S, S) at the config's `data.resize` through `scores()`, so a model loaded back
from the registry gives the evaluation's scores to the bit on the same machine.
"""
from __future__ import annotations

import numpy as np
import torch

from trainables.config import merge, resolve
from trainables.data.device_augment import center_crop
from trainables.models import build_model
from trainables.devices import autocast
from trainables.stages import Phases, for_stage, stage2_epoch


def final_config(config: dict, epoch: int) -> dict:
    """The resolved config the checkpoint's last epoch ran with: two-stage training's stage 2
    (2x image size) once the checkpoint is past stage 1, and no ImageNet download, since the
    state dict replaces every weight."""
    cfg = resolve(merge(config, {"model": {"pretrained": False}}))
    stage2 = stage2_epoch(cfg)
    return for_stage(cfg, 2 if stage2 is not None and epoch > stage2 else 1)


def trained_model(cfg: dict, state: dict, num_classes: int, device) -> torch.nn.Module:
    """The model in eval mode with the checkpoint's weights, predicting with the head that
    predicted at the checkpoint's epoch (F-MSML's stages switch it)."""
    model = build_model(cfg["model"], num_classes=num_classes)
    model.load_state_dict(state["model"])
    epoch = int(state.get("epoch", cfg["train"]["max_epochs"]))
    Phases.apply(model, Phases(cfg, model).at(max(epoch - 1, 0), int(state.get("step", 0))))
    model = model.to(device)
    if torch.device(device).type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


@torch.no_grad()
def scores(model, cfg: dict, rows, device, batch_size: int | None = None) -> np.ndarray:
    """Sigmoid scores (N, labels) for uint8 rows (N, S, S), S = data.resize (an array or a
    memory map): centre crop to data.image_size and normalise (the validation transform), then
    the predicting head."""
    if not hasattr(rows, "shape"):
        rows = np.asarray(rows)
    size = cfg["data"]["resize"]
    if rows.dtype != np.uint8 or rows.ndim != 3 or rows.shape[1:] != (size, size):
        raise ValueError(f"expected uint8 grayscale images (N, {size}, {size}) (data.resize), "
                         f"got {tuple(rows.shape)} {rows.dtype}")
    device = torch.device(device)
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    step = batch_size or cfg["data"]["eval_batch_size"]
    out = []
    for i in range(0, len(rows), step):
        # a slice at a time: `rows` may be the memory map of a whole test set
        x = torch.from_numpy(np.array(rows[i:i + step]))[:, None].to(device, non_blocking=True)
        x = center_crop(x, cfg["data"]["image_size"]).contiguous(memory_format=layout)
        with autocast(device, cfg):
            logits = model(x)[model.predict_head]
        out.append(torch.sigmoid(logits.float()).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)
