"""Deliver a search's tracking events that MLflow did not take during the search.

    python -m search.sync ~/ray_results/dual_weights-20261126-101500/mlflow_pending.jsonl
    python -m search.sync PATH --tracking-uri http://new-host:5000   # another server

A search writes `mlflow_pending.jsonl` when its tracking server stayed unreachable past
--tracking-drain-timeout. The file holds every event of that search in order, so it can
rebuild the whole search on a server that never saw it. Each event is delivered idempotently
(runs are found by their `cxr.run_key` tag; params, tags, statuses and artifacts overwrite
with the same values; a SQL-backed store keeps one copy of an identical metric), so running
sync twice, or on a server that already holds part of the search, logs everything once.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from mlflow.exceptions import MlflowException

from search.tracking.check import check_tracking
from search.tracking.outbox import PENDING_FORMAT, Sender, refused, unreachable
from trainables.errors import Parser, UserError, cli, one_line

ATTEMPTS = 4  # per event, with a short backoff: the server was checked a moment ago


def read_pending(path: Path) -> tuple[dict, list[dict]]:
    if not path.is_file():
        raise UserError(f"{path} not found; pass the mlflow_pending.jsonl a search wrote (its path is in the "
                        "search's last lines)")
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a pending-events file ({one_line(err)}); it may be truncated") from None
    if not rows or not isinstance(rows[0], dict) or rows[0].get("cxr_tune_pending") != PENDING_FORMAT:
        raise UserError(f"{path} does not start with a cxr-tune pending-events header; pass the "
                        "mlflow_pending.jsonl a search wrote")
    return rows[0], rows[1:]


def sync(path: Path, tracking_uri: str | None = None) -> dict:
    header, events = read_pending(path)
    uri = tracking_uri or header["tracking_uri"]
    check_tracking(uri)
    sender = Sender(uri, header["experiment"], header.get("runs"))
    delivered, rejected = 0, []
    for event in events:
        event = {k: v for k, v in event.items() if k != "rejected"}  # refused once: try again, report if still
        for attempt in range(ATTEMPTS):
            try:
                sender.deliver(event, careful=True)
                delivered += 1
                break
            except Exception as err:  # noqa: BLE001 - classified below
                if refused(err) or (not unreachable(err) and attempt == ATTEMPTS - 1):
                    rejected.append({**event, "rejected": f"{type(err).__name__}: {one_line(err)[:300]}"})
                    break
                if attempt == ATTEMPTS - 1:
                    raise UserError(f"MLflow at {uri} stopped answering at event {delivered + len(rejected) + 1} "
                                    f"of {len(events)} ({type(err).__name__}: {one_line(err)[:200]}); nothing is "
                                    "lost: run the same command again once it answers") from None
                time.sleep(2 ** attempt)
    parent = sender.runs.get(next((e["key"] for e in events if e["op"] == "run" and "/" not in e["key"]), ""))
    return {"delivered": delivered, "rejected": rejected, "runs": len(sender.runs), "parent": parent,
            "tracking_uri": uri, "experiment": header["experiment"]}


@cli
def main(argv=None) -> dict:
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("path", help="the mlflow_pending.jsonl a search wrote")
    p.add_argument("--tracking-uri", default=None, help="deliver here instead of the search's own server")
    args = p.parse_args(argv)
    try:
        out = sync(Path(args.path).expanduser(), args.tracking_uri)
    except MlflowException as err:
        raise UserError(f"MLflow refused the sync: {one_line(err)}") from None
    print(f"delivered {out['delivered']} event(s) for {out['runs']} run(s) to experiment "
          f"'{out['experiment']}' at {out['tracking_uri']}; parent run {out['parent']}")
    for event in out["rejected"]:
        print(f"  refused by MLflow: {event['op']} for {event['key']}: {event['rejected']}")
    return out


if __name__ == "__main__":
    main()
