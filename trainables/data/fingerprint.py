"""What data a run saw, as MLflow dataset inputs: per split, a digest of its image list and labels,
the root it was read from and the rule that made the split.

Plain dicts, no MLflow import: the trainable builds them in the worker and they travel in its
first report; search/tracking/outbox.py turns them into `mlflow.log_inputs` calls.
"""
from __future__ import annotations

import hashlib
import json
import os

from trainables.data import Split, Splits
from trainables.data.sources import dataset_label

DIGEST_CHARS = 12   # MLflow's dataset digest column holds 36; 48 bits tell splits apart
SOURCE_TYPE = "local"  # MLflow's own type for a path on disk: {"uri": ...}


def split_digest(split: Split, root: str, labels) -> str:
    """sha256 over the label names and, per image in order, its path under `root` and its labels
    (-1 where masked). The same files under another root give the same digest; a changed image
    list, order, label or mask gives another."""
    h = hashlib.sha256("\t".join(labels).encode())
    values = split.labels.astype(int)
    values[~split.mask.astype(bool)] = -1
    for path, row in zip(split.paths, values):
        rel = os.path.relpath(path, root) if root and os.path.isabs(path) else path
        h.update(f"\n{rel}\t{','.join(map(str, row))}".encode())
    return h.hexdigest()[:DIGEST_CHARS]


def split_input(splits: Splits, context: str, label: str) -> dict:
    """One split (`context`: train | val | test) as a dataset input; `label` names the dataset."""
    split = getattr(splits, context)
    positives = dict(zip(splits.labels, map(int, split.positive_counts())))
    profile = {"images": len(split), "patients": len(set(split.patients.tolist())), "split": splits.description,
               "positives": positives}
    return {"name": f"{label} {context}", "digest": split_digest(split, splits.root, splits.labels),
            "source_type": SOURCE_TYPE, "source": json.dumps({"uri": str(splits.root)}),
            "profile": json.dumps(profile), "context": context}


def inputs(splits: Splits, contexts=("train", "val")) -> list[dict]:
    label = dataset_label(splits)
    return [split_input(splits, c, label) for c in contexts]
