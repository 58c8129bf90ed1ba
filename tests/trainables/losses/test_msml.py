import math

import pytest
import torch
import torch.nn.functional as F

from trainables.losses import LOSSES, build_loss, msml


def hand(x, y):
    """eq. 2 as its negative log, written out term by term."""
    pos = [i for i, t in enumerate(y) if t == 1]
    neg_sum = sum(math.exp(x[k]) for k, t in enumerate(y) if t == 0)
    if not pos:
        return 0.0
    return sum(-math.log(math.exp(x[l]) / (math.exp(x[l]) + neg_sum)) for l in pos) / len(pos)


X = [[2.0, 0.0, -1.0, 0.5], [1.0, -2.0, 0.3, 3.0], [0.7, -0.4, 1.2, 2.0], [-3.0, 2.0, 0.0, 1.0]]
Y = [[1, 0, 0, 0],           # one positive
     [1, 0, 1, 0],           # two positives
     [0, 0, 0, 0],           # No Finding
     [1, 1, 1, 0]]           # three positives, one negative


def test_against_hand_computed_per_sample_values():
    per = msml(torch.tensor(X), torch.tensor(Y, dtype=torch.float), reduction="none")
    expected = [hand(x, y) for x, y in zip(X, Y)]
    # sample 0 by hand: -log(e^2 / (e^2 + e^0 + e^-1 + e^0.5)) = 0.34235
    assert expected[0] == pytest.approx(math.log(math.exp(2) + 1 + math.exp(-1) + math.exp(0.5)) - 2)
    assert expected[0] == pytest.approx(0.34235, abs=1e-5)
    assert per.shape == (4,) and per[2].item() == 0.0
    torch.testing.assert_close(per, torch.tensor(expected), rtol=1e-6, atol=1e-6)


def test_mean_leaves_out_samples_without_positives_and_sum_adds_them():
    t = torch.tensor(Y, dtype=torch.float)
    expected = [hand(x, y) for x, y in zip(X, Y)]
    assert msml(torch.tensor(X), t).item() == pytest.approx(sum(expected) / 3, rel=1e-6)
    assert msml(torch.tensor(X), t, "sum").item() == pytest.approx(sum(expected), rel=1e-6)
    # a batch of "No Finding" only: 0, and its gradient is 0 (not NaN)
    x = torch.randn(3, 4, requires_grad=True)
    loss = msml(x, torch.zeros(3, 4))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros(3, 4))


def test_all_positive_row_is_zero():
    assert msml(torch.tensor([[1.0, -5.0, 3.0]]), torch.ones(1, 3), "none").item() == 0.0


def test_invariant_to_a_constant_added_to_all_logits():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 14, generator=g) * 3
    y = (torch.rand(6, 14, generator=g) < 0.3).float()
    base = msml(x, y, "none")
    for c in (-20.0, 7.5, 40.0):
        torch.testing.assert_close(msml(x + c, y, "none"), base, rtol=1e-5, atol=1e-5)


def test_equals_softmax_cross_entropy_with_one_positive():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 14, generator=g) * 2
    cls = torch.randint(0, 14, (8,), generator=g)
    y = F.one_hot(cls, 14).float()
    torch.testing.assert_close(msml(x, y, "none"), F.cross_entropy(x, cls, reduction="none"))
    torch.testing.assert_close(msml(x, y), F.cross_entropy(x, cls))


@pytest.mark.parametrize("scale", [50.0, -50.0])
def test_gradient_finite_for_extreme_logits(scale):
    x = torch.tensor([[scale, -scale, scale, -scale], [scale, scale, scale, scale],
                      [-scale, -scale, -scale, -scale]], requires_grad=True)
    y = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.float)
    loss = msml(x, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    # row 0: positive at +50 against a negative at +50 -> log 2 ... for scale > 0
    if scale > 0:
        per = msml(x.detach(), y, "none")
        assert per[0].item() == pytest.approx((math.log(2) + 100.0) / 2, rel=1e-5)


def test_bf16_logits_are_computed_in_float32():
    x, y = torch.tensor(X), torch.tensor(Y, dtype=torch.float)
    assert msml(x.bfloat16(), y).dtype == torch.float32


def test_mask_removes_entries_from_positives_and_negatives():
    x, y = torch.tensor([X[1]]), torch.tensor([Y[1]], dtype=torch.float)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]])  # drop positive 2 and negative 3
    assert msml(x, y, "none", mask).item() == pytest.approx(hand([1.0, -2.0], [1, 0]), rel=1e-6)


def test_registered_and_bad_input():
    loss = build_loss({"name": "msml"})
    assert isinstance(loss, LOSSES["msml"])
    assert loss(torch.tensor(X), torch.tensor(Y, dtype=torch.float)).item() == pytest.approx(
        msml(torch.tensor(X), torch.tensor(Y, dtype=torch.float)).item())
    with pytest.raises(ValueError, match="reduction"):
        msml(torch.zeros(2, 3), torch.zeros(2, 3), "avg")
    with pytest.raises(ValueError, match="shape|batch, labels"):
        msml(torch.zeros(2, 3), torch.zeros(2, 4))
