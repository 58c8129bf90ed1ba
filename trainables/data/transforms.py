"""Training and evaluation transforms on cached uint8 arrays (torchvision.transforms.v2).

Training: random resized crop, optional horizontal flip, small rotation, brightness/contrast
jitter (MLRFNet's 0.9-1.1). Evaluation: centre crop of the cached image (the cache already
holds the papers' "resize" step). Both end as 3 channels with ImageNet normalisation because
every backbone starts from ImageNet weights.
"""
from __future__ import annotations

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torchvision.transforms import v2


def _finish() -> list:
    return [
        v2.ToDtype(torch.float32, scale=True),
        v2.Lambda(lambda x: x.expand(3, -1, -1)),
        v2.Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
    ]


def train_transform(image_size: int, hflip: bool = True, rotation: float = 5.0,
                    jitter: float = 0.1, scale_min: float = 0.7) -> v2.Compose:
    steps = [v2.RandomResizedCrop(image_size, scale=(scale_min, 1.0), ratio=(0.9, 1.1), antialias=True)]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if rotation:
        steps.append(v2.RandomRotation(rotation))
    if jitter:
        steps.append(v2.ColorJitter(brightness=jitter, contrast=jitter))
    return v2.Compose(steps + _finish())


def eval_transform(image_size: int) -> v2.Compose:
    return v2.Compose([v2.CenterCrop(image_size)] + _finish())
