"""Torch dataset over one split, reading pixels from the preprocessed cache."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from trainables.data import Split
from trainables.data.cache import ImageCache


class CachedDataset(Dataset):
    def __init__(self, split: Split, cache: ImageCache, transform):
        self.rows = cache.rows(split.paths)
        self.cache = cache
        self.labels = torch.from_numpy(np.ascontiguousarray(split.labels, dtype=np.float32))
        self.mask = torch.from_numpy(np.ascontiguousarray(split.mask, dtype=np.float32))
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        return self.transform(self.cache[self.rows[i]]), self.labels[i], self.mask[i]
