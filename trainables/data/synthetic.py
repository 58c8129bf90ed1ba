"""Embedded synthetic ChestX-ray14: a small stand-in for the NIH release, generated on first use.

A fresh machine has no 45 GB download, yet the search, its demos and the end-to-end tests must
train on something that behaves like chest X-rays. This module writes a set in the NIH's own
on-disk format (`Data_Entry_2017.csv`, `train_val_list.txt`, `test_list.txt`, `images/*.png`),
so the real reader (`trainables.data.nih.read_nih`) reads it and no code path is synthetic-only.

Who does what: synthetic_cohort.py draws every image's labels, metadata and split (what makes the
labels realistic is said there), synthetic_drawing.py draws each film's pixels (the signs and their
look-alikes), and this module writes the files, generates once per root under a lock, and is the
`python -m trainables.data.synthetic` command.
Everything is a function of (seed, patient, follow-up): same arguments, byte-identical files,
whatever the number of worker processes.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from filelock import FileLock
from PIL import Image
from tqdm.auto import tqdm

from trainables.data import NIH_LABELS, DataError
from trainables.data.synthetic_cohort import (DEFAULT_IMAGE_SIZE, DEFAULT_PATIENTS, DEFAULT_SEED,
                                              MIN_IMAGE_SIZE, MIN_PATIENTS, check_size, sample_labels)
from trainables.data.synthetic_drawing import render
from trainables.errors import Parser, at_least, cli

FORMAT_VERSION = 1
MARKER = "SYNTHETIC_COMPLETE.json"
HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
          "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],")
OWN_FILES = {"Data_Entry_2017.csv", "train_val_list.txt", "test_list.txt", "images", MARKER}
NAME = re.compile(r"\d{8}_\d{3}\.png")


def _render_chunk(job) -> int:
    images, seed, size, rows = job
    for name, pid, fu, labels, severity, ap in rows:
        pixels = render(seed, size, pid, fu, labels, severity, ap)
        Image.fromarray(pixels, "L").save(os.path.join(images, name))
    return len(rows)


def default_root(seed: int = DEFAULT_SEED, n_patients: int = DEFAULT_PATIENTS,
                 image_size: int = DEFAULT_IMAGE_SIZE) -> Path:
    cache = Path(os.environ.get("CXR_TUNE_CACHE", Path.home() / ".cache" / "cxr-tune"))
    return cache / f"synthetic-nih-v{FORMAT_VERSION}-seed{seed}-p{n_patients}-{image_size}px"


def generate(root, n_patients: int = DEFAULT_PATIENTS, image_size: int = DEFAULT_IMAGE_SIZE,
             seed: int = DEFAULT_SEED, workers: int | None = None, progress: bool = True) -> Path:
    """Write the whole set into `root` (created); the completion marker is written last."""
    check_size(n_patients, image_size)
    root = Path(root).expanduser()
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / MARKER).unlink(missing_ok=True)
    co = sample_labels(n_patients, seed)
    keep = set(co.names)
    for old in os.scandir(root / "images"):   # images of an earlier, larger set in this root
        if old.name not in keep and NAME.fullmatch(old.name):
            os.remove(old.path)
    spacing = 0.143 * 1024 / image_size
    rows = [f"{n},{co.findings(i)},{co.followup[i]},{co.patient[i]},{co.age[i]},"
            f"{'M' if co.male[i] else 'F'},{'AP' if co.ap[i] else 'PA'},{image_size},{image_size},"
            f"{spacing:.3f},{spacing:.3f}"
            for i, n in enumerate(co.names)]
    (root / "Data_Entry_2017.csv").write_text("\n".join([HEADER] + rows) + "\n")
    for name, in_test in (("train_val_list.txt", False), ("test_list.txt", True)):
        (root / name).write_text("".join(n + "\n" for n, t in zip(co.names, co.test) if t == in_test))

    items = [(n, int(co.patient[i]), int(co.followup[i]), co.labels[i].tolist(),
              co.severity[i].tolist(), bool(co.ap[i])) for i, n in enumerate(co.names)]
    images = str(root / "images")
    jobs = [(images, seed, image_size, items[s:s + 64]) for s in range(0, len(items), 64)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if mp.current_process().daemon:   # daemonic processes may not have children
        workers = 1
    bar = tqdm(total=len(items), unit="img", disable=None if progress else True,
               desc=f"synthetic ChestX-ray14: {len(items)} images at {image_size}px")
    if workers == 1:
        for job in jobs:
            bar.update(_render_chunk(job))
    else:
        with ProcessPoolExecutor(workers) as pool:
            for done in pool.map(_render_chunk, jobs):
                bar.update(done)
    bar.close()
    meta = dict(format=FORMAT_VERSION, seed=seed, n_patients=n_patients, image_size=image_size,
                n_images=len(items))
    (root / MARKER).write_text(json.dumps(meta))
    return root


def is_complete(root) -> bool:
    """Complete = marker written last by `generate`, and every image it promised is there."""
    try:
        meta = json.loads((Path(root) / MARKER).read_text())
        return sum(1 for _ in os.scandir(Path(root) / "images")) == meta["n_images"]
    except (OSError, ValueError, KeyError):
        return False


def ensure(root=None, *, n_patients: int = DEFAULT_PATIENTS, image_size: int = DEFAULT_IMAGE_SIZE,
           seed: int = DEFAULT_SEED, workers: int | None = None, progress: bool = True) -> Path:
    """The set at `root` (default: `default_root`), generated first if it is not complete there.

    Generation goes into a temporary sibling renamed into place, under a file lock: a crash
    never leaves a root that looks complete, and concurrent callers generate once.
    """
    check_size(n_patients, image_size)
    root = Path(root).expanduser().resolve() if root else default_root(seed, n_patients, image_size)
    wanted = dict(seed=seed, n_patients=n_patients, image_size=image_size)
    if not is_complete(root):
        root.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root) + ".lock"):
            if not is_complete(root):
                if root.exists():
                    foreign = sorted(p.name for p in root.iterdir() if p.name not in OWN_FILES)
                    if foreign:
                        raise DataError(f"{root} holds files that are not a synthetic set "
                                        f"({foreign[:5]}); choose an empty or new directory")
                    shutil.rmtree(root)   # an interrupted or damaged set: start over
                for stale in root.parent.glob(f"{root.name}.tmp-*"):   # left by killed runs
                    shutil.rmtree(stale, ignore_errors=True)
                tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
                try:
                    start = time.perf_counter()
                    generate(tmp, workers=workers, progress=progress, **wanted)
                    os.replace(tmp, root)
                    if progress:
                        took = time.perf_counter() - start
                        print(f"synthetic ChestX-ray14 written in {took:.1f} s, to\n  {root}")   # a path on a line of its own
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    meta = json.loads((root / MARKER).read_text())
    found = {k: meta.get(k) for k in wanted}
    if found != wanted:
        raise DataError(f"{root} holds a synthetic set made with {found}, not {wanted}; "
                        "pass another root or delete this one")
    return root


@cli
def main(argv=None) -> None:
    p = Parser(description="Generate (once) the embedded synthetic ChestX-ray14.")
    p.add_argument("--out", default=None, help="target directory (default: under $CXR_TUNE_CACHE)")
    p.add_argument("--patients", type=at_least(MIN_PATIENTS), default=DEFAULT_PATIENTS)
    p.add_argument("--image-size", type=at_least(MIN_IMAGE_SIZE), default=DEFAULT_IMAGE_SIZE)
    p.add_argument("--seed", type=at_least(0), default=DEFAULT_SEED)
    p.add_argument("--workers", type=at_least(1), default=None)
    args = p.parse_args(argv)
    root = ensure(args.out, n_patients=args.patients, image_size=args.image_size, seed=args.seed,
                  workers=args.workers)
    co = sample_labels(args.patients, args.seed)
    print(f"synthetic ChestX-ray14 at {root}")
    print(f"{len(co.names)} images of {args.patients} patients; train_val {int((~co.test).sum())}, "
          f"test {int(co.test.sum())}; No Finding {100 * (~co.labels.any(axis=1)).mean():.1f}%")
    for label, n in zip(NIH_LABELS, co.labels.sum(axis=0)):
        print(f"  {label:<20}{n:6d}  {100 * n / len(co.names):5.1f}%")


if __name__ == "__main__":
    main()
