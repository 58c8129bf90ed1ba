import math

import pytest
import torch
import torch.nn.functional as F

from trainables.losses import build_loss, fuse, modulated_wce
from trainables.registry import ConfigError


def sig(x):
    return 1 / (1 + math.exp(-x))


@pytest.mark.parametrize("lam", [0.0, 0.5, 2.0])
def test_against_hand_computed_values(lam):
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = [[sig(2.0), sig(-1.0)], [sig(0.5), sig(0.0)]]
    pos = [(1 - p[0][0]) ** lam * math.log(p[0][0]), (1 - p[1][1]) ** lam * math.log(p[1][1])]
    neg = [p[0][1] ** lam * math.log(1 - p[0][1]), p[1][0] ** lam * math.log(1 - p[1][0])]
    expected = -(sum(pos) / 2 + sum(neg) / 2)
    assert modulated_wce(logits, targets, lam).item() == pytest.approx(expected, rel=1e-6)


def test_lambda_zero_is_count_weighted_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 14, generator=g) * 3
    targets = (torch.rand(8, 14, generator=g) < 0.2).float()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    P, N = targets.sum(), (1 - targets).sum()
    expected = (ce * targets).sum() / P + (ce * (1 - targets)).sum() / N
    torch.testing.assert_close(modulated_wce(logits, targets, 0.0), expected)


def test_mask_removes_entries_from_sums_and_counts():
    logits = torch.tensor([[1.0, -2.0, 3.0]])
    targets = torch.tensor([[1.0, 0.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    torch.testing.assert_close(modulated_wce(logits, targets, 1.0, mask),
                               modulated_wce(logits[:, :2], targets[:, :2], 1.0))


def test_extreme_logits_stay_finite_and_all_negative_batches_work():
    logits = torch.tensor([[60.0, -60.0]], requires_grad=True)
    loss = modulated_wce(logits, torch.tensor([[0.0, 1.0]]), 0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert torch.isfinite(modulated_wce(torch.zeros(2, 3), torch.zeros(2, 3), 0.5))


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        modulated_wce(torch.zeros(2, 3), torch.zeros(3, 2), 0.5)
    with pytest.raises(ConfigError, match="lam"):
        build_loss({"name": "modulated_wce", "lam": -1})
    with pytest.raises(ConfigError, match="loss.lamda"):
        build_loss({"name": "modulated_wce", "lamda": 0.5})


def test_decision_level_fusion():
    losses = {"f": torch.tensor(1.0), "d": torch.tensor(2.0), "r": torch.tensor(4.0)}
    assert fuse(losses, "concat", {"f": 1.0, "d": 0.3, "r": 0.3}).item() == pytest.approx(1 + 0.6 + 1.2)
    assert fuse(losses, "avg").item() == pytest.approx(7 / 3)
    assert fuse(losses, "max").item() == 4.0
    with pytest.raises(ValueError, match="fusion"):
        fuse(losses, "sum")
