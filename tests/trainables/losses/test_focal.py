import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from trainables.losses import LOSSES, build_loss, focal
from trainables.registry import ConfigError


def sig(x):
    return 1 / (1 + math.exp(-x))


def hand(x, y, alpha, gamma):
    p = sig(x)
    return -alpha * (1 - p) ** gamma * y * math.log(p) - (1 - alpha) * p ** gamma * (1 - y) * math.log(1 - p)


@pytest.mark.parametrize("alpha,gamma", [(0.25, 2.0), (0.5, 1.0), (0.9, 0.5), (0.25, 0.0)])
def test_against_hand_computed_values(alpha, gamma):
    xs, ys = [[2.0, -1.0], [0.5, 0.0]], [[1.0, 0.0], [0.0, 1.0]]
    expected = [[hand(x, y, alpha, gamma) for x, y in zip(rx, ry)] for rx, ry in zip(xs, ys)]
    per = focal(torch.tensor(xs), torch.tensor(ys), alpha, gamma, reduction="none")
    torch.testing.assert_close(per, torch.tensor(expected), rtol=1e-6, atol=1e-7)
    flat = sum(sum(r) for r in expected)
    assert focal(torch.tensor(xs), torch.tensor(ys), alpha, gamma, "sum").item() == pytest.approx(flat, rel=1e-6)
    assert focal(torch.tensor(xs), torch.tensor(ys), alpha, gamma).item() == pytest.approx(flat / 4, rel=1e-6)


def test_known_value_table():
    # logit 0 (p = 0.5), positive, alpha 0.25, gamma 2: 0.25 * 0.25 * ln 2
    assert focal(torch.zeros(1, 1), torch.ones(1, 1)).item() == pytest.approx(0.0625 * math.log(2), rel=1e-6)


def test_gamma_zero_alpha_half_is_half_bce_and_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 14, generator=g) * 3
    targets = (torch.rand(8, 14, generator=g) < 0.3).float()
    bce = F.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(focal(logits, targets, 0.5, 0.0), 0.5 * bce)
    for alpha, gamma in [(0.25, 2.0), (0.7, 3.5)]:
        torch.testing.assert_close(focal(logits, targets, alpha, gamma, "none"),
                                   sigmoid_focal_loss(logits, targets, alpha, gamma, "none"))


def test_mask_drops_entries_from_sum_and_mean():
    logits = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.2, -0.1]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    per = focal(logits, targets, reduction="none")
    kept = per[mask.bool()]
    torch.testing.assert_close(focal(logits, targets, mask=mask), kept.mean())
    torch.testing.assert_close(focal(logits, targets, reduction="sum", mask=mask), kept.sum())
    masked = focal(logits, targets, reduction="none", mask=mask)
    assert masked.shape == (2, 3) and masked[0, 2] == 0 and masked[1, 1] == 0
    assert focal(logits, targets, mask=torch.zeros_like(mask)).item() == 0.0


def test_reduction_none_keeps_the_shape():
    assert focal(torch.zeros(4, 14), torch.ones(4, 14), reduction="none").shape == (4, 14)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 5.0])
def test_extreme_logits_stay_finite(gamma):
    logits = torch.tensor([[50.0, -50.0, 50.0, -50.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    loss = focal(logits, targets, 0.25, gamma, "sum")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    # confidently wrong entries: loss ~ alpha * 50 and (1 - alpha) * 50
    assert loss.item() == pytest.approx(0.75 * 50 + 0.25 * 50, rel=1e-4)


def test_module_is_registered_and_checks_its_config():
    assert "focal" in LOSSES
    loss = build_loss({"name": "focal", "alpha": 0.5, "gamma": 1.0})
    logits, targets, mask = torch.randn(3, 5), torch.ones(3, 5), torch.ones(3, 5)
    torch.testing.assert_close(loss(logits, targets, mask), focal(logits, targets, 0.5, 1.0))
    with pytest.raises(ConfigError, match="alpha"):
        build_loss({"name": "focal", "alpha": 1.5})
    with pytest.raises(ConfigError, match="gamma"):
        build_loss({"name": "focal", "gamma": -1})
    with pytest.raises(ConfigError, match="loss.gama"):
        build_loss({"name": "focal", "gama": 2})


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        focal(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="mask"):
        focal(torch.zeros(2, 3), torch.zeros(2, 3), mask=torch.ones(2))
    with pytest.raises(ValueError, match="alpha"):
        focal(torch.zeros(2, 3), torch.zeros(2, 3), alpha=-0.1)
    with pytest.raises(ValueError, match="gamma"):
        focal(torch.zeros(2, 3), torch.zeros(2, 3), gamma=-0.5)
    with pytest.raises(ValueError, match="reduction"):
        focal(torch.zeros(2, 3), torch.zeros(2, 3), reduction="avg")
