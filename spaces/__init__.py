"""Search spaces, one module per paper: what is searched, the paper's best config, the paper's grid.

A `SearchSpec` is plain data; the runner (search/runner.py) does all the work. Profiles shrink
the paper's setup: `cpu` for the no-argument run on the embedded synthetic set (small
backbones and images on a 2-core laptop), `smoke` for CI. A profile may override config
values (`config`), parts of the space (`space`) and the warm start (`best`).
`chexpert` has the same keys and is merged over the profile when `--data` is a CheXpert
root, so a space can add dimensions that only exist there (the uncertainty policy).

This package is the one registry of papers: every module here with a `SPEC` is one (`names()`),
found by its name (`get`) or by the model its setup trains (`for_model`); the evaluation, the export
and the runner look papers up here and nowhere else.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field

from spaces.paper_numbers import PaperRow
from trainables.config import merge
from trainables.errors import UsageError

# From scratch (the embedded set has no use for ImageNet weights), small images, one thread per
# trial, a fresh random 1024 training images per epoch, 6 epochs: minutes on a 2-core laptop.
# Each paper's profile sizes its images per epoch and stand-in backbone so that its warm start
# reaches 0.70 val AUC within them (spaces/<paper>.py).
LAPTOP = {"model": {"pretrained": False},
          "data": {"image_size": 64, "resize": 72, "batch_size": 16, "epoch_images": 1024, "eval_batch_size": 128},
          "train": {"max_epochs": 6, "threads": 1}}
# ASHA in the laptop profiles, which train from scratch for 6 epochs: the first cut waits for half
# the schedule. Over DualCheXNet's 35-cell grid on its CPU profile (benchmarks/replay.py's table, 3
# seeds), val AUC at epochs 1 and 2 ranks the cells against epoch 6 no better than chance (Spearman,
# median over seeds, 0.14 and 0.17); epoch 3 is the first that ranks them at all (0.37; 0.31-0.61).
# Cuts at epochs 1-2 drop trials on noise.
SCRATCH_ASHA = {"grace_period": 3, "reduction_factor": 2}
# The no-argument run's search stops after this many seconds (--time-budget). Its 3 trials cost 15-18
# trial-epochs: 296 s in all on this project's 2-core AMD EPYC when ASHA cut one at epoch 3 (about 29 s per
# trial-epoch, two at once), 499 s on another 2-core EPYC where none was cut (37 s). Ray's start, the data
# and the report take about 30 s around the search here (so 1.7 x that there): 230 s keeps the whole run
# within 300 s on both. The paper's config starts first: here it finishes in about 185 s (val AUC 0.739);
# at 37 s per epoch it reaches epoch 5 (0.716 on this set) or 6 before the budget.
DEMO_TIME_BUDGET = 230.0
# CI: seconds per trial.
SMOKE = merge(LAPTOP, {"data": {"image_size": 32, "resize": 36, "epoch_images": 64}, "train": {"max_epochs": 2}})


# CI's smoke runs keep ASHA's cuts and TPE running through the real trainer: the real-data defaults (no
# cuts, random search, search/runner.py) would leave both untested end to end.
SMOKE_SEARCH = {"asha": {"grace_period": 1, "reduction_factor": 2}, "sampler": "tpe"}


def profile(shape: dict, num_samples: int, config: dict | None = None, space: dict | None = None,
            best: dict | None = None, asha: dict | None = None, confirm: dict | None = None) -> dict:
    """A `cpu` or `smoke` profile: LAPTOP or SMOKE with a paper's own changes. `asha`: grace_period,
    reduction_factor; `confirm`: confirm (K), confirm_seeds (S). A profile confirms nothing unless it
    says so: K x S more full trainings do not fit a few-minute laptop run (real data confirms by
    default, search/runner.py), and CI tests confirmation on purpose."""
    out = {"num_samples": num_samples, "config": merge(shape, config or {}), "space": space or {}, "best": best or {},
           "asha": asha or {}, "confirm": confirm or {"confirm": 0}}
    return {**out, "asha": asha or SMOKE_SEARCH["asha"], "sampler": SMOKE_SEARCH["sampler"]} if shape is SMOKE else out


@dataclass
class SearchSpec:
    name: str
    script: str
    description: str
    base: dict           # the paper's fixed setup (a nested trial config)
    space: dict          # nested tune domains merged over `base`
    best: dict           # the paper's best config, evaluated first (warm start)
    grid: dict           # nested tune.grid_search values replicating the paper's grid
    columns: list = field(default_factory=list)  # dotted params shown in the progress table
    cpu: dict = field(default_factory=dict)
    smoke: dict = field(default_factory=dict)
    # merged over the chosen profile when --data is a CheXpert root (e.g. search data.policy)
    chexpert: dict = field(default_factory=dict)
    # ASHA's grace_period / reduction_factor on real data, where the paper's setup calls for others
    asha: dict = field(default_factory=dict)
    # Optuna's sampler on real data where the replay measured another than the runner's (search/runner.py)
    sampler: str | None = None
    # the paper's headline row of test AUCs per dataset (chestxray14, chexpert), for evaluate.py
    paper: dict[str, PaperRow] = field(default_factory=dict)


NOT_PAPERS = {"paper_numbers"}
# Models any config may use, so they say nothing of whose paper a config follows.
GENERIC_MODELS = {"timm_classifier"}


def names() -> list[str]:
    """Every paper's space, by module name (= its SearchSpec's name)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in NOT_PAPERS)


def get(name: str) -> SearchSpec:
    if name not in names():
        raise UsageError(f"no search space {name!r}; there are {names()} (one module each in spaces/)")
    return importlib.import_module(f"{__name__}.{name}").SPEC


def for_model(model_name: str | None) -> str | None:
    """The one space whose paper trains `model_name` (none if no paper, several papers, or a generic
    model such as a plain timm classifier)."""
    if model_name in GENERIC_MODELS:
        return None
    found = [n for n in names() if get(n).base.get("model", {}).get("name") == model_name]
    return found[0] if len(found) == 1 else None
