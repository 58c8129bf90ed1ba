"""MLflow calls as an ordered queue of events, delivered by a background thread.

The search callback turns every Tune event into a JSON-serialisable dict and puts it here; the
Tune driver never waits on the network. One thread delivers the events in order, each one
idempotently (a run is found by its `cxr.run_key` tag before it is created again; SQL-backed
stores keep one copy of a metric logged twice with the same key, step, timestamp and value),
so an event may be retried after a timeout, restored from saved state or replayed from
`mlflow_pending.jsonl` (`python -m search.sync`, search/tracking/sync.py) without being logged twice.

Events (each with `op`, the run's `key` and, from the search callback, its number `seq`):
  run       name, tags, parent (a key or None), time (ms): create the run
  params    params {name: text}
  metrics   metrics [[name, value, timestamp ms, step], ...]
  tags      tags {name: text}; run_tags {name: run key}, logged as that run's id
  status    status RUNNING | FINISHED | FAILED | KILLED, time (ms)
  artifact  name, text: a small text file
  inputs    datasets [{name, digest, source_type, source, profile, context}]: the run's data
            (trainables/data/fingerprint.py)
  lost      (no fields): end the run of a trial the resumed search lost, if it was created
  view      search, searched [keys]: the experiment's shared view and description for the
            search whose parent run is `key` (search/tracking/view.py)
"""
from __future__ import annotations

import json
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search.tracking import view
from search.tracking.store import dataset_inputs, experiment_id, log_param_texts
from trainables.errors import one_line

RUN_KEY = "cxr.run_key"
# The server understood the request and refused it: retrying the same event cannot help.
REFUSED = {"INVALID_PARAMETER_VALUE", "BAD_REQUEST", "RESOURCE_ALREADY_EXISTS"}
# Signs that the server (or the network to it) is down: such an event waits as long as it takes.
UNREACHABLE = ("Max retries exceeded", "Connection refused", "Connection aborted", "Connection reset",
               "RemoteDisconnected", "timed out", "Name or service not known", "database is locked",
               "error code 502", "error code 503", "error code 504", "TEMPORARILY_UNAVAILABLE")
MAX_ATTEMPTS = 5  # any other failure: the event is set aside after this many tries, not retried forever
BACKOFF = (0.5, 15.0)  # first and longest wait between attempts, seconds
PENDING_FORMAT = 1


class MissingRun(LookupError):
    """An event names a run whose creation was refused: it can never be delivered."""


def refused(err: Exception) -> bool:
    return isinstance(err, MissingRun) or (isinstance(err, MlflowException) and err.error_code in REFUSED)


def unreachable(err: Exception) -> bool:
    return isinstance(err, (ConnectionError, TimeoutError)) or any(sign in str(err) for sign in UNREACHABLE)


class Sender:
    """Delivers one event at a time to a tracking store; keeps the run key -> run id map."""

    def __init__(self, tracking_uri: str, experiment: str, runs: dict | None = None):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.runs = dict(runs or {})
        self._client = None
        self._experiment_id = None
        self._verified: set[str] = set()

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = MlflowClient(self.tracking_uri)
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            self._experiment_id = experiment_id(self.client, self.experiment)
        return self._experiment_id

    def run_id(self, key: str) -> str:
        if key not in self.runs:
            raise MissingRun(f"no run was created for key {key!r}")
        return self.runs[key]

    def deliver(self, event: dict, careful: bool = False) -> None:
        """`careful`: the event may have reached the store before (a retry or a replay)."""
        getattr(self, f"_{event['op']}")(event, careful)

    def _find(self, key: str) -> str | None:
        found = self.client.search_runs([self.experiment_id], filter_string=f"tags.`{RUN_KEY}` = '{key}'",
                                        max_results=1)
        return found[0].info.run_id if found else None

    def _exists(self, run_id: str) -> bool:
        try:
            self.client.get_run(run_id)
            return True
        except MlflowException as err:
            if err.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise

    def _run(self, event, careful):
        """Always looked up first: a driver killed before Tune saved its state may put the same
        run event again on --resume."""
        key = event["key"]
        known = self.runs.get(key)
        if known and (known in self._verified or (careful and self._exists(known))):
            self._verified.add(known)
            return
        found = self._find(key)
        if found:
            self.runs[key] = found
            self._verified.add(found)
            return
        tags = {**event["tags"], RUN_KEY: key}
        if event.get("parent"):
            tags["mlflow.parentRunId"] = self.run_id(event["parent"])
        run = self.client.create_run(self.experiment_id, start_time=event.get("time"), tags=tags,
                                     run_name=event["name"])
        self.runs[key] = run.info.run_id
        self._verified.add(run.info.run_id)

    def _params(self, event, careful):
        log_param_texts(self.client, self.run_id(event["key"]), event["params"])

    def _metrics(self, event, careful):
        metrics = [Metric(k, v, ts, step) for k, v, ts, step in event["metrics"]]
        self.client.log_batch(self.run_id(event["key"]), metrics=metrics)

    def _tags(self, event, careful):
        tags = dict(event.get("tags", {}))
        tags.update({k: self.runs.get(v, "") for k, v in event.get("run_tags", {}).items()})
        self.client.log_batch(self.run_id(event["key"]), tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def _status(self, event, careful):
        run_id = self.run_id(event["key"])
        if event["status"] == "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        else:
            self.client.set_terminated(run_id, event["status"], end_time=event.get("time"))

    def _inputs(self, event, careful):
        """MLflow keeps one copy of a dataset input logged twice: safe to replay."""
        self.client.log_inputs(self.run_id(event["key"]), datasets=dataset_inputs(event["datasets"]))

    def _view(self, event, careful):
        """The view tag written whole, our paragraph of the description replaced: safe to replay."""
        self.run_id(event["key"])  # the search's parent run exists: the view is for its trials
        exp = self.client.get_experiment(self.experiment_id)
        self.client.set_experiment_tag(exp.experiment_id, view.TAG,
                                       view.tag_value(event["searched"], int(time.time() * 1000)))
        text = view.description(event["search"], view.relative_url(exp.experiment_id))
        self.client.set_experiment_tag(exp.experiment_id, view.DESCRIPTION_TAG,
                                       view.note(exp.tags.get(view.DESCRIPTION_TAG), text))

    def _lost(self, event, careful):
        """A trial the resumed Tune does not know (lost with a torn save, search/tracking/tail.py):
        its run, if it was ever created, is ended rather than left RUNNING."""
        found = self.runs.get(event["key"]) or self._find(event["key"])
        if found:
            self.client.log_batch(found, tags=[RunTag("cxr.status", "lost with the driver")])
            self.client.set_terminated(found, "KILLED")

    def _artifact(self, event, careful):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / event["name"]
            path.write_text(event["text"])
            self.client.log_artifact(self.run_id(event["key"]), str(path))


class Outbox:
    """The ordered queue and its delivery thread.

    `journal` (a JSONL file, appended as events are put) keeps every event of the search across
    driver sessions, so `write_pending` can rebuild the search on a server that saw none of it.
    Without a journal file the events of this session are kept in memory instead."""

    def __init__(self, sender: Sender, warn=print, journal: Path | None = None):
        self.sender = sender
        self.warn = warn
        self.journal = Path(journal) if journal else None
        self.memory: list[dict] = []
        self.queue: deque = deque()
        self.rejected: list[dict] = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.down_since: float | None = None
        if self.journal:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            if _cut_short(self.journal):   # by a kill: the next event starts a line of its own
                with self.journal.open("a") as f:
                    f.write("\n")
        self.thread = threading.Thread(target=self._loop, name="cxr-mlflow-outbox", daemon=True)
        self.thread.start()

    def put(self, event: dict, record: bool = True) -> None:
        if record:
            self._record(event)
        with self.cond:
            self.queue.append(event)
            self.cond.notify_all()

    def _record(self, event: dict) -> None:
        if self.journal:
            with self.journal.open("a") as f:
                f.write(json.dumps(event) + "\n")
        else:
            self.memory.append(dict(event))

    def restore(self, events: list[dict]) -> None:
        """Events from saved state, ahead of anything new; they may have been delivered already.
        A journal file has them from the session that put them; memory does not."""
        with self.cond:
            for event in reversed(events):
                event = {**event, "replay": True}
                if not self.journal:
                    self.memory.insert(0, dict(event))
                self.queue.appendleft(event)
            self.cond.notify_all()

    def pending(self) -> list[dict]:
        with self.cond:
            return [dict(e) for e in self.queue]

    def drain(self, timeout: float) -> bool:
        """Wait until every event is delivered or `timeout` seconds pass; True if all were."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.queue and time.monotonic() < deadline:
                self.cond.wait(min(1.0, max(0.0, deadline - time.monotonic())))
            return not self.queue

    def close(self) -> None:
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        delay = BACKOFF[0]
        while not self.stopping.is_set():
            with self.cond:
                while not self.queue and not self.stopping.is_set():
                    self.cond.wait()
                if self.stopping.is_set():
                    return
                event = self.queue[0]
            try:
                self.sender.deliver(event, careful=bool(event.get("replay") or event.get("attempts")))
            except Exception as err:  # noqa: BLE001 - any failure: keep the event, never kill the thread
                with self.cond:
                    event["attempts"] = event.get("attempts", 0) + 1
                if refused(err) or (not unreachable(err) and event["attempts"] >= MAX_ATTEMPTS):
                    self._done(event, rejected=f"{type(err).__name__}: {one_line(err)[:300]}")
                    continue
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    self.warn(f"warning: MLflow at {self.sender.tracking_uri} failed ({type(err).__name__}: "
                              f"{one_line(err)[:200]}); the search goes on and its tracking events wait "
                              "in a queue, retried with backoff")
                self.stopping.wait(delay)  # new events must not cut the backoff short
                delay = min(delay * 2, BACKOFF[1])
                continue
            if self.down_since is not None:
                self.warn(f"MLflow at {self.sender.tracking_uri} answers again after "
                          f"{time.monotonic() - self.down_since:.0f} s; delivering the queued events")
                self.down_since = None
            delay = BACKOFF[0]
            self._done(event)

    def _done(self, event: dict, rejected: str | None = None) -> None:
        with self.cond:
            if self.queue and self.queue[0] is event:
                self.queue.popleft()
            if rejected:
                self.rejected.append({**event, "rejected": rejected})
                self.warn(f"warning: MLflow refused a {event['op']} event for {event['key']} ({rejected}); "
                          "it is kept in the pending file")
            self.cond.notify_all()

    def events(self) -> list[dict]:
        if not self.journal:
            return [dict(e) for e in self.memory]
        return read_journal(self.journal)

    def write_pending(self, path: Path) -> Path:
        """Every event of the search, after a header, for `python -m search.sync`; the ones MLflow
        refused are marked so that sync reports them instead of failing on them again."""
        refused_at = {json.dumps(_clean(e), sort_keys=True): e["rejected"] for e in self.rejected}
        header = {"cxr_tune_pending": PENDING_FORMAT, "tracking_uri": self.sender.tracking_uri,
                  "experiment": self.sender.experiment, "runs": dict(self.sender.runs),
                  "undelivered": len(self.pending()), "written": time.strftime("%Y-%m-%d %H:%M:%S")}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("w") as f:
            f.write(json.dumps(header) + "\n")
            for event in self.events():
                event = _clean(event)
                reason = refused_at.get(json.dumps(event, sort_keys=True))
                f.write(json.dumps({**event, "rejected": reason} if reason else event) + "\n")
        tmp.replace(path)
        return path


def _cut_short(path: Path) -> bool:
    """Whether the journal's last line lacks its newline: its last byte only, not the whole file
    (a large search's journal is read once, by the tail on --resume)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) != b"\n"


def read_journal(path: Path) -> list[dict]:
    """The journal's events; a line a kill cut short is skipped (that event was never delivered)."""
    if not path.is_file():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def _clean(event: dict) -> dict:
    return {k: v for k, v in event.items() if k not in ("replay", "attempts", "rejected")}
