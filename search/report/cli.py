"""`python -m search.report`: remake a search's report from its tracking store alone.

    python -m search.report                                  # the latest search in ./mlflow.db
    python -m search.report --experiment dual_weights --parent RUN_ID --tracking-uri http://...
"""
from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from search.report import data
from search.report.build import build
from search.tracking.check import check_tracking
from search.tracking.store import add_tracking_flag
from trainables.errors import Parser, cli


@cli
def main(argv=None) -> None:
    p = Parser(description="Figures, hyperparameter importance and an HTML page for a search, on its parent run.")
    add_tracking_flag(p)
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: any)")
    p.add_argument("--parent", default=None, metavar="RUN_ID", help="the search's parent run (default: the latest)")
    p.add_argument("--out", default="search-report", help="where the files are written too")
    args = p.parse_args(argv)
    check_tracking(args.tracking_uri)
    client = MlflowClient(args.tracking_uri)
    parent = data.find_parent(client, args.experiment, args.parent)
    out = Path(args.out) / parent.info.run_name
    rep = build(client, parent, out)
    print(rep.summary)
    for w in rep.warnings:
        print(f"warning: {w}")
    print(f"report: {out / 'report.html'}; logged on run {parent.info.run_id}")
