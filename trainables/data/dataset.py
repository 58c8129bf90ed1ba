"""Torch datasets over one split, reading pixels from the preprocessed cache, and the epoch sampler.

Two datasets, one per augmentation path:
- `CachedDataset` (CPU trials): one sample at a time, augmented on the CPU by `transform`;
- `RowDataset` (GPU trials): a whole batch at once as uint8 cache rows, (B, 1, S, S), one
  fancy-index read of the memory map; the device augments it (device_augment.py).

`EpochSampler` gives each epoch's order from (seed, epoch) alone, and each sample a seed of
its own for the CPU augmentation, so an epoch's images and their augmentation are the same
whatever the number of loader workers, and a resumed trial sees what it would have seen.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from trainables.data import Split
from trainables.data.cache import ImageCache


class _SplitRows(Dataset):
    def __init__(self, split: Split, cache: ImageCache):
        self.rows = cache.rows(split.paths)
        self.cache = cache
        self.labels = torch.from_numpy(np.ascontiguousarray(split.labels, dtype=np.float32))
        self.mask = torch.from_numpy(np.ascontiguousarray(split.mask, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.rows)


class CachedDataset(_SplitRows):
    """Key: an index, or (index, seed) from EpochSampler to draw the augmentation from."""

    def __init__(self, split: Split, cache: ImageCache, transform):
        super().__init__(split, cache)
        self.transform = transform

    def __getitem__(self, key):
        i, seed = key if isinstance(key, tuple) else (key, None)
        if seed is None:
            image = self.transform(self.cache[self.rows[i]])
        else:
            # the CPU generator alone (what the PIL transforms draw from), restored afterwards:
            # the caller's RNG streams stay untouched
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)
                image = self.transform(self.cache[self.rows[i]])
        return image, self.labels[i], self.mask[i]


class RowDataset(_SplitRows):
    """Batches of raw uint8 rows; DataLoader hands `__getitems__` the batch's keys at once."""

    def __getitems__(self, keys) -> tuple:
        idx = np.fromiter((k[0] if isinstance(k, tuple) else k for k in keys), dtype=np.int64, count=len(keys))
        pixels = torch.from_numpy(self.cache.array[self.rows[idx]]).unsqueeze(1)  # one copy out of the memmap
        t = torch.from_numpy(idx)
        return pixels, self.labels[t], self.mask[t]

    def __getitem__(self, key):
        pixels, labels, mask = self.__getitems__([key])
        return pixels[0], labels[0], mask[0]


def as_batch(batch):
    """collate_fn for RowDataset: `__getitems__` already returns the collated batch."""
    return batch


class EpochSampler(Sampler):
    """Yields (index, seed) keys; `set_epoch` before each pass (the loader's workers may persist)."""

    def __init__(self, n: int, seed: int, epoch_images: int | None = None):
        self.n, self.seed, self.epoch_images, self.epoch = n, seed, epoch_images, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return min(self.n, self.epoch_images or self.n)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=g)[: len(self)]
        seeds = torch.randint(2 ** 62, (len(order),), generator=g)
        return iter(zip(order.tolist(), seeds.tolist()))
