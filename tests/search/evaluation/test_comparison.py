"""Ours beside the paper: each space's headline row read from the project's copy of the papers'
numbers, differences and CI coverage computed right, and the notes that say when a comparison
is unfair (another split, the synthetic set, labels the paper does not print)."""
import importlib

import numpy as np
import pandas as pd
import pytest

from search.evaluation import comparison
from search.evaluation.scoring import MEAN, WAUC, SplitScores
from spaces.paper_numbers import CSV, PaperRow, numbers

# (space, dataset) -> the paper's printed mean and one printed per-label AUC (None: mean only)
HEADLINES = {
    ("dualchexnet", "chestxray14"): (0.818, ("Cardiomegaly", 0.886), True),
    ("msml", "chestxray14"): (0.8462, None, False),
    ("cb_focal", "chestxray14"): (0.8313, ("Hernia", None), True),
    ("am_densenet", "chestxray14"): (0.8537, ("Emphysema", 0.9479), False),
    ("mlrfnet", "chestxray14"): (0.853, ("Hernia", 0.963), False),
    ("mlrfnet", "chexpert"): (0.904, ("Cardiomegaly", None), True),
}


@pytest.mark.parametrize("space, dataset", sorted(HEADLINES))
def test_every_space_names_a_headline_row_the_data_holds(space, dataset):
    spec = importlib.import_module(f"spaces.{space}").SPEC
    got = numbers(spec.paper[dataset])
    mean, label, official = HEADLINES[space, dataset]
    assert got.aucs["mean"] == pytest.approx(mean)
    assert got.official is official
    if label is None:
        assert list(got.aucs) == ["mean"]  # the paper prints its mean alone
        return
    name, value = label
    assert name in got.aucs and (value is None or got.aucs[name] == pytest.approx(value))


def test_the_data_travels_with_the_package_and_a_missing_row_is_named():
    assert CSV.parent.name == "spaces" and CSV.is_file()
    with pytest.raises(KeyError, match="no row of paper_aucs.csv is system='nope'"):
        numbers(PaperRow("nope", "chestxray14", "official"))
    with pytest.raises(KeyError, match="matches several splits"):
        numbers(PaperRow("DualCheXNet-1 (R-50 & D-121; DLF Concat3, λ=0.5)", "chestxray14", ""))


def scores_of(rows: dict, images: int = 25_596, patients: int = 30_805) -> SplitScores:
    table = pd.DataFrame([{"label": k, "auc": a, "ci_low": lo, "ci_high": hi, "positives": n,
                           "negatives": 100, "few_positives": n is not None and n < 30}
                          for k, (a, lo, hi, n) in rows.items()]).set_index("label")
    table["positives"] = table["positives"].astype("Int64")  # as score_split gives it: <NA> for the means
    labels = tuple(k for k in rows if k not in (MEAN, WAUC))
    return SplitScores(table=table, method="95% percentile bootstrap, 1000 resamples of patients", labels=labels,
                      y_true=np.zeros((1, len(labels))), y_score=np.zeros((1, len(labels))),
                      mask=np.ones((1, len(labels)), bool), images=images, patients=patients)


def ctx(**kw):
    return comparison.Context(**{"source": "trial run abc", "mode": "checkpoint", "epoch": 3, "dataset": "nih",
                                 "split": "official train_val/test", "synthetic": False, "space": "dualchexnet", **kw})


def test_difference_and_ci_coverage_against_the_paper():
    paper = numbers(importlib.import_module("spaces.dualchexnet").SPEC.paper["chestxray14"])
    s = scores_of({"Cardiomegaly": (0.90, 0.87, 0.93, 120), "Hernia": (0.80, 0.70, 0.85, 12),
                   MEAN: (0.85, 0.84, 0.86, None), WAUC: (0.86, 0.85, 0.87, None)})
    f = comparison.frame(s, paper)
    assert f.loc["Cardiomegaly", "paper"] == pytest.approx(0.886)
    assert f.loc["Cardiomegaly", "diff"] == pytest.approx(0.90 - 0.886)
    assert f.loc["Cardiomegaly", "paper_inside_ci"] is True
    assert f.loc["Hernia", "paper_inside_ci"] is False  # paper 0.9 above our 0.85
    assert f.loc[MEAN, "paper"] == pytest.approx(0.818) and f.loc[MEAN, "paper_inside_ci"] is False
    assert np.isnan(f.loc[WAUC, "paper"]) and f.loc[WAUC, "paper_inside_ci"] is None
    md = comparison.markdown(s, paper, ctx())
    assert "| Cardiomegaly | 0.900 [0.870, 0.930] | 0.886 | +0.014 | yes | 120 |" in md
    assert "| Hernia † |" in md and "fewer than 30 test positives: Hernia" in md
    assert "Same test set as the paper" in md and "synthetic" not in md
    assert "| **W-AUC** | 0.860 [0.850, 0.870] | — | — | — | — |" in md


def test_notes_say_when_the_comparison_is_unfair():
    s = scores_of({"Cardiomegaly": (0.9, 0.8, 0.95, 50), MEAN: (0.9, 0.8, 0.95, None)})
    am = numbers(importlib.import_module("spaces.am_densenet").SPEC.paper["chestxray14"])
    assert "**Different split.**" in comparison.markdown(s, am, ctx(space="am_densenet"))
    msml = numbers(importlib.import_module("spaces.msml").SPEC.paper["chestxray14"])
    assert "prints only its mean AUC" in comparison.markdown(s, msml, ctx(space="msml"))
    synthetic = comparison.markdown(s, am, ctx(synthetic=True))
    assert "**Embedded synthetic dataset.**" in synthetic and "Different split" not in synthetic
    assert "prints no chexpert test AUCs" in comparison.markdown(s, None, ctx(dataset="chexpert"))
    assert "pass `--space`" in comparison.markdown(s, None, ctx(space=None))


def test_a_test_set_cut_from_the_papers_split_is_called_part_of_it_with_both_counts():
    rows = {"Cardiomegaly": (0.9, 0.8, 0.95, 50), MEAN: (0.9, 0.8, 0.95, None)}
    nih = numbers(importlib.import_module("spaces.dualchexnet").SPEC.paper["chestxray14"])
    assert nih.test_size == (25_596, "images")
    cut = comparison.markdown(scores_of(rows, images=75, patients=40), nih, ctx())
    assert "**Part of the paper's test set.** Ours has 75 images; the paper's has 25,596" in cut
    assert "Same test set" not in cut
    assert "Same test set as the paper" in comparison.markdown(scores_of(rows, images=25_596), nih, ctx())
    # CheXpert's published validation set: the paper counts 200 studies, one per patient
    chexpert = numbers(importlib.import_module("spaces.mlrfnet").SPEC.paper["chexpert"])
    assert chexpert.test_size == (200, "studies")
    whole = comparison.markdown(scores_of(rows, images=234, patients=200), chexpert, ctx(dataset="chexpert"))
    assert "Same test set as the paper" in whole
    part = comparison.markdown(scores_of(rows, images=60, patients=50), chexpert, ctx(dataset="chexpert"))
    assert "Ours has 50 patients (one study each); the paper's has 200" in part
