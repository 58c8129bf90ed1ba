import math

import pytest
import torch

from trainables.models import MODELS, build_model
from trainables.models.fmsml import FMSML, bilinear_pool
from trainables.registry import ConfigError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model({"name": "fmsml", "backbone": "resnet10t", "pretrained": False,
                        "bilinear_dim": 16, "embed_dim": 32}, num_classes=14)


def test_bilinear_pool_hand_computed_shape_and_unit_norm():
    # one location per map: the outer product itself; two locations: their mean
    a = torch.tensor([[1.0, 2.0], [3.0, 0.0]]).reshape(1, 2, 2, 1)   # a_1 = (1, 3), a_2 = (2, 0)
    b = torch.tensor([[4.0, 1.0], [0.0, 1.0]]).reshape(1, 2, 2, 1)   # b_1 = (4, 0), b_2 = (1, 1)
    z = (torch.outer(torch.tensor([1.0, 3.0]), torch.tensor([4.0, 0.0]))
         + torch.outer(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]))) / 2
    s = z.flatten().sqrt()                                             # all >= 0: signed sqrt = sqrt
    expected = s / s.norm()
    out = bilinear_pool(a, b)
    assert out.shape == (1, 4)
    torch.testing.assert_close(out, expected[None], rtol=1e-4, atol=1e-4)
    # z = [[3, 1], [6, 0]] -> sqrt -> / sqrt(3 + 1 + 6) : entry 0 is sqrt(3/10)
    assert out[0, 0].item() == pytest.approx(math.sqrt(0.3), rel=1e-4)


def test_bilinear_pool_signed_sqrt_and_norm_on_random_maps():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 5, 4, 4, generator=g), torch.randn(3, 7, 4, 4, generator=g)
    out = bilinear_pool(a, b)
    assert out.shape == (3, 35)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    z = torch.einsum("bchw,bdhw->bcd", a, b).flatten(1) / 16
    assert torch.equal(torch.sign(out), torch.sign(z))  # sign kept by the signed sqrt
    x = torch.zeros(2, 3, 2, 2, requires_grad=True)     # zero maps: finite (zero) gradient
    bilinear_pool(x, x).sum().backward()
    assert torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="spatial"):
        bilinear_pool(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 2, 2))


def test_three_heads_streams_share_initial_weights_and_backward(model):
    assert MODELS["fmsml"] is FMSML and model.predict_head == "fce"
    assert model.head_weights == {"ce": "alpha", "msml": "alpha", "fce": "beta"}
    s1, s2 = model.stream1.state_dict(), model.stream2.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    out = model(torch.randn(2, 3, 64, 64))
    assert set(out) == {"ce", "msml", "fce"} and all(v.shape == (2, 14) for v in out.values())
    assert model.reduce1.conv.out_channels == 16 and model.conv1x1.conv.in_channels == 16 * 16
    sum(v.sum() for v in out.values()).backward()
    assert model.stream1.conv1[0].weight.grad is not None and model.reduce2.conv.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_densenet121_default_reduces_1024_channels_to_128():
    m = build_model({"name": "fmsml", "pretrained": False}, 14)
    assert m.stream1.num_features == 1024 and m.reduce1.conv.in_channels == 1024
    assert m.conv1x1.conv.in_channels == 128 * 128 and m.classifier_fce.in_features == 512


def test_stages_per_strategy():
    assert build_model({"name": "fmsml", "backbone": "resnet10t", "pretrained": False}, 3).stages() == []
    local = build_model({"name": "fmsml", "backbone": "resnet10t", "pretrained": False,
                         "strategy": "local", "stage1_epochs": 2}, 3)
    s1, s2 = local.stages()
    assert (s1["until_epoch"], s1["heads"], s1["predict_head"]) == (2, ("ce", "msml"), "ce")
    assert (s2["until_epoch"], s2["heads"], s2["predict_head"]) == (None, ("fce",), "fce")
    assert s2["frozen"] == [] and local.classifier_fce in s1["frozen"]
    fixed = build_model({"name": "fmsml", "backbone": "resnet10t", "pretrained": False,
                         "strategy": "local_fixed"}, 3)
    frozen = fixed.stages()[1]["frozen"]
    assert fixed.stream1 in frozen and fixed.stream2 in frozen and fixed.classifier_msml in frozen
    assert fixed.conv1x1 not in frozen


@pytest.mark.parametrize("bad, match", [({"strategy": "locl"}, "model.strategy"),
                                        ({"stage1_epochs": 0}, "model.stage1_epochs"),
                                        ({"bilinear_dim": 1.5}, "model.bilinear_dim"),
                                        ({"alpha": 0.2}, "model.alpha")])
def test_bad_config_names_the_key(bad, match):
    with pytest.raises(ConfigError, match=match):
        build_model({"name": "fmsml", "backbone": "resnet10t", "pretrained": False, **bad}, 3)
