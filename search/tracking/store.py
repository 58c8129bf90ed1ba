"""What every part of cxr-tune agrees on about the MLflow store: where it is by default, the
limits of a param, the names of the files and tags a search leaves, and the small calls they share.

Imports neither Ray nor the outbox: the report, the evaluation and the sync read a search with
this alone.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from trainables.config import flatten

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # beside the command, as `mlflow ui` looks for it
SPACE_FILE = "search_space.json"  # the parent run's Optuna distributions, for the report's study
BEST_CONFIG_FILE = "best_config.yaml"


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def add_tracking_flag(parser) -> None:
    """--tracking-uri, as every command takes it."""
    parser.add_argument("--tracking-uri", default=default_tracking_uri(), metavar="URI",
                        help="MLflow tracking URI; env MLFLOW_TRACKING_URI")


def absolute_uri(uri: str) -> str:
    """A sqlite URI with its path made absolute: what a user pastes elsewhere still opens the same store."""
    return f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}" if uri.startswith("sqlite:///") else uri


MAX_PARAM = 500  # characters of an MLflow param value

# Declares the experiment a model-training one, not GenAI (traces, tokens). MLflow 3.17's own UI
# still opens on the view the user last chose, so the URL a search prints names the view too.
KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"


def experiment_id(client: MlflowClient, name: str) -> str:
    """Get or create; another search creating the same experiment a moment ago is not an error."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name, tags={KIND_TAG: KIND})
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        exp = client.get_experiment_by_name(name)
    if KIND_TAG not in exp.tags:  # made by an earlier cxr-tune; a kind the user chose stays
        client.set_experiment_tag(exp.experiment_id, KIND_TAG, KIND)
    return exp.experiment_id


def log_param_texts(client: MlflowClient, run_id: str, params: dict) -> None:
    """Params {name: text}, in MLflow's batches of at most 100."""
    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i:i + 100])


def param_texts(config: dict) -> dict:
    """The flattened config as MLflow param values."""
    return {k: str(v)[:MAX_PARAM] for k, v in sorted(flatten(config).items())}


def log_params(client: MlflowClient, run_id: str, config: dict) -> None:
    """The flattened config as params."""
    log_param_texts(client, run_id, param_texts(config))


def dataset_inputs(datasets: list[dict]) -> list[DatasetInput]:
    """trainables/data/fingerprint.py's dicts as MLflow dataset inputs, each tagged with its context."""
    return [DatasetInput(Dataset(d["name"], d["digest"], d["source_type"], d["source"], profile=d.get("profile")),
                         tags=[InputTag("mlflow.data.context", d["context"])]) for d in datasets]


@contextmanager
def quiet_artifacts():
    """MLflow draws a progress bar per artifact download, into whatever a command prints then."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    saved = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved


@contextmanager
def using_tracking_uri(uri: str):
    """MLflow's global tracking URI (which fluent calls such as start_run and log_model use, and which
    mlflow.set_tracking_uri also writes to the environment for subprocesses): `uri` for the block,
    then back as it was."""
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # None: unset, MLflow's default again
