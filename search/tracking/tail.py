"""The journal's tail: events put after Tune's last callback snapshot that reached storage.

Tune uploads its experiment state, the searcher's state and the callbacks' state as separate
files, in no set order. A driver killed during that upload leaves trial state (a checkpoint after
epoch 1) newer than the tracking callback's state (saved before epoch 1 was put): the resumed
trial goes on at epoch 2 and epoch 1's metrics were neither delivered nor pending. Every event
carries a sequence number and the saved state the next one, so the events numbered from there on
are the ones whose fate the state does not know; the journal on the driver's disk still has them.
Replaying them is safe: delivery is idempotent (search/tracking/outbox.py).
"""
from __future__ import annotations

from pathlib import Path

from search.tracking.outbox import read_journal


def read(journal: str | None, uid: str, seq: int | None) -> tuple[list[dict], int]:
    """(the search's journal events numbered `seq` or later, the next free number). Only the events
    of the search whose parent run key is `uid`: a new search under the same name shares the file.
    None of them when the state predates numbering (`seq` None) or the journal is not on this disk."""
    if not journal:
        return [], seq or 0
    numbered = [e for e in read_journal(Path(journal)) if isinstance(e.get("seq"), int)
                and (e.get("key") == uid or str(e.get("key", "")).startswith(uid + "/"))]
    tail = [e for e in numbered if e["seq"] >= seq] if seq is not None else []
    return tail, max([seq or 0] + [e["seq"] + 1 for e in numbered])


def split(tail: list[dict], existing: set[str]) -> tuple[list[dict], dict[str, list[dict]]]:
    """(events for runs created before the snapshot, {key: events} for runs the tail creates).

    The second kind belong to trials started after the snapshot; only Tune's restored trial list
    says which of them the resumed search still has."""
    now, new = [], {}
    for event in tail:
        key = event["key"]
        if key in new or (event["op"] == "run" and key not in existing):
            new.setdefault(key, []).append(event)
        else:
            now.append(event)
    return now, new
