"""Short run names from a trial's searched values: `λ0.50 concat wD.30 wR.30 lr1e-2`."""
from __future__ import annotations

import math

from trainables.config import flatten

# Short forms of searched leaves in run names; "" shows the value alone.
LABELS = {"lam": "λ", "lam1": "λ1", "lam2": "λ2", "lam3": "λ3", "alpha": "α", "beta": "β", "gamma": "γ",
          "one_minus_beta": "1-β", "w_d": "wD", "w_r": "wR", "w_f": "wF", "lr": "lr", "temperature": "T",
          "reduction": "r", "shift": "s", "fusion": "", "backbone": "", "backbones": "", "strategy": "",
          "policy": "", "iterative": "iter", "two_stage": "2stage"}
MODEL_SHORT = (("efficientnet_", "eff"), ("densenet", "d"), ("res2net", "r2n"), ("resnet", "r"))


def _short(value, label: str, log: bool) -> str | None:
    if isinstance(value, bool):
        return label if value else None
    if isinstance(value, float) and math.isfinite(value):
        if log:
            mantissa, exp = f"{value:.0e}".split("e")
            return f"{label}{mantissa}e{int(exp)}"
        text = f"{value:.2f}"
        # `wD.30` reads well; after a Greek letter a bare point does not (`λ0.50`)
        if label.isascii() and label[-1:].isalpha() and text.startswith("0."):
            text = text[1:]
        return f"{label}{text}"
    text = str(value)
    for long, short in MODEL_SHORT:
        text = text.replace(long, short)
    return f"{label}{text}"


def run_name(config: dict, keys: list[str], log_keys=frozenset()) -> str:
    """`λ0.50 concat wD.30 wR.30 lr1e-2`: the trial's searched values, in the space's order."""
    flat = flatten(config)
    parts = []
    for key in keys:
        if key in flat:
            leaf = key.rsplit(".", 1)[-1]
            part = _short(flat[key], LABELS.get(leaf, leaf), key in log_keys)
            if part:
                parts.append(part)
    replica = int(flat.get("train.replica") or 0)     # search/scheduling/replicas.py: the config again, seed + k
    return " ".join(parts + ([f"seed+{replica}"] if replica else [])) or "trial"


def shown(text: str, log: bool = False) -> str:
    """A param value as logged (text), as run names show it: `0.77`, `1e-4`; others as they are."""
    try:
        value = float(text)
    except ValueError:
        return text
    if not any(c in text.lower() for c in ".e") or not math.isfinite(value):  # an int, nan, inf
        return text
    return _short(value, "", log)
