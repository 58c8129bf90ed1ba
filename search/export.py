"""Export the best trial configs of a search from MLflow alone, one YAML per config.

    python -m search.export --tracking-uri sqlite:///mlflow.db --experiment dual_weights --top 5 --out exports/

Configs a search confirmed with other seeds (--confirm) come first, by their mean val AUC. Each YAML
holds the full nested config (rebuilt from the flattened params), the trial's final metrics (and its
confirmed mean), its MLflow run id and its checkpoint location, and trains as it is with
`python -m trainables.train --config FILE`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

import spaces
from search.picking.confirmation import MEAN_TAG
from search.simulation import trainable as simulation
from search.tracking.check import check_tracking
from search.tracking.store import add_tracking_flag
from trainables.config import unflatten
from trainables.errors import Parser, UserError, at_least, cli


def parse_value(text: str):
    """MLflow stores params as strings; recover the Python value that was logged."""
    if text == "None":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def top_runs(client: MlflowClient, experiment: str, top: int, metric: str = "val_auc") -> list:
    """The `top` trial runs of `experiment`, best first: trials a search confirmed with other seeds
    (--confirm) by their mean val AUC over the seeds, then the rest by their final `metric`."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = [e.name for e in client.search_experiments()]
        raise UserError(f"No MLflow experiment {experiment!r} at {client.tracking_uri}; there are {names}")
    trials = f"tags.`cxr.role` = 'trial' and metrics.{metric} > 0"
    confirmed = client.search_runs([exp.experiment_id], filter_string=f"{trials} and tags.`{MEAN_TAG}` LIKE '%'",
                                   max_results=1000) if metric == "val_auc" else []
    confirmed = sorted(confirmed, key=lambda r: -float(r.data.tags[MEAN_TAG]))[:top]
    rest = client.search_runs([exp.experiment_id], filter_string=trials, order_by=[f"metrics.{metric} DESC"],
                              max_results=top + len(confirmed))
    seen = {r.info.run_id for r in confirmed}
    runs = (confirmed + [r for r in rest if r.info.run_id not in seen])[:top]
    if not runs:
        raise UserError(f"No trial of {experiment!r} has a {metric} metric yet.")
    return runs


def run_doc(run, space: str | None = None) -> dict:
    """A trial run as an exported YAML holds it: nested config, metrics, run ids, checkpoint, and the
    search space (spaces/) it came from, which names the paper an evaluation compares with."""
    return {
        "config": unflatten({k: parse_value(v) for k, v in run.data.params.items()}),
        "metrics": dict(sorted(run.data.metrics.items())),
        "mlflow_run_id": run.info.run_id,
        "parent_run_id": run.data.tags.get("mlflow.parentRunId"),
        "status": run.data.tags.get("cxr.status"),
        **({"confirmed_val_auc_mean": float(run.data.tags[MEAN_TAG])} if MEAN_TAG in run.data.tags else {}),
        "checkpoint": run.data.tags.get("cxr.checkpoint"),
        **({"space": space} if space else {}),
        **({"simulated": simulation.note(run.data.tags[simulation.TAG])} if simulation.TAG in run.data.tags else {}),
    }


def space_of_search(client: MlflowClient, run) -> str | None:
    """The search space of the search a trial run belongs to (its parent's cxr.space), if known to spaces/."""
    parent = run.data.tags.get("mlflow.parentRunId")
    space = client.get_run(parent).data.tags.get("cxr.space") if parent else None
    return space if space in spaces.names() else None


def export(tracking_uri: str, experiment: str, top: int, out, metric: str = "val_auc") -> list[Path]:
    client = MlflowClient(tracking_uri)
    runs = top_runs(client, experiment, top, metric)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, run in enumerate(runs, 1):
        path = out / f"{experiment}-{rank:02d}-{run.info.run_id[:8]}.yaml"
        path.write_text(yaml.safe_dump(run_doc(run, space_of_search(client, run)), sort_keys=False))
        written.append(path)
    return written


@cli
def main(argv=None) -> None:
    p = Parser(description=__doc__.splitlines()[0])
    add_tracking_flag(p)
    p.add_argument("--experiment", required=True)
    p.add_argument("--top", type=at_least(1), default=5)
    p.add_argument("--out", default="exports")
    p.add_argument("--metric", default="val_auc")
    args = p.parse_args(argv)
    check_tracking(args.tracking_uri)
    written = export(args.tracking_uri, args.experiment, args.top, args.out, args.metric)
    for path in written:
        print(path)
    simulated = [p for p in written if "simulated" in yaml.safe_load(p.read_text())]
    if simulated:
        print(f"note: {len(simulated)} of these configs come from a --simulate search: their values were read "
              "from recorded curves, not trained (the YAML's 'simulated' key says from which table)")


if __name__ == "__main__":
    main()
