"""Ray Tune callback that mirrors a search into MLflow: one parent run, one child run per trial.

Runs on the driver only. Params are the flattened config (`loss.lam`, `heads.w_d`); metrics
are logged per epoch (step = epoch); each child gets `cxr.status` = completed |
stopped_early (with `cxr.stopped_at_epoch`) | search_stopped (running when --patience ended the
search) | out_of_time (stopped by --time-budget, with
`cxr.stopped_at_epoch`) | errored | interrupted, so the MLflow UI alone
answers which configs won, which were cut early and how val AUC evolved.

Nothing here waits on the network: every call becomes an event in the ordered queue of
search/tracking/outbox.py, delivered by a background thread, so an MLflow outage neither stalls nor ends
the search. The undelivered events and the run ids are the callback's saved state, so
`--resume` continues the same runs and delivers what an earlier driver could not. At the end
the callback waits up to `Delivery.drain_timeout` seconds; whatever is still undelivered then goes
to `Delivery.pending_path` for `python -m search.sync`.

What the parent run shows is one frozen `ParentRun`, built by the runner; where events go, one
`Delivery`.
"""
from __future__ import annotations

import json
import math
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from ray.tune import Callback

from search.picking import ranking
from search.scheduling.replicas import REPLICA_TAG, replica_of
from search.tracking import tail, view
from search.tracking.names import run_name
from search.tracking.outbox import Outbox, Sender
from search.tracking.store import BEST_CONFIG_FILE, MAX_PARAM, SPACE_FILE, param_texts
from search.tracking.usage import SYSTEM_PREFIX, Usage
from search.scheduling.trial_state import error_line
from trainables.checkpoints import INPUTS_KEY
from trainables.config import flatten

LOGGED = ("val_auc", "val_wauc", "val_loss", "train_loss", "images_per_s", "lr", "epoch", "image_size", "gpu_peak_gib",
          # a --simulate trial's: which recorded config and seed it read (search/simulation/trainable.py)
          "recorded_config", "recorded_seed", "recorded_seconds")


def _metrics(result: dict) -> dict:
    out = {}
    for key, value in result.items():
        if (key in LOGGED or key.startswith(("val_auc/", SYSTEM_PREFIX))) and isinstance(value, (int, float)) \
                and math.isfinite(value):
            out[key] = float(value)
    return out


def now_ms() -> int:
    return int(time.time() * 1000)


# Where the last search of this process left undelivered events (None: all delivered).
undelivered: dict = {"path": None, "count": 0}


@dataclass(frozen=True)
class Delivery:
    """Where the events go, and what happens to those the store does not take."""
    tracking_uri: str
    experiment: str
    pending_path: str | None = None   # what is undelivered at the end, for `python -m search.sync`
    journal_path: str | None = None   # every event, all sessions (search.tracking.outbox.Outbox)
    drain_timeout: float = 300.0      # seconds the end of the search waits for the store


@dataclass(frozen=True)
class ParentRun:
    """What the search's parent run shows, and how its trials' runs are named; fixed at the start."""
    name: str
    tags: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)       # the searched space and the search's settings
    space_json: str | None = None                    # Optuna's distributions, for the report's study
    name_keys: tuple = ()                            # searched keys, in the order run names show them
    log_keys: frozenset = frozenset()                # keys named on a log scale (`lr1e-3`)
    warm: tuple = ()                                 # flattened warm-start configs (the paper's best)
    trial_tags: dict = field(default_factory=dict)   # on every trial's run too (cxr.simulated)


def _from_old_pickle(state: dict) -> dict:
    """The fields of a callback pickled by cxr-tune before Delivery and ParentRun (<= 5ef6d3d), which
    Tune unpickles on `--resume` of a search started then."""
    old = {k: state.pop(k, None) for k in ("tracking_uri", "experiment", "pending_path", "journal_path",
                                            "drain_timeout", "parent_name", "tags", "parent_params",
                                            "space_json", "name_keys", "log_keys", "warm")}
    state["delivery"] = Delivery(old["tracking_uri"], old["experiment"], old["pending_path"], old["journal_path"],
                                 300.0 if old["drain_timeout"] is None else old["drain_timeout"])
    state["parent"] = ParentRun(name=old["parent_name"], tags=dict(old["tags"] or {}),
                                params=dict(old["parent_params"] or {}), space_json=old["space_json"],
                                name_keys=tuple(old["name_keys"] or ()), log_keys=frozenset(old["log_keys"] or ()),
                                warm=tuple(dict(w) for w in old["warm"] or ()))
    return state


class MLflowSearchCallback(Callback):
    def __init__(self, delivery: Delivery, parent: ParentRun, max_epochs: int, time_budget: float | None = None):
        self.delivery = delivery
        self.parent = parent
        self.max_epochs = max_epochs
        self.time_budget = time_budget   # --time-budget: trials Tune stops when it runs out are out_of_time
        self.session_start = time.time()
        self.stopper = None   # --patience (search/scheduling/stopping.py): trials running when it fires are search_stopped
        self.uid = uuid.uuid4().hex[:12]  # the parent's run key; trials are <uid>/<trial id>
        self.started = False
        self.trials: dict[str, str] = {}   # trial id -> cxr.status
        self.errors: dict[str, str] = {}   # trial id -> the line it failed with
        self.usage = Usage()   # GPU-hours, trial-epochs, placement per trial
        self.peak_running = 0  # most trials running at once, as Tune saw it at each start
        self.seq = 0           # the next event's number (search/tracking/tail.py)
        self._held: dict[str, list[dict]] = {}  # the journal's tail for runs it creates, until Tune's trials are known
        self._caught_up = False                  # the journal's tail read (tail.py), once per driver session
        self._restored: dict = {}
        self._outbox = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_outbox"] = None  # pickled with the experiment; a thread and a connection are not state
        state["_caught_up"] = False   # per driver session
        return state

    def __setstate__(self, state):
        state = _from_old_pickle(dict(state)) if "delivery" not in state else dict(state)
        # pickled before the outbox existed: these came later
        defaults = {"uid": uuid.uuid4().hex[:12], "started": False, "trials": {}, "_restored": {}, "usage": Usage(),
                    "peak_running": 0, "seq": 0, "_held": {}, "_caught_up": False, "time_budget": None,
                    "session_start": time.time(), "stopper": None, "errors": {}}
        self.__dict__.update({**defaults, **state, "_outbox": None})

    # -- saved state ------------------------------------------------------------------------
    def get_state(self):
        outbox = self._outbox
        # Pending first: a run created between the two reads is then in both (replayed
        # idempotently), never in neither.
        pending = outbox.pending() if outbox else list(self._restored.get("pending", []))
        pending += [e for events in self._held.values() for e in events]
        runs = dict(outbox.sender.runs) if outbox else self._restored.get("runs", {})
        return {"uid": self.uid, "started": self.started, "trials": dict(self.trials), "runs": runs,
                "pending": pending, "usage": self.usage.state(), "peak_running": self.peak_running,
                "seq": self.seq}

    def set_state(self, state):
        if "parent_id" in state and "uid" not in state:  # saved before the outbox existed: same runs
            old = state.get("runs", {})
            state = {"started": True, "trials": {t: "unknown" for t in old},
                     "runs": {self.uid: state["parent_id"], **{f"{self.uid}/{t}": r for t, r in old.items()}}}
        self.uid = state.get("uid", self.uid)
        self.started = state.get("started", False)
        self.trials = dict(state.get("trials", {}))
        self.usage = Usage(state.get("usage"))
        self.peak_running = state.get("peak_running", 0)
        pending = list(state.get("pending", []))
        existing = {*state.get("runs", {}), *(e["key"] for e in pending if e["op"] == "run")}
        late = self._catch_up(state.get("seq"), existing)
        self._restored = {"runs": state.get("runs", {}), "pending": pending + late}
        if self._outbox is not None:
            self._outbox.sender.runs.update(self._restored["runs"])
            self._outbox.restore(self._restored["pending"])

    def _catch_up(self, seq: int | None, existing: set[str]) -> list[dict]:
        """The journal's tail after the saved state numbered `seq` (tail.py): returns the events of runs
        that existed then, to replay at once; holds those of runs created later until Tune's trials are
        known. Numbering goes on after the journal's last event."""
        self._caught_up = True
        late, self.seq = tail.read(self.delivery.journal_path, self.uid, seq)
        late, self._held = tail.split(late, {self.uid, *existing})
        self._note(late)
        return late

    def _note(self, events: list[dict]) -> None:
        """What the journal's tail says that the saved state missed: trial outcomes and costs."""
        for e in events:
            tid = e["key"].split("/", 1)[-1]
            if e["key"] == self.uid:
                continue
            if e["op"] == "run":
                self.trials.setdefault(tid, "running")
            elif e["op"] == "tags" and "cxr.status" in e.get("tags", {}):
                self.trials[tid] = e["tags"]["cxr.status"]
            elif e["op"] == "metrics":
                self.usage.restore(tid, {name: value for name, value, _, _ in e["metrics"]})

    def on_step_begin(self, iteration, trials, **info):
        self._release(trials)

    def _release(self, trials) -> None:
        """The journal's tail for trials started after the saved state: replayed for the trials Tune
        restored; a trial it lost with the torn save gets no run, or its run is marked KILLED. At the
        first step, or at the end when a resumed search had nothing left to run."""
        if not self._held:
            return
        held, self._held = self._held, {}
        known = {t.trial_id for t in trials}
        for key, events in held.items():
            if key.split("/", 1)[-1] in known:
                self._note(events)
                for e in events:  # journaled by the session that put them
                    self.outbox.put({**e, "replay": True}, record=False)
            else:
                self.put("lost", key)

    # -- events -----------------------------------------------------------------------------
    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            d = self.delivery
            sender = Sender(d.tracking_uri, d.experiment, self._restored.get("runs"))
            self._outbox = Outbox(sender, warn=lambda m: print(m, file=sys.stderr, flush=True),
                                  journal=Path(d.journal_path) if d.journal_path else None)
            self._outbox.restore(self._restored.get("pending", []))
        return self._outbox

    def put(self, op: str, key: str, **fields) -> None:
        self.outbox.put({"op": op, "key": key, **fields, "seq": self.seq})
        self.seq += 1

    def key(self, trial) -> str:
        return f"{self.uid}/{trial.trial_id}"

    def setup(self, **info):
        self.session_start = time.time()   # Tune's time budget counts from each session's start
        if not self._caught_up:   # no saved state reached storage: every event of this search is the tail
            self._restored = {"runs": {}, "pending": self._catch_up(0, set())}
        if not self.started:
            parent = self.parent
            self.put("run", self.uid, name=parent.name, parent=None, time=now_ms(),
                     tags={**parent.tags, "cxr.role": "search", view.SEARCH_TAG: parent.name})
            if parent.params:
                self.put("params", self.uid, params=dict(parent.params))
            if parent.space_json:
                self.put("artifact", self.uid, name=SPACE_FILE, text=parent.space_json)
            self.started = True
        else:
            self.put("tags", self.uid, tags={view.SEARCH_TAG: self.parent.name})
            self.put("status", self.uid, status="RUNNING", time=now_ms())
        # also on --resume: a search started before the view existed gets one (and its runs the tag
        # the view groups by), so the printed link works
        self.put("view", self.uid, search=self.parent.name, searched=list(self.parent.name_keys))

    def on_trial_start(self, iteration, trials, trial, **info):
        # the starting trial may not be RUNNING yet as Tune calls this
        self.peak_running = max(self.peak_running, sum(t is trial or t.status == "RUNNING" for t in trials))
        key = self.key(trial)
        if trial.trial_id in self.trials:
            self.put("tags", key, tags={"cxr.status": "running", view.SEARCH_TAG: self.parent.name})
            self.put("status", key, status="RUNNING", time=now_ms())
        else:
            name, tags = self.new_run(trial)
            self.put("run", key, name=name, parent=self.uid, time=now_ms(), tags={
                "cxr.trial_id": trial.trial_id, "cxr.status": "running", view.SEARCH_TAG: self.parent.name, **tags})
            self.put("params", key, params=param_texts(trial.config))
        self.trials[trial.trial_id] = "running"

    def new_run(self, trial) -> tuple[str, dict]:
        """A new trial's run name and its own tags."""
        replica = replica_of(trial.config)     # search/scheduling/replicas.py: the config again with seed + k
        tags = {"cxr.role": "trial", **({"cxr.warm_start": "paper"} if self.is_warm(trial) else {}),
                **({REPLICA_TAG: str(replica)} if replica else {}), **getattr(self.parent, "trial_tags", {})}
        return self.run_name(trial), tags

    def run_name(self, trial) -> str:
        """The trial's run name (search/tracking/names.py); the console names trials the same way."""
        keys = list(self.parent.name_keys)
        return run_name(trial.config, keys, self.parent.log_keys) if keys else f"trial-{trial.trial_id}"

    def is_warm(self, trial) -> bool:
        """Is this the paper's config, the search's warm start?"""
        flat = flatten(trial.config)
        return any(all(flat.get(k) == v for k, v in w.items()) for w in self.parent.warm)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if trial.trial_id not in self.trials:
            return
        step = int(result.get("epoch", iteration))
        ts = int(result.get("timestamp", 0) * 1000)
        cost, placed = self.usage.on_result(trial.trial_id, result, trial.placement_group_factory.required_resources)
        metrics = [[k, v, ts, step] for k, v in {**_metrics(result), **cost}.items()]
        self.put("metrics", self.key(trial), metrics=metrics)
        if placed:
            self.put("tags", self.key(trial), tags=placed)
        if isinstance(result.get(INPUTS_KEY), str):  # the trial's first report of a session
            self.put("inputs", self.key(trial), datasets=json.loads(result[INPUTS_KEY]))

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if trial.trial_id in self.trials:
            fs = getattr(checkpoint.filesystem, "type_name", "local")  # keep s3:// etc. in the tag
            where = checkpoint.path if fs == "local" else f"{fs}://{checkpoint.path}"
            self.put("tags", self.key(trial), tags={"cxr.checkpoint": where})

    def on_trial_recover(self, iteration, trials, trial, **info):
        if trial.trial_id in self.trials:
            self._finish(trial, "retrying from checkpoint", None)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if trial.trial_id not in self.trials:
            return
        epoch = int((trial.last_result or {}).get("epoch", 0))
        if epoch < self.max_epochs:
            self._finish(trial, "stopped_early", "FINISHED", {"cxr.stopped_at_epoch": str(epoch)})
        else:
            self._finish(trial, "completed", "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        if trial.trial_id not in self.trials:
            return
        text = Path(trial.error_file).read_text() if trial.error_file and Path(trial.error_file).is_file() else ""
        message = error_line(trial.last_result, text) or "see the trial's error.txt in the Ray results folder"
        self.errors[trial.trial_id] = message
        self._finish(trial, "errored", "FAILED", {"cxr.error": message[:MAX_PARAM]})

    def _finish(self, trial, status: str, run_status: str | None, extra: dict | None = None) -> None:
        self.trials[trial.trial_id] = status
        self.put("tags", self.key(trial), tags={"cxr.status": status, **(extra or {})})
        if run_status:
            self.put("status", self.key(trial), status=run_status, time=now_ms())

    def on_experiment_end(self, trials, **info):
        """Best trial's metrics and config onto the parent run, counts by outcome, then the drain.

        A trial that started and neither completed nor errored was interrupted (Ctrl-C; Tune
        marks it TERMINATED while it cleans up): its run is marked KILLED, as is the parent, and
        `--resume` sets them RUNNING again."""
        self._release(trials)
        self.mark_interrupted(trials)
        status = {}
        for t in trials:
            s = self.trials.get(t.trial_id)
            if s:
                status[s] = status.get(s, 0) + 1
        tags = {f"cxr.trials_{k.replace(' ', '_')}": str(v) for k, v in status.items()}
        tags["cxr.trials_total"] = str(len(trials))
        if self.stopper is not None and self.stopper.fired:
            tags["cxr.stopped_by"] = "patience"   # the report says so whether or not a trial was still running
        scored = [t for t in trials if ranking.scored(t.last_result)]
        if scored:
            best = max(scored, key=lambda t: ranking.result_key(t.last_result))
            self.put("tags", self.uid, tags=tags, run_tags={"cxr.best_run_id": self.key(best)})
            self.put("metrics", self.uid, metrics=[[f"best_{k}", v, now_ms(), 0]
                                                   for k, v in _metrics(best.last_result).items()])
            self.put("artifact", self.uid, name=BEST_CONFIG_FILE,
                     text=yaml.safe_dump({"config": best.config}, sort_keys=False))
        else:
            self.put("tags", self.uid, tags=tags)
        totals = {**self.usage.totals(), "peak_concurrent_trials": self.peak_running}
        self.put("metrics", self.uid, metrics=[[k, v, now_ms(), 0] for k, v in totals.items()])
        interrupted = status.get("interrupted", 0) > 0
        self.put("status", self.uid, status="KILLED" if interrupted else "FINISHED", time=now_ms())
        self.close()

    def mark_interrupted(self, trials) -> None:
        """Trials still running as Tune ends are interrupted (Ctrl-C: their runs KILLED), out_of_time
        when the search ran out of --time-budget, or search_stopped when --patience ended it (Tune stops
        them without completing them)."""
        late = self.time_budget and time.time() - self.session_start >= self.time_budget
        ended = "search_stopped" if self.stopper is not None and self.stopper.fired else "out_of_time" if late else None
        for t in trials:
            if self.trials.get(t.trial_id) in ("running", "retrying from checkpoint"):
                epoch = int((t.last_result or {}).get("epoch", 0))
                if ended and epoch >= self.max_epochs:   # its last epoch was the result that ended the search
                    self._finish(t, "completed", "FINISHED")
                elif ended:
                    self._finish(t, ended, "FINISHED", {"cxr.stopped_at_epoch": str(epoch)})
                else:
                    self._finish(t, "interrupted", "KILLED")

    def close(self) -> None:
        """Wait for the queue up to drain_timeout; write what is left to pending_path."""
        outbox = self.outbox
        d = self.delivery
        queued, start = len(outbox.pending()), time.monotonic()
        if not outbox.drain(d.drain_timeout):
            left = len(outbox.pending())
            path = Path(d.pending_path or "mlflow_pending.jsonl")
            outbox.write_pending(path)
            undelivered.update(path=str(path), count=left)
            print(f"MLflow at {d.tracking_uri} did not take {left} tracking event(s) within "
                  f"{d.drain_timeout:g} s (--tracking-drain-timeout). Every event of this search is in "
                  f"{path}; deliver them once the server is back with:  python -m search.sync {path}",
                  file=sys.stderr, flush=True)
        else:
            undelivered.update(path=None, count=0)
            if queued:   # what a large search leaves queued at its end (benchmarks/scale.py reads this line)
                print(f"MLflow took the last {queued} queued tracking event(s) in {time.monotonic() - start:.1f} s",
                      flush=True)
            stale = Path(d.pending_path) if d.pending_path else None
            if outbox.rejected and stale:
                outbox.write_pending(stale)
                print(f"MLflow refused {len(outbox.rejected)} tracking event(s) (warnings above); the search's "
                      f"events are in {stale}: once the cause is fixed, python -m search.sync {stale}",
                      file=sys.stderr, flush=True)
            elif stale and stale.is_file():  # an earlier session's leftovers: now delivered
                stale.unlink()
        outbox.close()
        self._outbox = None
        self._restored = {"runs": outbox.sender.runs, "pending": outbox.pending()}
