"""DualCheXNet (Chen et al. 2019): two asymmetric ImageNet backbones on the same image.

Feature-level fusion: a fusion classifier C_F on concat(f_D, f_R); decision-level fusion:
auxiliary classifiers C_D on f_D and C_R on f_R, their losses combined by
`trainables.losses.fuse` (heads.fusion, heads.w_f/w_d/w_r). The paper's pairs are
ResNet-50 + DenseNet-121 (DualCheXNet-1) and ResNet-101 + DenseNet-169 (-2); any two timm
models work. `backbones` (a list or "r+d") names the "R" stream first, then the "D" stream.

Iterative training (Algorithm 1) is three phases: D stream + C_F + C_D with R frozen (eq. 5),
R stream + C_F + C_R with D frozen (eq. 6), then everything (eq. 4). Whether a phase lasts a
batch or an epoch is `train.iterative_unit` (default: batch, so every epoch sees all three).
"""
from __future__ import annotations

import torch
from torch import nn

from trainables.models.backbone import create_backbone


class DualCheXNet(nn.Module):
    heads = ("f", "d", "r")
    predict_head = "f"

    def __init__(self, num_classes: int, backbones=("resnet50", "densenet121"), pretrained: bool = True,
                 drop_rate: float = 0.0):
        super().__init__()
        if isinstance(backbones, str):  # "resnet50+densenet121": a hashable choice for Optuna
            backbones = backbones.split("+")
        if len(backbones) != 2:
            raise ValueError(f"model.backbones needs two timm names (R stream, D stream), got {backbones}")
        self.stream_r = create_backbone(backbones[0], pretrained, num_classes=0, global_pool="avg")
        self.stream_d = create_backbone(backbones[1], pretrained, num_classes=0, global_pool="avg")
        fr, fd = self.stream_r.num_features, self.stream_d.num_features
        self.drop = nn.Dropout(drop_rate)
        self.classifier_f = nn.Linear(fd + fr, num_classes)
        self.classifier_d = nn.Linear(fd, num_classes)
        self.classifier_r = nn.Linear(fr, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f_r, f_d = self.drop(self.stream_r(x)), self.drop(self.stream_d(x))
        return {
            "f": self.classifier_f(torch.cat([f_d, f_r], dim=1)),
            "d": self.classifier_d(f_d),
            "r": self.classifier_r(f_r),
        }

    def phases(self) -> list[dict]:
        """Algorithm 1: which submodules are frozen and which heads' losses count in each phase."""
        return [
            {"name": "densenet", "frozen": [self.stream_r, self.classifier_r], "heads": ("f", "d")},
            {"name": "resnet", "frozen": [self.stream_d, self.classifier_d], "heads": ("f", "r")},
            {"name": "joint", "frozen": [], "heads": self.heads},
        ]
