"""The test AUCs the five papers print, and which row of them each search space compares with.

`paper_aucs.csv` (beside this file) holds every per-label test AUC printed in the five papers:
paper, system, dataset (chestxray14 | chexpert), split (as the paper describes it), label
(`mean` for the mean over labels), auc, source (table). A `PaperRow` names one system on one
dataset and split; each `SearchSpec` names its paper's headline row per dataset (`paper`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

CSV = Path(__file__).with_name("paper_aucs.csv")
DATASETS = {"nih": "chestxray14", "chexpert": "chexpert"}  # Splits.name -> the CSV's dataset


@dataclass(frozen=True)
class PaperRow:
    system: str   # the CSV's `system`, exactly
    dataset: str  # chestxray14 | chexpert
    split: str    # the start of the CSV's `split` ("official", "random 70% train", ...)


@dataclass
class PaperNumbers:
    row: PaperRow
    paper: str         # the paper's file in the corpus
    split: str         # the paper's split, as printed
    sources: str       # the tables the numbers come from
    aucs: dict         # label -> AUC; `mean` for the mean the paper prints

    @property
    def test_size(self) -> tuple[int, str] | None:
        """(count, "images" | "studies") of the paper's test set, as its split prints it; None if it does not."""
        for pattern, unit in ((r"([\d,]+) test images", "images"), (r"test_list ([\d,]+)", "images"),
                              (r"\(([\d,]+) studies\)", "studies")):
            found = re.search(pattern, self.split)
            if found:
                return int(found.group(1).replace(",", "")), unit
        return None

    @property
    def official(self) -> bool:
        """True when the paper evaluated on the published test set (NIH test_list, CheXpert valid)."""
        return self.split.startswith("official")


@lru_cache(maxsize=1)
def table() -> pd.DataFrame:
    return pd.read_csv(CSV)


def numbers(row: PaperRow) -> PaperNumbers:
    t = table()
    rows = t[(t["system"] == row.system) & (t["dataset"] == row.dataset) & t["split"].str.startswith(row.split)]
    if rows.empty:
        raise KeyError(f"no row of {CSV.name} is system={row.system!r}, dataset={row.dataset!r}, "
                       f"split starting {row.split!r}")
    splits = rows["split"].unique()
    if len(splits) > 1:
        raise KeyError(f"{row} matches several splits in {CSV.name}: {list(splits)}; give more of the split")
    return PaperNumbers(row=row, paper=rows["paper"].iloc[0], split=splits[0],
                        sources="; ".join(dict.fromkeys(t.strip() for s in rows["source"] for t in s.split(";"))),
                        aucs=dict(zip(rows["label"], rows["auc"].astype(float))))
