"""A search script's command line: every flag, its range and its environment variable."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from search.scheduling import packing
from search.scheduling.proposals import SAMPLERS
from search.tracking.store import add_tracking_flag
from spaces import SearchSpec
from trainables.errors import Parser, UsageError, at_least


def parse_args(spec: SearchSpec, argv=None) -> argparse.Namespace:
    p = Parser(description=spec.description)
    g = p.add_argument_group("what is searched")
    g.add_argument("--data", metavar="PATH", default=None,
                   help="ChestX-ray14 or CheXpert root; default: the embedded synthetic set")
    g.add_argument("--num-samples", metavar="N", type=at_least(1), default=None,
                   help="trials to run; default: the profile's")
    g.add_argument("--max-epochs", metavar="N", type=at_least(1), default=None,
                   help="epochs per trial = ASHA's max_t; default: the profile's")
    g.add_argument("--grid", action="store_true", help="run the paper's grid instead of the search")
    g.add_argument("--seed", type=at_least(0, high=2 ** 32 - 1), default=0,
                   help="seeds Optuna's sampler and every trial")
    g.add_argument("--pretrained", dest="pretrained", action="store_true", default=None,
                   help="start from ImageNet weights (the default for real data)")
    g.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="train from scratch (the default on the synthetic set)")
    g.add_argument("--smoke-test", action="store_true", help="tiny and fast, for CI")
    g = p.add_argument_group("how configs are proposed")
    g.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="how Optuna proposes configs; default: random (none of the others beat it at every budget on "
                        "the recorded tables: docs/replay.md); tpe, gp: model-based after --startup-trials; qmc: "
                        "scrambled Sobol; --resume keeps the search's own")
    g.add_argument("--startup-trials", metavar="N", type=at_least(1), default=None,
                   help="random proposals (the warm start included) before TPE or GP models the results; default: a "
                        "quarter of --num-samples, 2 to 10 (search/scheduling/proposals.py)")
    g.add_argument("--max-concurrent", metavar="N", type=at_least(0), default=0,
                   help="trials at once; 0: a quarter of --num-samples (at least 2) for a search, so most "
                        "proposals see results, all a grid's; resources may allow fewer")
    g = p.add_argument_group("when trials are cut and the search stops")
    g.add_argument("--grace-period", metavar="N", type=at_least(1), default=None,
                   help="ASHA: epochs before a trial can be stopped; default: the profile's (spaces/), on real "
                        "data every epoch, so ASHA cuts nothing (on one recorded table an epoch-1 cut set the "
                        "worst picks: docs/replay.md)")
    g.add_argument("--reduction-factor", metavar="ETA", type=at_least(2), default=None,
                   help="ASHA: keep 1/eta at each rung (default: the profile's, see spaces/)")
    g.add_argument("--patience", type=at_least(0), default=0, metavar="P",
                   help="stop the search once P trials in a row ran every epoch without raising the best val AUC by "
                        "more than --min-gain (search/scheduling/stopping.py); 0: off; --resume keeps the search's own")
    g.add_argument("--min-gain", type=at_least(0.0, float), default=0.0, metavar="D",
                   help="--patience: a gain of D or less does not count (the replay used half the seed standard "
                        "deviation of a config's val AUC)")
    g.add_argument("--time-budget", type=at_least(1.0, float), default=None, metavar="S",
                   help="stop the search after S seconds: trials still running end out_of_time and the pick is "
                        "made from what they reached; default: none, and 230 for the no-argument run, which "
                        "keeps it within 300 s on 2 cores")
    g = p.add_argument_group("how the pick is confirmed")
    g.add_argument("--confirm", type=at_least(0), default=None, metavar="K",
                   help="after the search, train the top K configs again with --confirm-seeds other seeds and pick "
                        "the best mean (search/picking/confirmation.py); 0: off; default: the profile's (spaces/)")
    g.add_argument("--confirm-seeds", type=at_least(1), default=None, metavar="S",
                   help="other seeds per confirmed config (seed+1..seed+S); default: the profile's")
    g.add_argument("--replicates", type=at_least(0), default=0, metavar="R",
                   help="seeds as a fidelity: while the search runs, a config that ran every epoch is trained again "
                        "with seed+1, +2, ... up to R more seeds, each time it is in the top 1/--replicate-eta of "
                        "the configs with as many seeds (search/scheduling/replicas.py); replicates are trials of the search")
    g.add_argument("--replicate-eta", type=at_least(2), default=2, metavar="ETA",
                   help="replicate rungs keep the top 1/ETA by mean over seeds")
    g = p.add_argument_group("resources")
    g.add_argument("--cpus-per-trial", metavar="N", type=at_least(0.01, float), default=None,
                   help="env CXR_TUNE_CPUS_PER_TRIAL (not for packed trials); default: a trial with whole GPUs gets "
                        "the CPUs that come with them on the cluster's GPU nodes (8 per GPU on an 8-CPU 1-GPU node) "
                        "for its loader workers, a packed one 1/N of them, any other trial 1")
    g.add_argument("--gpus-per-trial", metavar="N", type=at_least(0.0, float), default=None,
                   help="fractions allowed; env CXR_TUNE_GPUS_PER_TRIAL (an autoscaling cluster has no GPU "
                        "when the search starts: set it there); default 1 if the cluster has GPUs now, else 0")
    g.add_argument("--trials-per-gpu", type=packing.parse, default=None, metavar="N|auto",
                   help="trials sharing one GPU (1-4), each with 1/N of its CPUs; auto: as many as measured peak "
                        "memory and images/s say (search/scheduling/packing.py); a trial that runs out of GPU memory is "
                        "retried alone; env CXR_TUNE_TRIALS_PER_GPU, which beats CXR_TUNE_GPUS_PER_TRIAL; "
                        "default: one trial per GPU (--gpus-per-trial)")
    g.add_argument("--memory-per-trial", type=at_least(0.01, float), default=None, metavar="GIB",
                   help="memory Ray reserves for each trial, GiB (default: none reserved)")
    g = p.add_argument_group("where results go")
    g.add_argument("--storage-path", metavar="PATH",
                   default=os.environ.get("CXR_TUNE_STORAGE_PATH", str(Path("~/ray_results").expanduser())),
                   help="Ray Tune results and checkpoints (a shared or s3:// path on a cluster); "
                        "env CXR_TUNE_STORAGE_PATH")
    g.add_argument("--name", default=None, help="search name under the storage path; default: <script>-<time>")
    g.add_argument("--resume", action="store_true", help="continue the latest (or --name) search at --storage-path")
    add_tracking_flag(g)
    g.add_argument("--tracking-drain-timeout", type=at_least(0.0, float), default=300.0, metavar="S",
                   help="at the end, wait this long for MLflow to take the queued events; what is left goes "
                        "to <search>/mlflow_pending.jsonl for `python -m search.sync`")
    g.add_argument("--experiment-name", metavar="NAME", default=spec.script, help="MLflow experiment")
    g = p.add_argument_group("after the search")
    g.add_argument("--export", default=None, metavar="DIR", help="also write the top configs as YAML here")
    g.add_argument("--evaluate", action="store_true", help="after the search, score the best trial's checkpoint "
                   "on the test split beside the paper's table (search/evaluation/), logged under the parent run")
    g = p.add_argument_group("recorded curves instead of training")
    g.add_argument("--simulate", default=None, metavar="TABLE",
                   help="read recorded curves instead of training: each trial reads the nearest config of TABLE "
                        "(format: docs/recorded_tables.md), one recorded seed, epoch by epoch; MLflow tags the runs "
                        "cxr.simulated")
    g.add_argument("--simulate-speedup", type=at_least(0.001, float), default=100.0, metavar="X",
                   help="--simulate: a recorded epoch of S seconds takes S/X")
    g = p.add_argument_group("the console")
    g.add_argument("--verbose", action="store_true",
                   help="Ray Tune's own console: its status tables and each trial's config, and every library "
                        "message; default: one line per trial event and a progress bar (search/console.py); "
                        "--resume keeps the search's own")
    args = p.parse_args(argv)
    if args.trials_per_gpu is not None and args.gpus_per_trial is not None:
        raise UsageError("--trials-per-gpu and --gpus-per-trial both say how much GPU a trial gets; give one")
    if args.simulate and args.evaluate:
        raise UsageError("--evaluate scores a trained checkpoint on the test split; a --simulate search trains none")
    _resources_from_env(args)
    return args


def _resources_from_env(args) -> None:
    """The environment fills what the command line left out. CXR_TUNE_TRIALS_PER_GPU packs trials
    unless --gpus-per-trial is given, and beats CXR_TUNE_GPUS_PER_TRIAL (deploy/cluster_env.sh sets
    that to 1 for every search). A packed trial gets its share of its GPU's CPUs, so
    CXR_TUNE_CPUS_PER_TRIAL, sized for a trial with a whole GPU, is not applied to it;
    CXR_TUNE_CPUS_PER_GPU (args.cpus_per_gpu) is, where no GPU node is up to count them."""
    env = os.environ.get("CXR_TUNE_TRIALS_PER_GPU")
    if args.trials_per_gpu is None and args.gpus_per_trial is None and env:
        args.trials_per_gpu = packing.parse(env, "CXR_TUNE_TRIALS_PER_GPU")
    args.cpus_per_gpu = _env_float("CXR_TUNE_CPUS_PER_GPU", 1.0) if args.trials_per_gpu is not None else None
    if args.trials_per_gpu is None:
        if args.gpus_per_trial is None:
            args.gpus_per_trial = _env_float("CXR_TUNE_GPUS_PER_TRIAL", 0.0)
        if args.cpus_per_trial is None:
            args.cpus_per_trial = _env_float("CXR_TUNE_CPUS_PER_TRIAL", 0.01)


def _env_float(name: str, low: float) -> float | None:
    value = os.environ.get(name)
    try:
        number = float(value) if value else None
    except ValueError:
        raise UsageError(f"{name}={value!r} must be a number (fractions allowed)") from None
    if number is not None and not number >= low:
        raise UsageError(f"{name}={value!r} must be >= {low:g}")
    return number
