import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from trainables.data import NIH_LABELS, DataError
from trainables.data import synthetic
from trainables.data.nih import read_nih
from trainables.errors import UsageError
from trainables.data.synthetic import HEADER, MARKER, ensure, generate, is_complete, render
from trainables.data.synthetic_cohort import PREVALENCE

REPO = Path(__file__).resolve().parents[3]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_whatever_the_workers_and_another_seed_differs(tmp_path):
    a = files(generate(tmp_path / "a", n_patients=40, image_size=64, seed=3, workers=1, progress=False))
    b = files(generate(tmp_path / "b", n_patients=40, image_size=64, seed=3, workers=2, progress=False))
    c = files(generate(tmp_path / "c", n_patients=40, image_size=64, seed=4, workers=1, progress=False))
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert sum(k.startswith("images/") for k in a) > 60
    assert a["Data_Entry_2017.csv"] != c["Data_Entry_2017.csv"]
    shared = [k for k in a if k.startswith("images/") and k in c]
    assert shared and all(a[k] != c[k] for k in shared)
    # regenerating a smaller set into the same root leaves no stale images behind
    generate(tmp_path / "a", n_patients=12, image_size=32, seed=3, progress=False)
    assert is_complete(tmp_path / "a")


def test_written_in_the_nih_format_and_read_by_the_real_reader(tmp_path):
    root = generate(tmp_path / "nih", n_patients=60, image_size=64, seed=0, progress=False)
    lines = (root / "Data_Entry_2017.csv").read_text().splitlines()
    assert lines[0] == HEADER and lines[0].endswith(",") and len(lines[0].split(",")) == 12
    for line in lines[1:]:
        name, findings, fu, pid, age, sex, view, w, h, sx, sy = line.split(",")
        assert re.fullmatch(r"(\d{8})_(\d{3})\.png", name)
        assert int(name[:8]) == int(pid) and int(name[9:12]) == int(fu)
        assert findings == "No Finding" or set(findings.split("|")) <= set(NIH_LABELS)
        assert 18 <= int(age) <= 95 and sex in "MF" and view in ("PA", "AP") and w == h == "64"
    s = read_nih(root, val_fraction=0.1, seed=0)
    paths = s.train.paths + s.val.paths + s.test.paths
    assert len(paths) == len(lines) - 1 and all(os.path.isfile(p) for p in paths)
    tr, va, te = (set(x.patients) for x in (s.train, s.val, s.test))
    assert va and te and not (tr & va) and not (tr & te) and not (va & te)
    assert 0.15 < len(s.test) / len(paths) < 0.3   # the official split's ~23%
    with Image.open(s.test.paths[0]) as img:
        assert img.mode == "L" and img.size == (64, 64)
    assert is_complete(root) and json.loads((root / MARKER).read_text())["n_images"] == len(paths)


def test_label_statistics_match_chestxray14():
    co = synthetic.sample_labels(n_patients=10000, seed=0)
    y = co.labels
    prevalence = y.mean(axis=0)
    np.testing.assert_allclose(prevalence, PREVALENCE, rtol=0.15, atol=0.001)
    assert 0.51 < (~y.any(axis=1)).mean() < 0.57
    assert NIH_LABELS[prevalence.argmax()] == "Infiltration"
    assert NIH_LABELS[prevalence.argmin()] == "Hernia"
    per_patient = len(co.names) / 10000
    assert 2.2 < per_patient < 3.5 and np.bincount(co.patient).max() <= 8
    # lift = P(a and b) / (P(a) P(b)): every pair is > 1 (shared "sick" factor), related ones more
    lift = (y.T.astype(float) @ y) / len(y) / np.outer(prevalence, prevalence)
    typical = np.median(lift[~np.eye(14, dtype=bool)])
    i = NIH_LABELS.index
    for a, b in [("Effusion", "Atelectasis"), ("Edema", "Effusion"), ("Pneumonia", "Consolidation"),
                 ("Mass", "Nodule"), ("Emphysema", "Pneumothorax"), ("Pneumonia", "Infiltration"),
                 ("Cardiomegaly", "Edema")]:
        assert lift[i(a), i(b)] > max(2.0, typical + 0.3), (a, b, lift[i(a), i(b)])
    assert 1.0 < typical < 2.0
    # Follow-ups resemble each other: a label seen in a patient's first image recurs in the second.
    first = co.followup == 0
    has_second = np.r_[co.followup[1:] == 1, False]
    again = y[np.flatnonzero(first & has_second) + 1][y[first & has_second]].mean()
    assert again > 3 * PREVALENCE.mean()
    assert co.severity[y].min() > 0 and co.severity[~y].max() == 0
    assert 0.2 < co.test.mean() < 0.26


def test_every_label_has_its_own_sign_that_grows_with_severity():
    none = np.zeros(14, bool)
    base = render(0, 64, 5, 0, none, np.zeros(14), False).astype(float)
    changed = []
    for k in range(14):
        y, sev = none.copy(), np.zeros(14)
        y[k] = True
        diffs = []
        for s in (0.05, 1.0):
            sev[k] = s
            diffs.append(np.abs(render(0, 64, 5, 0, y, sev, False) - base).sum())
        assert 0 < diffs[0] < diffs[1], NIH_LABELS[k]
        sev[k] = 1.0
        changed.append(render(0, 64, 5, 0, y, sev, False).astype(float) - base)
    # each sign is a different picture, not one generic blob
    flat = np.stack([c.ravel() for c in changed])
    corr = np.corrcoef(flat)
    assert (corr[~np.eye(14, dtype=bool)] < 0.95).all()


def test_ensure_never_trusts_an_incomplete_set_and_reuses_a_complete_one(tmp_path, monkeypatch):
    root = tmp_path / "set"
    kw = dict(n_patients=12, image_size=32, seed=0, progress=False)
    # a temp dir left by a killed run, complete-looking inside, must not be picked up
    stale = generate(tmp_path / "set.tmp-99999", **kw)
    # a root whose generation died before the marker
    generate(root, **kw)
    (root / MARKER).unlink()
    (root / "images" / "00000001_000.png").unlink()
    assert not is_complete(root)
    assert ensure(root, **kw) == root.resolve()
    assert is_complete(root) and not stale.exists()
    assert (root / "images" / "00000001_000.png").is_file()
    stamps = {p: p.stat().st_mtime_ns for p in (root / MARKER, root / "Data_Entry_2017.csv")}

    def must_not_run(*a, **k):
        raise AssertionError("regenerated a complete set")

    monkeypatch.setattr(synthetic, "generate", must_not_run)
    assert ensure(root, **kw) == root.resolve()
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    with pytest.raises(DataError, match="seed"):
        ensure(root, **{**kw, "seed": 1})


def test_ensure_default_root_and_refusals(tmp_path):
    root = ensure(n_patients=12, image_size=32, progress=False)
    assert root == synthetic.default_root(0, 12, 32)
    assert str(root).startswith(os.environ["CXR_TUNE_CACHE"]) and "v1" in root.name
    assert is_complete(root)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a synthetic set"):
        ensure(foreign, n_patients=12, image_size=32, progress=False)
    assert (foreign / "notes.txt").exists()
    with pytest.raises(UsageError, match="n_patients"):
        generate(tmp_path / "x", n_patients=5)
    with pytest.raises(UsageError, match="image_size"):
        ensure(tmp_path / "x", image_size=16)


def _ensure_counting(root, counter, barrier):
    original = synthetic.generate

    def counted(*a, **k):
        with open(counter, "a") as f:
            f.write("generated\n")
        return original(*a, **k)

    synthetic.generate = counted
    barrier.wait()
    ensure(root, n_patients=12, image_size=32, progress=False, workers=1)


def test_concurrent_callers_generate_once(tmp_path):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_ensure_counting, args=(tmp_path / "set", tmp_path / "count", barrier))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert (tmp_path / "count").read_text().count("generated") == 1
    assert is_complete(tmp_path / "set")


def test_cli_generates_and_prints_where_and_label_counts(tmp_path):
    cmd = [sys.executable, "-m", "trainables.data.synthetic"]
    out = subprocess.run(cmd + ["--out", str(tmp_path / "cli"), "--patients", "12", "--image-size", "32",
                                "--seed", "2"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert str((tmp_path / "cli").resolve()) in out.stdout and "Infiltration" in out.stdout
    assert is_complete(tmp_path / "cli")
    bad = subprocess.run(cmd + ["--patients", "3"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr == "error: argument --patients: 3 must be >= 10 (see synthetic.py --help)\n"
