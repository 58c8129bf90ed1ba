"""What an evaluation scores: a trial run, an exported YAML or a search's top trials, each as a
`Candidate` (its config, its checkpoint, where its MLflow runs are, whose paper it follows)."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import spaces
from search.export import run_doc, top_runs
from search.storage import is_remote
from trainables.checkpoints import STATE_FILE, load_state
from trainables.config import config_of, read_config_doc
from trainables.errors import UserError


@dataclass
class Candidate:
    name: str                  # folder name under --out
    config: dict
    checkpoint: str | None     # a checkpoint directory or URI
    run_id: str | None = None  # the source trial's MLflow run
    parent_id: str | None = None
    experiment_id: str | None = None
    space: str | None = None


def read_state(where: str) -> dict:
    """The checkpoint's state dicts, from a local directory or a URI (s3://, gs://, file://)."""
    if not is_remote(where):
        if not (Path(where) / STATE_FILE).is_file():
            raise UserError(f"checkpoint {where} has no {STATE_FILE}: the trial's storage must be reachable "
                             "from here (pass the search's --storage-path there), or train again with --retrain")
        return load_state(where)
    import pyarrow.fs as pafs

    try:
        fs, path = pafs.FileSystem.from_uri(where)
        with tempfile.TemporaryDirectory() as d:
            pafs.copy_files(f"{path.rstrip('/')}/{STATE_FILE}", f"{d}/{STATE_FILE}", source_filesystem=fs)
            return load_state(d)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read checkpoint {where}: {err}; check the credentials for that storage, or "
                         "train again with --retrain") from None


def _model_space(config: dict) -> str | None:
    return spaces.for_model(config.get("model", {}).get("name"))


def _space_of(client: MlflowClient, doc: dict) -> str | None:
    if doc.get("space"):
        return doc["space"]
    if doc.get("parent_run_id"):
        space = client.get_run(doc["parent_run_id"]).data.tags.get("cxr.space")
        if space:
            return space
    return _model_space(doc["config"])


def from_run(client: MlflowClient, run, name: str) -> Candidate:
    doc = run_doc(run)
    return Candidate(name=name, config=doc["config"], checkpoint=doc["checkpoint"], run_id=run.info.run_id,
                     parent_id=doc["parent_run_id"], experiment_id=run.info.experiment_id,
                     space=_space_of(client, doc))


def candidates(args, client: MlflowClient) -> list[Candidate]:
    """What `args` (the CLI's SOURCE or --experiment/--top) names, as candidates to evaluate."""
    if args.experiment:
        runs = top_runs(client, args.experiment, args.top)
        return [from_run(client, r, f"{args.experiment}-{k:02d}-{r.info.run_id[:8]}") for k, r in enumerate(runs, 1)]
    path = Path(args.source)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise UserError(f"{path} does not exist; pass an exported YAML, a trial's MLflow run id, or --experiment")
        doc = read_config_doc(path)
        config = config_of(doc, path)
        run = _get_run(client, doc.get("mlflow_run_id"))
        if run is not None:  # an exported trial: its MLflow run places the evaluation; the file's config wins
            c = from_run(client, run, path.stem)
            c.config, c.checkpoint = config, doc.get("checkpoint") or c.checkpoint
            return [c]
        if doc.get("mlflow_run_id"):
            print(f"note: run {doc['mlflow_run_id']} is not at {args.tracking_uri}; the evaluation is logged to "
                  f"experiment {args.experiment_name!r} instead")
        return [Candidate(name=path.stem, config=config, checkpoint=doc.get("checkpoint"),
                          space=doc.get("space") or _model_space(config))]
    run = _get_run(client, args.source)
    if run is None:
        raise UserError(f"{args.source!r} is neither a YAML file nor a run id at {args.tracking_uri}")
    return [from_run(client, run, f"run-{run.info.run_id[:8]}")]


def _get_run(client: MlflowClient, run_id: str | None):
    if not run_id:
        return None
    try:
        return client.get_run(run_id)
    except MlflowException:
        return None
