"""`--simulate TABLE`: a trainable that reads recorded curves instead of training.

Each trial maps its config to the nearest recorded config of the table (table.py's `nearest`) and
reads one recorded seed of it epoch by epoch, sleeping each epoch's recorded seconds divided by the
speed-up, reporting and checkpointing as a training trial does (so ASHA, the searcher, retries,
`--resume`, the MLflow callback and confirmation see what they see in a real search). The recorded
seed is the config's own draw from the table's pick pool, moved on by the trial's `train.seed`: the
same config with the same seed reads the same curve (as training would give), a confirmation seed
reads another one (while the pool has others). Held-out seeds (the table's `# pool:`) are never read.
"""
from __future__ import annotations

import json
import tempfile
import time
import zlib
from pathlib import Path

from search.simulation.table import Table
from trainables.config import flatten
from trainables.errors import UsageError

TAG = "cxr.simulated"        # on the parent and every trial run of a simulated search: the table read
STATE = "simulated.json"     # a simulated trial's checkpoint: the epochs it has reported


def note(table: str) -> str:
    """What the printout, best_config.yaml and an exported YAML say of a simulated search's values."""
    return f"values read from recorded curves ({table}), not trained (--simulate)"


def recorded_seed(table: Table, config_index: int, seed: int) -> int:
    """The pool seed a trial of this config with `train.seed` = `seed` reads. Seeds seed, seed+1, ...
    read distinct recorded seeds until the pool runs out, then repeat them."""
    seeds = table.seeds(config_index)
    if not seeds:
        raise UsageError(f"{table.source}: config {table.label(config_index)} has no recorded seed in the pool "
                         f"{table.pool_seeds}; record it, or widen '# pool:'")
    return seeds[(zlib.crc32(table.label(config_index).encode()) + seed) % len(seeds)]


def proposal(table: Table, config: dict) -> dict:
    flat = flatten(config)
    return {p.name: flat.get(p.name) for p in table.params}


def simulated_fn(config: dict, table: Table, speedup: float) -> None:
    from ray import tune

    index = table.nearest(proposal(table, config))
    seed = recorded_seed(table, index, int(config["train"]["seed"]))
    curve = table.curves[index][seed]
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            start = json.loads((Path(d) / STATE).read_text())["epoch"]
    for epoch in range(start, min(int(config["train"]["max_epochs"]), len(curve))):
        secs = table.epoch_seconds(index, seed, epoch)
        time.sleep(secs / speedup)
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / STATE).write_text(json.dumps({"epoch": epoch + 1}))
            tune.report({"epoch": epoch + 1, "val_auc": curve[epoch], "recorded_seconds": secs,
                         "recorded_seed": seed, "recorded_config": index},
                        checkpoint=tune.Checkpoint.from_directory(d))


def check(table: Table, flat_space: set[str], max_epochs: int | None) -> None:
    """The table fits this search: a maximised metric, its params among the config's keys, enough epochs."""
    if table.mode != "max":
        raise UsageError(f"--simulate {table.source}: the runner maximises val_auc; this table's metric "
                         f"{table.metric} is minimised (negate it in the table)")
    missing = [p.name for p in table.params if p.name not in flat_space]
    if missing:
        raise UsageError(f"--simulate {table.source}: param(s) {', '.join(missing)} are not keys of this search's "
                         f"config (e.g. {', '.join(sorted(flat_space)[:4])}); name the table's params as the "
                         "config's dotted keys, or simulate with the script whose table it is")
    if max_epochs is not None and max_epochs > table.max_t:
        raise UsageError(f"--max-epochs {max_epochs}: the table {table.source} has {table.max_t} epoch(s)")
