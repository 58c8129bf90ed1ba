"""One evaluation into MLflow: a run (`cxr.role = evaluation`) nested under the search's parent run,
tagged with the source trial; test metrics, the three files, the model as a state dict plus its
config YAML, and, with `--register NAME`, a pyfunc model in the registry (pyfunc_model.py).
"""
from __future__ import annotations

import math
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from search.evaluation.scoring import MEAN, WAUC
from search.tracking.store import dataset_inputs, experiment_id, log_params, quiet_artifacts, using_tracking_uri
from search.tracking.view import SEARCH_TAG

PYFUNC = Path(__file__).with_name("pyfunc_model.py")
# Set on each newly registered version, so users deploy `models:/NAME@champion`, not a version
# number (MLflow deprecated stages for aliases).
ALIAS = "champion"


def _metrics(result) -> list[Metric]:
    out = []
    for label, r in result.table.iterrows():
        base, suffix = {MEAN: ("test_auc", ""), WAUC: ("test_wauc", "")}.get(label, ("test_auc", f"/{label}"))
        values = {f"{base}{suffix}": r["auc"], f"{base}_ci_low{suffix}": r["ci_low"],
                  f"{base}_ci_high{suffix}": r["ci_high"]}
        if suffix:
            values[f"test_positives{suffix}"] = r["positives"]
        out += [Metric(k, float(v), 0, 0) for k, v in values.items() if v is not None and math.isfinite(float(v))]
    return out


def log_evaluation(client: MlflowClient, c, config: dict, state: dict, labels: list, result, ctx, paper,
                   files: dict, args) -> str:
    tags = {"cxr.role": "evaluation", "cxr.mode": ctx.mode, "cxr.checkpoint_epoch": str(ctx.epoch),
            "cxr.dataset": ctx.dataset, "cxr.split": ctx.split, "cxr.synthetic": str(ctx.synthetic).lower(),
            "cxr.ci_method": result.method, "cxr.space": ctx.space or "",
            "cxr.paper_system": paper.row.system if paper else ""}
    if c.parent_id:
        tags["mlflow.parentRunId"] = c.parent_id
        search = client.get_run(c.parent_id).data.tags.get(SEARCH_TAG)
        if search:  # shown in its search's group of the UI's view (search/tracking/view.py)
            tags[SEARCH_TAG] = search
    if c.run_id:
        tags["cxr.source_run_id"] = c.run_id
    run = client.create_run(c.experiment_id or experiment_id(client, args.experiment_name),
                            run_name=f"evaluation-{c.name}", tags=tags)
    run_id = run.info.run_id
    log_params(client, run_id, config)
    client.log_batch(run_id, metrics=_metrics(result))
    if ctx.inputs:
        client.log_inputs(run_id, datasets=dataset_inputs(list(ctx.inputs)))
    for path in files.values():
        client.log_artifact(run_id, str(path))
    with tempfile.TemporaryDirectory() as d:
        weights = {"state_dict": Path(d) / "state_dict.pt", "config": Path(d) / "config.yaml"}
        torch.save({"model": state["model"], "epoch": int(state["epoch"]), "step": int(state.get("step", 0))},
                   weights["state_dict"])
        weights["config"].write_text(yaml.safe_dump({"config": config, "labels": labels}, sort_keys=False))
        client.log_artifacts(run_id, d, artifact_path="weights")
        if args.register:
            register(client, run_id, weights, labels, config, state, args.register)
    client.set_terminated(run_id, "FINISHED")
    return run_id


def register(client: MlflowClient, run_id: str, weights: dict, labels: list, config: dict, state: dict,
             name: str) -> None:
    import mlflow
    import timm
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    from trainables.predict import final_config

    size = final_config(config, int(state["epoch"]))["data"]["resize"]
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, size, size))]),
                               outputs=Schema([ColSpec("double", label) for label in labels]))
    with using_tracking_uri(client.tracking_uri), mlflow.start_run(run_id=run_id), warnings.catch_warnings(), \
            quiet_artifacts():
        # MLflow asks for type hints and an input example; the signature above says it all
        warnings.simplefilter("ignore", UserWarning)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(PYFUNC), artifacts={k: str(v) for k, v in weights.items()},
            signature=signature, registered_model_name=name,
            # listed, not inferred: inference would load the model in a subprocess
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"timm=={timm.__version__}",
                              f"numpy=={np.__version__}", "pandas", "pyyaml", "cxr-tune"])
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, ALIAS, version)
    print(f"registered {name} version {version} as {name}@{ALIAS}: load it with "
          f"mlflow.pyfunc.load_model('models:/{name}@{ALIAS}')")
