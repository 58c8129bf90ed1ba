"""The confirmation of a search's top configs, read back from MLflow (search/picking/confirmation.py computes it)."""
from __future__ import annotations

import math

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from search.picking import confirmation
from search.report.data import REPLICA_PARAM, Search, trial_runs


def verdict(client: MlflowClient, parent: Run, search: Search) -> confirmation.Verdict | None:
    """Each confirmed or replicated trial's val AUC per seed (its own seed from the search, the others
    from its confirmation runs and its replicates, search/scheduling/replicas.py), judged; with replicates, among
    the configs with the most seeds, as the search picks; None if the search confirmed nothing."""
    per_trial: dict[str, dict[int, float]] = {}
    for run in trial_runs(client, parent, role=confirmation.ROLE):
        auc, seed = run.data.metrics.get("val_auc"), run.data.params.get("train.seed")
        if run.data.tags.get("cxr.status") == "completed" and auc is not None and math.isfinite(auc) and seed:
            per_trial.setdefault(run.data.tags.get(confirmation.CONFIRMS_TAG, ""), {})[int(seed)] = auc
    origins = {_config(t.params): t.run_id for t in search.trials}
    for r in search.replicas:
        if r.status == "completed" and r.val_auc is not None and _config(r.params) in origins:
            per_trial.setdefault(origins[_config(r.params)], {})[int(r.params["train.seed"])] = r.val_auc
    trials = {t.run_id: t for t in search.trials}
    # the configs the search judged (ranked on their runs), else those with other seeds
    chosen = [t for t in search.trials if t.rank is not None] or [trials[r] for r in per_trial if r in trials]
    cands = [confirmation.Candidate(t.name, {}, t.run_id, {int(t.params["train.seed"]): t.val_auc,
                                                           **per_trial.get(t.run_id, {})})
             for t in chosen if t.val_auc is not None and t.params.get("train.seed")]
    if search.replicas and cands and not any(t.rank is not None for t in chosen):
        most = max(len(c.values) for c in cands)
        cands = [c for c in cands if len(c.values) == most]
    return confirmation.judge(cands) if cands else None


def _config(params: dict[str, str]) -> tuple:
    """A trial's params without its seed and replica: what its replicates share with it."""
    return tuple(sorted((k, v) for k, v in params.items() if k not in ("train.seed", REPLICA_PARAM)))


def lines(found: confirmation.Verdict | None) -> list[str]:
    return confirmation.lines(found) + [found.text()] if found else []
