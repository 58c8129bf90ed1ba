"""ChestX-ray14 (NIH, Wang et al. 2017) reader: the release exactly as published.

A root holds `Data_Entry_2017*.csv`, `train_val_list.txt`, `test_list.txt` and PNGs under
`images/` or `images_001/images/` ... `images_012/images/`. The official split is
patient-disjoint; the validation split is carved out of train_val by patient (the papers'
70/10/20 convention: `val_fraction` is a fraction of the whole dataset). User split lists
(the papers' "non-official" random splits) replace the official ones.
"""
from __future__ import annotations

import glob
from collections import Counter
import os
from pathlib import Path

import numpy as np
import pandas as pd

from trainables.data import NIH_LABELS, DataError, Split, Splits, first_few
from trainables.data.tables import read_csv, read_lines, require_values

REQUIRED_COLUMNS = ("Image Index", "Finding Labels", "Patient ID")
NO_FINDING = "No Finding"


def find_csv(root: Path) -> Path:
    found = sorted(root.glob("Data_Entry_2017*.csv"))
    if not found:
        raise DataError(f"No Data_Entry_2017*.csv in {root}. Point --data at the ChestX-ray14 "
                        "root that holds the CSV, the split lists and the image folders.")
    if len(found) > 1:
        names = first_few(p.name for p in found)
        raise DataError(f"Several label files in {root}: {names}. Keep one (the v2020 file "
                        "is the current one) or move the others out of the root.")
    return found[0]


def parse_labels(csv_path: Path) -> pd.DataFrame:
    """Image Index, Patient ID and one 0/1 column per label, in NIH_LABELS order."""
    df = read_csv(csv_path, dtype={"Patient ID": str})
    # Some copies end the header with a comma: pandas then adds an empty "Unnamed" column.
    df = df.loc[:, [c for c in df.columns if not (c.startswith("Unnamed") and df[c].isna().all())]]
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{csv_path} lacks column(s) {missing}; found {list(df.columns)}. "
                        "Use the Data_Entry_2017 CSV as released by the NIH.")
    require_values(df, ("Image Index", "Patient ID"), csv_path)
    dupes = df["Image Index"][df["Image Index"].duplicated()]
    if len(dupes):
        raise DataError(f"{csv_path} lists {len(dupes)} image(s) twice: {first_few(dupes)}.")
    findings = df["Finding Labels"].fillna("").astype(str).str.split("|")
    known = set(NIH_LABELS) | {NO_FINDING}
    unknown = sorted({f.strip() for fs in findings for f in fs} - known)
    if unknown:
        raise DataError(f"{csv_path} has unknown label(s) {first_few(unknown)} in 'Finding Labels'. "
                        f"Expected '|'-joined names from {list(NIH_LABELS)} or '{NO_FINDING}'.")
    out = df[["Image Index", "Patient ID"]].copy()
    for label in NIH_LABELS:
        out[label] = findings.map(lambda fs, lab=label: float(lab in (f.strip() for f in fs)))
    return out.reset_index(drop=True)


def index_images(root: Path) -> dict[str, str]:
    dirs = [root / "images"] + sorted(Path(p) for p in glob.glob(str(root / "images_*" / "images")))
    index: dict[str, str] = {}
    for d in dirs:
        if d.is_dir():
            with os.scandir(d) as it:
                for entry in it:
                    if entry.name.lower().endswith((".png", ".jpg", ".jpeg")):
                        index[entry.name] = entry.path
    if not index:
        raise DataError(f"No images under {root}/images/ or {root}/images_0NN/images/. "
                        "Extract the image archives into the dataset root.")
    return index


def read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"Split list {path} not found. ChestX-ray14 ships train_val_list.txt "
                        "and test_list.txt; pass your own lists with split_lists=.")
    names = read_lines(path)
    dupes = sorted(n for n, k in Counter(names).items() if k > 1)
    if dupes:
        raise DataError(f"Split list {path} names {len(dupes)} image(s) more than once: {first_few(dupes)}; "
                        "each image belongs in a list once.")
    return names


def check_in_csv(names: list[str], table: pd.DataFrame, which: str) -> None:
    not_in_csv = sorted(set(names) - set(table.index))
    if not_in_csv:
        raise DataError(f"{len(not_in_csv)} image(s) in the {which} split list are not in the label CSV: "
                        f"{first_few(not_in_csv)}. The lists and the CSV must come from one release.")


def carve_by_patient(names: list[str], patients: pd.Series, n_val: int, seed: int):
    """Move whole patients from `names` to validation until about n_val images are there."""
    pid = patients.loc[names]
    order = np.random.default_rng(seed).permutation(np.asarray(sorted(pid.unique())))
    sizes = pid.value_counts()
    val_patients, count = set(), 0
    for p in order:
        if count >= n_val:
            break
        val_patients.add(p)
        count += int(sizes[p])
    in_val = pid.isin(val_patients).to_numpy()
    val = [n for n, v in zip(names, in_val) if v]
    train = [n for n, v in zip(names, in_val) if not v]
    return train, val


def read_nih(root: str | os.PathLike, val_fraction: float = 0.1, seed: int = 0,
             split_lists: dict[str, str] | None = None) -> Splits:
    root = Path(root).expanduser().resolve()
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction={val_fraction} must lie in (0, 1); 0.1 gives the papers' 70/10/20.")
    table = parse_labels(find_csv(root)).set_index("Image Index")
    lists = dict(split_lists or {})
    unknown_keys = set(lists) - {"train_val", "train", "val", "test"}
    if unknown_keys:
        raise DataError(f"Unknown split list key(s) {sorted(unknown_keys)}; use train_val, train, val, test.")
    test = read_list(Path(lists.get("test", root / "test_list.txt")))
    check_in_csv(test, table, "test")
    if "train" in lists and "val" in lists:
        train, val = read_list(Path(lists["train"])), read_list(Path(lists["val"]))
        check_in_csv(train + val, table, "train/val")
        how = "user train/val/test lists"
    else:
        train_val = read_list(Path(lists.get("train_val", root / "train_val_list.txt")))
        check_in_csv(train_val, table, "train_val")
        n_val = round(val_fraction * (len(train_val) + len(test)))
        train, val = carve_by_patient(train_val, table["Patient ID"], n_val, seed)
        how = f"official train_val/test, validation carved by patient (seed {seed})"

    named = {"train": train, "val": val, "test": test}
    all_names = [n for names in named.values() for n in names]
    overlaps = [(a, b) for a in named for b in named if a < b and set(named[a]) & set(named[b])]
    if overlaps:
        raise DataError(f"Split lists overlap ({overlaps}); each image must be in one split only.")
    leaked = set(table.loc[train, "Patient ID"]) & (set(table.loc[val, "Patient ID"]) | set(table.loc[test, "Patient ID"]))
    if leaked and "train" in lists:
        print(f"warning: {len(leaked)} patient(s) appear in train and in val/test of the user lists; "
              "their AUC is optimistic.")
    unused = len(table) - len(all_names)
    if unused:
        print(f"note: {unused} image(s) in the label CSV are in no split list and are not used.")

    images = index_images(root)
    missing = sorted(n for n in all_names if n not in images)
    if missing:
        raise DataError(f"{len(missing)} image(s) listed in the splits are missing under {root}: "
                        f"{first_few(missing)}. Download and extract every images_0NN archive.")

    def make(names: list[str]) -> Split:
        rows = table.loc[names]
        labels = rows[list(NIH_LABELS)].to_numpy(dtype=np.float32)
        return Split(paths=[images[n] for n in names], labels=labels, mask=np.ones_like(labels),
                     patients=rows["Patient ID"].to_numpy())

    return Splits(name="nih", root=str(root), labels=NIH_LABELS, train=make(train), val=make(val),
                  test=make(test), description=how)
