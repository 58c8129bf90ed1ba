"""Shared by the CPU tests of device_augment.py and their GPU twins (test_gpu.py): one smooth
X-ray-like cache row, and the CPU path's steps applied with fixed parameters."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from trainables.data.transforms import _to_normalized_rgb

SIZE, OUT = 80, 64
GRAY_STD = 0.226 * 255  # normalised units -> gray levels (ImageNet std, averaged over channels)


def smooth_row(size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return np.clip(128 + 60 * np.sin(xx / 6.0) + 50 * np.cos(yy / 9.0), 0, 255).astype(np.uint8)


def params(crop, flip=False, angle=0.0, brightness=1.0, contrast=1.0, device="cpu") -> dict:
    return {"crop": torch.tensor([crop], dtype=torch.float, device=device),
            "flip": torch.tensor([flip], device=device),
            "angle": torch.tensor([float(angle)], device=device),
            "brightness": torch.tensor([float(brightness)], device=device),
            "contrast": torch.tensor([float(contrast)], device=device)}


def cpu_path(row: np.ndarray, p: dict, out: int = OUT) -> torch.Tensor:
    """train_transform's steps (PIL, transforms.py) with the parameters `p` instead of random ones."""
    top, left, h, w = (int(v) for v in p["crop"][0].tolist())
    image = TF.resized_crop(Image.fromarray(row), top, left, h, w, [out, out], antialias=True)
    if bool(p["flip"][0]):
        image = TF.hflip(image)
    angle = float(p["angle"][0])
    if angle:
        image = TF.rotate(image, angle, interpolation=InterpolationMode.NEAREST, fill=0)
    image = TF.adjust_brightness(image, float(p["brightness"][0]))
    image = TF.adjust_contrast(image, float(p["contrast"][0]))
    return _to_normalized_rgb(image)


def gray_levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float().cpu() - b.float().cpu()).abs() * GRAY_STD
