"""How the search proposes configs: the sampler (`--sampler`), TPE's start-up sized to the budget, and
how many trials run at once.

The rules here are what `benchmarks/replay.py` measures (it builds its samplers with these
functions), and the numbers in them come from that replay (docs/replay.md).

- **The sampler.** Random search by default: on the recorded tables TPE, GPSampler and QMC did not
  beat it at every budget (docs/replay.md). `--sampler tpe|gp|qmc` picks another.
- **Random start-up sized to the budget.** Optuna's default is 10 random trials before TPE
  models anything; a 6-12 trial search would then be random search with a warm start. A quarter
  of the budget, at least 2 and at most 10, leaves TPE most proposals at every budget.
- **Multivariate TPE** models the searched values jointly (λ with the fusion weights, the
  learning rate with the backbones), which Optuna reports as better for single-objective search.
- **Constant liar**: a proposal made while other trials run treats them as bad, so concurrent
  proposals spread out instead of all landing on the current optimum.
- **Trials ASHA stopped reach TPE as PRUNED** with their per-epoch values (search/scheduling/trial_state.py):
  TPE ranks them below every finished trial, among themselves by how far they got and their value
  there, instead of comparing an epoch-1 value with an epoch-6 one.
- **Concurrency.** Every proposal made before any result is back is a random one in effect. By
  default at most a quarter of the budget runs at once (at least 2), so three quarters of the
  proposals see results; on a laptop the CPUs limit it sooner. `--max-concurrent` overrides it.
"""
from __future__ import annotations

import math

import optuna

STARTUP_SHARE = 0.25
STARTUP_RANGE = (2, 10)
CONCURRENCY_SHARE = 0.25


def startup_trials(num_samples: int) -> int:
    """Random proposals before TPE takes over (the warm start counts as one of them)."""
    low, high = STARTUP_RANGE
    return max(low, min(high, round(num_samples * STARTUP_SHARE)))


def tpe_sampler(seed: int, num_samples: int, startup: int | None = None) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=startup_trials(num_samples) if startup is None else startup,
        multivariate=True, constant_liar=True)


SAMPLERS = ("random", "tpe", "gp", "qmc")


def sampler(name: str, seed: int, num_samples: int, startup: int | None = None) -> optuna.samplers.BaseSampler:
    """`name` of SAMPLERS; the model-based ones start with `startup_trials` random proposals."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False, n_startup_trials=(
            startup_trials(num_samples) if startup is None else startup))
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False,
                                          warn_asynchronous_seeding=False)
    if name == "tpe":
        return tpe_sampler(seed, num_samples, startup)
    raise ValueError(f"unknown sampler {name!r}: one of {', '.join(SAMPLERS)}")


def default_concurrency(num_samples: int) -> int:
    """Trials at once when --max-concurrent is not given (the cluster's resources may allow fewer)."""
    return max(2, math.ceil(num_samples * CONCURRENCY_SHARE))
