import pytest
import timm
import torch
from timm.layers.cbam import CbamModule

from trainables.models import MODELS, build_model
from trainables.registry import ConfigError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model({"name": "am_densenet", "pretrained": False}, num_classes=14)


@pytest.fixture(scope="module")
def plain():
    torch.manual_seed(1)
    return timm.create_model("densenet121", pretrained=False, num_classes=14)


def test_cbam_sits_after_dense_blocks_1_to_3_before_their_transitions(model):
    names = [n for n, _ in model.features.named_children()]
    for k in (1, 2, 3):
        i = names.index(f"denseblock{k}")
        assert names[i + 1] == f"cbam{k}" and names[i + 2] == f"transition{k}"
    assert names[names.index("denseblock4") + 1] == "norm5"
    assert list(model.cbam_blocks()) == ["cbam1", "cbam2", "cbam3"]
    assert sum(isinstance(m, CbamModule) for m in model.modules()) == 3


def test_cbam_channels_match_the_dense_block_outputs(model):
    blocks = model.cbam_blocks()
    assert [b.channel.fc1.in_channels for b in blocks.values()] == [256, 512, 1024]
    assert [b.channel.fc1.out_channels for b in blocks.values()] == [16, 32, 64]  # reduction 16
    m8 = build_model({"name": "am_densenet", "pretrained": False, "reduction": 8}, 14)
    assert [b.channel.fc1.out_channels for b in m8.cbam_blocks().values()] == [32, 64, 128]


def test_forward_backward_at_64px(model):
    out = model(torch.randn(2, 3, 64, 64))
    assert set(out) == {"out"} and model.heads == ("out",) and model.predict_head == "out"
    assert out["out"].shape == (2, 14)
    out["out"].sum().backward()
    assert model.features.conv0.weight.grad is not None
    assert model.features.cbam2.channel.fc1.weight.grad is not None
    assert model.features.cbam3.spatial.conv.conv.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_state_dict_holds_every_plain_densenet_key(model, plain):
    ours, theirs = model.state_dict(), plain.state_dict()
    assert set(theirs) <= set(ours)
    assert all(ours[k].shape == v.shape for k, v in theirs.items())
    assert all(k.split(".")[1].startswith("cbam") for k in set(ours) - set(theirs))
    # the feature extractor as create_backbone builds it (num_classes=0), i.e. what pretrained loads into
    backbone = timm.create_model("densenet121", pretrained=False, num_classes=0).state_dict()
    assert set(backbone) <= set(ours)


def test_open_gates_give_exactly_the_plain_densenet(plain, monkeypatch):
    model = build_model({"name": "am_densenet", "pretrained": False}, num_classes=14)
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.split(".")[1].startswith("cbam") for k in missing)
    monkeypatch.setattr(CbamModule, "forward", lambda self, x: x)
    model.eval(), plain.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)["out"], plain(x), rtol=0, atol=0)


def test_registry_config_keys_and_errors():
    assert MODELS["am_densenet"].heads == ("out",)
    m = build_model({"name": "am_densenet", "backbone": "densenet169", "pretrained": False,
                     "reduction": 32, "drop_rate": 0.2}, num_classes=3)
    assert [b.channel.fc1.in_channels for b in m.cbam_blocks().values()] == [256, 512, 1280]
    assert m.classifier.out_features == 3 and m.head_drop.p == 0.2
    with pytest.raises(ConfigError, match="not a timm DenseNet"):
        build_model({"name": "am_densenet", "backbone": "resnet10t", "pretrained": False}, 3)
    with pytest.raises(ConfigError, match="reduction"):
        build_model({"name": "am_densenet", "reduction": 0, "pretrained": False}, 3)
    with pytest.raises(ConfigError, match="model.reductio"):
        build_model({"name": "am_densenet", "reductio": 16, "pretrained": False}, 3)


def test_missing_pretrained_weights_give_a_clear_error(monkeypatch):
    def offline(*a, **k):
        if k.get("pretrained"):
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return timm.models.create_model(*a, **k)
    monkeypatch.setattr("trainables.models.backbone.timm.create_model", offline)
    with pytest.raises(RuntimeError, match="--no-pretrained"):
        build_model({"name": "am_densenet", "pretrained": True}, 14)


def test_a_smaller_densenet_from_scratch_keeps_the_cbam_placement():
    # init 2 x 16 = 32 channels; block k adds layers x 16, each transition halves: 80, 104, 148
    m = build_model({"name": "am_densenet", "pretrained": False, "block_config": [3, 4, 6, 3],
                     "growth_rate": 16}, num_classes=14)
    assert [b.channel.fc1.in_channels for b in m.cbam_blocks().values()] == [80, 104, 148]
    assert m.classifier.in_features == 74 + 3 * 16
    assert m(torch.randn(2, 3, 64, 64))["out"].shape == (2, 14)
    with pytest.raises(ConfigError, match="no ImageNet weights"):
        build_model({"name": "am_densenet", "pretrained": True, "growth_rate": 16}, 14)
    with pytest.raises(ConfigError, match="growth_rate=0 must be a positive integer"):
        build_model({"name": "am_densenet", "pretrained": False, "growth_rate": 0}, 14)
    with pytest.raises(ConfigError, match="4 positive layer counts"):
        build_model({"name": "am_densenet", "pretrained": False, "block_config": [3, 4, 6]}, 14)
