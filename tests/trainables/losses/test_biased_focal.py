import math

import pytest
import torch
import torch.nn.functional as F

from trainables.losses import LOSSES, build_loss, biased_focal, focal
from trainables.registry import ConfigError


def sig(x):
    return 1 / (1 + math.exp(-x))


def hand(x, y, alpha, beta, s):
    """Eq. 3-4 written out in plain floats; 0^0 = 1."""
    p = sig(x)
    ps = max(p - s, 0.0)
    factor = 1.0 if beta == 0 else ps ** beta
    return -alpha * (1 - p) ** beta * y * math.log(p) - (1 - alpha) * factor * (1 - y) * math.log(1 - p)


def test_known_values_by_hand():
    # logit 0 -> p 0.5; alpha 0.4, beta 2, s 0.2.
    # positive: 0.4 * 0.5^2 * ln 2 = 0.1 ln 2;  negative: 0.6 * 0.3^2 * ln 2 = 0.054 ln 2
    per = biased_focal(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), 0.4, 2.0, 0.2, "none")
    torch.testing.assert_close(per, torch.tensor([[0.1 * math.log(2), 0.054 * math.log(2)]]))
    # logit ln 3 -> p 0.75, negative: 0.6 * 0.55^2 * ln 4
    neg = biased_focal(torch.tensor([math.log(3.0)]), torch.zeros(1), 0.4, 2.0, 0.2, "none")
    assert neg.item() == pytest.approx(0.6 * 0.55 ** 2 * math.log(4.0), rel=1e-6)


@pytest.mark.parametrize("alpha,beta,s", [(0.4, 2.0, 0.2), (0.25, 1.0, 0.1), (0.9, 0.5, 0.35),
                                          (0.4, 0.0, 0.2), (0.6, 4.0, 0.0)])
def test_against_hand_computed_values(alpha, beta, s):
    xs, ys = [[2.0, -1.0, 0.3], [0.5, -3.0, 1.5]], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    expected = torch.tensor([[hand(x, y, alpha, beta, s) for x, y in zip(rx, ry)] for rx, ry in zip(xs, ys)])
    per = biased_focal(torch.tensor(xs), torch.tensor(ys), alpha, beta, s, reduction="none")
    torch.testing.assert_close(per, expected, rtol=1e-5, atol=1e-7)
    total = expected.sum().item()
    assert biased_focal(torch.tensor(xs), torch.tensor(ys), alpha, beta, s, "sum").item() == pytest.approx(total, rel=1e-5)
    assert biased_focal(torch.tensor(xs), torch.tensor(ys), alpha, beta, s).item() == pytest.approx(total / 6, rel=1e-5)


@pytest.mark.parametrize("alpha,beta", [(0.25, 2.0), (0.4, 0.5), (0.8, 0.0), (0.5, 3.7)])
def test_shift_zero_is_focal_with_gamma_beta(alpha, beta):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 14, generator=g) * 4
    targets = (torch.rand(8, 14, generator=g) < 0.3).float()
    torch.testing.assert_close(biased_focal(logits, targets, alpha, beta, 0.0, "none"),
                               focal(logits, targets, alpha, beta, "none"), rtol=0, atol=0)


def test_negatives_at_or_below_the_shift_contribute_nothing():
    s = 0.3
    p = torch.tensor([0.01, 0.1, 0.2999, 0.3, 0.31, 0.6])
    logits = torch.log(p / (1 - p)).requires_grad_(True)
    per = biased_focal(logits, torch.zeros(6), 0.4, 2.0, s, "none")
    assert per[:3].eq(0).all() and per[4:].gt(0).all()
    assert per[3].item() == pytest.approx(0.0, abs=1e-12)  # p = s up to float rounding
    per.sum().backward()
    assert logits.grad[:3].eq(0).all() and torch.isfinite(logits.grad).all()
    # positives are untouched by the shift
    pos = biased_focal(logits.detach(), torch.ones(6), 0.4, 2.0, s, "none")
    torch.testing.assert_close(pos, focal(logits.detach(), torch.ones(6), 0.4, 2.0, "none"))


def test_beta_zero_is_alpha_weighted_bce_whatever_the_shift():
    """0^0 = 1: with beta 0 the shift has nothing to modulate, as focal at gamma 0."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 5, generator=g) * 3
    targets = (torch.rand(6, 5, generator=g) < 0.5).float()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    weighted = torch.where(targets > 0, 0.3 * bce, 0.7 * bce)
    for s in (0.0, 0.2, 0.4):
        torch.testing.assert_close(biased_focal(logits, targets, 0.3, 0.0, s, "none"), weighted)
    # including a negative below the shift: factor 1, not 0
    below = biased_focal(torch.tensor([-3.0]), torch.zeros(1), 0.3, 0.0, 0.4, "none")
    assert below.item() == pytest.approx(0.7 * -math.log(1 - sig(-3.0)), rel=1e-6)


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.5, 1.0, 2.0, 4.0])
@pytest.mark.parametrize("s", [0.0, 0.2, 0.4])
def test_gradients_stay_finite(beta, s):
    # extremes, p exactly at the shift, and just above it (beta < 1: steep but finite)
    at = math.log(s / (1 - s)) if s else -5.0
    logits = torch.tensor([60.0, -60.0, 110.0, -110.0, at, at + 1e-3, 0.0], requires_grad=True)
    targets = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    loss = biased_focal(logits, targets, 0.4, beta, s, "sum")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_confidently_wrong_entries_cost_about_the_logit():
    logits = torch.tensor([[50.0, -50.0]])
    loss = biased_focal(logits, torch.tensor([[0.0, 1.0]]), 0.4, 2.0, 0.2, "none")
    # negative at p ~ 1: 0.6 * 0.8^2 * 50;  positive at p ~ 0: 0.4 * 1 * 50
    torch.testing.assert_close(loss, torch.tensor([[0.6 * 0.64 * 50, 0.4 * 50]]), rtol=1e-4, atol=0)


def test_mask_drops_entries_from_sum_and_mean():
    logits = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.2, -0.1]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]])
    per = biased_focal(logits, targets, reduction="none")
    kept = per[mask.bool()]
    torch.testing.assert_close(biased_focal(logits, targets, mask=mask), kept.mean())
    torch.testing.assert_close(biased_focal(logits, targets, reduction="sum", mask=mask), kept.sum())
    masked = biased_focal(logits, targets, reduction="none", mask=mask)
    assert masked.shape == (2, 3) and masked[0, 2] == 0 and masked[1, 1] == 0
    assert biased_focal(logits, targets, mask=torch.zeros_like(mask)).item() == 0.0


def test_module_is_registered_with_the_paper_defaults_and_checks_its_config():
    assert "biased_focal" in LOSSES
    loss = build_loss({"name": "biased_focal"})
    assert (loss.alpha, loss.beta, loss.shift) == (0.4, 2.0, 0.2)
    logits, targets, mask = torch.randn(3, 5), torch.ones(3, 5), torch.ones(3, 5)
    mask[0, 0] = 0
    torch.testing.assert_close(loss(logits, targets, mask), biased_focal(logits, targets, mask=mask))
    for key, value in (("alpha", 1.5), ("beta", -1.0), ("shift", 1.0), ("shift", -0.1), ("beta", float("nan"))):
        with pytest.raises(ConfigError, match=key if key != "beta" or value == -1.0 else "finite"):
            build_loss({"name": "biased_focal", key: value})
    with pytest.raises(ConfigError, match="loss.gamma"):
        build_loss({"name": "biased_focal", "gamma": 2})


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        biased_focal(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="mask"):
        biased_focal(torch.zeros(2, 3), torch.zeros(2, 3), mask=torch.ones(2))
    with pytest.raises(ValueError, match="reduction"):
        biased_focal(torch.zeros(2, 3), torch.zeros(2, 3), reduction="avg")


class _OneHead:
    heads = ("out",)


def _batch(root, policy):
    from trainables.config import merge, resolve
    from trainables.data.sources import load_splits
    from trainables.objective import Objective
    from trainables.stages import make_pipeline

    cfg = resolve({"model": {"name": "mlrfnet"}, "loss": {"name": "biased_focal"},
                   "data": {"root": str(root), "policy": policy, "image_size": 32, "resize": 36}})
    splits = load_splits(cfg["data"])
    pipeline = make_pipeline(merge(cfg, {"data": {"batch_size": 24}}), splits, torch.device("cpu"))
    _, y, mask = next(iter(pipeline.train_batches(epoch=0)))  # the same images under every policy
    return Objective(cfg, _OneHead(), splits.train.positive_counts()), y, mask, splits.labels


def test_chexpert_policies_reach_the_loss_and_u_ignore_is_masked(small_chexpert):
    batches = {p: _batch(small_chexpert, p) for p in ("ones", "zeros", "ignore", "mixed")}
    _, y1, m1, labels = batches["ones"]
    _, y0, m0, _ = batches["zeros"]
    uncertain = y1 != y0                       # u -> 1 under U-Ones, 0 under U-Zeros
    assert uncertain.any() and m1.eq(1).all() and m0.eq(1).all()
    objective, yi, mi, _ = batches["ignore"]
    torch.testing.assert_close(mi, (~uncertain).float())
    _, ym, mm, _ = batches["mixed"]
    ones_cols = [labels.index("Atelectasis"), labels.index("Edema")]
    expected = y0.clone()
    expected[:, ones_cols] = y1[:, ones_cols]
    torch.testing.assert_close(ym, expected)
    torch.testing.assert_close(mm, m1)

    # U-Ignore: the objective is the masked BFL mean, and the masked logits cannot move it
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(y1.shape, generator=g)
    loss = objective({"out": logits}, yi, mi)
    torch.testing.assert_close(loss, biased_focal(logits, yi, 0.4, 2.0, 0.2, mask=mi))
    moved = torch.where(mi > 0, logits, logits + 10.0)
    torch.testing.assert_close(objective({"out": moved}, yi, mi), loss)
    kept = biased_focal(logits, yi, 0.4, 2.0, 0.2, "none")[mi > 0]
    torch.testing.assert_close(loss, kept.mean())
