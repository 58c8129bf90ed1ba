"""The shared search runner: flags -> data + cache -> Tuner(OptunaSearch + ASHA + MLflow) -> best config.

Every search script hands a `spaces.SearchSpec` to `main()`. The same command runs on a
laptop (starts Ray locally) and on a cluster (RAY_ADDRESS set, e.g. by `ray submit`: the
project's packages are shipped to every worker with the job's runtime_env). The flags are in
flags.py, the steps after the search in after_search.py.
"""
from __future__ import annotations

import math
import os
import subprocess
import time
from pathlib import Path

import ray
from ray import tune
from ray.tune.search.sample import Domain

import search
import spaces
import trainables
from search import search_space
from search.after_search import ConfirmPlan, Finished, after_search
from search.console import LiveView, env_defaults, old_reporter, quiet_libraries, tune_console
from search.flags import parse_args
from search.scheduling import packing, proposals
from search.scheduling.oom_retry import PackedASHA
from search.scheduling.replicas import ReplicatingSearch
from search.scheduling.resources import GIB, autoscaling, check_resources
from search.scheduling.rungs import milestones
from search.scheduling.stopping import PatienceStopper
from search.scheduling.trial_state import (AshaState, LimitedSearch, NoRetryOnUserError, ResumableOptunaSearch,
                                          ResumableSearchGenerator)
from search.simulation import trainable as simulation
from search.simulation.table import Table
from search.storage import is_remote, latest_search
from search.terminal import say
from search.tracking.callback import Delivery, MLflowSearchCallback, ParentRun
from search.tracking.check import check_tracking
from search.tracking.space import to_json
from spaces import DEMO_TIME_BUDGET, SearchSpec
from trainables.config import flatten, merge, resolve
from trainables.data.sources import dataset_label, is_synthetic, load_splits, resolve_root
from trainables.errors import UsageError, cli
from trainables.stages import for_stage, split_cache
from trainables.train import train_fn

METRIC, MODE = "val_auc", "max"


def default_cpus(gpus: float, nodes: list[dict]) -> float:
    """CPUs for a trial that takes `gpus` whole GPUs: what each GPU brings on the scarcest GPU
    node (CPUs / GPUs, rounded down), so every GPU of every node can still get a trial. A trial
    on a GPU fraction or none gets 1; so does one on a cluster with no GPU node up yet
    (autoscaling: set CXR_TUNE_CPUS_PER_TRIAL)."""
    if gpus < 1 or gpus != int(gpus):
        return 1
    per_gpu = packing.cpus_per_gpu(nodes)
    return max(1, math.floor(per_gpu * gpus)) if per_gpu else 1


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


# Where neither the paper's space nor the profile says otherwise, from the replay over the recorded
# tables (docs/replay.md; benchmarks/replay_anytime.py):
# - No ASHA cuts on real data (grace = every epoch): on DualCheXNet's table an epoch-1 value ranked the
#   cells at chance and its cuts set the 90th-percentile regret; they paid only on cb_focal's, whose
#   epoch 1 ranks the learning rate. --grace-period brings them back; the report gives each rung's rank
#   agreement for the user's own search.
# - Random search: TPE, GPSampler and QMC did not beat it at every budget (search/scheduling/proposals.py).
# - Confirmation of the top configs with 2 other seeds when it fits in a fifth of the trainings (K x 2
#   <= num_samples / 4, K of 2-3; one confirmed config cannot change the pick): re-training a few
#   configs cuts the winner's curse at large budgets, and costs too many configs searched at small ones.
ASHA = {"grace_period": None, "reduction_factor": 2}   # grace None: every epoch, no cuts
CONFIRM = {"confirm": 3, "confirm_seeds": 2}
SAMPLER = "random"
RETRAIN_SHARE = 0.2


def defaults(spec: SearchSpec, profile: dict) -> dict:
    """grace_period, reduction_factor, confirm, confirm_seeds, sampler: the profile's, else the paper
    setup's, else ASHA, CONFIRM and SAMPLER above."""
    return {**ASHA, **CONFIRM, "sampler": spec.sampler or SAMPLER, **spec.asha, **profile.get("asha", {}),
            **profile.get("confirm", {}), **({"sampler": profile["sampler"]} if "sampler" in profile else {})}


def confirm_for_budget(most: int, seeds: int, num_samples: int) -> int:
    """Configs confirmed with `seeds` others within RETRAIN_SHARE of all trainings: at most `most`, and
    none where fewer than 2 fit."""
    k = min(most, int(num_samples * RETRAIN_SHARE / (1 - RETRAIN_SHARE) // seeds)) if seeds else 0
    return k if k >= 2 else 0


def fill_defaults(spec: SearchSpec, profile: dict, args, max_epochs: int | None = None,
                  num_samples: int | None = None) -> None:
    """--grace-period / --reduction-factor / --confirm / --confirm-seeds / --sampler where not given:
    `defaults` (the grace period at most `max_epochs`: a recorded table may have fewer epochs than the
    profile; None: every epoch, set once the epochs are known; the real-data confirmation sized to
    `num_samples`; no confirmation after a search with --replicates unless --confirm asks for it)."""
    given = {k for k in ("confirm", "confirm_seeds") if getattr(args, k) is not None}
    for key, value in defaults(spec, profile).items():
        if getattr(args, key) is None:
            if key == "confirm" and getattr(args, "replicates", 0):
                value = 0     # the replicate rungs re-train inside the search; --confirm K adds to them
            if key == "grace_period" and max_epochs:
                value = min(value or max_epochs, max_epochs)
            setattr(args, key, value)
    if "confirm" not in given and "confirm" not in profile.get("confirm", {}) and num_samples and not args.grid:
        args.confirm = confirm_for_budget(args.confirm, args.confirm_seeds, num_samples)


def trial_resources(args, param_space: dict) -> tuple[dict, dict | None]:
    """What each trial asks Ray for, checked against the nodes there are (search/scheduling/resources.py), and
    with --trials-per-gpu what a packed trial that ran out of GPU memory gets for its retry."""
    connect_ray()
    alone = None
    if args.trials_per_gpu is not None:
        shared, alone, why = packing.plan(args.trials_per_gpu, param_space, ray.nodes(), packing.probe_gpu,
                                          declared=args.cpus_per_gpu)
        print(why, flush=True)
        cpus, gpus = (args.cpus_per_trial or shared["cpu"]), shared["gpu"]
    else:
        gpus = args.gpus_per_trial
        if gpus is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0
        cpus = args.cpus_per_trial if args.cpus_per_trial is not None else default_cpus(gpus, ray.nodes())
    memory = (args.memory_per_trial or 0) * GIB
    check_resources({"CPU": cpus, "GPU": gpus, "memory": memory}, ray.nodes(), autoscaling())
    print(f"each trial gets {cpus:g} CPU(s) and {gpus:g} GPU(s) (--cpus-per-trial, --gpus-per-trial, "
          "--trials-per-gpu)")
    return {"cpu": cpus, "gpu": gpus, **({"memory": memory} if memory else {})}, alone


def dataset_tags(splits, table: Table | None) -> dict:
    if table is not None:
        return {"cxr.dataset": f"recorded curves: {table.name}", "cxr.synthetic": "true",
                "cxr.split": f"recorded seeds {table.pool_seeds}", simulation.TAG: table.name,
                "cxr.simulated_table": table.source}
    return {"cxr.dataset": dataset_label(splits), "cxr.synthetic": str(is_synthetic(splits)).lower(),
            "cxr.split": splits.description}


def parent_run(spec: SearchSpec, args, param_space: dict, warm: list, data: dict, name: str, exp_path: str,
               num_samples: int, max_epochs: int, table: Table | None = None) -> ParentRun:
    """What the parent run shows: tags, the space and settings as params, Optuna's distributions,
    and how trial runs are named."""
    dists = search_space.distributions(param_space)
    # run names show the progress table's columns first, then any other searched key
    order = [c.replace("/", ".") for c in spec.columns]
    keys = sorted(search_space.searched_keys(param_space), key=lambda k: order.index(k) if k in order else len(order))
    settings = {"search.num_samples": num_samples, "search.seed": args.seed, "search.profile": profile_name(args),
                "asha.max_t": max_epochs, "asha.grace_period": args.grace_period,
                "asha.reduction_factor": args.reduction_factor, "search.max_concurrent": concurrency(args, num_samples)
                or "resources", "search.time_budget_s": args.time_budget or "none"}
    if not args.grid:
        settings.update({"search.sampler": args.sampler, "search.patience": args.patience or "off",
                         "search.min_gain": args.min_gain,
                         "search.startup_trials": args.startup_trials or proposals.startup_trials(num_samples),
                         "search.confirm": args.confirm, "search.confirm_seeds": args.confirm_seeds,
                         "search.replicates": args.replicates, "search.replicate_eta": args.replicate_eta})
    return ParentRun(
        name=name,
        tags={**dataset_tags(data["splits"], table), "cxr.space": spec.name, "cxr.code_version": code_version(),
              "cxr.mode": "grid" if args.grid else "search", "cxr.seed": str(args.seed),
              "cxr.ray_results": exp_path},
        params={**search_space.space_params(param_space), **{k: str(v) for k, v in settings.items()}},
        space_json=to_json({k: dists[k] for k in keys}) if dists else None,
        name_keys=tuple(keys), log_keys=frozenset(k for k, d in dists.items() if getattr(d, "log", False)),
        warm=tuple({k.replace("/", "."): v for k, v in w.items()} for w in warm),
        trial_tags={simulation.TAG: table.name} if table is not None else {})


# Per-request MLflow limits while the search runs: the outbox retries with its own backoff, so
# one call must fail fast rather than hold the queue for MLflow's ~4-minute default window.
# No client-side retry at all: urllib3 would resend a POST whose reply timed out (a second run).
MLFLOW_CALL_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


def new_tuner(spec: SearchSpec, args, trainable, param_space: dict, warm: list, callback, name: str, storage: str,
              num_samples: int, max_epochs: int, alone: dict | None = None) -> tune.Tuner:
    """`alone`: what a packed trial that ran out of GPU memory gets for its retry (search/scheduling/oom_retry.py)."""
    limit = concurrency(args, num_samples)
    searcher = None
    if not args.grid:
        optuna_search = ResumableOptunaSearch(
            metric=METRIC, mode=MODE,
            sampler=proposals.sampler(args.sampler, args.seed, num_samples, args.startup_trials),
            points_to_evaluate=warm, max_t=max_epochs)
        inner = ReplicatingSearch(optuna_search, args.replicates, args.replicate_eta, max_epochs, args.seed) \
            if args.replicates else optuna_search
        # Tune ignores max_concurrent_trials beside a SearchGenerator (search/scheduling/trial_state.py)
        searcher = ResumableSearchGenerator(LimitedSearch(inner, max_concurrent=limit) if limit else inner)
    stopper = PatienceStopper(args.patience, args.min_gain, max_epochs) if args.patience and not args.grid else None
    callback.stopper = stopper
    scheduler = PackedASHA(time_attr="epoch", metric=METRIC, mode=MODE, max_t=max_epochs, alone=alone,
                           grace_period=args.grace_period, reduction_factor=args.reduction_factor)
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=searcher, num_samples=num_samples, trial_dirname_creator=trial_dirname,
            max_concurrent_trials=None if searcher else limit, scheduler=scheduler,
            time_budget_s=args.time_budget),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, stop=stopper,
            callbacks=[callback, AshaState(scheduler), NoRetryOnUserError(), packing.PeakRecorder(),
                       *([] if args.verbose else [LiveView(callback, num_samples, max_epochs, milestones(
                           args.grace_period, args.reduction_factor, max_epochs))])],
            # retries are for lost nodes and preemption; user errors end a trial at once (trial_state.py)
            failure_config=tune.FailureConfig(max_failures=2),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=keep_checkpoints(args)),
            progress_reporter=old_reporter(args.verbose, metric_columns=[
                "epoch", "val_auc", "val_loss", "train_loss", "images_per_s"], parameter_columns=spec.columns,
                max_report_frequency=15, sort_by_metric=True, metric=METRIC, mode=MODE),
            verbose=1 if args.verbose else 0))


def keep_checkpoints(args) -> int | None:
    """A trial's checkpoints Tune keeps: the last (a real one holds the model and optimizer, hundreds of
    MB), or every one for --simulate (a few bytes each). Tune snapshots the whole experiment state each
    time a trial checkpoints `num_to_keep` times, O(trials) per snapshot: once per epoch of every trial
    is a small cost beside real epochs, and most of the driver's time in a simulated search of hundreds
    of trials whose epochs take milliseconds (benchmarks/scale.py); keeping all, Tune snapshots on its
    own period (about 5 % of the driver's time)."""
    return None if args.simulate else 1


def concurrency(args, num_samples: int) -> int | None:
    """--max-concurrent, else search/scheduling/proposals.py's rule (a grid has nothing to learn from: no limit)."""
    if args.max_concurrent:
        return args.max_concurrent
    return None if args.grid else proposals.default_concurrency(num_samples)


def pending_trials(resources: dict, limit: int | None) -> int | None:
    """How many proposed trials Tune may hold waiting to start (TUNE_MAX_PENDING_TRIALS_PG): as many
    as the cluster runs at once (at least 2), at most the concurrency limit; None (Tune's own) without
    a limit. Tune's own is the limit itself: a 1,000-trial search on a laptop that runs 8 trials at once
    had 250 configs proposed ahead, 240 of them waiting without seeing a result (benchmarks/scale.py).
    An autoscaling cluster keeps the limit: its pending trials are the demand that adds nodes."""
    if limit is None or autoscaling():
        return limit
    total = ray.cluster_resources()
    fits = min([total.get(key.upper(), 0) / need for key, need in resources.items()
                if key in ("cpu", "gpu") and need] or [limit])
    return min(limit, max(2, math.floor(fits)))


def fit(tuner: tune.Tuner, pending: int | None = None, verbose: bool = False):
    """tuner.fit() under MLFLOW_CALL_LIMITS, `pending` (pending_trials) and the console `verbose` asks for
    (search/console.py); a value the user set is kept."""
    limits = {**MLFLOW_CALL_LIMITS, **({"TUNE_MAX_PENDING_TRIALS_PG": str(pending)} if pending else {})}
    with env_defaults({**limits, **tune_console(verbose)}):
        return tuner.fit()


def locate(spec: SearchSpec, args) -> tuple[str, str, str, Path]:
    """(storage path, search name, its Ray results path, the folder of its tracking journal)."""
    storage = args.storage_path if is_remote(args.storage_path) else str(Path(args.storage_path).expanduser())
    name = args.name or (latest_search(storage, spec.script) if args.resume else None) \
        or f"{spec.script}-{time.strftime('%Y%m%d-%H%M%S')}"
    exp_path = f"{storage.rstrip('/')}/{name}"
    if args.resume and not tune.Tuner.can_restore(exp_path):
        raise UsageError(f"--resume: no restorable search at {exp_path}; pass --name of an existing one")
    # The tracking journal and any undelivered events stay on the driver's disk: with the search
    # itself when it is local, else in ./<name>-tracking/.
    tracking_dir = Path.cwd() / f"{name}-tracking" if is_remote(exp_path) else Path(exp_path)
    return storage, name, exp_path, tracking_dir


def read_table(spec: SearchSpec, args, profile: dict) -> Table | None:
    """--simulate's table, checked against the search (its epochs become --max-epochs unless given)."""
    if not args.simulate:
        return None
    table = Table.read(args.simulate)
    keys = set(flatten(merge(spec.base, profile.get("config", {})))) | set(flatten(spec.space))
    simulation.check(table, keys, args.max_epochs)
    args.max_epochs = args.max_epochs or table.max_t
    if args.gpus_per_trial is None and args.trials_per_gpu is None:
        args.gpus_per_trial = 0   # a simulated trial only sleeps: a GPU would cap how many run at once
    return table


def check_resume_matches(args, exp_path: str, table: Table | None) -> None:
    """--resume continues a simulated search only with --simulate of the same table, and a trained one
    only without it (else recorded values would join trained runs, or the other way round); and only
    with the replicate rungs it began with."""
    from mlflow.tracking import MlflowClient

    from search.report.data import search_parent
    from search.tracking.store import absolute_uri

    try:
        parent = search_parent(MlflowClient(absolute_uri(args.tracking_uri)), args.experiment_name, exp_path)
    except Exception:  # noqa: BLE001 - the store's own checks come later; nothing to compare here
        return
    was = parent.data.tags.get("cxr.simulated_table") if parent else None
    now = table.source if table is not None else None
    if parent is not None and was != now:
        raise UsageError(f"--resume: {exp_path} was " + (f"simulated from {was}: pass --simulate {was}" if was
                         else "trained, not simulated: resume it without --simulate"))
    params = getattr(parent.data, "params", {}) if parent is not None else {}
    began = (int(params.get("search.replicates", 0)), int(params.get("search.replicate_eta", args.replicate_eta)))
    if parent is not None and not args.grid and began != (args.replicates, args.replicate_eta) and \
            (began[0] or args.replicates):
        # the restored searcher keeps the rungs it began with; the pick after the search follows the flags
        raise UsageError(f"--resume: {exp_path} began with --replicates {began[0]} --replicate-eta {began[1]}: "
                         "pass the same")


def trainable_for(args, table: Table | None):
    if table is None:
        return train_fn
    return tune.with_parameters(simulation.simulated_fn, table=table, speedup=args.simulate_speedup)


@cli
def main(spec: SearchSpec, argv=None):
    args = parse_args(spec, argv)
    quiet_libraries(args.verbose)
    profile = pick_profile(spec, args)
    table = read_table(spec, args, profile)
    num_samples = 1 if args.grid else (args.num_samples or profile.get("num_samples", 20))
    fill_defaults(spec, profile, args, max_epochs=args.max_epochs if table else None, num_samples=num_samples)
    if args.time_budget is None and profile_name(args) == "cpu" and args.num_samples is None and not args.grid:
        args.time_budget = DEMO_TIME_BUDGET   # the no-argument run: a demo, sized for 300 s
    param_space, warm = build_param_space(spec, args, profile)
    max_epochs = resolve({"train": {"max_epochs": param_space["train"]["max_epochs"]}})["train"]["max_epochs"]
    args.grace_period = args.grace_period or max_epochs   # the default on real data: no cuts
    if args.grace_period > max_epochs:
        raise UsageError(f"--grace-period {args.grace_period} exceeds the {max_epochs} epoch(s) a trial runs; "
                         "lower it or raise --max-epochs")
    check_tracking(args.tracking_uri)
    storage, name, exp_path, tracking_dir = locate(spec, args)
    if args.resume:
        check_resume_matches(args, exp_path, table)

    if table is None:
        resolve_root(args.data)  # the embedded set is generated (forking workers) before Ray starts threads here
    # Resources before the image cache: a request no node can meet must not wait for it.
    resources, alone = trial_resources(args, param_space)
    quiet_libraries(args.verbose)   # again, now that Ray has started
    trainable = tune.with_resources(trainable_for(args, table), resources)
    data = prepare_data(args.data, param_space) if table is None else {"root": None, "splits": None}
    param_space["data"]["root"] = data["root"]

    if args.resume:
        tuner = tune.Tuner.restore(exp_path, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        callback = MLflowSearchCallback(
            Delivery(args.tracking_uri, args.experiment_name, pending_path=str(tracking_dir / "mlflow_pending.jsonl"),
                     journal_path=str(tracking_dir / "mlflow_events.jsonl"), drain_timeout=args.tracking_drain_timeout),
            parent_run(spec, args, param_space, warm, data, name, exp_path, num_samples, max_epochs, table),
            max_epochs, args.time_budget)
        tuner = new_tuner(spec, args, trainable, param_space, warm, callback, name, storage, num_samples, max_epochs,
                          alone)
    plan = None
    if not args.grid and (args.confirm or args.replicates):
        # --replicates alone: the configs that reached the most seeds, by mean; nothing more is trained
        top, seeds = (args.confirm, args.confirm_seeds) if args.confirm else (num_samples, args.replicates)
        plan = ConfirmPlan(top, seeds, args.seed, max_epochs, trainable, storage, name, str(tracking_dir),
                           args.tracking_drain_timeout, replicated=not args.confirm, verbose=args.verbose)
    finished = Finished(exp_path, args.tracking_uri, args.experiment_name, table.source if table else None,
                        args.time_budget)
    trials = "the paper's grid" if args.grid else f"{num_samples} trial(s)"
    say(f"{'resuming' if args.resume else 'search'} {name}: {trials} of up to {max_epochs} epoch(s)"
        + (f", at most {args.time_budget:g} s" if args.time_budget else ""))
    say(f"  Ray results and checkpoints: {exp_path}")
    results = fit(tuner, pending_trials(resources, concurrency(args, num_samples)), args.verbose)
    return after_search(results, finished,
                        export_to=args.export, evaluate=args.evaluate, confirm=plan)


def trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"  # Ray's default embeds the whole config in the path
