"""Where a trial's per-epoch metrics and checkpoints go: Ray Tune, or a local folder.

Both save the same state dict file (`state.pt`) and load it with weights_only=True, so a
checkpoint from a Tune trial also resumes with `python -m trainables.train --resume`.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from trainables.data.cache import usable_cpus
from trainables.errors import UsageError

STATE_FILE = "state.pt"
# The result key a trial reports a deterministic failure under (search/scheduling/trial_state.py reads it).
ERROR_KEY = "cxr_error"
# The result key of the data a trial trained and validated on (trainables/data/fingerprint.py), in
# its first report of a session; search/tracking/callback.py logs it as MLflow dataset inputs.
INPUTS_KEY = "cxr_inputs"


def load_state(directory) -> dict:
    return torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)


class TuneReporter:
    def __init__(self):
        self._inputs: str | None = None

    def inputs(self, datasets: list[dict]) -> None:
        """The data this trial sees, sent with its next report (one JSON text, not a metric)."""
        self._inputs = json.dumps(datasets)

    def cpus(self) -> float:
        """The CPUs Tune reserved for this trial (--cpus-per-trial), which sizes its loader workers."""
        from ray import tune

        return tune.get_context().get_trial_resources().required_resources.get("CPU", 1)

    def restore(self):
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as d:
            return load_state(d)

    def fail(self, message: str) -> None:
        """Tell the driver this trial fails for a reason a retry would meet again (see
        search/scheduling/trial_state.py); NaN val_auc, because Tune's searchers read that key."""
        from ray import tune

        tune.report({ERROR_KEY: message, "val_auc": float("nan")})

    def report(self, metrics: dict, state: dict) -> None:
        from ray import tune

        if self._inputs is not None:
            metrics, self._inputs = {**metrics, INPUTS_KEY: self._inputs}, None
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, Path(d) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


class LocalReporter:
    """Prints one line per epoch; keeps `last/` and the best-val_auc `best/` checkpoint in `out`."""

    def __init__(self, out, resume: bool = False):
        self.out = Path(out)
        self.resume = resume
        self.best = float("-inf")
        self.out.mkdir(parents=True, exist_ok=True)

    def cpus(self) -> int:
        # the machine is the trial's; past 8 loader workers a GPU gains nothing but their memory
        return min(usable_cpus(), 9)

    def inputs(self, datasets: list[dict]) -> None:
        """What the training saw, beside its checkpoints: `inputs.json`."""
        (self.out / "inputs.json").write_text(json.dumps(datasets, indent=1) + "\n")

    def restore(self):
        if not self.resume:
            return None
        if not (self.out / "last" / STATE_FILE).is_file():
            raise UsageError(f"--resume: no checkpoint at {self.out / 'last' / STATE_FILE}; "
                             "train without --resume first, or pass the --out of an earlier run")
        history = self.out / "metrics.jsonl"
        if history.is_file():
            rows = [json.loads(l) for l in history.read_text().splitlines() if l.strip()]
            self.best = max((r.get("val_auc", float("-inf")) for r in rows), default=self.best)
        return load_state(self.out / "last")

    def report(self, metrics: dict, state: dict) -> None:
        tmp = self.out / "last.tmp"
        tmp.mkdir(exist_ok=True)
        torch.save(state, tmp / STATE_FILE)
        shutil.rmtree(self.out / "last", ignore_errors=True)
        tmp.rename(self.out / "last")
        if metrics.get("val_auc", float("-inf")) > self.best:
            self.best = metrics["val_auc"]
            shutil.copytree(self.out / "last", self.out / "best", dirs_exist_ok=True)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(metrics) + "\n")
        print(f"epoch {metrics['epoch']}: train_loss {metrics['train_loss']:.4f} "
              f"val_loss {metrics['val_loss']:.4f} val_auc {metrics['val_auc']:.4f} "
              f"({metrics['images_per_s']:.0f} img/s)", flush=True)
