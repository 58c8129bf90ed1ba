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
