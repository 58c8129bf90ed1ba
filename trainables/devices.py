"""Which device a trial runs on, and the mixed precision it trains and scores with there."""
from __future__ import annotations

import torch

from trainables.registry import ConfigError


def pick_device(cfg: dict) -> torch.device:
    want = cfg["train"]["device"]
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device='cuda' but no CUDA device is visible to this trial; "
                          "request GPUs with --gpus-per-trial or use train.device='auto'")
    return torch.device("cuda" if want != "cpu" and torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, cfg: dict):
    # bf16 needs Ampere or newer; on older GPUs (T4, V100) it is emulated or refused: run fp32 there.
    enabled = device.type == "cuda" and cfg["train"]["amp"] and torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
