import pytest

from search.tracking.names import run_name
from trainables.config import unflatten


@pytest.mark.parametrize("value, key, log, name", [
    (0.5, "loss.lam", False, "λ0.50"), (0.3, "heads.w_d", False, "wD.30"), (0.01, "optim.lr", True, "lr1e-2"),
    (2e-4, "loss.one_minus_beta", True, "1-β2e-4"), ("resnet10t+resnet18", "model.backbones", False, "r10t+r18"),
    (True, "train.iterative", False, "iter"), (16, "model.reduction", False, "r16")])
def test_run_names_show_searched_values_short(value, key, log, name):
    assert run_name(unflatten({key: value}), [key], {key} if log else set()) == name


def test_a_run_name_keeps_the_spaces_order_and_skips_false_switches():
    config = {"loss": {"lam": 0.5}, "heads": {"fusion": "concat", "w_d": 0.3, "w_r": 0.3}, "optim": {"lr": 0.01},
              "train": {"iterative": False}}
    keys = ["loss.lam", "heads.fusion", "heads.w_d", "heads.w_r", "optim.lr", "train.iterative"]
    assert run_name(config, keys, {"optim.lr"}) == "λ0.50 concat wD.30 wR.30 lr1e-2"
