"""MLRFNet (Li et al. 2024): Res2Net-50 stages 2-4, ECA on each, a CSRA head per stage, summed.

Backbone: timm `res2net50_26w_4s` with `features_only`, out_indices (2, 3, 4) = the outputs
of stages 2, 3, 4 (strides 8, 16, 32: 28², 14², 7² maps of 512, 1024, 2048 channels at 224
px). Any timm model with `features_only` and five feature levels works the same way (the
paper's ablation used resnet50 and densenet121; at 224 px these give the same three map
sizes). Each map goes through timm's `EcaModule` (1-D conv over the pooled channels, kernel
3 as in the paper, not ECA's channel-adaptive size), then a CSRA head (Zhu & Wu 2021),
MLRFNet's eq. 2, written here because no library has it:

    mu = conv1x1(x)                       # num_classes score maps, one score per position j
    P  = mean_j mu_j + lam * sum_j softmax_j(T mu_j) mu_j

PAPERS.md section 5 decision: T = 99 means max pooling (the CSRA authors' code reads 99 that
way), so P = mean + lam * max; any other T is the softmax-weighted sum. lam = 0 is plain
global average pooling. The 1x1 conv has no bias and no weight normalisation, as in eq. 2
(the CSRA code divides by the weight norm; the paper's equation does not). Heads use lam1,
lam2, lam3 on stages 2, 3, 4 (paper: 0.5, 0.3, 0.1). The prediction, and the single head the
loss sees, is P_sum = P1 + P2 + P3 (logits; sigmoid at evaluation). `level_scores` gives
P1, P2, P3 separately for inspection.
"""
from __future__ import annotations

import math

import torch
from timm.layers import EcaModule
from torch import nn

from trainables.models.backbone import create_backbone

STAGES = (2, 3, 4)  # feature levels of stages 2-4: strides 8, 16, 32
MAX_POOL_T = 99


def csra_pool(scores: torch.Tensor, lam: float, temperature: float) -> torch.Tensor:
    """(B, N, H, W) score maps -> (B, N): mean + lam * attention (T = 99: max) pooling."""
    flat = scores.flatten(2)
    base = flat.mean(dim=2)
    if lam == 0:
        return base
    if temperature == MAX_POOL_T:
        att = flat.amax(dim=2)
    else:
        att = (torch.softmax(temperature * flat, dim=2) * flat).sum(dim=2)
    return base + lam * att


class CSRA(nn.Module):
    """Class-specific residual attention head (eq. 2): 1x1 conv to class maps, then csra_pool."""

    def __init__(self, in_channels: int, num_classes: int, lam: float, temperature: float):
        super().__init__()
        self.lam, self.temperature = float(lam), float(temperature)
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return csra_pool(self.conv(x), self.lam, self.temperature)

    def extra_repr(self) -> str:
        t = "max" if self.temperature == MAX_POOL_T else self.temperature
        return f"lam={self.lam}, T={t}"


def _check(lams, temperature, eca_kernel) -> None:
    for i, lam in enumerate(lams, 1):
        if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
            raise ValueError(f"model.lam{i}={lam!r} must be a number >= 0 (paper: 0.5, 0.3, 0.1)")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"model.temperature={temperature!r} must be > 0 (99 = max pooling, the paper's)")
    if not (isinstance(eca_kernel, int) and eca_kernel >= 1 and eca_kernel % 2 == 1):
        raise ValueError(f"model.eca_kernel={eca_kernel!r} must be an odd positive integer (paper: 3)")


class MLRFNet(nn.Module):
    heads = ("out",)
    predict_head = "out"

    def __init__(self, num_classes: int, backbone: str = "res2net50_26w_4s", pretrained: bool = True,
                 lam1: float = 0.5, lam2: float = 0.3, lam3: float = 0.1, temperature: float = 99,
                 eca: bool = True, eca_kernel: int = 3):
        super().__init__()
        lams = (lam1, lam2, lam3)
        _check(lams, temperature, eca_kernel)
        self.backbone = create_backbone(backbone, pretrained, features_only=True, out_indices=STAGES)
        channels = self.backbone.feature_info.channels()
        if len(channels) != len(STAGES):
            raise ValueError(f"model.backbone={backbone!r} gives {len(channels)} feature levels at "
                             f"out_indices {STAGES}; use a ResNet-like timm model (res2net50_26w_4s, "
                             "resnet50, densenet121)")
        # ECA (kernel 3) per stage; Identity when switched off (the paper's ablation).
        self.eca = nn.ModuleList(EcaModule(kernel_size=eca_kernel) if eca else nn.Identity()
                                 for _ in channels)
        self.csra = nn.ModuleList(CSRA(c, num_classes, lam, temperature) for c, lam in zip(channels, lams))

    def level_scores(self, x: torch.Tensor) -> list[torch.Tensor]:
        """P1, P2, P3: one (B, num_classes) score vector per stage."""
        return [head(eca(f)) for f, eca, head in zip(self.backbone(x), self.eca, self.csra)]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": torch.stack(self.level_scores(x)).sum(dim=0)}
