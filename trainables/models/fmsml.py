"""Fine-grained multi-label network, F-MSML (Ge et al. 2018, sec. 2.3; PAPERS.md section 2).

Two streams of the same timm architecture start from the same weights (stream 2 is a copy of
stream 1, so this also holds from scratch). Stream 1: pooled features -> sigmoid classifier
with CE (head "ce"). Stream 2: pooled features -> classifier with MSML (head "msml", its loss
given by `head_losses`). Fusion (head "fce"): bilinear pooling of the two last feature maps
(outer product at each location, average pooled, signed square root, L2 normalisation), the
paper's 1x1 conv, then a sigmoid classifier with CE ("FCE").

Choices the paper leaves open:
- Channel reduction: each stream's last map goes through a 1x1 conv + BN + ReLU (timm
  ConvNormAct) to `bilinear_dim` = 128 channels before the outer product. DenseNet-121's
  1024 channels would give a 1024^2 ~ 1M-dim bilinear vector (a 15M-weight layer behind it);
  128^2 = 16,384 dims is the size at which compact bilinear pooling (Gao et al. 2016) matches
  full bilinear pooling, and it is the same for every backbone.
- The 1x1 conv maps the normalised vector (as a 1x1 map) to `embed_dim` = 512 channels with
  BN + ReLU: without a nonlinearity it would merge with the classifier, and BN rescales the
  L2-normalised features (entries ~1/128), on which a plain layer barely learns.
- Prediction: the fused "fce" head; the paper reports F-MSML as the fused network, and MSML
  logits are shift-invariant per sample, so the "msml" head's sigmoid is no probability.

Training strategies (sec. 3.2), `strategy`: "global" trains everything at once with
E = alpha (E_MSML + E_CE) + beta E_FCE (eq. 5; heads.alpha, heads.beta via `head_weights`).
"local" trains the streams with alpha (E_CE + E_MSML) for `stage1_epochs` epochs, then
fine-tunes everything with beta E_FCE; "local_fixed" is the same with both streams and their
classifiers frozen (no gradient, BatchNorm in eval) in the FCE stage. Stages are given by
`stages()` (trainables.train.Phases); while stage 1 lasts the untrained fused head cannot
predict, so that stage names "ce" as its prediction head (val_auc is stream 1's until then).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import ConvNormAct
from torch import nn

from trainables.models.backbone import create_backbone

STRATEGIES = ("global", "local", "local_fixed")


def signed_sqrt(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    # eps keeps the gradient finite at x = 0 (sign(0) * d sqrt|x| would be 0 * inf = NaN)
    return torch.sign(x) * torch.sqrt(x.abs() + eps)


def bilinear_pool(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, Ca, H, W), (B, Cb, H, W) -> (B, Ca*Cb): mean over locations of a_ij b_ij^T, signed sqrt, L2 norm."""
    if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
        raise ValueError(f"bilinear pooling needs feature maps of one batch and spatial size, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    with torch.autocast(a.device.type, enabled=False):  # sqrt and L2 norm want float32
        a, b = a.float().flatten(2), b.float().flatten(2)
        z = torch.bmm(a, b.transpose(1, 2)) / a.shape[2]
        return F.normalize(signed_sqrt(z.flatten(1)), dim=1)


class FMSML(nn.Module):
    heads = ("ce", "msml", "fce")
    predict_head = "fce"
    head_weights = {"ce": "alpha", "msml": "alpha", "fce": "beta"}  # eq. 5: heads.alpha, heads.beta
    head_losses = {"msml": {"name": "msml"}}

    def __init__(self, num_classes: int, backbone: str = "densenet121", pretrained: bool = True,
                 strategy: str = "global", stage1_epochs: int = 3, bilinear_dim: int = 128,
                 embed_dim: int = 512):
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"model.strategy={strategy!r} is unknown; choose one of {list(STRATEGIES)}")
        for key, value in (("stage1_epochs", stage1_epochs), ("bilinear_dim", bilinear_dim),
                           ("embed_dim", embed_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"model.{key}={value!r} must be a positive integer")
        self.strategy, self.stage1_epochs = strategy, stage1_epochs
        self.stream1 = create_backbone(backbone, pretrained, num_classes=0, global_pool="")
        self.stream2 = create_backbone(backbone, pretrained, num_classes=0, global_pool="")
        self.stream2.load_state_dict(self.stream1.state_dict())  # same initial weights
        c = self.stream1.num_features
        self.classifier_ce = nn.Linear(c, num_classes)
        self.classifier_msml = nn.Linear(c, num_classes)
        self.reduce1 = ConvNormAct(c, bilinear_dim, 1)
        self.reduce2 = ConvNormAct(c, bilinear_dim, 1)
        self.conv1x1 = ConvNormAct(bilinear_dim ** 2, embed_dim, 1)
        self.classifier_fce = nn.Linear(embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f1, f2 = self.stream1.forward_features(x), self.stream2.forward_features(x)
        bil = bilinear_pool(self.reduce1(f1), self.reduce2(f2))
        fused = self.conv1x1(bil[:, :, None, None].to(f1.dtype)).flatten(1)
        return {"ce": self.classifier_ce(f1.mean((2, 3))),
                "msml": self.classifier_msml(f2.mean((2, 3))),
                "fce": self.classifier_fce(fused)}

    def fusion_modules(self) -> list[nn.Module]:
        return [self.reduce1, self.reduce2, self.conv1x1, self.classifier_fce]

    def stream_modules(self) -> list[nn.Module]:
        return [self.stream1, self.stream2, self.classifier_ce, self.classifier_msml]

    def stages(self) -> list[dict]:
        """Epoch-sequenced phases (trainables.train.Phases); none for Global."""
        if self.strategy == "global":
            return []
        stage2_frozen = self.stream_modules() if self.strategy == "local_fixed" else []
        return [
            {"name": "streams", "until_epoch": self.stage1_epochs, "frozen": self.fusion_modules(),
             "heads": ("ce", "msml"), "predict_head": "ce"},
            {"name": "fce", "until_epoch": None, "frozen": stage2_frozen, "heads": ("fce",),
             "predict_head": "fce"},
        ]
