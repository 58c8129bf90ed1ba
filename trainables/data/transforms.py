"""Training and evaluation transforms on cached uint8 images (torchvision.transforms.v2): the
per-sample CPU path of CPU trials. GPU trials run the same augmentation batched on the device
(device_augment.py); loaders.py picks the path.

Training: random resized crop, optional horizontal flip, small rotation, brightness/contrast
jitter (MLRFNet's 0.9-1.1). Evaluation: centre crop of the cached image (the cache already
holds the papers' "resize" step). Both end as 3 channels with ImageNet normalisation because
every backbone starts from ImageNet weights.

Input is one cached 2-D uint8 array. The augmentations run on it as an 8-bit PIL image: PIL's
C resampling is about 4x faster per image than the same v2 steps on a tensor (the rotation's
float grid_sample dominates there), and the float conversion happens once, at the end, on
the crop. Random parameters come from torch's RNG, which the loader seeds per sample
(dataset.py), so an epoch's augmentation is the same whatever the number of loader workers.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF


def _to_pil(array: np.ndarray) -> Image.Image:
    if array.ndim != 2 or array.dtype != np.uint8:
        raise ValueError(f"transforms take one 2-D uint8 image (a cache row), got {array.dtype} {array.shape}")
    return Image.fromarray(array)  # 2-D uint8 -> mode "L"


CROP_RATIO = (0.9, 1.1)  # RandomResizedCrop's aspect-ratio range, on both paths
_STD = torch.tensor(IMAGENET_DEFAULT_STD).view(3, 1, 1)
_SCALE = 1.0 / (255.0 * _STD)
_SHIFT = -torch.tensor(IMAGENET_DEFAULT_MEAN).view(3, 1, 1) / _STD
_ON_DEVICE: dict = {}


def normalize_gray(x: torch.Tensor) -> torch.Tensor:
    """Gray 0-255 (uint8 or float), (..., 1, H, W) -> float (..., 3, H, W) = (x/255 - mean_c) / std_c,
    in one fused op (ToDtype + expand + Normalize)."""
    if x.device not in _ON_DEVICE:
        _ON_DEVICE[x.device] = (_SHIFT.to(x.device), _SCALE.to(x.device))
    shift, scale = _ON_DEVICE[x.device]
    return torch.addcmul(shift, x, scale)


def _to_normalized_rgb(image: Image.Image) -> torch.Tensor:
    return normalize_gray(TF.pil_to_tensor(image))


def _finish() -> list:
    return [_to_normalized_rgb]


def train_transform(image_size: int, hflip: bool = True, rotation: float = 5.0,
                    jitter: float = 0.1, scale_min: float = 0.7) -> v2.Compose:
    steps = [_to_pil, v2.RandomResizedCrop(image_size, scale=(scale_min, 1.0), ratio=CROP_RATIO, antialias=True)]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if rotation:
        steps.append(v2.RandomRotation(rotation))
    if jitter:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter))
    return v2.Compose(steps + _finish())


def eval_transform(image_size: int) -> v2.Compose:
    return v2.Compose([_to_pil, v2.CenterCrop(image_size)] + _finish())
