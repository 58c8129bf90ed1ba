"""A finished search read back from MLflow: its parent run, its trials' curves and values, and the
Optuna study its sampler saw, rebuilt for `optuna.importance`.

Everything comes from the tracking store, so a report can be made on any machine that reaches
it, for a search run elsewhere or long ago.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from optuna.distributions import BaseDistribution
from optuna.importance import FanovaImportanceEvaluator

from search.picking.ranking import rank_key
from search.scheduling.rungs import milestones
from search.tracking.space import from_json, infer, typed
from search.tracking.store import SPACE_FILE, quiet_artifacts
from trainables.errors import UserError

MIN_TRIALS_FOR_IMPORTANCE = 5
# Trials that reported a val_auc Optuna was told of (ASHA-stopped ones as pruned, at their cut).
SCORED = ("completed", "stopped_early", "out_of_time", "search_stopped")   # out_of_time: stopped by
# --time-budget; search_stopped: running when --patience ended the search
REPLICA_PARAM = "train.replica"   # search/scheduling/replicas.py
RANK_TAG = "cxr.confirmed_rank"   # search/picking/confirmation.py (not imported: scipy stays out of the report's load)


@dataclass
class Trial:
    run_id: str
    name: str
    status: str
    params: dict[str, str]
    val_auc: float | None
    curve: list[tuple[int, float]]
    per_label: dict[str, float]
    warm: bool
    started: int
    metric_keys: tuple[str, ...] = ()   # every metric the run logged (search/report/cost.py picks the GPU ones)
    rank: int | None = None   # its rank by mean over seeds, where the search confirmed it (search/picking/confirmation.py)

    def at(self, epoch: int) -> float | None:
        """val AUC at `epoch` (None if the trial did not get there)."""
        return dict(self.curve).get(epoch)

    @property
    def epochs(self) -> int:
        return self.curve[-1][0] if self.curve else 0


@dataclass
class Search:
    parent: Run
    trials: list[Trial]
    dists: dict[str, BaseDistribution]   # the searched keys, in the run names' order
    # replicate rungs' runs (search/scheduling/replicas.py: a config again with seed + k), kept out of `trials`:
    # never cut and a repeat of a config, they would skew the rungs' and the importance's figures
    replicas: list[Trial] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.parent.info.run_name

    def param(self, key: str, default=None):
        return self.parent.data.params.get(key, default)

    def scored(self) -> list[Trial]:
        return [t for t in self.trials if t.status in SCORED and t.val_auc is not None]

    def ranked(self) -> list[Trial]:
        """Best first, as the search picks (search/picking/ranking.py): further trained first, then by val AUC."""
        return sorted(self.scored(), key=lambda t: rank_key(t.epochs, t.val_auc), reverse=True)

    def comparable(self, minimum: int) -> tuple[int | None, list[tuple[Trial, float]]]:
        """The latest epoch that at least `minimum` scored trials reached, and each such trial's val AUC
        there: values of one fidelity, so a cut trial's epoch-1 value is not set against a finished
        one's last. (None, []) when no epoch has enough."""
        trials = self.scored()
        for epoch in sorted({e for t in trials for e, _ in t.curve}, reverse=True):
            there = [(t, t.at(epoch)) for t in trials if t.at(epoch) is not None]
            if len(there) >= minimum:
                return epoch, there
        return None, []

    def rank_epochs(self) -> list[int]:
        """Where the report measures rank agreement: ASHA's rungs, or with no cuts (grace = max_t, the
        real-data default) the epochs where grace 1 would cut, so a search says whether cuts would pay."""
        if self.rungs():
            return self.rungs()
        try:
            max_t, eta = int(self.param("asha.max_t")), int(self.param("asha.reduction_factor"))
        except (TypeError, ValueError):
            return []
        return list(milestones(1, eta, max_t))

    def rungs(self) -> list[int]:
        """ASHA's milestones below max_t, as Ray's ASHA places them: grace * eta^k."""
        try:
            max_t, grace, eta = (int(self.param(k)) for k in ("asha.max_t", "asha.grace_period",
                                                             "asha.reduction_factor"))
        except (TypeError, ValueError):
            return []
        return list(milestones(grace, eta, max_t))


def find_parent(client: MlflowClient, experiment: str | None, parent_id: str | None) -> Run:
    """The given parent run, else the latest search (in `experiment`, else in any experiment)."""
    if parent_id:
        try:
            return client.get_run(parent_id)
        except MlflowException as err:
            raise UserError(f"--parent {parent_id}: no such run in this tracking store ({err})") from None
    if experiment:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise UserError(f"--experiment {experiment!r}: no such MLflow experiment in this tracking store")
        ids = [exp.experiment_id]
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    found = client.search_runs(ids, filter_string="tags.`cxr.role` = 'search'",
                               order_by=["attributes.start_time DESC"], max_results=1) if ids else []
    if not found:
        raise UserError("no cxr-tune search in this tracking store" + (f" under experiment {experiment!r}" if experiment
                        else "") + "; pass --tracking-uri of the store the search logged to")
    return found[0]


def search_parent(client: MlflowClient, experiment: str, exp_path: str) -> Run | None:
    """The parent run of the search whose Ray results are at `exp_path` (the latest, if resumed apart)."""
    exp = client.get_experiment_by_name(experiment)
    found = client.search_runs(
        [exp.experiment_id], filter_string=f"tags.`cxr.role` = 'search' and tags.`cxr.ray_results` = '{exp_path}'",
        order_by=["attributes.start_time DESC"], max_results=1) if exp else []
    return found[0] if found else None


def trial_runs(client: MlflowClient, parent: Run, role: str = "trial") -> list[Run]:
    """The parent's child runs of one role (trial, or confirmation)."""
    runs, token = [], None
    while True:
        page = client.search_runs([parent.info.experiment_id], max_results=1000, page_token=token,
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}' "
                                                f"and tags.`cxr.role` = '{role}'")
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _curve(client: MlflowClient, run_id: str) -> list[tuple[int, float]]:
    points = {}
    for m in sorted(client.get_metric_history(run_id, "val_auc"), key=lambda m: (m.step, m.timestamp)):
        points[m.step] = m.value   # a trial retried from its checkpoint logs an epoch again: keep the last
    return sorted(points.items())


def _recorded_space(client: MlflowClient, parent: Run) -> str | None:
    """The search's Optuna distributions as the search logged them (a grid logs none)."""
    if SPACE_FILE not in {a.path for a in client.list_artifacts(parent.info.run_id)}:
        return None
    with tempfile.TemporaryDirectory() as d, quiet_artifacts():
        return Path(client.download_artifacts(parent.info.run_id, SPACE_FILE, d)).read_text()


def load(client: MlflowClient, parent: Run) -> Search:
    trials = []
    for run in trial_runs(client, parent):
        tags, metrics = run.data.tags, run.data.metrics
        auc = metrics.get("val_auc")
        trials.append(Trial(
            run_id=run.info.run_id, name=run.info.run_name, status=tags.get("cxr.status", "unknown"),
            params=dict(run.data.params), val_auc=auc if auc is not None and math.isfinite(auc) else None,
            curve=_curve(client, run.info.run_id),
            per_label={k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("val_auc/")},
            warm=tags.get("cxr.warm_start") == "paper", started=run.info.start_time or 0,
            metric_keys=tuple(metrics), rank=int(tags[RANK_TAG]) if tags.get(RANK_TAG, "").isdigit() else None))
    # Tune starts trials about in the order its searcher proposed them (those pending together start in
    # the order their workers come up); the study is rebuilt in start order.
    trials.sort(key=lambda t: (t.started, t.run_id))
    replicas = [t for t in trials if t.params.get(REPLICA_PARAM, "0") != "0"]
    trials = [t for t in trials if t.params.get(REPLICA_PARAM, "0") == "0"]
    recorded = _recorded_space(client, parent)
    dists = from_json(recorded) if recorded else infer([t.params for t in trials])
    return Search(parent=parent, trials=trials, dists=dists, replicas=replicas)


def rebuild_study(search: Search, values: list[tuple[Trial, float]] | None = None) -> optuna.Study:
    """A study of the search's trials: each one's searched params and a val AUC (default: its last)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    for t, auc in values if values is not None else [(t, t.val_auc) for t in search.scored()]:
        params, dists = {}, {}
        for key, dist in search.dists.items():
            value = typed(dist, t.params[key]) if key in t.params else None
            if value is not None:
                params[key], dists[key] = value, dist
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=auc))
    return study


def importances(study: optuna.Study) -> tuple[dict[str, float], str | None]:
    """fANOVA importances (seeded), or a note saying why there are none."""
    done = len(study.trials)
    if done < MIN_TRIALS_FOR_IMPORTANCE:
        return {}, (f"importance not estimated: {done} trial(s) finished with a val_auc; fANOVA needs at "
                    f"least {MIN_TRIALS_FOR_IMPORTANCE} (raise --num-samples)")
    try:
        return optuna.importance.get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0)), None
    except (ValueError, RuntimeError) as err:  # e.g. no parameter varied across the finished trials
        return {}, f"importance not estimated: {err}"


def importances_at_one_epoch(search: Search) -> tuple[dict[str, float], str, int | None]:
    """fANOVA over val AUC at one epoch every counted trial reached (Search.comparable), and a note:
    with importances, which epoch and how many trials; without, why there is no estimate; and the epoch."""
    epoch, values = search.comparable(MIN_TRIALS_FOR_IMPORTANCE)
    if epoch is None:
        return {}, (f"importance not estimated: no epoch was reached by {MIN_TRIALS_FOR_IMPORTANCE} trials "
                    f"(fANOVA's minimum here; raise --num-samples or --grace-period)"), None
    imp, note = importances(rebuild_study(search, values))
    left_out = len(search.scored()) - len(values)
    basis = (f"val AUC at epoch {epoch}, the last epoch {len(values)} trials reached"
             + (f" ({left_out} cut earlier left out)" if left_out else ""))
    rough = "; few trials: a rough guide" if len(values) < 2 * MIN_TRIALS_FOR_IMPORTANCE else ""
    return imp, (note or f"{basis}{rough}"), epoch
