"""What a search does once Tune is done, each step a function of the search's objects: the summary
and best_config.yaml, the report, the link to browse, and the optional export and evaluation.

A step that fails after the search is logged says so and leaves the search as it is; the
tracking store was checked once, before the search, and is not checked again.
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml
from mlflow.tracking import MlflowClient

from search.picking import ranking
from search.terminal import say
from search.simulation import trainable as simulation
from search.storage import local_dir
from search.tracking import callback, view
from search.tracking.store import BEST_CONFIG_FILE, absolute_uri
from search.scheduling.trial_state import error_line
from trainables.errors import UserError, one_line

METRIC = "val_auc"


@dataclass(frozen=True)
class Finished:
    """A search Tune has finished, and where its results and runs are."""
    exp_path: str        # the Ray results of the search (local folder or object storage)
    tracking_uri: str    # as the user passed it
    experiment: str
    simulated: str | None = None   # --simulate: the table the trials read instead of training
    time_budget: float | None = None   # --time-budget, seconds


@dataclass(frozen=True)
class ConfirmPlan:
    """--confirm K --confirm-seeds S, and what a second Tune run needs (search/picking/confirm_runs.py)."""
    top: int
    seeds: int
    seed: int            # the search's seed; confirmation uses seed+1..seed+S
    max_epochs: int
    trainable: object
    storage: str
    name: str            # the search's name; the confirmation run is <name>-confirm
    tracking_dir: str
    drain_timeout: float
    replicated: bool = False   # --replicates without --confirm: the pick among the configs with the most seeds
    verbose: bool = False      # --verbose: Tune's own console instead of the live view (search/console.py)


def trial_error(result) -> str:
    """The one line a trial failed with: its reported error, else the exception's last line."""
    return error_line(result.metrics, str(result.error)) or type(result.error).__name__


def summarize(results, done: Finished):
    """Counts, errors and the best config, printed; the best config also to best_config.yaml. -> the best result."""
    ok = [r for r in results if not r.error and ranking.scored(r.metrics)]
    best = max(ok, key=lambda r: ranking.result_key(r.metrics)) if ok else None
    errored = sum(1 for r in results if r.error)
    unscored = len(results) - len(ok) - errored   # stopped (--time-budget, --patience) before an epoch ended
    say(f"\n{len(results)} trials, {len(ok)} reported, {errored} errored"
        + (f", {unscored} stopped before their first epoch." if unscored else "."))
    errors = sorted({trial_error(r) for r in results if r.error})
    for message in errors[:5]:
        say(f"  trial error: {message}")
    if best is None:
        budget = f"--time-budget {done.time_budget:g} s may have run out before the first epoch: raise it; " \
            if done.time_budget else ""
        raise UserError(f"no trial reported val_auc ({'; '.join(errors[:3]) or 'no error recorded'}); {budget}"
                        f"details in {done.exp_path}")
    worst = min(ok, key=lambda r: r.metrics[METRIC])
    say(f"best val_auc {best.metrics[METRIC]:.4f} at epoch {best.metrics.get('epoch', '?')} (of the trials trained "
        f"furthest; worst of all {worst.metrics[METRIC]:.4f})")
    if done.simulated:
        say(f"simulated search: {simulation.note(done.simulated)}")
    out = local_dir(done.exp_path, BEST_CONFIG_FILE)
    if out:
        out.write_text(yaml.safe_dump({"config": best.config, "metrics": {METRIC: best.metrics[METRIC]},
                                       **simulated_note(done)}, sort_keys=False))
        say(f"best config: {out}")
    else:   # object storage: no file here, and MLflow's copy may wait for a sync; the config itself, then
        say("best config:")
        print(yaml.safe_dump(best.config, sort_keys=False))
    return best


def write_report(client: MlflowClient, parent, done: Finished) -> None:
    """search.report on the finished search; a report that fails says so and leaves the search as it is."""
    from search.report import build

    out = local_dir(done.exp_path, "report")
    try:
        made = build(client, parent, out)
    except Exception as err:  # the search itself is done and logged: a figure must not turn it into a failure
        say(f"warning: no report ({one_line(err)}); retry with: python -m search.report "
              f"--tracking-uri {client.tracking_uri} --experiment {done.experiment}")
        return
    say(made.summary)
    for w in made.warnings:
        say(f"warning: {w}")
    figures = "with its figures (learning_curves.png, param_importance.png, ...)"
    if out:
        say(f"report: {out / 'report.html'}")
        say(f"  also in MLflow, {figures}")
    else:
        say(f"report: report.html among the parent run's artifacts, {figures}")


def print_browse(client: MlflowClient, done: Finished) -> None:
    """The link to the search's view (search/tracking/view.py); for a local store, the command that serves it."""
    uri = client.tracking_uri
    if not view.is_server(uri):
        say(f"browse: mlflow ui --backend-store-uri {uri}")
        say("  then open the search's runs and charts:")
    else:
        say("browse: the search's runs and charts:")
    exp = client.get_experiment_by_name(done.experiment)
    say(view.url(view.ui_base(uri), exp.experiment_id if exp else ''))   # whole and alone: a terminal links it


def confirm_best(results, client: MlflowClient, parent, done: Finished, plan: ConfirmPlan):
    """The top configs re-trained with other seeds, the pick by mean recorded on the parent run and in
    best_config.yaml; -> the parent run as it is now (None when there was nothing to confirm)."""
    from search.picking import confirm_runs, confirmation
    from search.report.data import trial_runs
    from search.tracking.callback import Delivery, ParentRun

    cands = confirm_runs.candidates(results, plan.top, plan.max_epochs)
    if not cands:
        say("confirmation: no trial ran every epoch, nothing to confirm")
        return None
    seeds = confirmation.other_seeds(plan.seed, plan.seeds)
    most = max(len(c.values) for c in cands)    # seeds a config got in the replicate rungs (search/scheduling/replicas.py)
    if plan.replicated:    # the seeds they have: nothing is trained after the search
        cands, seeds = [c for c in cands if len(c.values) == most], confirmation.other_seeds(plan.seed, most - 1)
        say(f"\nreplicate rungs (--replicates): {len(cands)} config(s) reached {most} seed(s), the pick by mean")
    elif most - 1 > plan.seeds:   # compared on the same seeds: each gets as many as the most replicated one
        seeds = confirmation.other_seeds(plan.seed, most - 1)
    runs = {r.data.tags.get("cxr.trial_id"): r for r in trial_runs(client, parent)}
    for c in cands:
        c.name = runs[c.trial_id].info.run_name if c.trial_id in runs else c.trial_id
    origins = {confirm_runs.config_key(c.config): (runs[c.trial_id].info.run_id, c.name) for c in cands
               if c.trial_id in runs}
    if not plan.replicated:
        say(f"\nconfirming the top {len(cands)} config(s) with seeds {seeds} (--confirm, --confirm-seeds)")
    tracking = plan.tracking_dir
    callback = confirm_runs.ConfirmationCallback(
        Delivery(done.tracking_uri, done.experiment, pending_path=f"{tracking}/mlflow_pending_confirm.jsonl",
                 journal_path=f"{tracking}/mlflow_events_confirm.jsonl", drain_timeout=plan.drain_timeout),
        ParentRun(name=parent.info.run_name), plan.max_epochs, parent.info.run_id, origins)
    name = f"{plan.name}-confirm"
    confirm_runs.run(cands, seeds, plan.trainable, callback, f"{plan.storage.rstrip('/')}/{name}", name, plan.storage,
                     plan.verbose)
    verdict = confirmation.judge(cands)
    say(f"confirmation: pick {verdict.pick.name}, mean val_auc {verdict.pick.mean:.4f} (the report's summary "
          "below has every confirmed config)")
    record_pick(client, parent, runs, verdict, done)
    return client.get_run(parent.info.run_id)


def simulated_note(done: Finished) -> dict:
    return {"simulated": simulation.note(done.simulated)} if done.simulated else {}


def record_pick(client: MlflowClient, parent, runs: dict, verdict, done: Finished) -> None:
    """The confirmed pick as the search's best: parent tags, best_config.yaml (file and artifact), and
    each confirmed trial's mean and rank, which search.export orders by."""
    from search.picking import confirmation

    for rank, c in enumerate(verdict.ranked, 1):
        if c.trial_id in runs:
            client.set_tag(runs[c.trial_id].info.run_id, confirmation.MEAN_TAG, f"{c.mean:.6f}")
            client.set_tag(runs[c.trial_id].info.run_id, confirmation.RANK_TAG, str(rank))
    pick = verdict.pick
    ci = pick.interval()
    doc = {"config": pick.config, "metrics": {METRIC: pick.values[int(pick.config["train"]["seed"])],
                                              f"{METRIC}_mean": pick.mean, "seeds": sorted(pick.values),
                                              **({f"{METRIC}_ci95": list(ci)} if ci else {})},
           "confirmation": verdict.text(), **simulated_note(done)}
    text = yaml.safe_dump(doc, sort_keys=False)
    client.log_text(parent.info.run_id, text, BEST_CONFIG_FILE)
    if pick.trial_id in runs:
        client.set_tag(parent.info.run_id, "cxr.best_run_id", runs[pick.trial_id].info.run_id)
    client.set_tag(parent.info.run_id, "cxr.confirmation", verdict.text()[:5000])
    client.log_metric(parent.info.run_id, f"best_{METRIC}_mean", pick.mean)
    out = local_dir(done.exp_path, BEST_CONFIG_FILE)
    if out:
        out.write_text(text)
        say(f"confirmed pick written to {out}")


def evaluate_best(client: MlflowClient, parent, done: Finished) -> list[dict]:
    """--evaluate: the search's best trial (its parent run's cxr.best_run_id), scored on the test split
    from its checkpoint, into <search>/evaluation."""
    from search.evaluation.candidates import from_run
    from search.evaluation.cli import options
    from search.evaluation.pipeline import evaluate_all

    best = parent.data.tags.get("cxr.best_run_id")
    if not best:
        raise UserError(f"--evaluate: no best trial recorded in MLflow for {done.exp_path}")
    run = client.get_run(best)
    out = local_dir(done.exp_path, "evaluation") or "evaluations"
    args = options(source=best, tracking_uri=client.tracking_uri, out=str(out))
    return evaluate_all([from_run(client, run, f"run-{best[:8]}")], args, client)


def after_search(results, done: Finished, export_to: str | None = None, evaluate: bool = False,
                 confirm: ConfirmPlan | None = None):
    """Every step after Tune, in order; -> Tune's results."""
    from search.report.data import search_parent

    summarize(results, done)
    left = callback.undelivered
    if left["path"]:
        say(f"MLflow: {left['count']} event(s) undelivered; after `python -m search.sync {left['path']}` "
              f"the search is in experiment '{done.experiment}'. --export/--evaluate/--confirm need those runs: "
              "run search.export / search.evaluate, or the search again with --resume --confirm K, after the sync.")
        return results
    client = MlflowClient(absolute_uri(done.tracking_uri))
    say(f"MLflow: experiment '{done.experiment}' at {client.tracking_uri}")
    parent = search_parent(client, done.experiment, done.exp_path)
    if parent is not None and confirm is not None and confirm.top > 0:
        parent = confirm_best(results, client, parent, done, confirm) or parent
    if parent is None:
        say(f"warning: no parent run tagged with {done.exp_path}; no report")
    else:
        write_report(client, parent, done)
    print_browse(client, done)
    if export_to:
        from search.export import export
        written = export(client.tracking_uri, done.experiment, top=3, out=export_to)
        say(f"exported {len(written)} config(s) to {export_to}"
              + (f"; their {simulation.note(done.simulated)}" if done.simulated else ""))
    if evaluate:
        if parent is None:
            raise UserError(f"--evaluate: no search run in MLflow for {done.exp_path}")
        evaluate_best(client, parent, done)
    return results
