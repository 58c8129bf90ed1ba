"""One timm backbone with a linear multi-label head (Nugroho 2021's EfficientNet / DenseNet models).

Nugroho 2021 (PAPERS.md section 3) trains DenseNet-121, EfficientNet-B0 and EfficientNet-B3
unchanged apart from the 14-way classifier; the novelty is the loss (cb_focal,
trainables/losses/class_balanced.py) and the two-stage progressive resizing, which is a
training-schedule option (train.two_stage, trainables/train.py), not part of the model.
So this is timm's own model with `num_classes` outputs: global pooling, dropout `drop_rate`
before the classifier, one linear layer. `backbone` may be any timm classification model
(efficientnet_b0, efficientnet_b3, densenet121, resnet50, ...). The state dict is the plain
timm model's under `net.`.
"""
from __future__ import annotations

import torch
from torch import nn

from trainables.models.backbone import create_backbone


class TimmClassifier(nn.Module):
    heads = ("out",)
    predict_head = "out"

    def __init__(self, num_classes: int, backbone: str = "efficientnet_b0", pretrained: bool = True,
                 drop_rate: float = 0.0):
        super().__init__()
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"model.drop_rate={drop_rate} must lie in [0, 1)")
        # timm replaces the ImageNet classifier by a fresh num_classes-way linear layer
        self.net = create_backbone(backbone, pretrained, num_classes=num_classes, drop_rate=drop_rate)
        if self.net.num_classes != num_classes:
            raise ValueError(f"model.backbone={backbone!r} did not build a {num_classes}-way "
                             "classifier; use a timm classification model")

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.net(x)}
