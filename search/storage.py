"""Where a search keeps its Ray results: a local folder or object storage (s3://, gs://, ...).

What only a local folder can hold (best_config.yaml, the report's files, the tracking journal)
asks `local_dir`, which says None for object storage.
"""
from __future__ import annotations

from pathlib import Path


def is_remote(path: str) -> bool:
    return "://" in str(path)


def local_dir(exp_path: str, *parts: str) -> Path | None:
    """`exp_path`/parts as a local Path, or None when the search is in object storage."""
    return None if is_remote(exp_path) else Path(exp_path, *parts)


def latest_search(storage: str, script: str) -> str | None:
    """The newest search of `script` under a local storage path (object storage: not listed)."""
    if is_remote(storage):
        return None
    found = sorted(Path(storage).glob(f"{script}-*"), key=lambda p: p.stat().st_mtime)
    return found[-1].name if found else None
