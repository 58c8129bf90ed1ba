"""Shrinks every run: CPU, tiny images, a hand-written NIH-format root, caches under tmp."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

NIH_HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
              "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CXR_TUNE_CACHE", str(tmp_path_factory.getbasetemp() / "cxr-cache"))


def write_nih(root, rows, train_val, test, size=32, folder="images", seed=0):
    """rows: (image name, finding labels, patient id). Images: random but reproducible."""
    rng = np.random.default_rng(seed)
    (root / folder).mkdir(parents=True, exist_ok=True)
    lines = [NIH_HEADER]
    for name, findings, pid in rows:
        lines.append(f"{name},{findings},0,{pid},50,M,PA,{size},{size},0.14,0.14")
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / folder / name)
    (root / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    return root


@pytest.fixture
def tiny_nih(tmp_path):
    """40 patients x 3 images; labels cycle through every label so each split has positives."""
    from trainables.data import NIH_LABELS

    rows, names = [], []
    for p in range(1, 41):
        for f in range(3):
            name = f"{p:08d}_{f:03d}.png"
            k = (p * 3 + f) % 16
            findings = "No Finding" if k >= 14 else NIH_LABELS[k] + ("|Effusion" if k % 4 == 0 else "")
            rows.append((name, findings, p))
            names.append((p, name))
    train_val = [n for p, n in names if p <= 30]
    test = [n for p, n in names if p > 30]
    return write_nih(tmp_path / "nih", rows, train_val, test)


CHEXPERT_CODES = {"1": "1.0", "0": "0.0", "u": "-1.0", ".": ""}  # one character per observation


def write_chexpert(root, train_rows, valid_rows, prefix=None, size=16, ext="jpg", seed=0):
    """rows: (patient number, study number, "Frontal" | "Lateral", 14 codes from CHEXPERT_CODES).

    train.csv / valid.csv as published (Path relative to the root's parent, so it starts with
    `prefix`, the root's own name by default) and a tiny random image for every row.
    (tests/trainables/data/test_chexpert.py keeps its own copy with raw-value rows.)
    """
    from trainables.data.chexpert import CHEXPERT_LABELS

    header = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(CHEXPERT_LABELS)
    prefix = root.name if prefix is None else prefix
    rng = np.random.default_rng(seed)
    for split, rows in (("train", train_rows), ("valid", valid_rows)):
        lines, seen = [header], {}
        for patient, study, view, codes in rows:
            k = seen[(patient, study)] = seen.get((patient, study), 0) + 1
            rel = f"{split}/patient{patient:05d}/study{study}/view{k}_{view.lower()}.{ext}"
            ap_pa = "AP" if view == "Frontal" else ""
            lines.append(",".join([f"{prefix}/{rel}" if prefix else rel, "Female", "63", view, ap_pa,
                                   *(CHEXPERT_CODES[c] for c in codes)]))
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / rel)
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def small_chexpert(tmp_path):
    """CheXpert-v1.0-small look-alike: 40 train patients x 3 images, 6 valid images, 40 px.

    Observation j of image i cycles 1, 0, u, blank with (i + j), so every label, the five
    evaluation ones included, has positives, negatives and uncertain entries in any 4
    consecutive images, hence in the validation split carved by patient.
    """
    cycle = "10u."
    train, i = [], 0
    for p in range(1, 41):
        for study, view in ((1, "Frontal"), (1, "Lateral"), (2, "Frontal")):
            train.append((p, study, view, "".join(cycle[(i + j) % 4] for j in range(14))))
            i += 1
    valid = [(64540 + k, 1, "Frontal", "".join(cycle[(k + j) % 4] for j in range(14))) for k in range(6)]
    return write_chexpert(tmp_path / "CheXpert-v1.0-small", train, valid, size=40)
