"""The input pipeline of one training stage: the augmentation path, the loader workers, the loaders.

Path (`data.augment_on`): `auto` augments on the device when the trial runs on a GPU, where the
host then only moves uint8 cache rows into pinned memory and the device crops, flips, rotates,
jitters and normalises whole batches (device_augment.py); on a CPU trial it keeps the
per-sample CPU transforms (transforms.py), which are faster there. `cpu` or `device` forces one.

Workers (`data.num_workers`): `auto` is the trial's CPUs minus the one the training process
keeps; they persist across epochs and prefetch `data.prefetch_factor` batches each. They are
started with forkserver, since the trial may be a multi-threaded Ray worker holding a CUDA
context, and receive the cache by its path (cache.py), never a copy of its images.
"""
from __future__ import annotations

import multiprocessing as mp

import torch
from torch.utils.data import DataLoader

from trainables.data.dataset import CachedDataset, EpochSampler, RowDataset, as_batch
from trainables.data.device_augment import DeviceAugment
from trainables.data.transforms import eval_transform, train_transform
from trainables.registry import ConfigError


def augments_on_device(choice: str, device: torch.device) -> bool:
    return choice == "device" or (choice == "auto" and device.type == "cuda")


def loader_workers(value, cpus: float | None) -> int:
    """data.num_workers: an integer >= 0, or `auto` = the trial's CPUs - 1 (no CPU count: 0)."""
    if value == "auto":
        return max(0, int(cpus or 1) - 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"data.num_workers={value!r} must be 'auto' or an integer >= 0 "
                          "(loader processes; 0 loads in the training process)")
    return value


class InputPipeline:
    """Batches on `device`, transformed, in the model's memory layout: `train_batches(epoch)`
    and `val_batches()`."""

    def __init__(self, data_cfg: dict, seed: int, splits, cache, device: torch.device, cpus: float | None):
        d, self.device = data_cfg, device
        self.on_device = augments_on_device(d["augment_on"], device)
        self.workers = loader_workers(d["num_workers"], cpus)
        if d["prefetch_factor"] is not None and self.workers == 0:
            raise ConfigError(f"data.prefetch_factor={d['prefetch_factor']} needs loader workers, but "
                              f"data.num_workers={d['num_workers']!r} gives none here ({cpus or 1:g} CPU(s)); "
                              "remove data.prefetch_factor or set data.num_workers >= 1")
        pin = device.type == "cuda"
        self.layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        if self.on_device:
            self.augment = DeviceAugment(d)
            train_ds, val_ds = RowDataset(splits.train, cache), RowDataset(splits.val, cache)
            extra = {"collate_fn": as_batch}
        else:
            self.augment = None
            train_ds = CachedDataset(splits.train, cache, train_transform(
                d["image_size"], d["hflip"], d["rotation"], d["jitter"], d["scale_min"]))
            val_ds = CachedDataset(splits.val, cache, eval_transform(d["image_size"]))
            extra = {}
        self.sampler = EpochSampler(len(train_ds), seed, d["epoch_images"])
        workers = {}
        if self.workers:
            workers = {"num_workers": self.workers, "persistent_workers": True,
                       "prefetch_factor": d["prefetch_factor"] or 2,
                       "multiprocessing_context": mp.get_context("forkserver")}
        # Each loader draws its workers' base seed from its own generator, never from the global
        # RNG: persistent workers draw it once, a resumed trial again, and the model's stream
        # (dropout, device augmentation) must not depend on that.
        own = {"pin_memory": pin, "generator": torch.Generator().manual_seed(seed), **extra}
        self.train_loader = DataLoader(train_ds, batch_size=d["batch_size"], sampler=self.sampler,
                                       drop_last=len(self.sampler) > d["batch_size"], **workers, **own)
        # Validation rows on the device path are one memcpy per batch: no workers there. The CPU
        # path's centre crops keep workers of their own, started once like the training ones.
        self.val_loader = DataLoader(val_ds, batch_size=d["eval_batch_size"],
                                     **({} if self.on_device else workers), **own)

    def _move(self, batch, transform):
        x, y, mask = (t.to(self.device, non_blocking=True) for t in batch)
        x = transform(x) if transform else x
        # the model is NHWC on CUDA (run()): convolutions are fastest so on tensor cores
        return x.contiguous(memory_format=self.layout), y, mask

    def train_batches(self, epoch: int):
        self.sampler.set_epoch(epoch)
        transform = self.augment.train if self.on_device else None
        return (self._move(b, transform) for b in self.train_loader)

    def val_batches(self):
        transform = self.augment.eval if self.on_device else None
        return (self._move(b, transform) for b in self.val_loader)
