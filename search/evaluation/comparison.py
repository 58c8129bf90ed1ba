"""Our test AUCs beside the paper's printed ones: a table (ours [CI], paper, difference, whether
the paper's value lies inside our CI) and `comparison.md`, which says what makes the
comparison unfair: a different split, a different dataset, or the embedded synthetic set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from search.evaluation.scoring import MEAN, WAUC, SplitScores
from spaces.paper_numbers import PaperNumbers


@dataclass
class Context:
    """What was evaluated, for the notes."""
    source: str          # "trial <run id>" or a config file
    mode: str            # checkpoint | retrain
    epoch: int           # the checkpoint's epoch
    dataset: str         # Splits.name: nih | chexpert
    split: str           # Splits.description
    synthetic: bool      # the embedded synthetic set
    space: str | None    # the search space, whose paper row is compared
    inputs: tuple = ()   # the test split as an MLflow dataset input (trainables/data/fingerprint.py)


def _num(x) -> float:
    return math.nan if x is None or pd.isna(x) else float(x)


def frame(scores: SplitScores, paper: PaperNumbers | None) -> pd.DataFrame:
    """Per label, then mean and W-AUC: ours, CI, paper (NaN where it prints none), diff, inside."""
    rows = []
    for label, r in scores.table.iterrows():
        ours, lo, hi = _num(r["auc"]), _num(r["ci_low"]), _num(r["ci_high"])
        theirs = _num((paper.aucs if paper else {}).get(label))
        inside = None if math.isnan(theirs) or math.isnan(lo) else bool(lo <= theirs <= hi)
        rows.append({"label": label, "ours": ours, "ci_low": lo, "ci_high": hi, "paper": theirs,
                     "diff": ours - theirs, "paper_inside_ci": inside, "positives": r["positives"],
                     "few_positives": bool(r["few_positives"])})
    return pd.DataFrame(rows).set_index("label")


def _f(x, fmt="{:.3f}") -> str:
    return "—" if x is None or pd.isna(x) else fmt.format(x)


def notes(scores: SplitScores, paper: PaperNumbers | None, ctx: Context) -> list[str]:
    out = []
    if ctx.synthetic:
        out.append("**Embedded synthetic dataset.** Its images and labels are generated, so these numbers say "
                   "nothing about the paper's model, and the comparison with the paper means nothing: it shows "
                   "the format only. Pass `--data` with a ChestX-ray14 or CheXpert root for a real comparison.")
    if paper is None:
        out.append(f"The paper of space `{ctx.space}` prints no {ctx.dataset} test AUCs to compare with."
                   if ctx.space else "No search space is known for this run (pass `--space`), so no paper "
                   "numbers are shown.")
    elif ctx.synthetic:
        pass  # said above: no split of the synthetic set is the paper's
    elif not paper.official:
        out.append(f"**Different split.** The paper evaluated on its own split ({paper.split}), not the "
                   f"published test set used here ({ctx.split}): its numbers come from other test images, "
                   "so a difference is not only the model's.")
    else:
        out.append(_same_split(scores, paper, ctx))
    missing = [k for k in scores.labels if paper and k not in paper.aucs]
    if paper and missing:
        out.append(f"The paper prints no per-label AUC for {len(missing)} of our {len(scores.labels)} labels "
                   "(—)." if len(missing) < len(scores.labels) else "The paper prints only its mean AUC.")
    few = [k for k in scores.labels if scores.table.loc[k, "few_positives"]]
    if few:
        out.append(f"† fewer than 30 test positives: {', '.join(few)}. Their AUC is noisy; read the CI.")
    out.append(f"CI: {scores.method}. Mean: over the {len(scores.labels)} labels above. W-AUC: each label's AUC "
               "weighted by its test positives, over all labels (the paper prints none).")
    return out


def _same_split(scores: SplitScores, paper: PaperNumbers, ctx: Context) -> str:
    """The paper's published split: the same test set only if ours has as many images (or, where
    the paper counts studies, as CheXpert's validation set does, one study per patient) as it."""
    size = paper.test_size
    ours = scores.images if size is None or size[1] == "images" else scores.patients
    if size is None or ours >= size[0]:
        return f"Same test set as the paper: ours is {ctx.split}; the paper's is {paper.split}."
    unit = "images" if size[1] == "images" else "patients (one study each)"
    return (f"**Part of the paper's test set.** Ours has {ours:,} {unit}; the paper's has {size[0]:,} "
            f"({paper.split}). Same split rule ({ctx.split}), but fewer test images: our AUCs are noisier "
            "and may differ from the paper's by chance; read the CI.")


def markdown(scores: SplitScores, paper: PaperNumbers | None, ctx: Context) -> str:
    f = frame(scores, paper)
    title = paper.row.system if paper else "—"
    lines = [f"# Test AUC: {ctx.source} vs {title}", "",
             f"- evaluated: {ctx.source}, {'retrained from scratch, best-validation epoch' if ctx.mode == 'retrain' else 'trial checkpoint'} "
             f"(epoch {ctx.epoch})",
             f"- test set: {ctx.dataset}, {ctx.split}; {scores.images} images of {scores.patients} patients"
             + (" (embedded synthetic set)" if ctx.synthetic else ""),
             f"- paper: {paper.paper}, {paper.sources}; split: {paper.split}" if paper else "- paper: none", "",
             "| label | ours [95% CI] | paper | ours − paper | paper inside CI | test positives |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label, r in f.iterrows():
        name = f"{label} †" if r["few_positives"] else (f"**{label}**" if label in (MEAN, WAUC) else label)
        inside = "—" if r["paper_inside_ci"] is None else ("yes" if r["paper_inside_ci"] else "no")
        lines.append(f"| {name} | {_f(r['ours'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}] | {_f(r['paper'])} | "
                     f"{_f(r['diff'], '{:+.3f}')} | {inside} | {_f(r['positives'], '{:.0f}')} |")
    lines += ["", *[f"- {n}" for n in notes(scores, paper, ctx)], ""]
    return "\n".join(lines)
