"""Search spaces, one module per paper: what is searched, the paper's best config, the paper's grid.

A `SearchSpec` is plain data; the runner (search/runner.py) does all the work. Profiles shrink
the paper's setup: `cpu` for the no-argument run on the embedded synthetic set (small
backbones and images on a 2-core laptop), `smoke` for CI. A profile may override config
values (`config`), parts of the space (`space`) and the warm start (`best`).
`chexpert` has the same keys and is merged over the profile when `--data` is a CheXpert
root, so a space can add dimensions that only exist there (the uncertainty policy).
"""
from __future__ import annotations

from dataclasses import dataclass, field


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
