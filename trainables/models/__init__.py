"""Paper architectures, one file each, chosen by `model.name`.

A model's forward returns {head name: logits}; `predict_head` names the head whose sigmoid is
the prediction, `heads` lists them all. A model that supports iterative training has
`phases()`; see trainables/models/dualchexnet.py.
"""
from __future__ import annotations

from trainables.models.am_densenet import AMDenseNet
from trainables.models.classifier import TimmClassifier
from trainables.models.dualchexnet import DualCheXNet
from trainables.models.mlrfnet import MLRFNet
from trainables.models.fmsml import FMSML
from trainables.registry import build

MODELS = {
    "dualchexnet": DualCheXNet,
    "am_densenet": AMDenseNet,
    "timm_classifier": TimmClassifier,
    "mlrfnet": MLRFNet,
    "fmsml": FMSML,
}


def build_model(cfg: dict, num_classes: int):
    return build(MODELS, cfg, "model", {"num_classes": num_classes})


__all__ = ["MODELS", "build_model", "DualCheXNet", "AMDenseNet", "TimmClassifier", "FMSML"]
