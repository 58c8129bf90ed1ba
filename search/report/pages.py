"""The report's three texts about one search: the terminal summary, the parent run's markdown
description, and report.html with its figures embedded."""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from search.report.data import Search, Trial
from search.tracking.names import shown


@dataclass(frozen=True)
class Findings:
    """What the report says beyond the top trials and importance, one line each."""
    rungs: list[str]       # ASHA's rungs against a later epoch (search/report/fidelity.py)
    confirmed: list[str]   # the confirmation of the top configs, and its verdict (search/report/confirmed.py)
    cost: list[str]        # GPU-hours, trial-epochs, GPU utilisation (search/report/cost.py)


def _values(t: Trial, search: Search) -> str:
    """Searched values rounded as the run names show them (`lam=0.77, lr=1e-4`)."""
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={shown(t.params[k], getattr(d, 'log', False))}"
                     for k, d in search.dists.items() if k in t.params)


def _counts(search: Search) -> str:
    counts: dict[str, int] = {}
    for t in search.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    return ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _epochs(t: Trial) -> str:
    return f"epoch {t.epochs}" + {"stopped_early": " (cut)", "out_of_time": " (time budget)",
                                   "search_stopped": " (search stopped)"}.get(t.status, "")


def summary_text(search, top, imp, note, found: Findings) -> str:
    lines = [f"top {len(top)} of {len(search.trials)} trials ({_counts(search)}), further trained first:"]
    for i, t in enumerate(top, 1):
        lines.append(f"  {i}. val_auc {t.val_auc:.4f} at {_epochs(t)}  {t.name}{'  [paper config]' if t.warm else ''}")
    if imp:
        lines.append(f"hyperparameter importance (fANOVA, share of val AUC variance; {note}):")
        lines += [f"  {k:<24} {v:.2f}" for k, v in imp.items()]
    else:
        lines.append(note)
    if found.confirmed:
        lines.append("confirmed (val_auc at the last epoch over the search's seed and other seeds), best mean first:")
        lines += [f"  {c}" for c in found.confirmed]
    if found.rungs:
        lines.append("ASHA's rungs, ranking trials as a later epoch does:" if search.rungs() else
                     "no ASHA cuts (grace = every epoch); val AUC where grace 1 would cut, ranking trials as a later "
                     "epoch does (--grace-period turns cuts on where it ranks them well):")
        lines += [f"  {r}" for r in found.rungs]
    return "\n".join(lines + found.cost + budget_lines(search))


def budget_lines(search) -> list[str]:
    """What a time budget cut short, and what a run as small as the no-argument one can tell."""
    lines = []
    late = [t for t in search.trials if t.status == "out_of_time"]
    if late:
        lines.append(f"time budget: the search stopped at {float(search.param('search.time_budget_s')):g} s "
                     f"(--time-budget); {len(late)} trial(s) stopped before their last epoch, ranked by what they "
                     "reached")
    if search.parent.data.tags.get("cxr.stopped_by") == "patience":
        stopped = [t for t in search.trials if t.status == "search_stopped"]
        lines.append(f"stop rule: --patience {search.param('search.patience')} ended the search: "
                     f"{search.param('search.patience')} trials in a row ran every epoch without raising the best "
                     f"val AUC by more than {search.param('search.min_gain')}; {len(stopped)} trial(s) still running "
                     "stopped, ranked by what they reached")
    if search.param("search.profile") == "cpu" and len(search.trials) <= 4:
        lines.append("a demo: this few trials on the embedded set show how a search runs, not which config is best "
                     "(one seed moves val AUC about as much as configs differ); a search that picks needs more "
                     "trials, more seeds and real data (docs/search.md)")
    return lines


def description(search, top, imp, note, found: Findings) -> str:
    tags = search.parent.data.tags
    space = [f"`{k}` {search.param('space.' + k, '')}" for k in search.dists] or \
        [f"`{k[len('grid.'):]}` {v}" for k, v in sorted(search.parent.data.params.items()) if k.startswith("grid.")]
    simulated = tags.get("cxr.simulated")
    lines = [f"**Simulated search**: every value below was read from the recorded curves of `{simulated}` "
             "(--simulate), nothing was trained.", ""] if simulated else []
    lines += [f"**{tags.get('cxr.space', '')} {tags.get('cxr.mode', 'search')}** on **{tags.get('cxr.dataset', '?')}**"
             f" ({tags.get('cxr.split', '')}); {len(search.trials)} trials: {_counts(search)}.",
             *[c[0].upper() + c[1:] + "." for c in found.cost], "",
             "Searched: " + "; ".join(space) + ".", "",
             "| # | trial | val AUC | epochs | status |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {i} | {t.name}{' (paper config)' if t.warm else ''} | {t.val_auc:.4f} | {t.epochs} | {t.status} |"
              for i, t in enumerate(top, 1)]
    lines += ["", (f"Importance (fANOVA; {note}): " + ", ".join(f"`{k}` {v:.2f}" for k, v in imp.items()))
              if imp else note]
    if found.confirmed:
        lines += ["", "**Confirmed** (val AUC at the last epoch over the search's seed and other seeds):", ""]
        lines += [f"- {c}" for c in found.confirmed[:-1]] + ["", f"**{found.confirmed[-1]}**"]
    if found.rungs:
        where = "ASHA's rungs" if search.rungs() else "No ASHA cuts; the epochs where grace 1 would cut"
        lines += ["", f"{where} (Spearman of val AUC there against a later epoch): " + "; ".join(found.rungs) + "."]
    lines += ["", "Open **report.html** in Artifacts for every figure: learning_curves.png (ASHA's cuts), "
              "param_importance.png, val_auc_vs_*.png, per_label_top.png."]
    return "\n".join(lines)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}"><figcaption>' \
           f'{html.escape(path.name)}</figcaption></figure>'


def page(search, top, imp, note, figures: list[Path], found: Findings) -> str:
    esc = html.escape
    rows = "".join(f"<tr><td>{i}</td><td>{esc(t.name)}{' (paper config)' if t.warm else ''}</td>"
                   f"<td>{t.val_auc:.4f}</td><td>{esc(t.status)}</td><td>{len(t.curve)}</td>"
                   f"<td>{esc(_values(t, search))}</td></tr>" for i, t in enumerate(top, 1))
    ranking = (f"<p>{esc(note)}</p><ol>" + "".join(f"<li>{esc(k)}: {v:.2f}</li>" for k, v in imp.items()) + "</ol>") \
        if imp else f"<p>{esc(note)}</p>"
    rung_items = "".join(f"<li>{esc(r)}</li>" for r in found.rungs) or "<li>no rung below the last epoch</li>"
    confirmed = "" if not found.confirmed else (
        "<h2>Confirmed</h2><p>The top configs trained again with other seeds (val AUC at the last epoch):</p><ol>"
        + "".join(f"<li>{esc(c.split('. ', 1)[1])}</li>" for c in found.confirmed[:-1])
        + f"</ol><p><b>{esc(found.confirmed[-1])}</b></p>")
    tags = search.parent.data.tags
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(search.name)}</title><style>
body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}} img{{max-width:100%}} figure{{margin:1em 0}}
</style></head><body><h1>{esc(search.name)}</h1>
<p>{esc(tags.get('cxr.space', ''))} {esc(tags.get('cxr.mode', 'search'))} on {esc(tags.get('cxr.dataset', '?'))}
({esc(tags.get('cxr.split', ''))}); {len(search.trials)} trials: {esc(_counts(search))}.
Values are each trial's last val AUC (ASHA-stopped trials at their cut); trials trained further rank first.
{esc(' '.join(c[0].upper() + c[1:] + '.' for c in found.cost))}</p>
<h2>Top {len(top)}</h2><table><tr><th>#</th><th>trial</th><th>val AUC</th><th>status</th><th>epochs</th>
<th>searched values</th></tr>{rows}</table>{confirmed}
<h2>Importance (fANOVA)</h2>{ranking}
<h2>ASHA's rungs</h2><p>How well val AUC at each rung ranked trials as a later epoch did (Spearman's rho over
the trials that reached both):</p><ul>{rung_items}</ul>
<h2>Figures</h2>{''.join(_img(p) for p in figures)}</body></html>"""
