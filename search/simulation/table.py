"""A recorded table: every config of a grid or a space-filling design trained once per seed, every
epoch kept (tabular HPO benchmarks). The format is in docs/recorded_tables.md:

    # table: one line naming it
    # metric: NAME max|min
    # param: NAME float|int LOW HIGH [log]
    # param: NAME choice A|B|C
    # warm: NAME=VALUE NAME=VALUE ...      (optional: the config tried first)
    # pool: 0 1 2                          (optional: seeds a search may read; the rest score)
    seed,<one column per param>,epoch,<metric>,seconds

Other lines starting with '#' are comments (the command and code version that made the table). A
config is one combination of the param columns; an empty cell means the param does not apply to
that config. A table with one epoch is single-fidelity.

`nearest` maps a proposal to the recorded config it is closest to, each param scaled to [0, 1] over
its range (log where the param is log), a choice counting as far as a whole range when it differs;
a param a config leaves empty does not count. Both the replay (benchmarks/replay_sim.py) and the
simulated trainable (search/simulation/trainable.py) read tables through this module.
"""
from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from trainables.errors import UserError


class TableError(UserError):
    """A malformed table: one line naming the file, the line and what is wrong."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str                     # float | int | choice
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple = ()

    def parse(self, text: str):
        """A cell's value (None: the param does not apply to this config)."""
        if text == "":
            return None
        if self.kind == "choice":
            if text not in self.choices:
                raise ValueError(f"{self.name}={text!r} is not one of {'|'.join(self.choices)}")
            return text
        value = int(text) if self.kind == "int" else float(text)
        if not self.low <= value <= self.high:
            raise ValueError(f"{self.name}={text} is outside its range [{self.low:g}, {self.high:g}]")
        return value

    def coerce(self, value):
        """A proposal's value as this param compares it (a choice as its text)."""
        return str(value) if self.kind == "choice" else float(value)

    def unit(self, value: float) -> float:
        """`value` on [0, 1] in the param's own scaling."""
        if self.high <= self.low:
            return 0.0
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def distance(self, a, b) -> float:
        if a is None or b is None:
            return 0.0
        if self.kind == "choice":
            return 0.0 if a == b else 1.0
        return abs(self.unit(a) - self.unit(b))


@dataclass
class Table:
    name: str
    metric: str
    mode: str                                   # max | min
    params: list[Param]
    configs: list[tuple]                        # each config's values, in params' order (None: n/a)
    curves: dict[int, dict[int, list[float]]]   # config index -> seed -> metric at epochs 1..max_t
    seconds: dict[int, dict[int, list[float]]]  # the same shape: each epoch's seconds
    warm: dict | None = None                    # param name -> value, the config tried first
    pool: list[int] | None = None               # the seeds a search may read (None: all)
    source: str = ""
    _index: dict = field(default_factory=dict, repr=False)

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def read(cls, path) -> Table:
        path = Path(path)
        try:
            lines = path.read_text().splitlines()
        except OSError as err:
            raise TableError(f"cannot read the table {path}: {err.strerror or err}") from None
        return _Reader(path, lines).table()

    # -- shape ------------------------------------------------------------------------------
    @property
    def max_t(self) -> int:
        return min(len(c) for seeds in self.curves.values() for c in seeds.values())

    @property
    def all_seeds(self) -> list[int]:
        return sorted({s for seeds in self.curves.values() for s in seeds})

    @property
    def pool_seeds(self) -> list[int]:
        return self.all_seeds if self.pool is None else [s for s in self.all_seeds if s in self.pool]

    @property
    def held_out(self) -> list[int]:
        return [s for s in self.all_seeds if s not in self.pool_seeds]

    def seeds(self, config: int, pool: bool = True) -> list[int]:
        """The seeds recorded for `config` (only those of the pick pool by default)."""
        allowed = set(self.pool_seeds if pool else self.all_seeds)
        return sorted(s for s in self.curves[config] if s in allowed)

    def label(self, config: int) -> str:
        return " ".join(f"{p.name}={v:g}" if isinstance(v, float) else f"{p.name}={v}"
                        for p, v in zip(self.params, self.configs[config]) if v is not None)

    # -- values -----------------------------------------------------------------------------
    def sign(self) -> float:
        """+1 where larger is better, -1 where smaller is: sign * value is always maximised."""
        return 1.0 if self.mode == "max" else -1.0

    def final(self, config: int, seed: int) -> float:
        return self.curves[config][seed][self.max_t - 1]

    def epoch_seconds(self, config: int, seed: int, epoch: int) -> float:
        """What epoch `epoch` (0-based) took; an empty cell takes none. The simulated trainable sleeps
        it and the replay orders results by it, so both see results arrive in the same order."""
        secs = self.seconds[config][seed][epoch]
        return secs if math.isfinite(secs) else 0.0

    def mean(self, config: int, seeds: list[int] | None = None) -> float:
        """The config's final value, averaged over `seeds` (default: the held-out seeds, else all)."""
        seeds = seeds if seeds is not None else (self.held_out or self.all_seeds)
        have = [s for s in seeds if s in self.curves[config]]
        return statistics.fmean(self.final(config, s) for s in have) if have else math.nan

    def best_mean(self, seeds: list[int] | None = None) -> float:
        return max((self.sign() * self.mean(c, seeds) for c in self.curves), default=math.nan) * self.sign()

    def regret(self, config: int, seeds: list[int] | None = None) -> float:
        """How much worse `config` is than the best config, on the mean over `seeds` (held-out by default);
        0 for the best, positive for the rest, whatever the metric's direction."""
        return self.sign() * (self.best_mean(seeds) - self.mean(config, seeds))

    # -- proposals --------------------------------------------------------------------------
    def nearest(self, proposal: dict) -> int:
        """The index of the recorded config closest to `proposal` (param name -> value)."""
        values = tuple(None if proposal.get(p.name) is None else p.coerce(proposal[p.name]) for p in self.params)
        if values in self._index:
            return self._index[values]

        def dist(i: int) -> float:
            return math.fsum(p.distance(a, b) ** 2 for p, a, b in zip(self.params, values, self.configs[i]))
        best = min(range(len(self.configs)), key=dist)
        self._index[values] = best
        return best

    def config_of(self, index: int) -> dict:
        """Param name -> value of a recorded config, params that do not apply left out."""
        return {p.name: v for p, v in zip(self.params, self.configs[index]) if v is not None}


REQUIRED = ("table", "metric")


class _Reader:
    def __init__(self, path: Path, lines: list[str]):
        self.path, self.lines = path, lines
        self.head: dict = {"param": []}

    def fail(self, number: int, what: str):
        raise TableError(f"{self.path}, line {number}: {what} (the format: docs/recorded_tables.md)")

    def table(self) -> Table:
        body_start = self.header()
        params = self.head["param"]
        for key in REQUIRED:
            if key not in self.head:
                self.fail(1, f"no '# {key}:' line")
        if not params:
            self.fail(1, "no '# param:' line; a table needs at least one searched param")
        metric, mode = self.head["metric"]
        expected = ["seed", *[p.name for p in params], "epoch", metric, "seconds"]
        if body_start is None:
            self.fail(len(self.lines), f"no column line ({','.join(expected)})")
        columns = [c.strip() for c in self.lines[body_start - 1].split(",")]
        if columns != expected:
            self.fail(body_start, f"the columns are {','.join(columns)}; expected {','.join(expected)} "
                                  "(the params in the order of the '# param:' lines)")
        configs, index, curves, seconds = [], {}, {}, {}
        rows = csv.reader(self.lines[body_start:])
        for offset, row in enumerate(rows):
            number = body_start + offset + 1
            if not row or (len(row) == 1 and not row[0].strip()) or row[0].startswith("#"):
                continue
            if len(row) != len(expected):
                self.fail(number, f"{len(row)} cells, expected {len(expected)}")
            try:
                seed, epoch = int(row[0]), int(row[len(params) + 1])
                values = tuple(p.parse(cell.strip()) for p, cell in zip(params, row[1:len(params) + 1]))
                value, secs = float(row[-2]), float(row[-1]) if row[-1].strip() else math.nan
            except ValueError as err:
                self.fail(number, str(err))
            if secs < 0:
                self.fail(number, f"seconds is {row[-1]}, below 0")
            if not math.isfinite(value):
                self.fail(number, f"{metric} is {row[-2]!r}, not a number")
            if all(v is None for v in values):
                self.fail(number, "every param cell is empty")
            i = index.setdefault(values, len(configs))
            if i == len(configs):
                configs.append(values)
            per_epoch = curves.setdefault(i, {}).setdefault(seed, {})
            if epoch in per_epoch:
                self.fail(number, f"seed {seed}, epoch {epoch} of this config appears twice")
            per_epoch[epoch] = value
            seconds.setdefault(i, {}).setdefault(seed, {})[epoch] = secs
        if not configs:
            self.fail(len(self.lines), "no rows")
        in_order = {i: {s: self.epochs(e, i, s, configs, params) for s, e in by.items()} for i, by in curves.items()}
        table = Table(self.head["table"], metric, mode, params, configs, in_order,
                      {i: {s: [e[k] for k in sorted(e)] for s, e in by.items()} for i, by in seconds.items()},
                      warm=self.head.get("warm"), pool=self.head.get("pool"), source=str(self.path.resolve()))
        if table.pool is not None and not table.pool_seeds:
            self.fail(self.head["pool_line"], f"no recorded seed is in the pool {table.pool}")
        if table.warm is not None:
            table.warm = {p.name: table.warm[p.name] for p in params if p.name in table.warm}
        return table

    def epochs(self, per_epoch: dict, i: int, seed: int, configs, params) -> list[float]:
        epochs = sorted(per_epoch)
        if epochs != list(range(1, len(epochs) + 1)):
            label = " ".join(f"{p.name}={v}" for p, v in zip(params, configs[i]) if v is not None)
            raise TableError(f"{self.path}: config {label}, seed {seed} has epochs {epochs}, not 1..{len(epochs)}")
        return [per_epoch[k] for k in epochs]

    def header(self) -> int | None:
        """Reads the '# key:' lines; -> the 1-based number of the column line (the first line that is not a comment)."""
        for number, line in enumerate(self.lines, 1):
            text = line.strip()
            if not text:
                continue
            if not text.startswith("#"):
                return number
            key, sep, rest = text[1:].partition(":")
            key = key.strip()
            if sep and key in ("table", "metric", "param", "warm", "pool"):
                self.directive(number, key, rest.strip())
        return None

    def directive(self, number: int, key: str, rest: str) -> None:
        if key == "table":
            self.head["table"] = rest or self.path.stem
        elif key == "metric":
            parts = rest.split()
            if len(parts) != 2 or parts[1] not in ("max", "min"):
                self.fail(number, f"'# metric: {rest}' should be '# metric: NAME max|min'")
            self.head["metric"] = (parts[0], parts[1])
        elif key == "param":
            self.head["param"].append(self.param(number, rest))
        elif key == "pool":
            try:
                self.head["pool"] = sorted({int(s) for s in rest.split()})
            except ValueError:
                self.fail(number, f"'# pool: {rest}' should list seeds, e.g. '# pool: 0 1 2'")
            self.head["pool_line"] = number
        else:
            self.head["warm"] = self.warm(number, rest)

    def param(self, number: int, rest: str) -> Param:
        parts = rest.split()
        usage = "'# param: NAME float|int LOW HIGH [log]' or '# param: NAME choice A|B|C'"
        if len(parts) < 2:
            self.fail(number, f"'# param: {rest}' should be {usage}")
        name, kind = parts[0], parts[1]
        if any(p.name == name for p in self.head["param"]):
            self.fail(number, f"param {name} is declared twice")
        if kind == "choice":
            if len(parts) != 3:
                self.fail(number, f"'# param: {rest}' should be '# param: NAME choice A|B|C'")
            return Param(name, "choice", choices=tuple(parts[2].split("|")))
        if kind not in ("float", "int") or len(parts) not in (4, 5) or (len(parts) == 5 and parts[4] != "log"):
            self.fail(number, f"'# param: {rest}' should be {usage}")
        try:
            low, high = float(parts[2]), float(parts[3])
        except ValueError:
            self.fail(number, f"param {name}: LOW and HIGH must be numbers, got {parts[2]!r} {parts[3]!r}")
        log = len(parts) == 5
        if not low <= high or (log and low <= 0):
            self.fail(number, f"param {name}: need LOW <= HIGH{' and LOW > 0 on a log scale' if log else ''}")
        return Param(name, kind, low, high, log)

    def warm(self, number: int, rest: str) -> dict:
        params = {p.name: p for p in self.head["param"]}
        out = {}
        for item in rest.split():
            name, sep, value = item.partition("=")
            if not sep or name not in params:
                self.fail(number, f"'{item}' in '# warm:' should be NAME=VALUE with NAME a param declared above")
            try:
                out[name] = params[name].parse(value)
            except ValueError as err:
                self.fail(number, str(err))
        return out
