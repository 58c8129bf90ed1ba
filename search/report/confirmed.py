"""The confirmation of a search's top configs, read back from MLflow (search/confirmation.py computes it)."""
from __future__ import annotations

import math

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from search import confirmation
from search.report.data import Search, trial_runs


def verdict(client: MlflowClient, parent: Run, search: Search) -> confirmation.Verdict | None:
    """Each confirmed trial's val AUC per seed (its own seed from the search, the others from its
    confirmation runs), judged; None if the search confirmed nothing."""
    per_trial: dict[str, dict[int, float]] = {}
    for run in trial_runs(client, parent, role=confirmation.ROLE):
        auc, seed = run.data.metrics.get("val_auc"), run.data.params.get("train.seed")
        if run.data.tags.get("cxr.status") == "completed" and auc is not None and math.isfinite(auc) and seed:
            per_trial.setdefault(run.data.tags.get(confirmation.CONFIRMS_TAG, ""), {})[int(seed)] = auc
    trials = {t.run_id: t for t in search.trials}
    cands = []
    for run_id, values in per_trial.items():
        t = trials.get(run_id)
        if t is not None and t.val_auc is not None and t.params.get("train.seed"):
            cands.append(confirmation.Candidate(t.name, {}, run_id, {int(t.params["train.seed"]): t.val_auc, **values}))
    return confirmation.judge(cands) if cands else None


def lines(found: confirmation.Verdict | None) -> list[str]:
    return confirmation.lines(found) + [found.text()] if found else []
