"""What the terminal shows while a search runs: one line per trial event (started, rung passed, cut,
finished, errored, retried), each trial named as its MLflow run is, and on a terminal a progress bar
over trial-epochs with the best val AUC so far. At most WIDTH columns.

Tune's own status tables and per-trial config tables come back with --verbose. Library messages a
user cannot act on are dropped and the others shown once (`quiet_libraries`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time

from ray.tune import Callback

from search.picking import ranking
from search.scheduling.replicas import replica_of
from search.terminal import clock, fit, width

# Ray's messages that name no action a cxr-tune user can take, by the logger that logs them: the laptop
# cluster's token (Ray's own default), the snapshot rate that keep_checkpoints in runner.py chose.
UNACTIONABLE = {"ray._private.authentication.authentication_token_setup": "Token authentication is enabled",
                "ray.tune.execution.experiment_state": "Experiment state snapshotting has been triggered"}
# What each trial's status (search/tracking/callback.py) is called on the console
SAID = {"completed": "finished", "stopped_early": "cut", "errored": "errored", "out_of_time": "out of time",
        "search_stopped": "stopped", "interrupted": "interrupted", "retrying from checkpoint": "retrying"}


class Drop(logging.Filter):
    """Drops the records that start with `prefix`."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


class Once(logging.Filter):
    """Drops a warning already shown (errors pass)."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:   # a second failure may have another traceback: always shown
            return True
        text = record.getMessage()
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


def quiet_libraries(verbose: bool) -> None:
    """Ray's, Optuna's and MLflow's console messages as the live view wants them (--verbose: all of
    them). Called before Ray starts and again after: starting a local Ray removes the handlers of its
    "ray" logger, whose messages then reach Python's last-resort handler, one per call."""
    if verbose:
        return
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)   # "A new study created in memory"
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)   # "Creating initial ... tables"
    logging.getLogger("alembic").setLevel(logging.WARNING)
    for name, prefix in UNACTIONABLE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, Drop) for f in logger.filters):
            logger.addFilter(Drop(prefix))
    ray_logger = logging.getLogger("ray")   # its loggers do not propagate past it
    if not ray_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(message)s"))
        ray_logger.addHandler(handler)
    for handler in ray_logger.handlers:
        if not any(isinstance(f, Once) for f in handler.filters):
            handler.addFilter(Once())


def tune_console(verbose: bool) -> dict:
    """The environment Tune.fit() runs under for the console `verbose` asks for (`env_defaults`). Tune's
    new console prints the experiment's settings and a TensorBoard command at any verbosity; its old one
    (RAY_AIR_NEW_OUTPUT=0), at verbosity 0, prints nothing, which leaves the console to the live view."""
    return {} if verbose else {"RAY_AIR_NEW_OUTPUT": "0"}


@contextlib.contextmanager
def env_defaults(values: dict):
    """`values` in the environment where the user has not set them, for the block's duration."""
    unset = [k for k in values if os.environ.get(k) is None]
    os.environ.update({k: values[k] for k in unset})
    try:
        yield
    finally:
        for k in unset:
            os.environ.pop(k, None)


def old_reporter(verbose: bool, **columns):
    """--verbose's table reporter under Tune's old console (RAY_AIR_NEW_OUTPUT=0); the new console, Tune's
    default, takes none and warns that it ignores one."""
    from ray.tune import CLIReporter
    from ray.tune.experimental.output import get_air_verbosity

    return CLIReporter(**columns) if verbose and get_air_verbosity(1) is None else None


class LiveView(Callback):
    """The live view of a search. `tracking`: the MLflow callback, which decides each trial's status
    and name (it comes before this one in Tune's callbacks, so both are known when this one prints)."""

    def __init__(self, tracking, num_samples: int, max_epochs: int, rung_epochs: tuple[int, ...] = (), out=None):
        self.tracking = tracking
        self.total = num_samples * max_epochs
        self.max_epochs = max_epochs
        self.rung_epochs = rung_epochs
        self.out = out
        self.epochs: dict[str, int] = {}     # trial id -> last epoch reported
        self.values: dict[str, float] = {}   # trial id -> last val AUC reported
        self.said: dict[str, str] = {}       # trial id -> the last status printed
        self.taken: dict[str, int] = {}      # trial id -> epochs taken off the total when it ended early
        self.best: tuple | None = None       # ranking.result_key of the best result so far
        self.done = 0                        # trial-epochs run
        self.start = time.time()
        self._bar = None

    def __getstate__(self):
        # pickled with the experiment: a bar is a terminal's, and the stream is this process's
        return {**self.__dict__, "_bar": None, "out": None}

    def __setstate__(self, state):
        self.__dict__.update({"taken": {}, **state})
        self.start = time.time()

    # Tune saves this with the experiment's state: --resume goes on counting where the search was
    SAVED = ("total", "epochs", "values", "said", "taken", "best", "done")

    def get_state(self) -> dict:
        return {k: getattr(self, k) for k in self.SAVED}

    def set_state(self, state: dict) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k in self.SAVED})

    @property
    def stream(self):
        return self.out or sys.stdout

    def say(self, event: str, trial, detail: str = "") -> None:
        text = fit(f"{clock(time.time() - self.start):>6}  {event:<12}{self.tracking.run_name(trial)}"
                   + (f"  {detail}" if detail else ""))
        try:
            if self._bar is not None:
                self._bar.write(text, file=self.stream)
            else:
                print(text, file=self.stream, flush=True)
        except (OSError, ValueError):   # a closed or non-UTF-8 stream: a line lost must not end the search
            pass

    def setup(self, total_num_samples: int | None = None, **info):
        if total_num_samples and not self.epochs and total_num_samples < 10 ** 9:
            self.total = total_num_samples * self.max_epochs   # a grid's trials, which num_samples does not count
        if self.stream.isatty():   # a bar redrawn in a log file or a pipe is noise
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self.done, file=self.stream, ncols=width(), leave=False,
                             bar_format="{desc} {bar} {n_fmt}/{total_fmt} trial-epochs [{elapsed}<{remaining}]")
            self._tick()

    def _tick(self) -> None:
        if self._bar is not None:
            self._bar.total, self._bar.n = self.total, self.done
            self._bar.set_description_str(f"best val_auc {self.best[1]:.3f}" if self.best else "best val_auc -",
                                          refresh=False)
            self._bar.refresh()

    def on_trial_start(self, iteration, trials, trial, **info):
        again = trial.trial_id in self.epochs
        if again:   # a retry, or an ended trial --resume runs again: its epochs count again, its end is news
            self.total += self.taken.pop(trial.trial_id, 0)
            self.said.pop(trial.trial_id, None)
        warm = not again and self.tracking.is_warm(trial)
        self.say("resumed" if again else "started", trial, "the paper's config" if warm else "")
        self.epochs.setdefault(trial.trial_id, 0)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        tid, epoch = trial.trial_id, int(result.get("epoch", iteration))
        last = self.epochs.get(tid, 0)
        if last in self.rung_epochs and epoch > last and not replica_of(trial.config):   # ASHA let it past
            self.say(f"rung {last} ok", trial, f"val_auc {self.values.get(tid, float('nan')):.3f}")
        self.epochs[tid] = epoch
        self.done += max(0, epoch - last)
        if ranking.scored(result):
            self.values[tid] = result[ranking.METRIC]
            key = ranking.result_key(result)
            self.best = max(self.best, key) if self.best else key
        self._tick()

    def _ended(self, trial) -> None:
        tid = trial.trial_id
        status = self.tracking.trials.get(tid)
        if status in (None, "running") or self.said.get(tid) == status:
            return
        self.said[tid] = status
        epoch, value = self.epochs.get(tid, 0), self.values.get(tid)
        if status == "errored":
            detail = self.tracking.errors.get(tid, "")
        elif status == "retrying from checkpoint":
            detail = f"from its last checkpoint (epoch {epoch} reported)"
        else:
            detail = f"val_auc {value:.3f} at epoch {epoch}" if value is not None else f"at epoch {epoch}"
        if status in ("stopped_early", "out_of_time", "search_stopped", "errored", "interrupted"):
            self.taken[tid] = max(0, self.max_epochs - epoch)   # epochs it will not run
            self.total -= self.taken[tid]
        self.say(SAID.get(status, status), trial, detail)
        self._tick()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._ended(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._ended(trial)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._ended(trial)

    def on_experiment_end(self, trials, **info):
        for trial in trials:   # the tracking callback has just decided those Tune ended unfinished
            self._ended(trial)
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        best = f", best val_auc {self.best[1]:.4f} at epoch {self.best[0]}" if self.best else ""
        print(fit(f"{clock(time.time() - self.start):>6}  search done: {self.done} trial-epochs{best}"),
              file=self.stream, flush=True)
