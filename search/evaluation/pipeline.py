"""One candidate, evaluated: its weights (checkpoint or retrain) -> test-split scores with CIs ->
test_auc.csv, roc.png, comparison.md beside its paper -> one MLflow run (mlflow_run.py).

`evaluate_all` is what `python -m search.evaluate` and a search's `--evaluate` both call, with
options as an object (`cli.options()` for a search), so the tracking check and the parent-run lookup
happen once.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

import spaces
from search.terminal import say
from search.evaluation import comparison, roc_plot
from search.evaluation.candidates import Candidate, read_state
from search.evaluation.scoring import score_split
from spaces.paper_numbers import DATASETS, numbers
from trainables.checkpoints import LocalReporter, load_state
from trainables.config import merge
from trainables.data import fingerprint
from trainables.data.cache import get_cache
from trainables.data.sources import dataset_label, is_synthetic, load_splits
from trainables.devices import pick_device
from trainables.errors import UserError
from trainables.predict import final_config, scores, trained_model
from trainables.train import run


def rows_of_test_split(splits, data_cfg: dict):
    """The test split's uint8 rows at data.resize, from a cache of the test images alone."""
    cache = get_cache(splits.test.paths, data_cfg["resize"], data_cfg["cache_dir"])
    idx = cache.rows(splits.test.paths)
    return cache.array if np.array_equal(idx, np.arange(len(idx))) else cache.array[idx]


def trained_state(c: Candidate, config: dict, args, out: Path) -> dict:
    """The candidate's weights: its checkpoint, or (args.retrain) the best-validation epoch of a new training."""
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
    spec = spaces.get(space) if space else None
    row = spec.paper.get(DATASETS[splits.name]) if spec else None
    paper = numbers(row) if row else None
    ctx = comparison.Context(
        source=f"trial run {c.run_id}" if c.run_id else c.name, mode="retrain" if args.retrain else "checkpoint",
        epoch=int(state["epoch"]), dataset=dataset_label(splits), split=splits.description, space=space,
        synthetic=is_synthetic(splits), inputs=tuple(fingerprint.inputs(splits, ("test",))))
    files = {"test_auc.csv": out / "test_auc.csv", "roc.png": out / "roc.png", "comparison.md": out / "comparison.md"}
    result.table.to_csv(files["test_auc.csv"])
    roc_plot.plot(result, files["roc.png"], f"{ctx.source}: test ROC ({ctx.dataset}, {result.images} images)")
    text = comparison.markdown(result, paper, ctx)
    files["comparison.md"].write_text(text)
    from search.evaluation.mlflow_run import log_evaluation  # MLflow's model code is slow to import

    run_id = log_evaluation(client, c, config, state, list(splits.labels), result, ctx, paper, files, args)
    return {"name": c.name, "out": out, "run_id": run_id, "scores": result, "markdown": text}


def evaluate_all(found: list[Candidate], args, client: MlflowClient) -> list[dict]:
    """Each candidate evaluated, then its table printed."""
    start = time.perf_counter()
    results = [evaluate(c, args, client) for c in found]
    for r in results:
        table = [line for line in r["markdown"].splitlines() if line.startswith("|")]
        say(f"\n{r['name']}: test AUC {r['scores'].mean:.4f}; MLflow run {r['run_id']}; files in {r['out']}")
        print("\n".join(table))
    print(f"\nevaluated {len(results)} trial(s) in {time.perf_counter() - start:.0f} s")
    return results
