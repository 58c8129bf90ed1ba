"""The training augmentation of transforms.py, batched on the trial's device.

On a GPU trial the host only moves uint8 cache rows: a (B, 1, S, S) uint8 batch arrives on the
device, and this module does the rest there. Per sample, the random resized crop, horizontal
flip and rotation of the CPU path compose into one 2x3 affine matrix, so one `affine_grid` +
`grid_sample` produces the augmented crop; pixels the rotation brings in from outside the crop
are set to 0, as the CPU path's rotation fills them. Brightness and contrast jitter are one
per-sample multiply-add, and normalisation with the 3-channel expansion is one fused addcmul.

Parameters are drawn with the CPU path's ranges and distributions (torchvision's
RandomResizedCrop algorithm, vectorised; uniform angle, flip with p = 0.5, uniform brightness
and contrast factors) from the device's RNG, which `torch.manual_seed` seeds. Differences
from the CPU path, none of which changes what an augmentation means: one bilinear resampling
instead of PIL's antialiased crop-resize followed by a nearest-neighbour rotation; jitter
clamped once at the end instead of after each of brightness and contrast (whose order the
CPU path draws at random; without the intermediate clamp both orders give the same result).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trainables.data.transforms import CROP_RATIO, normalize_gray

_ATTEMPTS = 10  # torchvision's RandomResizedCrop tries 10 boxes before its centre-crop fallback


def draw_crops(n: int, size: int, scale_min: float, device, ratio=CROP_RATIO) -> torch.Tensor:
    """(n, 4) crop boxes (top, left, height, width) in pixels of a size x size image, drawn as
    `torchvision.transforms.RandomResizedCrop.get_params(scale=(scale_min, 1), ratio)` does."""
    area = float(size * size)
    target = torch.empty(n, _ATTEMPTS, device=device).uniform_(scale_min, 1.0) * area
    log_ratio = torch.empty(n, _ATTEMPTS, device=device).uniform_(math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(log_ratio)
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= size) & (h > 0) & (h <= size)
    first = ok.to(torch.uint8).argmax(dim=1, keepdim=True)  # the first box that fits
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    # no box fits (never for a square image with a ratio range around 1): the whole image
    found = ok.any(dim=1)
    w, h = torch.where(found, w, size), torch.where(found, h, size)
    top = torch.floor(torch.rand(n, device=device) * (size - h + 1))
    left = torch.floor(torch.rand(n, device=device) * (size - w + 1))
    return torch.stack([top, left, h, w], dim=1)


def draw_params(n: int, size: int, device, hflip: bool, rotation: float, jitter: float,
                scale_min: float) -> dict:
    """One draw of every random parameter for n samples of a size x size cache row."""
    ones = torch.ones(n, device=device)
    return {
        "crop": draw_crops(n, size, scale_min, device),
        "flip": torch.rand(n, device=device) < 0.5 if hflip else torch.zeros(n, dtype=torch.bool, device=device),
        "angle": torch.empty(n, device=device).uniform_(-rotation, rotation) if rotation else 0 * ones,
        "brightness": torch.empty(n, device=device).uniform_(max(0.0, 1 - jitter), 1 + jitter) if jitter else ones,
        "contrast": torch.empty(n, device=device).uniform_(max(0.0, 1 - jitter), 1 + jitter) if jitter else ones,
    }


def _affines(params: dict, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample 2x3 matrices for affine_grid (align_corners=False), from output coordinates to
    (a) the cache row (crop . flip . rotation) and (b) the un-rotated crop (rotation only)."""
    top, left, h, w = params["crop"].unbind(1)
    rad = torch.deg2rad(params["angle"])
    cos, sin = torch.cos(rad), torch.sin(rad)
    # the crop's output pixel at rotated coordinates v comes from v = R u (counter-clockwise)
    rot = torch.stack([torch.stack([cos, -sin, 0 * cos], 1), torch.stack([sin, cos, 0 * cos], 1)], 1)
    sx = torch.where(params["flip"], -w / size, w / size)
    sy = h / size
    cx, cy = (2 * left + w) / size - 1, (2 * top + h) / size - 1
    full = torch.stack([torch.stack([sx * cos, -sx * sin, cx], 1),
                        torch.stack([sy * sin, sy * cos, cy], 1)], 1)
    return full, rot


def augment(rows: torch.Tensor, params: dict, out_size: int) -> torch.Tensor:
    """(B, 1, S, S) uint8 -> (B, 3, out, out) float, augmented and ImageNet-normalised."""
    b, _, size, _ = rows.shape
    full, rot = _affines(params, size)
    shape = (b, 1, out_size, out_size)
    grid = F.affine_grid(full, shape, align_corners=False)
    # border: a crop at the image's edge repeats its edge pixels, as PIL's resize does; the
    # rotation's fill comes from the mask below
    x = F.grid_sample(rows.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    inside = F.affine_grid(rot, shape, align_corners=False).abs().amax(dim=-1) <= 1
    x = x * inside.unsqueeze(1)
    # brightness b then contrast c around the image mean m: c*(b*x) + (1-c)*b*m
    bright, contrast = params["brightness"].view(b, 1, 1, 1), params["contrast"].view(b, 1, 1, 1)
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = torch.addcmul((1 - contrast) * bright * mean, x, contrast * bright).clamp_(0, 255)
    return normalize_gray(x)


def center_crop(rows: torch.Tensor, out_size: int) -> torch.Tensor:
    """(B, 1, S, S) uint8 -> (B, 3, out, out) float: the evaluation transform on the device."""
    size = rows.shape[-1]
    top = int(round((size - out_size) / 2.0))  # torchvision's CenterCrop offset
    return normalize_gray(rows[..., top:top + out_size, top:top + out_size])


class DeviceAugment:
    """The train and eval transforms of one data config, for batches already on the device."""

    def __init__(self, data_cfg: dict):
        self.out = data_cfg["image_size"]
        self.options = {k: data_cfg[k] for k in ("hflip", "rotation", "jitter", "scale_min")}

    def train(self, rows: torch.Tensor) -> torch.Tensor:
        params = draw_params(rows.shape[0], rows.shape[-1], rows.device, **self.options)
        return augment(rows, params, self.out)

    def eval(self, rows: torch.Tensor) -> torch.Tensor:
        return center_crop(rows, self.out)
