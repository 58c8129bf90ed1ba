"""What a search learned: figures, hyperparameter importance and one HTML page, on its parent run.

    python -m search.report                                  # the latest search in ./mlflow.db
    python -m search.report --experiment dual_weights --parent RUN_ID --tracking-uri http://...

Runs by itself at the end of every search. Logs on the parent run: learning_curves.png,
param_importance.png + .csv (fANOVA on the study rebuilt from the runs), val_auc_vs_<param>.png,
per_label_top.png and report.html (self-contained), sets the run's description (the UI's
"Description" box) to a markdown summary, and logs the best config as `best.*` params.
"""
from __future__ import annotations

import base64
import csv
import html
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from search import report_data, report_plots
from search.tracking_queue import MAX_PARAM, log_param_texts
from trainables.errors import Parser, cli

TOP = 5
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


@dataclass
class Report:
    files: list[Path]
    summary: str          # plain text for the terminal
    description: str      # markdown for the parent run
    warnings: list[str]


def _values(t: report_data.Trial, keys: list[str]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={t.params[k]}" for k in keys if k in t.params)


def _counts(search: report_data.Search) -> str:
    counts: dict[str, int] = {}
    for t in search.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    return ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def summary_text(search, top, imp, note) -> str:
    lines = [f"top {len(top)} of {len(search.trials)} trials ({_counts(search)}):"]
    for i, t in enumerate(top, 1):
        lines.append(f"  {i}. val_auc {t.val_auc:.4f}  {t.name}{'  [paper config]' if t.warm else ''}")
    if imp:
        lines.append("hyperparameter importance (fANOVA, share of val_auc variance):")
        lines += [f"  {k:<24} {v:.2f}" for k, v in imp.items()]
    else:
        lines.append(note)
    return "\n".join(lines)


def description(search, top, imp, note) -> str:
    tags = search.parent.data.tags
    space = [f"`{k}` {search.param('space.' + k, '')}" for k in search.dists] or \
        [f"`{k[len('grid.'):]}` {v}" for k, v in sorted(search.parent.data.params.items()) if k.startswith("grid.")]
    lines = [f"**{tags.get('cxr.space', '')} {tags.get('cxr.mode', 'search')}** on **{tags.get('cxr.dataset', '?')}**"
             f" ({tags.get('cxr.split', '')}); {len(search.trials)} trials: {_counts(search)}.", "",
             "Searched: " + "; ".join(space) + ".", "",
             "| # | trial | val AUC | status |", "| --- | --- | --- | --- |"]
    lines += [f"| {i} | {t.name}{' (paper config)' if t.warm else ''} | {t.val_auc:.4f} | {t.status} |"
              for i, t in enumerate(top, 1)]
    lines += ["", ("Importance (fANOVA): " + ", ".join(f"`{k}` {v:.2f}" for k, v in imp.items())) if imp else note,
              "", "Open **report.html** in Artifacts for every figure: learning_curves.png (ASHA's cuts), "
              "param_importance.png, val_auc_vs_*.png, per_label_top.png."]
    return "\n".join(lines)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}"><figcaption>' \
           f'{html.escape(path.name)}</figcaption></figure>'


def page(search, top, imp, note, figures: list[Path]) -> str:
    esc = html.escape
    rows = "".join(f"<tr><td>{i}</td><td>{esc(t.name)}{' (paper config)' if t.warm else ''}</td>"
                   f"<td>{t.val_auc:.4f}</td><td>{esc(t.status)}</td><td>{len(t.curve)}</td>"
                   f"<td>{esc(_values(t, list(search.dists)))}</td></tr>" for i, t in enumerate(top, 1))
    ranking = "".join(f"<li>{esc(k)}: {v:.2f}</li>" for k, v in imp.items()) if imp else f"<p>{esc(note)}</p>"
    tags = search.parent.data.tags
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(search.name)}</title><style>
body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}} img{{max-width:100%}} figure{{margin:1em 0}}
</style></head><body><h1>{esc(search.name)}</h1>
<p>{esc(tags.get('cxr.space', ''))} {esc(tags.get('cxr.mode', 'search'))} on {esc(tags.get('cxr.dataset', '?'))}
({esc(tags.get('cxr.split', ''))}); {len(search.trials)} trials: {esc(_counts(search))}.
Values are each trial's last val AUC, as the sampler saw them (ASHA-stopped trials at their cut).</p>
<h2>Top {len(top)}</h2><table><tr><th>#</th><th>trial</th><th>val AUC</th><th>status</th><th>epochs</th>
<th>searched values</th></tr>{rows}</table>
<h2>Importance (fANOVA)</h2><ol>{ranking}</ol>
<h2>Figures</h2>{''.join(_img(p) for p in figures)}</body></html>"""


def build(client: MlflowClient, parent: Run, out: Path | None = None) -> Report:
    """Make every file in `out` (default: a new temporary folder), log them on the parent run, set
    its description and best params."""
    parent_id = parent.info.run_id
    out = out or Path(tempfile.mkdtemp(prefix="cxr-report-"))
    search = report_data.load(client, parent)
    top = search.ranked()[:TOP]
    imp, note = report_data.importances(report_data.rebuild_study(search))
    out.mkdir(parents=True, exist_ok=True)
    figures = [report_plots.learning_curves(search, out / "learning_curves.png"),
               report_plots.importance(imp, note, out / "param_importance.png")]
    with open(out / "param_importance.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["param", "importance"])
        writer.writerows([k, f"{v:.6f}"] for k, v in imp.items())
        if note:
            writer.writerow([f"# {note}", ""])
    figures += report_plots.against_params(search, out)
    figures.append(report_plots.per_label(search, out / "per_label_top.png"))
    (out / "report.html").write_text(page(search, top, imp, note, figures))
    files = [*figures, out / "param_importance.csv", out / "report.html"]
    for path in files:
        client.log_artifact(parent_id, str(path))
    text = description(search, top, imp, note)
    client.set_tag(parent_id, "mlflow.note.content", text)
    return Report(files, summary_text(search, top, imp, note), text, _log_best(client, search, top))


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


@cli
def main(argv=None) -> None:
    p = Parser(description="Figures, hyperparameter importance and an HTML page for a search, on its parent run.")
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
                   help="MLflow tracking URI; env MLFLOW_TRACKING_URI")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: any)")
    p.add_argument("--parent", default=None, metavar="RUN_ID", help="the search's parent run (default: the latest)")
    p.add_argument("--out", default="search-report", help="where the files are written too")
    args = p.parse_args(argv)
    from search.tracking_check import check_tracking
    check_tracking(args.tracking_uri)
    client = MlflowClient(args.tracking_uri)
    parent = report_data.find_parent(client, args.experiment, args.parent)
    out = Path(args.out) / parent.info.run_name
    rep = build(client, parent, out)
    print(rep.summary)
    for w in rep.warnings:
        print(f"warning: {w}")
    print(f"report: {out / 'report.html'}; logged on run {parent.info.run_id}")


if __name__ == "__main__":
    main()
