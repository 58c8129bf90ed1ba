"""Class-balanced weights (Nugroho 2021 eq. 3-6, scale 0.1) and the weighted focal loss (eq. 8)."""
import math

import pytest
import torch
import torch.nn.functional as F

from trainables.losses import (LOSSES, ClassBalancedFocal, build_loss, class_balanced_weights, focal,
                               weighted_focal)
from trainables.registry import ConfigError

# Positive counts of the embedded synthetic ChestX-ray14's training split (seed 0, 2747 images).
SYNTHETIC_COUNTS = [283, 62, 320, 494, 129, 164, 28, 108, 110, 59, 74, 51, 73, 3]


def test_weights_by_hand_with_a_rare_label():
    # beta 0.5: alpha(n) = 0.5 / (1 - 0.5^n) = 1, 2/3, 4/7 for n = 1, 2, 3; sum 47/21;
    # w+ = 0.1 * 3 * alpha / (47/21) = 6.3/47, 4.2/47, 3.6/47; the rarest label weighs most.
    w_pos, w_neg = class_balanced_weights([1, 2, 3], beta=0.5)
    expected = torch.tensor([6.3 / 47, 4.2 / 47, 3.6 / 47])
    torch.testing.assert_close(w_pos, expected)
    torch.testing.assert_close(w_neg, 1 - expected)


def test_common_labels_share_a_weight_and_a_rare_one_gets_double():
    # alpha(1000) = alpha(100) = 0.5 (to 2^-100), alpha(1) = 1: sum 2, w+ = 0.15 * alpha
    w_pos, w_neg = class_balanced_weights([1000, 100, 1], beta=0.5)
    torch.testing.assert_close(w_pos, torch.tensor([0.075, 0.075, 0.15]))
    torch.testing.assert_close(w_neg, torch.tensor([0.925, 0.925, 0.85]))


def test_paper_beta_keeps_precision():
    # beta = 1 - 2e-4 (the paper's best): alpha(n) = 2e-4 / (1 - beta^n), by the formula in float64
    counts, omb = [500, 20, 3], 2e-4
    alpha = [omb / (1 - (1 - omb) ** n) for n in counts]
    expected = [0.1 * 3 * a / math.fsum(alpha) for a in alpha]
    w_pos, _ = class_balanced_weights(counts, beta=1 - omb)
    torch.testing.assert_close(w_pos, torch.tensor(expected), rtol=1e-6, atol=0)


def test_scale_one_as_printed_is_refused_naming_the_label_and_the_fix():
    with pytest.raises(ValueError, match=r"label 2 \(Hernia\).*w_pos=1\.5.*loss\.scale below 0\.6667.*one_minus_beta"):
        class_balanced_weights([1000, 100, 1], beta=0.5, scale=1.0, labels=["Effusion", "Mass", "Hernia"])
    with pytest.raises(ValueError, match="label index 2"):
        class_balanced_weights([1000, 100, 1], beta=0.5, scale=1.0)


@pytest.mark.parametrize("counts, beta, scale, match", [
    ([5, 0, 3], 0.9, 0.1, "label index 1 has 0 positives"),
    ([5, 3], 1.0, 0.1, "beta=1.0"),
    ([5, 3], 0.9, 0.0, "scale=0.0"),
])
def test_bad_inputs(counts, beta, scale, match):
    with pytest.raises(ValueError, match=match):
        class_balanced_weights(counts, beta, scale)


@pytest.mark.parametrize("one_minus_beta", [1e-6, 2e-6, 2e-4, 2e-3, 1e-2])
def test_the_searched_range_is_valid_on_the_embedded_split(one_minus_beta):
    w_pos, w_neg = class_balanced_weights(SYNTHETIC_COUNTS, 1 - one_minus_beta)
    assert (w_pos > 0).all() and (w_neg >= 0).all()
    assert w_pos.argmax() == 13  # Hernia, 3 positives


def test_focal_gamma_zero_alpha_half_is_half_bce():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(6, 4, generator=g) * 3, (torch.rand(6, 4, generator=g) < 0.3).float()
    torch.testing.assert_close(focal(logits, targets, 0.5, 0.0),
                               0.5 * F.binary_cross_entropy_with_logits(logits, targets))


def test_weighted_focal_with_unit_weights_is_focal():
    g = torch.Generator().manual_seed(1)
    logits, targets = torch.randn(5, 3, generator=g) * 4, (torch.rand(5, 3, generator=g) < 0.4).float()
    ones = torch.ones(3)
    for reduction in ("none", "sum", "mean"):
        torch.testing.assert_close(weighted_focal(logits, targets, ones, ones, 0.3, 2.0, reduction),
                                   focal(logits, targets, 0.3, 2.0, reduction))


def test_weighted_focal_hand_value():
    # logit 0 (p = 0.5), alpha 0.5, gamma 1: either term is 0.5 * 0.5 * ln 2 = 0.25 ln 2;
    # the positive (label 0) is weighted by w+ = 0.2, the negative (label 1) by w- = 0.6
    logits, targets = torch.zeros(1, 2), torch.tensor([[1.0, 0.0]])
    w_pos, w_neg = torch.tensor([0.2, 0.3]), torch.tensor([0.8, 0.6])
    per = weighted_focal(logits, targets, w_pos, w_neg, 0.5, 1.0, "none")
    q = 0.25 * math.log(2)
    torch.testing.assert_close(per, torch.tensor([[0.2 * q, 0.6 * q]]))
    assert weighted_focal(logits, targets, w_pos, w_neg, 0.5, 1.0).item() == pytest.approx(0.4 * q, rel=1e-6)
    mask = torch.tensor([[0.0, 1.0]])  # masked entries count in neither the sum nor the mean
    assert weighted_focal(logits, targets, w_pos, w_neg, 0.5, 1.0, "mean", mask).item() == pytest.approx(0.6 * q, rel=1e-6)


def test_weight_shape_is_checked():
    with pytest.raises(ValueError, match=r"w_pos has shape \(2,\); expected \(3,\)"):
        weighted_focal(torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(2), torch.ones(3), 0.5, 1.0)


def test_registered_loss_computes_the_weights_once_as_buffers():
    assert LOSSES["cb_focal"] is ClassBalancedFocal
    loss = build_loss({"name": "cb_focal", "one_minus_beta": 0.5, "alpha": 0.5, "gamma": 1.0},
                      pos_counts=[1, 2, 3])
    assert {n for n, _ in loss.named_buffers()} == {"w_pos", "w_neg"}
    torch.testing.assert_close(loss.w_pos, torch.tensor([6.3 / 47, 4.2 / 47, 3.6 / 47]))
    logits, targets = torch.randn(4, 3), (torch.rand(4, 3) < 0.5).float()
    torch.testing.assert_close(loss(logits, targets),
                               weighted_focal(logits, targets, loss.w_pos, loss.w_neg, 0.5, 1.0))


@pytest.mark.parametrize("cfg, context, match", [
    ({"name": "cb_focal"}, {}, "positive counts"),
    ({"name": "cb_focal", "beta": 0.9998}, {"pos_counts": [3, 4]}, "loss.beta"),
    ({"name": "cb_focal", "one_minus_beta": 0.0}, {"pos_counts": [3, 4]}, "one_minus_beta=0.0"),
    ({"name": "cb_focal", "scale": 1.0, "one_minus_beta": 0.5}, {"pos_counts": [1000, 100, 1]}, "loss.scale"),
    ({"name": "cb_focal", "gamma": -1}, {"pos_counts": [3, 4]}, "gamma=-1"),
])
def test_config_errors(cfg, context, match):
    with pytest.raises(ConfigError, match=match):
        build_loss(cfg, **context)
