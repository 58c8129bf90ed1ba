"""The one rule for "best trial" everywhere (best_config.yaml, the parent run's best, the report's top,
the confirmation's candidates): trials trained further rank first, then by val AUC.

A trial ASHA cut at epoch 2 is not compared with one trained for 6 by their last values: its
value is from a lower fidelity. This is also how Optuna's TPE orders pruned trials against
finished ones (search/scheduling/trial_state.py tells it which are which).
"""
import math

METRIC = "val_auc"


def rank_key(epochs: int, val_auc: float) -> tuple[int, float]:
    """Sort key, higher is better."""
    return epochs, val_auc


def scored(metrics: dict | None) -> bool:
    """Did this result report a usable val AUC (finite)?"""
    value = (metrics or {}).get(METRIC)
    return isinstance(value, float) and math.isfinite(value)


def result_key(metrics: dict) -> tuple[int, float]:
    """rank_key of a reported result (its epoch and val AUC)."""
    return rank_key(int(metrics.get("epoch", 0)), metrics[METRIC])
