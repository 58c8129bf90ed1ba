"""The nested trial config: defaults, merging and key checking.

One shape for every paper (ARCHITECTURE.md, "The trial config"), so any loss combines with any
model. Sections with a `name` (model, loss, optim, sched) are checked by their registries,
`heads` against the model's heads (trainables/objective.py), the fixed sections (data, train) here. `flatten` gives the dotted keys
MLflow params and exported YAML use; `read_config_doc` and `config_of` read a config from YAML.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

from trainables.errors import one_line
from trainables.registry import ConfigError

DEFAULTS = {
    "model": {"name": "dualchexnet"},
    "loss": {"name": "bce"},
    # fusion + one weight per head, w_<head> (missing weights are 1.0)
    "heads": {"fusion": "concat"},
    "optim": {"name": "sgd", "lr": 1e-3, "weight_decay": 1e-4, "momentum": 0.9},
    "sched": {"name": "plateau", "factor": 0.1, "patience": 1},
    "data": {
        "root": None,            # None: the embedded synthetic ChestX-ray14
        "dataset": "auto",       # auto | nih | chexpert
        "image_size": 224,       # crop fed to the network
        "resize": None,          # cached resolution; None: image_size * 8/7 (256 for 224)
        "batch_size": 16,
        "eval_batch_size": 64,
        "val_fraction": 0.1,     # NIH: of the whole set (70/10/20); CheXpert: of train.csv
        "split_seed": 0,
        "policy": "mixed",       # CheXpert uncertainty policy
        "frontal_only": False,
        "hflip": True,
        "rotation": 5.0,
        "jitter": 0.1,
        "scale_min": 0.7,
        "epoch_images": None,    # None: whole train split per epoch; N: a fresh random N each epoch
        "augment_on": "auto",    # auto (device on a GPU trial, else cpu) | cpu | device
        "num_workers": "auto",   # loader processes; auto: the trial's CPUs - 1
        "prefetch_factor": None, # batches each worker loads ahead; None: torch's 2
        "cache_dir": None,
    },
    "train": {
        "max_epochs": 20,
        "seed": 0,
        # k: the search's k-th re-training of a config with seed + k (search/scheduling/replicas.py); 0: a
        # proposal. Training ignores it; ASHA, Optuna, MLflow and the report read it.
        "replica": 0,
        "iterative": False,
        "iterative_unit": "batch",  # batch | epoch: what one phase of Algorithm 1 lasts
        "device": "auto",           # auto | cpu | cuda
        "amp": True,                # bf16 autocast on GPU (ignored on CPU)
        # torch.compile of the model on GPU (ignored on CPU): off | default | reduce-overhead (CUDA
        # graphs: one launch per step at the papers' small batches; training batches are full-size)
        "compile": "off",
        "threads": None,            # torch CPU threads; None: as Ray/OMP set them
        "grad_clip": None,
        # steps between checks that the training loss is finite (each check waits for the GPU)
        "check_every": 50,
        # Nugroho 2021 progressive resizing: after stage1_epochs (None: half of max_epochs,
        # rounded up) train at 2x data.image_size/resize, 1/2 data.batch_size from stage 1's best weights
        "two_stage": False,
        "stage1_epochs": None,
    },
}
FIXED_SECTIONS = ("data", "train")
CHOICES = {
    ("data", "dataset"): ("auto", "nih", "chexpert"),
    ("data", "augment_on"): ("auto", "cpu", "device"),
    ("train", "iterative_unit"): ("batch", "epoch"),
    ("train", "device"): ("auto", "cpu", "cuda"),
    ("train", "compile"): ("off", "default", "reduce-overhead"),
}


def merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        # {"grid_search": [...]} is one Tune value, not a section: it replaces, never merges
        # (Ray only expands a dict whose single key is grid_search).
        if isinstance(value, dict) and isinstance(out.get(key), dict) and set(value) != {"grid_search"}:
            # a new component name starts from that component's own defaults, not the old one's
            if "name" in value and value["name"] != out[key].get("name"):
                out[key] = {}
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve(config: dict) -> dict:
    """Defaults + user config, with unknown sections/keys and bad choices rejected."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown config section(s) {unknown}; sections are {sorted(DEFAULTS)}")
    for section in FIXED_SECTIONS:
        bad = sorted(set(config.get(section) or {}) - set(DEFAULTS[section]))
        if bad:
            raise ConfigError(f"unknown config key(s) {[f'{section}.{k}' for k in bad]}; "
                              f"{section} takes {sorted(DEFAULTS[section])}")
    cfg = merge(DEFAULTS, config)
    for (section, key), allowed in CHOICES.items():
        if cfg[section][key] not in allowed:
            raise ConfigError(f"{section}.{key}={cfg[section][key]!r}; choose one of {list(allowed)}")
    for section, key in (("data", "image_size"), ("data", "batch_size"), ("train", "max_epochs"),
                         ("train", "check_every")):
        value = cfg[section][key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{section}.{key}={value!r} must be a positive integer")
    check_augmentation(cfg["data"])
    if cfg["data"]["resize"] is None:
        cfg["data"]["resize"] = round(cfg["data"]["image_size"] * 8 / 7)
    if cfg["data"]["resize"] < cfg["data"]["image_size"]:
        raise ConfigError(f"data.resize={cfg['data']['resize']} is below data.image_size="
                          f"{cfg['data']['image_size']}; the crop must fit in the cached image")
    return cfg


# Both augmentation paths (CPU and device) take these, with the same meaning and range.
AUGMENT_RANGES = {"rotation": (0.0, 180.0, "degrees, drawn in [-rotation, rotation]"),
                  "jitter": (0.0, 1.0, "brightness/contrast factors drawn in [1-jitter, 1+jitter]"),
                  "scale_min": (1e-3, 1.0, "smallest crop area, as a fraction of the cached image")}


def check_augmentation(data: dict) -> None:
    if not isinstance(data["hflip"], bool):
        raise ConfigError(f"data.hflip={data['hflip']!r} must be true or false")
    for key, (low, high, meaning) in AUGMENT_RANGES.items():
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise ConfigError(f"data.{key}={value!r} must be a number in [{low:g}, {high:g}] ({meaning})")
    prefetch = data["prefetch_factor"]
    if prefetch is not None and (isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1):
        raise ConfigError(f"data.prefetch_factor={prefetch!r} must be a positive integer or null")


def flatten(cfg: dict, prefix: str = "", sep: str = ".") -> dict:
    """{'a.b': v} from a nested config (`sep` "/": as Tune flattens it into a result's `config/...` keys)."""
    out = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, dotted + sep, sep))
        else:
            out[dotted] = value
    return out


def unflatten(flat: dict, sep: str = ".") -> dict:
    out: dict = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(sep)
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def read_config_doc(path) -> dict:
    """A YAML file as a mapping: a nested trial config, or a file search/export.py wrote."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} not found; pass a YAML trial config or an exported one")
    try:
        doc = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{file} is not valid YAML ({one_line(err)}); fix the file or re-export it") from None
    doc = {} if doc is None else doc
    if not isinstance(doc, dict):
        raise ConfigError(f"{file} holds a {type(doc).__name__}, not a mapping of config sections "
                          "(model, loss, heads, optim, sched, data, train)")
    return doc


def config_of(doc: dict, path) -> dict:
    """The nested trial config of a YAML mapping (an exported one keeps it under 'config')."""
    config = doc.get("config", doc)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: 'config' holds a {type(config).__name__}, not a mapping of config sections "
                          "(model, loss, heads, optim, sched, data, train)")
    return config
