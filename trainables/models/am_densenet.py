"""AM_DenseNet (Zhao et al. 2021): DenseNet-121 with CBAM attention after dense blocks 1-3.

CBAM (Woo et al. 2018; timm's `CbamModule`): channel attention (a shared MLP, reduction
`reduction`, over the average- and max-pooled features) then spatial attention (a 7x7 conv
over the channel-wise average and max). Placement: directly after each of the first three
dense blocks, i.e. *before* the following transition layer (as the paper draws it), at
256, 512 and 1024 channels for DenseNet-121; none after dense block 4. Then timm's global
average pooling, dropout `drop_rate` (head only) and one linear layer to `num_classes`.
Trained with the focal loss (`loss.name: focal`, trainables/losses/focal.py).

The timm DenseNet is built first (with its ImageNet weights when `pretrained`), and the CBAM
modules are then inserted into its `features` Sequential under new names (`cbam1`..`cbam3`).
Every original parameter keeps its timm name (`features.denseblock1...`, `classifier.*`), so
this model's state dict is a plain timm DenseNet's plus the CBAM entries. `backbone` may be
any timm DenseNet (densenet121/161/169/201, densenetblur121d, densenet264d).

`block_config` and `growth_rate` shrink the DenseNet (layers per dense block, channels each
layer adds); they have no ImageNet weights, so only from scratch. The CPU profile uses one: a
DenseNet-121 from scratch at 64 px does not learn the embedded set in a laptop's minutes.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from timm.layers.cbam import CbamModule
from timm.models.densenet import DenseNet
from torch import nn

from trainables.models.backbone import create_backbone

CBAM_AFTER = ("denseblock1", "denseblock2", "denseblock3")


class AMDenseNet(nn.Module):
    heads = ("out",)
    predict_head = "out"

    def __init__(self, num_classes: int, backbone: str = "densenet121", pretrained: bool = True,
                 reduction: int = 16, drop_rate: float = 0.0, block_config: list[int] | None = None,
                 growth_rate: int | None = None):
        super().__init__()
        if not (isinstance(reduction, int) and reduction >= 1):
            raise ValueError(f"model.reduction={reduction!r} must be a positive integer (CBAM MLP ratio; paper 16)")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"model.drop_rate={drop_rate} must lie in [0, 1)")
        shape = {k: v for k, v in (("block_config", block_config), ("growth_rate", growth_rate)) if v is not None}
        if shape and pretrained:
            raise ValueError(f"model.block_config/growth_rate {shape} have no ImageNet weights; set "
                             "model.pretrained: false (--no-pretrained) or drop them")
        if block_config is not None and not (len(block_config) == 4 and all(int(b) >= 1 for b in block_config)):
            raise ValueError(f"model.block_config={block_config!r} must be 4 positive layer counts (DenseNet-121: "
                             "[6, 12, 24, 16])")
        if growth_rate is not None and not (isinstance(growth_rate, int) and growth_rate >= 1):
            raise ValueError(f"model.growth_rate={growth_rate!r} must be a positive integer (DenseNet-121: 32)")
        if "block_config" in shape:
            shape["block_config"] = tuple(int(b) for b in block_config)
        net = create_backbone(backbone, pretrained, num_classes=0, **shape)
        if not isinstance(net, DenseNet):
            raise ValueError(f"model.backbone={backbone!r} is not a timm DenseNet; AM_DenseNet needs "
                             "one of densenet121, densenet161, densenet169, densenet201")
        channels = {info["module"].split(".", 1)[1]: info["num_chs"] for info in net.feature_info}
        layers = []
        for name, module in net.features.named_children():
            layers.append((name, module))
            if name in CBAM_AFTER:
                layers.append((f"cbam{name[-1]}", CbamModule(channels[name], rd_ratio=1.0 / reduction)))
        self.features = nn.Sequential(OrderedDict(layers))
        self.global_pool = net.global_pool
        self.head_drop = nn.Dropout(drop_rate)
        self.num_features = net.num_features
        self.classifier = nn.Linear(net.num_features, num_classes)

    def cbam_blocks(self) -> dict[str, CbamModule]:
        return {n: m for n, m in self.features.named_children() if isinstance(m, CbamModule)}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.global_pool(self.features(x))
        return {"out": self.classifier(self.head_drop(x))}
