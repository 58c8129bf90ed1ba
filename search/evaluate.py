"""Test-set evaluation: a trained config -> per-label test AUC with patient-level 95% CIs, beside the paper.

    python -m search.evaluate exports/dual_weights-01-ab12cd34.yaml       # an exported YAML
    python -m search.evaluate 4f1c0e...                                  # an MLflow trial run id
    python -m search.evaluate --experiment dual_weights --top 3          # a search's best 3 trials
    python -m search.evaluate --experiment dual_weights --top 1 --retrain

By default the trial's own checkpoint is scored (`cxr.checkpoint`: a local path or object
storage, read through pyarrow's filesystems as Ray writes it). `--retrain` trains the config from
scratch for its full schedule on the train split, keeps the epoch with the best validation AUC
(as the papers select), and scores that. The test split is the one the readers carve: the
official ChestX-ray14 test list, CheXpert's valid.csv (its 5 competition observations).

Each evaluation writes `test_auc.csv`, `roc.png` and `comparison.md` to `--out/<name>/` and logs
them to one MLflow run (`cxr.role = evaluation`) nested under the search's parent run and tagged
with the source trial's run id, with the model as a state dict and its config YAML;
`--register NAME` also registers it in the Model Registry (search/pyfunc_model.py).
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search import comparison, roc_plot
from search.export import run_doc, top_runs
from search.report_data import search_parent
from search.scoring import score_split
from search.tracking_check import check_tracking
from spaces.paper_numbers import DATASETS, numbers
from trainables.config import merge
from trainables.errors import Parser, UserError, at_least, cli
from trainables.data.cache import get_cache
from trainables.data.sources import dataset_label, is_synthetic, load_splits
from trainables.predict import final_config, scores, trained_model
from trainables.reporting import STATE_FILE, LocalReporter, load_state
from trainables.train import pick_device, config_of, read_config_doc, run

SPACES = ("dualchexnet", "msml", "cb_focal", "am_densenet", "mlrfnet")
MODEL_SPACES = {"dualchexnet": "dualchexnet", "fmsml": "msml", "am_densenet": "am_densenet", "mlrfnet": "mlrfnet"}
DEFAULT_EXPERIMENT = "cxr-evaluations"  # where a config with no MLflow trial behind it is logged


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
    if "://" not in where:
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
    return MODEL_SPACES.get(config.get("model", {}).get("name"))


def _space_of(client: MlflowClient, doc: dict) -> str | None:
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
                          space=_model_space(config))]
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


def rows_of_test_split(splits, data_cfg: dict):
    """The test split's uint8 rows at data.resize, from a cache of the test images alone."""
    cache = get_cache(splits.test.paths, data_cfg["resize"], data_cfg["cache_dir"])
    idx = cache.rows(splits.test.paths)
    return cache.array if np.array_equal(idx, np.arange(len(idx))) else cache.array[idx]


def trained_state(c: Candidate, config: dict, args, out: Path) -> dict:
    if not args.retrain:
        if not c.checkpoint:
            raise UserError(f"{c.name}: no checkpoint recorded (cxr.checkpoint); train it with --retrain")
        return read_state(c.checkpoint)
    config = merge(config, {"train": {"max_epochs": args.max_epochs}} if args.max_epochs else {})
    folder = out / "retrain"
    shutil.rmtree(folder, ignore_errors=True)  # a new model: none of an earlier retrain's epochs
    print(f"{c.name}: training from scratch for {config.get('train', {}).get('max_epochs', 'the default')} "
          f"epochs, keeping the best-validation epoch, in {folder}")
    run(config, LocalReporter(folder))
    return load_state(folder / "best")


def evaluate(c: Candidate, args, client: MlflowClient) -> dict:
    out = Path(args.out) / c.name
    out.mkdir(parents=True, exist_ok=True)
    config = merge(c.config, {"data": {"root": args.data}} if args.data else {})
    config = merge(config, {"train": {"device": args.device}})
    state = trained_state(c, config, args, out)
    cfg = final_config(config, int(state["epoch"]))
    splits = load_splits(cfg["data"])
    device = pick_device(cfg)
    model = trained_model(cfg, state, len(splits.labels), device)
    y_score = scores(model, cfg, rows_of_test_split(splits, cfg["data"]), device)
    result = score_split(splits.test, y_score, splits.labels, splits.eval_labels, args.bootstrap, args.seed)
    space = args.space or c.space
    spec = importlib.import_module(f"spaces.{space}").SPEC if space else None
    row = spec.paper.get(DATASETS[splits.name]) if spec else None
    paper = numbers(row) if row else None
    ctx = comparison.Context(
        source=f"trial run {c.run_id}" if c.run_id else c.name, mode="retrain" if args.retrain else "checkpoint",
        epoch=int(state["epoch"]), dataset=dataset_label(splits), split=splits.description, space=space,
        synthetic=is_synthetic(splits))
    files = {"test_auc.csv": out / "test_auc.csv", "roc.png": out / "roc.png", "comparison.md": out / "comparison.md"}
    result.table.to_csv(files["test_auc.csv"])
    roc_plot.plot(result, files["roc.png"], f"{ctx.source}: test ROC ({ctx.dataset}, {result.images} images)")
    text = comparison.markdown(result, paper, ctx)
    files["comparison.md"].write_text(text)
    from search.evaluation_logging import log_evaluation  # MLflow's model code is slow to import

    run_id = log_evaluation(client, c, config, state, list(splits.labels), result, ctx, paper, files, args)
    return {"name": c.name, "out": out, "run_id": run_id, "scores": result, "markdown": text}


def evaluate_search(tracking_uri: str, experiment: str, exp_path: str) -> list[dict]:
    """A search script's --evaluate: the best trial of the search stored at `exp_path` (its parent
    run's cxr.best_run_id), evaluated from its checkpoint into `exp_path`/evaluation."""
    parent = search_parent(MlflowClient(tracking_uri), experiment, exp_path)
    best = parent.data.tags.get("cxr.best_run_id") if parent else None
    if not best:
        raise UserError(f"--evaluate: no best trial recorded in MLflow for {exp_path}")
    out = f"{exp_path}/evaluation" if "://" not in exp_path else "evaluations"
    return main([best, "--tracking-uri", tracking_uri, "--out", out])


def parse_args(argv=None) -> argparse.Namespace:
    p = Parser(description=__doc__.splitlines()[0],
               formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("source", nargs="?", help="an exported YAML (or any trial config YAML), or a trial's MLflow run id")
    p.add_argument("--experiment", help="evaluate this search's top trials (by final val_auc) instead of SOURCE")
    p.add_argument("--top", type=at_least(1), default=1, help="with --experiment: how many trials")
    p.add_argument("--retrain", action="store_true", help="train from scratch (full schedule, best-val epoch) "
                   "instead of loading the trial's checkpoint")
    p.add_argument("--max-epochs", type=at_least(1), default=None, help="with --retrain: override train.max_epochs")
    p.add_argument("--data", default=None, help="the dataset root on this machine, if not the trial's")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--space", choices=SPACES, default=None,
                   help="whose paper to compare with (default: the search's space, from MLflow)")
    p.add_argument("--bootstrap", type=at_least(1), default=1000, help="bootstrap resamples of patients")
    p.add_argument("--seed", type=at_least(0), default=0, help="seeds the bootstrap")
    p.add_argument("--out", default="evaluations", help="one folder per evaluated trial goes here")
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"),
                   help="MLflow; env MLFLOW_TRACKING_URI")
    p.add_argument("--experiment-name", default=DEFAULT_EXPERIMENT,
                   help="MLflow experiment for a config with no trial run behind it")
    p.add_argument("--register", metavar="NAME", default=None,
                   help="also register the model in MLflow's Model Registry under NAME")
    args = p.parse_args(argv)
    if bool(args.source) == bool(args.experiment):
        p.error("pass SOURCE (a YAML or a run id) or --experiment NAME, not both and not neither")
    if args.max_epochs and not args.retrain:
        p.error("--max-epochs only applies with --retrain")
    return args


@cli
def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    check_tracking(args.tracking_uri)
    start = time.perf_counter()
    client = MlflowClient(args.tracking_uri)
    results = [evaluate(c, args, client) for c in candidates(args, client)]
    for r in results:
        table = [line for line in r["markdown"].splitlines() if line.startswith("|")]
        print(f"\n{r['name']}: test AUC {r['scores'].mean:.4f}; files in {r['out']}; MLflow run {r['run_id']}")
        print("\n".join(table))
    print(f"\nevaluated {len(results)} trial(s) in {time.perf_counter() - start:.0f} s")
    return results


if __name__ == "__main__":
    main()
