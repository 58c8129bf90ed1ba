"""What a search learned: figures, hyperparameter importance and one HTML page, on its parent run.

Runs by itself at the end of every search, and as `python -m search.report` (search/report/cli.py).
Logs on the parent run: learning_curves.png, param_importance.png + .csv (fANOVA on the trials'
val AUC at one epoch they all reached), val_auc_vs_<param>.png, per_label_top.png and report.html
(self-contained), sets the run's description (the UI's "Description" box) to a markdown summary,
and logs the best config as `best.*` params.
"""
from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from search.report import confirmed, cost, data, fidelity, plots
from search.report.pages import Findings, description, page, summary_text
from search.tracking.store import MAX_PARAM, log_param_texts

TOP = 5


@dataclass
class Report:
    files: list[Path]
    summary: str          # plain text for the terminal
    description: str      # markdown for the parent run
    warnings: list[str]


def build(client: MlflowClient, parent: Run, out: Path | None = None) -> Report:
    """Make every file in `out` (default: a new temporary folder), log them on the parent run, set
    its description and best params."""
    parent_id = parent.info.run_id
    out = out or Path(tempfile.mkdtemp(prefix="cxr-report-"))
    search = data.load(client, parent)
    top = search.ranked()[:TOP]
    imp, note, epoch = data.importances_at_one_epoch(search)
    rungs = fidelity.agreement(search)
    note += fidelity.caveat(rungs, epoch) if imp else ""
    found = Findings(fidelity.lines(rungs), confirmed.lines(confirmed.verdict(client, parent, search)),
                     cost.lines(client, search))
    out.mkdir(parents=True, exist_ok=True)
    figures = [plots.learning_curves(search, out / "learning_curves.png"),
               plots.importance(imp, note, out / "param_importance.png")]
    with open(out / "param_importance.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["param", "importance"])
        writer.writerows([k, f"{v:.6f}"] for k, v in imp.items())
        writer.writerow([f"# {note}", ""])
    figures += plots.against_params(search, out)
    figures.append(plots.per_label(search, out / "per_label_top.png"))
    (out / "report.html").write_text(page(search, top, imp, note, figures, found))
    files = [*figures, out / "param_importance.csv", out / "report.html"]
    for path in files:
        client.log_artifact(parent_id, str(path))
    text = description(search, top, imp, note, found)
    client.set_tag(parent_id, "mlflow.note.content", text)
    return Report(files, summary_text(search, top, imp, note, found), text,
                  fidelity.warnings(search, rungs) + _log_best(client, search, top))


def _log_best(client: MlflowClient, search, top) -> list[str]:
    """The best trial's config as `best.*` params. MLflow params never change: a resumed search
    whose best changed keeps the first best there (its description and best_config.yaml are current)."""
    if not top:
        return []
    best = {f"best.{k}": v for k, v in top[0].params.items()}
    best["best.run_name"] = top[0].name[:MAX_PARAM]
    have = search.parent.data.params
    clash = sorted(k for k, v in best.items() if k in have and have[k] != v)
    if clash:
        return [f"the parent run's best.* params are from an earlier best ({len(clash)} differ); MLflow params "
                "cannot change, so see its description and best_config.yaml for the current best"]
    log_param_texts(client, search.parent.info.run_id, {k: v for k, v in best.items() if k not in have})
    return []
