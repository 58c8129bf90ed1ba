"""CheXpert (Irvin et al. 2019) reader: `train.csv` / `valid.csv` exactly as published.

A root (e.g. `CheXpert-v1.0-small/`) holds `train.csv` and `valid.csv` with columns
`Path, Sex, Age, Frontal/Lateral, AP/PA` and the 14 observations of `CHEXPERT_LABELS`, each
1.0 (positive), 0.0 (negative), -1.0 (uncertain) or blank (not mentioned: negative). `Path`
is relative to the root's *parent* (`CheXpert-v1.0-small/train/patient00001/...`); a renamed
root or a copy whose paths start at `train/` is found too.

Uncertain entries follow an uncertainty policy (Irvin et al.; MLRFNet, Li et al. 2024):
"ones" (U-Ones, -1 -> 1), "zeros" (U-Zeros, -1 -> 0), "ignore" (U-Ignore: mask 0, so the
entry never reaches the loss), "mixed" (MLRFNet: U-Ones for Atelectasis and Edema, U-Zeros
for Cardiomegaly, Consolidation and Pleural Effusion; the nine labels MLRFNet does not
evaluate fall back to U-Zeros), or a dict label -> ones/zeros/ignore (absent labels: zeros).

Splits: `test` is valid.csv, the published evaluation set the papers report on; `val` is
carved out of train.csv by patient (`val_fraction` of its images) for tuning; `train` is the
rest of train.csv. `frontal_only` keeps frontal views in every split.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from trainables.data import DataError, Split, Splits, first_few
from trainables.data.tables import read_csv, require_values
from trainables.data.nih import carve_by_patient

CHEXPERT_LABELS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)
# The five observations of the CheXpert competition, on which the papers report mean AUC.
CHEXPERT_EVAL_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
# MLRFNet's mixed policy; labels not named here use "zeros".
MLRFNET_MIXED = {"Atelectasis": "ones", "Edema": "ones", "Cardiomegaly": "zeros",
                 "Consolidation": "zeros", "Pleural Effusion": "zeros"}

# What an uncertain (-1) entry becomes: (label, mask).
UNCERTAIN = {"ones": (1.0, 1.0), "zeros": (0.0, 1.0), "ignore": (0.0, 0.0)}
NAMED_POLICIES = ("ones", "zeros", "ignore", "mixed")
DEFAULT = "zeros"
VIEW_COLUMN = "Frontal/Lateral"


def label_policies(policy) -> dict[str, str]:
    """One of ones/zeros/ignore per label, in CHEXPERT_LABELS order."""
    if isinstance(policy, str):
        if policy not in NAMED_POLICIES:
            raise DataError(f"Unknown CheXpert uncertainty policy {policy!r}; use one of "
                            f"{list(NAMED_POLICIES)} or a dict label -> {list(UNCERTAIN)}.")
        if policy == "mixed":
            return {lab: MLRFNET_MIXED.get(lab, DEFAULT) for lab in CHEXPERT_LABELS}
        return {lab: policy for lab in CHEXPERT_LABELS}
    if isinstance(policy, dict):
        unknown_labels = sorted(set(policy) - set(CHEXPERT_LABELS))
        if unknown_labels:
            raise DataError(f"Uncertainty policy names unknown label(s) {unknown_labels}; "
                            f"the CheXpert labels are {list(CHEXPERT_LABELS)}.")
        bad = {lab: p for lab, p in policy.items() if p not in UNCERTAIN}
        if bad:
            raise DataError(f"Uncertainty policy has unknown value(s) {bad}; each label takes "
                            f"one of {list(UNCERTAIN)}.")
        return {lab: policy.get(lab, DEFAULT) for lab in CHEXPERT_LABELS}
    raise DataError(f"Uncertainty policy must be one of {list(NAMED_POLICIES)} or a dict "
                    f"label -> {list(UNCERTAIN)}, not {type(policy).__name__} {policy!r}.")


def describe_policy(policy, per_label: dict[str, str]) -> str:
    if isinstance(policy, str) and policy != "mixed":
        return f"U-{policy.capitalize()}"
    groups = {p: [lab for lab in CHEXPERT_LABELS if per_label[lab] == p] for p in UNCERTAIN}
    parts = [f"{p} for {', '.join(labs)}" for p, labs in groups.items()
             if labs and p != DEFAULT]
    name = "mixed (MLRFNet)" if policy == "mixed" else "per-label"
    return f"{name}: " + "; ".join(parts + [f"{DEFAULT} for the rest"])


def read_table(csv_path: Path, need_view: bool) -> pd.DataFrame:
    """The CSV as strings, with `Path` normalised to forward slashes; columns checked."""
    if not csv_path.is_file():
        raise DataError(f"{csv_path} not found. A CheXpert root holds train.csv and valid.csv "
                        "as released (e.g. CheXpert-v1.0-small/); point --data at that folder.")
    df = read_csv(csv_path, dtype=str, keep_default_na=False)
    required = ["Path", *CHEXPERT_LABELS] + ([VIEW_COLUMN] if need_view else [])
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{csv_path} lacks column(s) {missing}; found {list(df.columns)}. "
                        "Use the CheXpert CSV as released (Path, Sex, Age, Frontal/Lateral, "
                        "AP/PA, then the 14 observations).")
    require_values(df, ("Path",), csv_path)
    df["Path"] = df["Path"].str.strip().str.replace("\\", "/", regex=False)
    dupes = df["Path"][df["Path"].duplicated()]
    if len(dupes):
        raise DataError(f"{csv_path} lists {len(dupes)} image(s) twice: {first_few(dupes)}.")
    return df


def parse_observations(df: pd.DataFrame, csv_path: Path) -> np.ndarray:
    """Observation values as float: 1, 0, -1, NaN for blank. Anything else is an error."""
    raw = df[list(CHEXPERT_LABELS)].apply(lambda col: col.str.strip())
    values = raw.apply(pd.to_numeric, errors="coerce")
    bad = (raw != "") & ~values.isin([1.0, 0.0, -1.0])
    if bad.to_numpy().any():
        rows, cols = np.nonzero(bad.to_numpy())
        # Line numbers as a text editor shows them: the header is line 1.
        where = [f"line {r + 2} {CHEXPERT_LABELS[c]!r}={raw.iat[r, c]!r}" for r, c in zip(rows, cols)]
        raise DataError(f"{csv_path} has {len(where)} observation value(s) other than 1.0, 0.0, "
                        f"-1.0 or blank: {first_few(where)}. Use the CSV as released.")
    return values.to_numpy(dtype=np.float64)


def apply_policy(obs: np.ndarray, per_label: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.nan_to_num(obs, nan=0.0)  # blank: not mentioned, a negative
    mask = np.ones_like(labels)
    for j, lab in enumerate(CHEXPERT_LABELS):
        uncertain = obs[:, j] == -1.0
        labels[uncertain, j], mask[uncertain, j] = UNCERTAIN[per_label[lab]]
    return labels.astype(np.float32), mask.astype(np.float32)


def patient_ids(paths: pd.Series, csv_path: Path) -> pd.Series:
    pid = paths.str.extract(r"(?:^|/)(patient\d+)(?:/|$)", expand=False)
    lost = paths[pid.isna()]
    if len(lost):
        raise DataError(f"{csv_path}: {len(lost)} Path value(s) name no patientNNNNN folder: "
                        f"{first_few(lost)}. Patient ids come from that folder.")
    return pid


def resolve_images(paths: list[str], root: Path, csv_path: Path) -> list[str]:
    """Each Path relative to root's parent, to root after its first component, or to root.

    The parent is tried both as given and with symlinks resolved, so a linked root works too.
    """
    root_s = os.path.abspath(root)
    parents = list(dict.fromkeys([os.path.dirname(root_s), str(Path(root_s).resolve().parent)]))
    found, missing = [], []
    for rel in paths:
        tail = rel.partition("/")[2]
        candidates = [os.path.join(p, rel) for p in parents] + [os.path.join(root_s, tail)] * bool(tail)
        hit = next((c for c in candidates + [os.path.join(root_s, rel)] if os.path.isfile(c)), None)
        if hit is None:
            missing.append(rel)
        else:
            found.append(hit)
    if missing:
        raise DataError(f"{len(missing)} image(s) listed in {csv_path} are missing: "
                        f"{first_few(missing)}. Looked under {os.path.dirname(root_s)} and {root_s}; "
                        "extract the CheXpert archive so that the CSVs sit next to train/ and valid/.")
    return found


def read_split_csv(csv_path: Path, given: Path, per_label, frontal_only: bool):
    """Path/patient/file frame of the kept rows, their labels and mask, rows left out."""
    df = read_table(csv_path, need_view=frontal_only)
    labels, mask = apply_policy(parse_observations(df, csv_path), per_label)
    keep = np.ones(len(df), dtype=bool)
    if frontal_only:
        views = df[VIEW_COLUMN].str.strip()
        odd = views[~views.isin(["Frontal", "Lateral"])]
        if len(odd):
            where = [f"line {i + 2} {v!r}" for i, v in odd.items()]
            raise DataError(f"{csv_path} has {len(odd)} {VIEW_COLUMN} value(s) other than "
                            f"Frontal or Lateral: {first_few(where)}.")
        keep = (views == "Frontal").to_numpy()
    df = df.loc[keep, ["Path"]].reset_index(drop=True)
    df["patient"] = patient_ids(df["Path"], csv_path)
    df["file"] = resolve_images(df["Path"].tolist(), given, csv_path)
    return df, labels[keep], mask[keep], int((~keep).sum())


def read_chexpert(root: str | os.PathLike, policy="mixed", frontal_only: bool = False,
                  val_fraction: float = 0.05, seed: int = 0) -> Splits:
    given = Path(root).expanduser()
    root = given.resolve()
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction={val_fraction} must lie in (0, 1); it is the share of "
                        "train.csv images moved to the validation split.")
    per_label = label_policies(policy)
    csvs = {name: root / f"{name}.csv" for name in ("train", "valid")}
    absent = [str(p) for p in csvs.values() if not p.is_file()]
    if absent:
        raise DataError(f"CheXpert file(s) {absent} not found. Point --data at the folder that "
                        "holds train.csv and valid.csv as released (e.g. CheXpert-v1.0-small/).")

    train_df, *train_arrays, train_dropped = read_split_csv(csvs["train"], given, per_label, frontal_only)
    test_df, *test_arrays, test_dropped = read_split_csv(csvs["valid"], given, per_label, frontal_only)
    if not len(train_df) or not len(test_df):
        empty = [n for n, d in (("train.csv", train_df), ("valid.csv", test_df)) if not len(d)]
        raise DataError(f"No images left in {empty}" + (" after frontal_only" if frontal_only else "")
                        + ". Check the CSVs or turn frontal_only off.")
    leaked = set(train_df["patient"]) & set(test_df["patient"])
    if leaked:
        print(f"warning: {len(leaked)} patient(s) appear in both train.csv and valid.csv; "
              "the test AUC is optimistic.")

    names = train_df["Path"].tolist()
    n_val = max(1, round(val_fraction * len(names)))
    train_names, val_names = carve_by_patient(
        names, train_df.set_index("Path")["patient"], n_val, seed)
    if not train_names:
        raise DataError(f"val_fraction={val_fraction} took every patient of train.csv into "
                        "validation; lower it or use more training data.")
    row = pd.Series(np.arange(len(names)), index=names)

    def make(df: pd.DataFrame, arrays, rows: np.ndarray) -> Split:
        labels, mask = arrays
        return Split(paths=df["file"].to_numpy()[rows].tolist(), labels=labels[rows],
                     mask=mask[rows], patients=df["patient"].to_numpy()[rows])

    views = "frontal views only" if frontal_only else "frontal and lateral views"
    dropped = train_dropped + test_dropped
    how = (f"CheXpert, uncertainty policy {describe_policy(policy, per_label)}; {views}"
           + (f" ({dropped} lateral image(s) left out)" if frontal_only else "")
           + f"; val carved by patient from train.csv ({val_fraction:g} of its images, seed {seed}), "
           "test = valid.csv (the published evaluation set)")
    return Splits(name="chexpert", root=str(root), labels=CHEXPERT_LABELS,
                  train=make(train_df, train_arrays, row[train_names].to_numpy()),
                  val=make(train_df, train_arrays, row[val_names].to_numpy()),
                  test=make(test_df, test_arrays, np.arange(len(test_df))),
                  eval_labels=CHEXPERT_EVAL_LABELS, description=how)
