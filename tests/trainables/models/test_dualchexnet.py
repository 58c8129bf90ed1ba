import pytest
import torch

from trainables.models import build_model
from trainables.registry import ConfigError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model({"name": "dualchexnet", "backbones": ["resnet18", "densenet121"],
                        "pretrained": False}, num_classes=14)


def test_three_heads_and_backward_at_64px(model):
    out = model(torch.randn(2, 3, 64, 64))
    assert set(out) == {"f", "d", "r"} and model.predict_head == "f"
    assert all(v.shape == (2, 14) for v in out.values())
    # the fusion head sees both streams: 512 (resnet18) + 1024 (densenet121) features
    assert model.classifier_f.in_features == 512 + 1024
    sum(v.sum() for v in out.values()).backward()
    assert model.stream_r.conv1.weight.grad is not None and model.stream_d.features.conv0.weight.grad is not None


def test_pair_string_and_bad_pairs():
    m = build_model({"name": "dualchexnet", "backbones": "resnet10t+resnet18", "pretrained": False}, 3)
    assert m.classifier_r.in_features == 512 and m.classifier_d.in_features == 512
    with pytest.raises(ConfigError, match="two timm names"):
        build_model({"name": "dualchexnet", "backbones": ["resnet18"], "pretrained": False}, 3)
    with pytest.raises(ConfigError, match="unknown timm backbone"):
        build_model({"name": "dualchexnet", "backbones": "resnet18+nosuchnet", "pretrained": False}, 3)


def test_missing_pretrained_weights_give_a_clear_error(monkeypatch):
    import timm

    def offline(*a, **k):
        if k.get("pretrained"):
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return timm.models.create_model(*a, **k)
    monkeypatch.setattr("trainables.models.backbone.timm.create_model", offline)
    with pytest.raises(RuntimeError, match="--no-pretrained"):
        build_model({"name": "dualchexnet", "backbones": "resnet10t+resnet10t", "pretrained": True}, 3)
