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
`--register NAME` also registers it in the Model Registry (search/evaluation/pyfunc_model.py).
"""
from __future__ import annotations

import argparse

from mlflow.tracking import MlflowClient

import spaces
from search.evaluation.candidates import candidates
from search.evaluation.pipeline import evaluate_all
from search.tracking.check import check_tracking
from search.tracking.store import add_tracking_flag
from trainables.errors import Parser, at_least, cli

DEFAULT_EXPERIMENT = "cxr-evaluations"  # where a config with no MLflow trial behind it is logged


def parser() -> Parser:
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("source", nargs="?", help="an exported YAML (or any trial config YAML), or a trial's MLflow run id")
    p.add_argument("--experiment", help="evaluate this search's top trials (by final val_auc) instead of SOURCE")
    p.add_argument("--top", type=at_least(1), default=1, help="with --experiment: how many trials")
    p.add_argument("--retrain", action="store_true", help="train from scratch (full schedule, best-val epoch) "
                   "instead of loading the trial's checkpoint")
    p.add_argument("--max-epochs", type=at_least(1), default=None, help="with --retrain: override train.max_epochs")
    p.add_argument("--data", default=None, help="the dataset root on this machine, if not the trial's")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--space", default=None,
                   help="whose paper to compare with (default: the search's space, from MLflow)")
    p.add_argument("--bootstrap", type=at_least(1), default=1000, help="bootstrap resamples of patients")
    p.add_argument("--seed", type=at_least(0), default=0, help="seeds the bootstrap")
    p.add_argument("--out", default="evaluations", help="one folder per evaluated trial goes here")
    add_tracking_flag(p)
    p.add_argument("--experiment-name", default=DEFAULT_EXPERIMENT,
                   help="MLflow experiment for a config with no trial run behind it")
    p.add_argument("--register", metavar="NAME", default=None,
                   help="also register the model in MLflow's Model Registry under NAME")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if bool(args.source) == bool(args.experiment):
        p.error("pass SOURCE (a YAML or a run id) or --experiment NAME, not both and not neither")
    if args.max_epochs and not args.retrain:
        p.error("--max-epochs only applies with --retrain")
    if args.space is not None:
        spaces.get(args.space)  # an unknown space is refused here, naming the known ones
    return args


def options(**given) -> argparse.Namespace:
    """The CLI's defaults with `given` over them: how a search's --evaluate calls the pipeline."""
    return argparse.Namespace(**{**vars(parser().parse_args([])), **given})


@cli
def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    check_tracking(args.tracking_uri)
    client = MlflowClient(args.tracking_uri)
    return evaluate_all(candidates(args, client), args, client)


if __name__ == "__main__":
    main()
