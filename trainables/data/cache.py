"""Preprocessed image cache: decode + grayscale + resize once, then every trial reads uint8 arrays.

One cache per (image list, file sizes and mtimes, resolution), stored as a raw uint8 array
(`images.u8`, read back as a read-only memmap shared by all trials of a node) plus
`index.json`. A build writes into a temporary sibling directory and renames it into place
only when complete, under a file lock, so a crash mid-build never leaves a cache that looks
complete and concurrent trials on one node build it once.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from trainables.data.images import load_gray, resize_square

FORMAT_VERSION = 1
_CHUNK = 64


def usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # not on macOS


def default_cache_root() -> Path:
    return Path(os.environ.get("CXR_TUNE_CACHE", Path.home() / ".cache" / "cxr-tune"))


def cache_key(paths: list[str], size: int) -> str:
    h = hashlib.sha256(f"v{FORMAT_VERSION}:{size}\n".encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _fill(args) -> int:
    data_path, n, size, start, paths = args
    out = np.memmap(data_path, dtype=np.uint8, mode="r+", shape=(n, size, size))
    for i, p in enumerate(paths):
        out[start + i] = resize_square(load_gray(p), size)
    out.flush()
    return len(paths)


class ImageCache:
    """Read-only view: `cache[i]` is image i of the list it was built from, (size, size) uint8."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        meta = json.loads((self.directory / "index.json").read_text())
        self.size = int(meta["size"])
        self.paths: list[str] = meta["paths"]
        self.row = {p: i for i, p in enumerate(self.paths)}
        self.array = np.memmap(self.directory / "images.u8", dtype=np.uint8, mode="r",
                               shape=(len(self.paths), self.size, self.size))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.array[i]

    # A loader worker started by spawn or forkserver receives the cache pickled: by its directory,
    # so it maps the same file instead of receiving a copy of every image (np.memmap pickles as data).
    def __getstate__(self) -> dict:
        return {"directory": str(self.directory)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"])

    def rows(self, paths: list[str]) -> np.ndarray:
        return np.fromiter((self.row[p] for p in paths), dtype=np.int64, count=len(paths))

    @staticmethod
    def is_complete(directory: Path) -> bool:
        """A cache counts only if its index says complete and the data file has every byte."""
        try:
            meta = json.loads((directory / "index.json").read_text())
            expected = len(meta["paths"]) * meta["size"] ** 2
            return meta.get("complete") is True and (directory / "images.u8").stat().st_size == expected
        except (OSError, ValueError, KeyError):
            return False


def build(paths: list[str], size: int, directory: Path, workers: int | None = None,
          progress: bool = True) -> None:
    directory.mkdir(parents=True)
    data_path = directory / "images.u8"
    n = len(paths)
    np.memmap(data_path, dtype=np.uint8, mode="w+", shape=(max(n, 1), size, size)).flush()
    if n == 0:
        os.truncate(data_path, 0)
    jobs = [(str(data_path), n, size, s, paths[s:s + _CHUNK]) for s in range(0, n, _CHUNK)]
    workers = workers or min(len(jobs), usable_cpus()) or 1
    # `with`: a failed build (an unreadable image) still ends the bar's line before the error.
    with tqdm(total=n, desc=f"caching {n} images at {size}px", unit="img", disable=None if progress else True) as bar:
        if workers == 1:
            for job in jobs:
                bar.update(_fill(job))
        else:
            # forkserver: the caller may be a multi-threaded Ray worker holding a CUDA context,
            # which a forked child must not inherit.
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver")) as pool:
                for done in pool.map(_fill, jobs):
                    bar.update(done)
    # Written last: its presence with complete=true is what marks the cache usable.
    (directory / "index.json").write_text(json.dumps({"size": size, "paths": paths, "complete": True}))


def get_cache(paths: list[str], size: int, root: Path | None = None, workers: int | None = None,
              progress: bool = True) -> ImageCache:
    """Open the cache for these images at this size, building it first if needed."""
    if size < 8:
        raise ValueError(f"cache size {size} is too small; use at least the training image size")
    root = Path(root or default_cache_root()) / "images"
    root.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in paths]
    final = root / f"{cache_key(paths, size)}-{size}px"
    if ImageCache.is_complete(final):
        return ImageCache(final)
    with FileLock(str(final) + ".lock"):
        if not ImageCache.is_complete(final):
            if final.exists():
                shutil.rmtree(final)  # an interrupted or corrupted build: start over
            tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                build(paths, size, tmp, workers, progress)
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return ImageCache(final)
