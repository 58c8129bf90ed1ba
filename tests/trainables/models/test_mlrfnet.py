import pytest
import torch
from timm.layers import EcaModule
from timm.models.res2net import Bottle2neck

from trainables.models import MODELS, build_model
from trainables.models.mlrfnet import CSRA, csra_pool
from trainables.registry import ConfigError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model({"name": "mlrfnet", "pretrained": False}, num_classes=14)


# Two classes, 2x2 positions. Class 0 scores 1, 2, 3, 6 (mean 3, max 6); class 1 all -1.
SCORES = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]], [[-1.0, -1.0], [-1.0, -1.0]]]])


def test_csra_t99_is_mean_plus_lambda_max_by_hand():
    torch.testing.assert_close(csra_pool(SCORES, 0.5, 99), torch.tensor([[3.0 + 0.5 * 6.0, -1.0 - 0.5]]))
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(4, 14, 7, 7, generator=g)
    flat = maps.flatten(2)
    torch.testing.assert_close(csra_pool(maps, 0.3, 99), flat.mean(2) + 0.3 * flat.amax(2))


def test_csra_finite_t_is_the_softmax_weighted_sum_and_large_t_approaches_max():
    # T = 1, class 0: weights e^s / sum e^s over 1, 2, 3, 6
    s = torch.tensor([1.0, 2.0, 3.0, 6.0])
    att = (s.exp() / s.exp().sum() * s).sum()
    torch.testing.assert_close(csra_pool(SCORES, 1.0, 1.0)[0, 0], 3.0 + att)
    g = torch.Generator().manual_seed(1)
    maps = torch.randn(4, 14, 7, 7, generator=g)
    at_max = csra_pool(maps, 0.5, 99)
    gaps = [(csra_pool(maps, 0.5, t) - at_max).abs().max().item() for t in (1.0, 4.0, 20.0, 1000.0)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3 < gaps[0]


def test_lambda_zero_is_plain_average_pooling():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 32, 5, 5, generator=g)
    for t in (1.0, 99):
        head = CSRA(32, 14, lam=0.0, temperature=t)
        # the 1x1 conv is linear, so mean of the class maps = conv of the average-pooled features
        pooled = head.conv(x.mean((2, 3), keepdim=True)).flatten(1)
        torch.testing.assert_close(head(x), pooled, rtol=1e-5, atol=1e-6)


def test_heads_see_28_14_7_maps_at_224(model):
    seen = []
    hooks = [h.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape))) for h in model.csra]
    try:
        with torch.no_grad():
            out = model.eval()(torch.randn(1, 3, 224, 224))
    finally:
        for h in hooks:
            h.remove()
        model.train()
    assert seen == [(1, 512, 28, 28), (1, 1024, 14, 14), (1, 2048, 7, 7)]
    assert out["out"].shape == (1, 14)


def test_eca_kernel_3_and_paper_lambdas_per_stage(model):
    assert all(isinstance(e, EcaModule) and e.conv.kernel_size == (3,) for e in model.eca)
    assert [h.lam for h in model.csra] == [0.5, 0.3, 0.1]
    assert all(h.temperature == 99 for h in model.csra)
    assert [h.conv.in_channels for h in model.csra] == [512, 1024, 2048]
    assert type(model.backbone).__name__ == "FeatureListNet"
    assert isinstance(model.backbone.layer3[0], Bottle2neck)  # Res2Net's hierarchical split block


def test_prediction_is_the_sum_of_the_three_heads_and_gradients_flow(model):
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        levels = model.level_scores(x)
        out = model(x)
    model.train()
    assert set(out) == {"out"} and model.heads == ("out",) and model.predict_head == "out"
    torch.testing.assert_close(out["out"], levels[0] + levels[1] + levels[2])
    model(x)["out"].sum().backward()
    for eca, head in zip(model.eca, model.csra):
        assert eca.conv.weight.grad is not None and head.conv.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("backbone,channels", [("resnet50", [512, 1024, 2048]), ("densenet121", [512, 1024, 1024])])
def test_other_backbones_and_eca_off(backbone, channels):
    m = build_model({"name": "mlrfnet", "pretrained": False, "backbone": backbone, "eca": False,
                     "lam1": 0.0, "lam2": 0.0, "lam3": 0.0, "temperature": 2}, 5)
    assert [h.conv.in_channels for h in m.csra] == channels
    assert not any(isinstance(e, EcaModule) for e in m.modules())
    assert m(torch.randn(1, 3, 64, 64))["out"].shape == (1, 5)


def test_bad_config_is_named():
    assert "mlrfnet" in MODELS
    with pytest.raises(ConfigError, match="model.lam2"):
        build_model({"name": "mlrfnet", "pretrained": False, "lam2": -0.1}, 14)
    with pytest.raises(ConfigError, match="model.temperature"):
        build_model({"name": "mlrfnet", "pretrained": False, "temperature": 0}, 14)
    with pytest.raises(ConfigError, match="model.eca_kernel"):
        build_model({"name": "mlrfnet", "pretrained": False, "eca_kernel": 4}, 14)
    with pytest.raises(ConfigError, match="res2net"):
        build_model({"name": "mlrfnet", "pretrained": False, "backbone": "res2net_nope"}, 14)
    with pytest.raises(ConfigError, match="model.lamda1"):
        build_model({"name": "mlrfnet", "lamda1": 0.5}, 14)
