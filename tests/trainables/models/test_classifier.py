"""timm_classifier: one timm backbone + a linear head (Nugroho 2021's EfficientNet / DenseNet)."""
import pytest
import timm
import torch

from trainables.models import MODELS, TimmClassifier, build_model
from trainables.registry import ConfigError


@pytest.mark.parametrize("backbone, features", [("efficientnet_b0", 1280), ("efficientnet_b3", 1536),
                                                ("densenet121", 1024)])
def test_paper_backbones_give_one_head_of_14_logits(backbone, features):
    model = build_model({"name": "timm_classifier", "backbone": backbone, "pretrained": False}, num_classes=14)
    assert MODELS["timm_classifier"] is TimmClassifier and model.heads == ("out",) and model.predict_head == "out"
    head = model.net.get_classifier()
    assert isinstance(head, torch.nn.Linear) and (head.in_features, head.out_features) == (features, 14)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert set(out) == {"out"} and out["out"].shape == (2, 14)


def test_is_the_plain_timm_model_under_net():
    torch.manual_seed(0)
    model = TimmClassifier(14, "efficientnet_b0", pretrained=False)
    plain = timm.create_model("efficientnet_b0", pretrained=False, num_classes=14)
    assert set(model.state_dict()) == {f"net.{k}" for k in plain.state_dict()}
    plain.load_state_dict({k[4:]: v for k, v in model.state_dict().items()})
    model.eval(), plain.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["out"], plain(x))


@pytest.mark.parametrize("cfg, match", [
    ({"backbone": "efficientnet_b9"}, "unknown timm backbone 'efficientnet_b9'"),
    ({"drop_rate": 1.0}, "model.drop_rate=1.0"),
    ({"reduction": 16}, "model.reduction"),
])
def test_config_errors(cfg, match):
    with pytest.raises(ConfigError, match=match):
        build_model({"name": "timm_classifier", "pretrained": False, **cfg}, num_classes=14)
