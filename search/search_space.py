"""What a search searches, read off its Tune param space: Optuna's distributions (as OptunaSearch
builds them), the grid's values, the keys that vary, and the parent run's `space.*` params.

Keys are dotted config paths (`heads.w_d`), as in the trials' MLflow params. How they are written
to MLflow and read back is search/tracking/space.py; run names, search/tracking/names.py.
"""
from __future__ import annotations

from optuna.distributions import BaseDistribution, CategoricalDistribution
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.variant_generator import parse_spec_vars

from search.tracking.space import describe
from search.tracking.store import MAX_PARAM
from trainables.config import flatten


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


def space_params(param_space: dict) -> dict[str, str]:
    """The parent run's params for what was searched: `space.<key>` or, for a grid, `grid.<key>`."""
    dists = distributions(param_space)
    if dists:
        return {f"space.{k}": describe(d)[:MAX_PARAM] for k, d in dists.items()}
    return {f"grid.{k}": str(v)[:MAX_PARAM] for k, v in grid_values(param_space).items()}
