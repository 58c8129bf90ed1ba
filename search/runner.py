"""The shared search runner: flags -> data + cache -> Tuner(OptunaSearch + ASHA + MLflow) -> best config.

Every search script hands a `spaces.SearchSpec` to `main()`. The same command runs on a
laptop (starts Ray locally) and on a cluster (RAY_ADDRESS set, e.g. by `ray submit`: the
project's packages are shipped to every worker with the job's runtime_env).
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import optuna
import ray
import yaml
from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.sample import Domain

import search
import spaces
import trainables
from search import mlflow_logging, search_space
from search.mlflow_logging import MLflowSearchCallback
from search.resources import GIB, autoscaling, check_resources
from search.tracking_check import check_tracking
from search.trial_state import AshaState, NoRetryOnUserError, ResumableOptunaSearch, ResumableSearchGenerator
from spaces import SearchSpec
from trainables.config import flatten, merge, resolve
from trainables.data.sources import dataset_label, is_synthetic, load_splits, resolve_root
from trainables.errors import Parser, UsageError, UserError, at_least, cli, one_line
from trainables.train import for_stage, split_cache, train_fn

METRIC, MODE = "val_auc", "max"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def parse_args(spec: SearchSpec, argv=None) -> argparse.Namespace:
    p = Parser(description=spec.description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=None, help="ChestX-ray14 or CheXpert root; default: the embedded synthetic set")
    p.add_argument("--num-samples", type=at_least(1), default=None, help="trials to run (default: the profile's)")
    p.add_argument("--max-epochs", type=at_least(1), default=None, help="epochs per trial = ASHA's max_t")
    p.add_argument("--grace-period", type=at_least(1), default=1, help="ASHA: epochs before a trial can be stopped")
    p.add_argument("--reduction-factor", type=at_least(2), default=2, help="ASHA: keep 1/eta at each rung")
    p.add_argument("--cpus-per-trial", type=at_least(0.01, float), default=_env_float("CXR_TUNE_CPUS_PER_TRIAL", 0.01),
                   help="env CXR_TUNE_CPUS_PER_TRIAL; default: a trial with whole GPUs gets the CPUs that come "
                        "with them on the cluster's GPU nodes (8 per GPU on an 8-CPU 1-GPU node) for its "
                        "loader workers, any other trial 1")
    p.add_argument("--gpus-per-trial", type=at_least(0.0, float), default=_env_float("CXR_TUNE_GPUS_PER_TRIAL", 0.0),
                   help="fractions allowed; env CXR_TUNE_GPUS_PER_TRIAL (an autoscaling cluster has no GPU "
                        "when the search starts: set it there); default 1 if the cluster has GPUs now, else 0")
    p.add_argument("--memory-per-trial", type=at_least(0.01, float), default=None, metavar="GIB",
                   help="memory Ray reserves for each trial, GiB (default: none reserved)")
    p.add_argument("--max-concurrent", type=at_least(0), default=0, help="0: as many as resources allow")
    p.add_argument("--storage-path", default=os.environ.get("CXR_TUNE_STORAGE_PATH", str(Path("~/ray_results").expanduser())),
                   help="Ray Tune results and checkpoints (a shared or s3:// path on a cluster); env CXR_TUNE_STORAGE_PATH")
    p.add_argument("--name", default=None, help="search name under the storage path; default: <script>-<time>")
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
                   help="MLflow tracking URI; env MLFLOW_TRACKING_URI")
    p.add_argument("--tracking-drain-timeout", type=at_least(0.0, float), default=300.0, metavar="S",
                   help="at the end, wait this long for MLflow to take the queued events; what is left goes "
                        "to <search>/mlflow_pending.jsonl for `python -m search.sync`")
    p.add_argument("--experiment-name", default=spec.script, help="MLflow experiment")
    p.add_argument("--seed", type=at_least(0, high=2 ** 32 - 1), default=0, help="seeds Optuna's TPE sampler and every trial")
    p.add_argument("--grid", action="store_true", help="run the paper's grid instead of the search")
    p.add_argument("--resume", action="store_true", help="continue the latest (or --name) search at --storage-path")
    p.add_argument("--smoke-test", action="store_true", help="tiny and fast, for CI")
    p.add_argument("--export", default=None, metavar="DIR", help="also write the top configs as YAML here")
    p.add_argument("--evaluate", action="store_true", help="after the search, score the best trial's checkpoint "
                   "on the test split beside the paper's table (search/evaluate.py), logged under the parent run")
    p.add_argument("--pretrained", dest="pretrained", action="store_true", default=None,
                   help="start from ImageNet weights (the default for real data)")
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="train from scratch (the default on the synthetic set)")
    return p.parse_args(argv)


def _env_float(name: str, low: float) -> float | None:
    value = os.environ.get(name)
    try:
        number = float(value) if value else None
    except ValueError:
        raise UsageError(f"{name}={value!r} must be a number (fractions allowed)") from None
    if number is not None and not number >= low:
        raise UsageError(f"{name}={value!r} must be >= {low:g}")
    return number


def default_cpus(gpus: float, nodes: list[dict]) -> float:
    """CPUs for a trial that takes `gpus` whole GPUs: what each GPU brings on the scarcest GPU
    node (CPUs / GPUs, rounded down), so every GPU of every node can still get a trial. A trial
    on a GPU fraction or none gets 1; so does one on a cluster with no GPU node up yet
    (autoscaling: set CXR_TUNE_CPUS_PER_TRIAL)."""
    if gpus < 1 or gpus != int(gpus):
        return 1
    per_gpu = [n["Resources"]["CPU"] / n["Resources"]["GPU"] for n in nodes
               if n.get("Alive") and n["Resources"].get("GPU") and n["Resources"].get("CPU")]
    return max(1, math.floor(min(per_gpu) * gpus)) if per_gpu else 1


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("cxr-tune")
    except PackageNotFoundError:
        v = "unknown"
    return f"{v}+{sha}" if sha else v


def connect_ray() -> None:
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        # Ship this checkout's packages so every node runs exactly the driver's code.
        modules = [Path(m.__file__).parent for m in (search, spaces, trainables)]
        ray.init(runtime_env={"py_modules": [str(m) for m in modules]}, log_to_driver=False)
    else:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)


def slash_keys(nested: dict) -> dict:
    """OptunaSearch names nested parameters 'a/b'; warm-start points must use the same keys."""
    return {k.replace(".", "/"): v for k, v in flatten(nested).items()}


def build_param_space(spec: SearchSpec, args, profile: dict) -> tuple[dict, list]:
    base = merge(spec.base, profile.get("config", {}))
    overrides = {"data": {}, "train": {"seed": args.seed}}
    if args.max_epochs:
        overrides["train"]["max_epochs"] = args.max_epochs
    if args.pretrained is not None:
        overrides["model"] = {"pretrained": args.pretrained}
    base = merge(base, overrides)
    if args.grid:
        return merge(base, spec.grid), []
    space = merge(spec.space, profile.get("space", {}))
    best = merge(spec.best, profile.get("best", {}))
    return merge(base, space), [slash_keys(best)]


def prepare_data(data_root, base: dict) -> dict:
    """Resolve the data once on the driver and build the cache, so trials only read it.

    When any trial may train in two stages (train.two_stage true, or a choice / grid that
    includes true), the stage-2 cache at twice the size is built here too.
    """
    root = resolve_root(data_root)
    # Searched data values (CheXpert's data.policy) change labels, never paths: one cache serves all.
    fixed = {k: v for k, v in base["data"].items() if not isinstance(v, Domain)}
    cfg = resolve({"data": {**fixed, "root": str(root)}})
    splits = load_splits(cfg["data"])
    two_stage = base.get("train", {}).get("two_stage", False)
    options = two_stage["grid_search"] if isinstance(two_stage, dict) and "grid_search" in two_stage \
        else getattr(two_stage, "categories", [two_stage])
    # On a cluster (RAY_ADDRESS) the driver's node runs no trials: each worker node builds its
    # own cache on first use, under the cache's file lock, so one trial per node does the work.
    stages = () if os.environ.get("RAY_ADDRESS") else (1, 2) if any(v is True for v in options) else (1,)
    for stage in stages:
        split_cache(for_stage(cfg, stage)["data"], splits)
    # The embedded set goes to trials as None: each node generates (or finds) its own copy, which
    # is identical (seeded), instead of looking for the driver's path on a node that lacks it.
    return {"root": str(root) if data_root is not None else None, "splits": splits}


def profile_name(args) -> str:
    return "smoke" if args.smoke_test else "cpu" if args.data is None else "full"


def pick_profile(spec: SearchSpec, args) -> dict:
    """smoke (--smoke-test), cpu (embedded data) or none; a CheXpert root adds spec.chexpert."""
    from trainables.data.sources import detect  # local: only this function needs it

    profile = spec.smoke if args.smoke_test else (spec.cpu if args.data is None else {})
    if args.data is not None and spec.chexpert and detect(resolve_root(args.data)) == "chexpert":
        profile = merge(profile, spec.chexpert)
    return profile


def trial_resources(args) -> dict:
    """What each trial asks Ray for, checked against the nodes there are (search/resources.py)."""
    connect_ray()
    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0
    cpus = args.cpus_per_trial if args.cpus_per_trial is not None else default_cpus(gpus, ray.nodes())
    memory = (args.memory_per_trial or 0) * GIB
    check_resources({"CPU": cpus, "GPU": gpus, "memory": memory}, ray.nodes(), autoscaling())
    print(f"each trial gets {cpus:g} CPU(s) and {gpus:g} GPU(s) (--cpus-per-trial, --gpus-per-trial)")
    return {"cpu": cpus, "gpu": gpus, **({"memory": memory} if memory else {})}


def search_callback(spec: SearchSpec, args, param_space: dict, warm: list, splits, name: str, exp_path: str,
                    tracking_dir: Path, num_samples: int, max_epochs: int) -> MLflowSearchCallback:
    """The MLflow callback, with what the parent run shows: tags, the space and settings as params,
    Optuna's distributions, and how trial runs are named."""
    dists = search_space.distributions(param_space)
    # run names show the progress table's columns first, then any other searched key
    order = [c.replace("/", ".") for c in spec.columns]
    keys = sorted(search_space.searched_keys(param_space), key=lambda k: order.index(k) if k in order else len(order))
    settings = {"search.num_samples": num_samples, "search.seed": args.seed, "search.profile": profile_name(args),
                "asha.max_t": max_epochs, "asha.grace_period": args.grace_period,
                "asha.reduction_factor": args.reduction_factor}
    return MLflowSearchCallback(
        args.tracking_uri, args.experiment_name, max_epochs, parent_name=name,
        pending_path=str(tracking_dir / "mlflow_pending.jsonl"), drain_timeout=args.tracking_drain_timeout,
        journal_path=str(tracking_dir / "mlflow_events.jsonl"),
        tags={"cxr.dataset": dataset_label(splits), "cxr.synthetic": str(is_synthetic(splits)).lower(),
              "cxr.split": splits.description, "cxr.space": spec.name, "cxr.code_version": code_version(),
              "cxr.mode": "grid" if args.grid else "search", "cxr.seed": str(args.seed),
              "cxr.ray_results": exp_path},
        parent_params={**search_space.space_params(param_space), **{k: str(v) for k, v in settings.items()}},
        space_json=search_space.to_json({k: dists[k] for k in keys}) if dists else None,
        name_keys=keys, log_keys={k for k, d in dists.items() if getattr(d, "log", False)},
        warm=[{k.replace("/", "."): v for k, v in w.items()} for w in warm])


# Per-request MLflow limits while the search runs: the outbox retries with its own backoff, so
# one call must fail fast rather than hold the queue for MLflow's ~4-minute default window.
# No client-side retry at all: urllib3 would resend a POST whose reply timed out (a second run).
MLFLOW_CALL_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


@cli
def main(spec: SearchSpec, argv=None):
    args = parse_args(spec, argv)
    profile = pick_profile(spec, args)
    param_space, warm = build_param_space(spec, args, profile)
    max_epochs = resolve({"train": {"max_epochs": param_space["train"]["max_epochs"]}})["train"]["max_epochs"]
    if args.grace_period > max_epochs:
        raise UsageError(f"--grace-period {args.grace_period} exceeds the {max_epochs} epoch(s) a trial runs; "
                         "lower it or raise --max-epochs")
    check_tracking(args.tracking_uri)
    storage = str(Path(args.storage_path).expanduser()) if "://" not in args.storage_path else args.storage_path
    name = args.name or (latest_search(storage, spec.script) if args.resume else None) \
        or f"{spec.script}-{time.strftime('%Y%m%d-%H%M%S')}"
    exp_path = f"{storage.rstrip('/')}/{name}"
    if args.resume and not tune.Tuner.can_restore(exp_path):
        raise UsageError(f"--resume: no restorable search at {exp_path}; pass --name of an existing one")
    # The tracking journal and any undelivered events stay on the driver's disk: with the search
    # itself when it is local, else in ./<name>-tracking/.
    tracking_dir = Path(exp_path) if "://" not in exp_path else Path.cwd() / f"{name}-tracking"

    resolve_root(args.data)  # the embedded set is generated (forking workers) before Ray starts threads here
    # Resources before the image cache: a request no node can meet must not wait for it.
    trainable = tune.with_resources(train_fn, trial_resources(args))

    data = prepare_data(args.data, param_space)
    param_space["data"]["root"] = data["root"]
    num_samples = 1 if args.grid else (args.num_samples or profile.get("num_samples", 20))

    if args.resume:
        tuner = tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        callback = search_callback(spec, args, param_space, warm, data["splits"], name, exp_path, tracking_dir,
                                   num_samples, max_epochs)
        searcher = None if args.grid else ResumableSearchGenerator(ResumableOptunaSearch(
            metric=METRIC, mode=MODE, sampler=optuna.samplers.TPESampler(seed=args.seed),
            points_to_evaluate=warm))
        scheduler = ASHAScheduler(time_attr="epoch", metric=METRIC, mode=MODE, max_t=max_epochs,
                                  grace_period=args.grace_period, reduction_factor=args.reduction_factor)
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(
                search_alg=searcher, num_samples=num_samples, trial_dirname_creator=trial_dirname,
                max_concurrent_trials=args.max_concurrent or None, scheduler=scheduler),
            run_config=tune.RunConfig(
                name=name, storage_path=storage,
                callbacks=[callback, AshaState(scheduler), NoRetryOnUserError()],
                # retries are for lost nodes and preemption; user errors end a trial at once (trial_state.py)
                failure_config=tune.FailureConfig(max_failures=2),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                progress_reporter=tune.CLIReporter(
                    metric_columns=["epoch", "val_auc", "val_loss", "train_loss", "images_per_s"],
                    parameter_columns=spec.columns, max_report_frequency=15, sort_by_metric=True,
                    metric=METRIC, mode=MODE),
                verbose=1))
    saved = {k: os.environ.get(k) for k in MLFLOW_CALL_LIMITS}
    os.environ.update({k: v for k, v in MLFLOW_CALL_LIMITS.items() if saved[k] is None})
    try:
        results = tuner.fit()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
    return report(results, spec, args, exp_path)


def make_report(tracking_uri: str, experiment: str, exp_path: str) -> None:
    """search.report on the finished search; a report that fails says so and leaves the search as it is."""
    from search.report import build
    from search.report_data import search_parent

    out = Path(exp_path) / "report" if "://" not in exp_path else None
    try:
        client = MlflowClient(tracking_uri)
        parent = search_parent(client, experiment, exp_path)
        if parent is None:
            raise UserError(f"no parent run tagged with {exp_path}")
        made = build(client, parent, out)
    except Exception as err:  # the search itself is done and logged: a figure must not turn it into a failure
        print(f"warning: no report ({one_line(err)}); retry with: python -m search.report "
              f"--tracking-uri {tracking_uri} --experiment {experiment}")
        return
    print(made.summary)
    for w in made.warnings:
        print(f"warning: {w}")
    where = f"{out / 'report.html'} and " if out else ""
    print(f"report: {where}the parent run's artifacts (report.html, learning_curves.png, param_importance.png, ...)")


def runs_table_url(ui: str, tracking_uri: str, experiment: str) -> str:
    """The UI's runs table ("Model training" view) sorted by val_auc, best first; the UI reads the
    order and the view from the URL."""
    exp = MlflowClient(tracking_uri).get_experiment_by_name(experiment)
    order = quote("metrics.`val_auc`")
    # workflowType: MLflow 3.17's UI otherwise opens on its GenAI pages when the user last used them
    return f"{ui}/#/experiments/{exp.experiment_id if exp else ''}/runs?orderByKey={order}&orderByAsc=false" \
        "&workflowType=machine_learning"


def trial_error(result) -> str:
    """The one line a trial failed with: its cxr_error, else the exception's last line."""
    reported = (result.metrics or {}).get("cxr_error")
    if reported:
        return reported
    lines = [l for l in str(result.error).splitlines() if l.strip()]
    return one_line(lines[-1]) if lines else type(result.error).__name__


def trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"  # Ray's default embeds the whole config in the path


def latest_search(storage: str, script: str) -> str | None:
    if "://" in storage:
        return None
    found = sorted(Path(storage).glob(f"{script}-*"), key=lambda p: p.stat().st_mtime)
    return found[-1].name if found else None


def report(results, spec: SearchSpec, args, exp_path: str):
    ok = [r for r in results if not r.error and r.metrics and math.isfinite(r.metrics.get(METRIC, math.nan))]
    best = max(ok, key=lambda r: r.metrics[METRIC]) if ok else None
    print(f"\n{len(results)} trials, {len(ok)} reported, {len(results) - len(ok)} errored.")
    errors = sorted({trial_error(r) for r in results if r.error})
    for message in errors[:5]:
        print(f"  trial error: {message}")
    if best is None:
        raise UserError(f"no trial reported val_auc ({'; '.join(errors[:3]) or 'no error recorded'}); "
                        f"details in {exp_path}")
    worst = min(ok, key=lambda r: r.metrics[METRIC])
    print(f"best val_auc {best.metrics[METRIC]:.4f} (worst {worst.metrics[METRIC]:.4f}); best config:")
    print(yaml.safe_dump(best.config, sort_keys=False))
    out = Path(exp_path) / "best_config.yaml" if "://" not in exp_path else None
    if out:
        out.write_text(yaml.safe_dump({"config": best.config, "metrics": {METRIC: best.metrics[METRIC]}}, sort_keys=False))
        print(f"best config written to {out}")
    left = mlflow_logging.undelivered
    if left["path"]:
        print(f"MLflow: {left['count']} event(s) undelivered; after `python -m search.sync {left['path']}` "
              f"the search is in experiment '{args.experiment_name}'. --export/--evaluate need those runs: "
              "run search.export / search.evaluate after the sync.")
        return results
    uri = args.tracking_uri
    shown = f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}" if uri.startswith("sqlite:///") else uri
    print(f"MLflow: experiment '{args.experiment_name}' at {shown}")
    make_report(shown, args.experiment_name, exp_path)
    if uri.startswith(("http://", "https://")):
        ui = uri.rstrip("/")
        print("browse: the runs table, best first:")
    else:
        ui = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
        print(f"browse: mlflow ui --backend-store-uri {shown}   then open the runs table, best first:")
    print(f"  {runs_table_url(ui, shown, args.experiment_name)}")
    if args.export:
        from search.export import export
        written = export(shown, args.experiment_name, top=3, out=args.export)
        print(f"exported {len(written)} config(s) to {args.export}")
    if args.evaluate:
        from search.evaluate import evaluate_search
        evaluate_search(shown, args.experiment_name, exp_path)
    return results
