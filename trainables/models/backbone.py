"""timm backbone creation with an honest failure when ImageNet weights cannot be fetched."""
from __future__ import annotations

import timm
from torch import nn

from trainables.errors import UserError
from trainables.registry import ConfigError


class PretrainedWeightsUnavailable(UserError, RuntimeError):
    pass


def create_backbone(name: str, pretrained: bool, **kwargs) -> nn.Module:
    if name not in timm.list_models(name):
        close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
        raise ConfigError(f"unknown timm backbone {name!r}; similar names: {close}")
    try:
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    except (OSError, RuntimeError, ConnectionError) as err:
        if not pretrained:
            raise
        raise PretrainedWeightsUnavailable(
            f"Could not fetch ImageNet weights for {name!r} ({type(err).__name__}: {err}). "
            "Connect this machine to the Hugging Face hub once (weights are cached under "
            "~/.cache/huggingface), or set HF_HUB_OFFLINE=1 with a pre-filled cache, or train "
            "from scratch with --no-pretrained (config model.pretrained: false).") from err


def set_frozen(module: nn.Module, frozen: bool) -> None:
    """Frozen: no gradients (so optimizers skip it) and eval mode (BatchNorm statistics stay)."""
    module.requires_grad_(not frozen)
    module.train(not frozen)
