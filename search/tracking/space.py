"""A search's Optuna distributions as the parent run records them (search_space.json) and as its
params show them (`uniform(0, 2)`), read back for the report's study.

Keys are dotted config paths (`heads.w_d`), as in the trials' MLflow params.
"""
from __future__ import annotations

import json

from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution, distribution_to_json, json_to_distribution)


def to_json(dists: dict[str, BaseDistribution]) -> str:
    return json.dumps({k: json.loads(distribution_to_json(d)) for k, d in dists.items()})


def from_json(text: str) -> dict[str, BaseDistribution]:
    return {k: json_to_distribution(json.dumps(v)) for k, v in json.loads(text).items()}


def describe(dist: BaseDistribution) -> str:
    if isinstance(dist, CategoricalDistribution):
        return f"choice({', '.join(map(str, dist.choices))})"
    kind = "loguniform" if dist.log else "uniform" if isinstance(dist, FloatDistribution) else "randint"
    return f"{kind}({dist.low:g}, {dist.high:g})"


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
