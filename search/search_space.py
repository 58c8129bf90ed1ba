"""What a search searched, in three forms: Optuna distributions (to rebuild its study from MLflow),
readable parent-run params (`space.loss.lam` = `uniform(0, 2)`), and short run names.

Keys are dotted config paths (`heads.w_d`), as in the trials' MLflow params.
"""
from __future__ import annotations

import json
import math

from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution, distribution_to_json, json_to_distribution)
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.variant_generator import parse_spec_vars

from search.tracking_queue import MAX_PARAM
from trainables.config import flatten

# Short forms of searched leaves in run names; "" shows the value alone.
LABELS = {"lam": "λ", "lam1": "λ1", "lam2": "λ2", "lam3": "λ3", "alpha": "α", "beta": "β", "gamma": "γ",
          "one_minus_beta": "1-β", "w_d": "wD", "w_r": "wR", "w_f": "wF", "lr": "lr", "temperature": "T",
          "reduction": "r", "shift": "s", "fusion": "", "backbone": "", "backbones": "", "strategy": "",
          "policy": "", "iterative": "iter", "two_stage": "2stage"}
MODEL_SHORT = (("efficientnet_", "eff"), ("densenet", "d"), ("res2net", "r2n"), ("resnet", "r"))


def distributions(param_space: dict) -> dict[str, BaseDistribution]:
    """Optuna's distributions of the Tune domains in a param space (none for a grid), as OptunaSearch
    builds them for the sampler."""
    if parse_spec_vars(param_space)[2]:
        return {}
    return {k.replace("/", "."): d for k, d in OptunaSearch.convert_search_space(param_space).items()}


def grid_values(param_space: dict) -> dict[str, list]:
    """Dotted key -> the grid's values; a grid over whole sections is listed per leaf."""
    out: dict[str, list] = {}
    for path, domain in parse_spec_vars(param_space)[2]:
        prefix = ".".join(path)
        for value in domain.categories:  # parse_spec_vars turns a grid into a Categorical
            leaves = {f"{prefix}.{k}": v for k, v in flatten(value).items()} if isinstance(value, dict) \
                else {prefix: value}
            for k, v in leaves.items():
                if v not in out.setdefault(k, []):
                    out[k].append(v)
    return out


def searched_keys(param_space: dict) -> list[str]:
    """The dimensions that differ between trials."""
    dists = distributions(param_space)
    if dists:  # a choice of one (a profile pinning a backbone) varies nothing
        return [k for k, d in dists.items() if not (isinstance(d, CategoricalDistribution) and len(d.choices) < 2)]
    return [k for k, v in grid_values(param_space).items() if len(v) > 1]


def to_json(dists: dict[str, BaseDistribution]) -> str:
    return json.dumps({k: json.loads(distribution_to_json(d)) for k, d in dists.items()})


def from_json(text: str) -> dict[str, BaseDistribution]:
    return {k: json_to_distribution(json.dumps(v)) for k, v in json.loads(text).items()}


def describe(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return f"choice({', '.join(map(str, dist.choices))})"
    kind = "loguniform" if dist.log else "uniform" if isinstance(dist, FloatDistribution) else "randint"
    return f"{kind}({dist.low:g}, {dist.high:g})"


def space_params(param_space: dict) -> dict[str, str]:
    """The parent run's params for what was searched: `space.<key>` or, for a grid, `grid.<key>`."""
    dists = distributions(param_space)
    if dists:
        return {f"space.{k}": describe(d)[:MAX_PARAM] for k, d in dists.items()}
    return {f"grid.{k}": str(v)[:MAX_PARAM] for k, v in grid_values(param_space).items()}


def infer(param_rows: list[dict[str, str]]) -> dict[str, BaseDistribution]:
    """Distributions for runs whose space was not recorded (a grid): every param that varies,
    numbers as a float range, anything else as categories."""
    out = {}
    for key in sorted({k for row in param_rows for k in row}):
        values = sorted({row[key] for row in param_rows if key in row})
        if len(values) < 2:
            continue
        try:
            numbers = [float(v) for v in values]
            out[key] = FloatDistribution(min(numbers), max(numbers))
        except ValueError:
            out[key] = CategoricalDistribution(values)
    return out


def typed(dist: BaseDistribution, text: str):
    """An MLflow param's text as the value the distribution holds (None: not one of its values)."""
    if isinstance(dist, CategoricalDistribution):
        return next((c for c in dist.choices if str(c) == text), None)
    try:
        value = int(text) if isinstance(dist, IntDistribution) else float(text)
    except ValueError:
        return None
    return value if dist.low <= value <= dist.high else None


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
    return " ".join(parts) or "trial"
