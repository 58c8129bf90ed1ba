"""Input pipeline: worker counts, epoch order, both augmentation paths, the cache across processes."""
import pickle

import numpy as np
import pytest
import torch

from trainables.config import merge, resolve
from trainables.data.dataset import EpochSampler
from trainables.data.loaders import loader_workers
from trainables.data.sources import load_splits
from trainables.registry import ConfigError
from trainables.stages import make_pipeline, split_cache

CPU = torch.device("cpu")


def data_config(root, **data):
    return resolve({"data": {"root": str(root), "image_size": 32, "resize": 36, "batch_size": 8,
                             "epoch_images": 24, "eval_batch_size": 16, **data}})


@pytest.mark.parametrize("value, cpus, workers", [("auto", 8, 7), ("auto", 1, 0), ("auto", 2.5, 1),
                                                  ("auto", None, 0), (3, 1, 3), (0, 8, 0)])
def test_auto_workers_are_the_trials_cpus_minus_one(value, cpus, workers):
    assert loader_workers(value, cpus) == workers


@pytest.mark.parametrize("bad", [-1, "four", 1.5, True])
def test_bad_worker_counts_are_refused(bad):
    with pytest.raises(ConfigError, match="data.num_workers"):
        loader_workers(bad, 4)


def test_epoch_order_and_sample_seeds_depend_on_seed_and_epoch_only():
    a, b = EpochSampler(100, seed=3, epoch_images=40), EpochSampler(100, seed=3, epoch_images=40)
    a.set_epoch(2), b.set_epoch(2)
    keys = list(a)
    assert keys == list(b) and len(keys) == len(a) == 40
    assert len({i for i, _ in keys}) == 40 and all(0 <= i < 100 for i, _ in keys)
    a.set_epoch(3)
    assert [i for i, _ in a] != [i for i, _ in keys]
    assert len(EpochSampler(10, 0, None)) == 10 and len(EpochSampler(10, 0, 50)) == 10


def test_cpu_path_batches_do_not_depend_on_the_number_of_workers(tiny_nih):
    cfg = data_config(tiny_nih)
    splits = load_splits(cfg["data"])
    runs = {}
    for workers in (0, 2):
        pipeline = make_pipeline(merge(cfg, {"data": {"num_workers": workers}}), splits, CPU)
        assert not pipeline.on_device and pipeline.workers == workers
        runs[workers] = [[b[0] for b in pipeline.train_batches(epoch)] for epoch in (0, 1)]
        runs[workers].append([b[0] for b in pipeline.val_batches()])
    assert [len(batches) for batches in runs[0][:2]] == [3, 3]  # 24 images a epoch, batches of 8
    for got, want in zip(runs[2], runs[0]):
        assert len(got) == len(want)
        for x, y in zip(got, want):
            assert torch.equal(x, y)
    assert not torch.equal(runs[0][0][0], runs[0][1][0])  # a new epoch, new order and draws


def test_device_path_ships_uint8_rows_and_augments_whole_batches(tiny_nih):
    cfg = data_config(tiny_nih, augment_on="device")
    splits = load_splits(cfg["data"])
    pipeline = make_pipeline(cfg, splits, CPU)
    assert pipeline.on_device
    rows, y, mask = next(iter(pipeline.train_loader))
    assert rows.dtype == torch.uint8 and rows.shape == (8, 1, 36, 36)
    cache = split_cache(cfg["data"], splits)
    keys = list(pipeline.sampler)[:8]
    want = np.stack([cache[cache.row[splits.train.paths[i]]] for i, _ in keys])
    assert np.array_equal(rows[:, 0].numpy(), want)
    assert torch.equal(y, torch.from_numpy(splits.train.labels[[i for i, _ in keys]]).float())
    x, _, _ = next(pipeline.train_batches(0))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32
    val = torch.cat([b[0] for b in pipeline.val_batches()])
    cpu_val = torch.cat([b[0] for b in make_pipeline(data_config(tiny_nih), splits, CPU).val_batches()])
    torch.testing.assert_close(val, cpu_val, atol=1e-6, rtol=0)  # the same centre crops


def test_the_cache_reaches_a_worker_by_path_not_by_copy(tiny_nih):
    cfg = data_config(tiny_nih)
    cache = split_cache(cfg["data"], load_splits(cfg["data"]))
    blob = pickle.dumps(cache)
    assert len(blob) < 2000 < cache.array.nbytes
    again = pickle.loads(blob)
    assert isinstance(again.array, np.memmap) and np.array_equal(again[5], cache[5])


@pytest.mark.parametrize("data, match", [
    ({"augment_on": "gpu"}, "data.augment_on"),
    ({"rotation": -5}, r"data.rotation=-5 must be a number in \[0, 180\]"),
    ({"jitter": 1.5}, "data.jitter"),
    ({"scale_min": 0}, "data.scale_min"),
    ({"hflip": "yes"}, "data.hflip"),
    ({"prefetch_factor": 0}, "data.prefetch_factor"),
])
def test_bad_augmentation_settings_are_named(tiny_nih, data, match):
    with pytest.raises(ConfigError, match=match):
        data_config(tiny_nih, **data)


def test_prefetch_without_workers_is_refused(tiny_nih):
    cfg = data_config(tiny_nih, prefetch_factor=4)
    with pytest.raises(ConfigError, match="data.prefetch_factor=4 needs loader workers"):
        make_pipeline(cfg, load_splits(cfg["data"]), CPU, cpus=1)
