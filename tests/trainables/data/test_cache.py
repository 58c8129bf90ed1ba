import json
import multiprocessing as mp
import os
import signal
import time

import numpy as np
import pytest
import torch

from trainables.data.cache import ImageCache, get_cache
from trainables.data.images import load_gray, resize_square
from trainables.data.nih import read_nih
from trainables.data.transforms import eval_transform, train_transform


def test_round_trip_equals_direct_decoding(tiny_nih, tmp_path):
    paths = read_nih(tiny_nih).train.paths
    cache = get_cache(paths, 24, tmp_path / "c", workers=2, progress=False)
    assert len(cache) == len(paths)
    for i in (0, 7, len(paths) - 1):
        np.testing.assert_array_equal(cache[cache.row[paths[i]]], resize_square(load_gray(paths[i]), 24))
    assert not cache.array.flags.writeable


def test_second_call_reuses_and_a_changed_size_rebuilds(tiny_nih, tmp_path):
    paths = read_nih(tiny_nih).test.paths
    a = get_cache(paths, 16, tmp_path, progress=False)
    stamp = (a.directory / "images.u8").stat().st_mtime_ns
    b = get_cache(paths, 16, tmp_path, progress=False)
    assert b.directory == a.directory and (b.directory / "images.u8").stat().st_mtime_ns == stamp
    assert get_cache(paths, 20, tmp_path, progress=False).directory != a.directory


def test_incomplete_cache_is_detected_and_rebuilt(tiny_nih, tmp_path):
    paths = read_nih(tiny_nih).test.paths
    good = get_cache(paths, 16, tmp_path, progress=False)
    expected = np.array(good.array)
    # a build that died after writing half the pixels and before its index was final
    with open(good.directory / "images.u8", "r+b") as f:
        f.truncate(expected.nbytes // 2)
    meta = json.loads((good.directory / "index.json").read_text())
    assert not ImageCache.is_complete(good.directory)
    (good.directory / "index.json").write_text(json.dumps({**meta, "complete": False}))
    rebuilt = get_cache(paths, 16, tmp_path, progress=False)
    np.testing.assert_array_equal(np.array(rebuilt.array), expected)


def _slow_build(paths, root):
    import trainables.data.cache as c
    original = c._fill

    def slow(args):
        time.sleep(2.0)
        return original(args)
    c._fill = slow
    get_cache(paths, 16, root, workers=1, progress=False)


def test_killed_build_leaves_nothing_that_looks_complete(tiny_nih, tmp_path):
    paths = read_nih(tiny_nih).train.paths
    proc = mp.get_context("fork").Process(target=_slow_build, args=(paths, tmp_path))
    proc.start()
    deadline = time.time() + 30
    while not list((tmp_path / "images").glob("*.tmp-*")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert list((tmp_path / "images").glob("*.tmp-*")), "the kill must land mid-build"
    built = list((tmp_path / "images").glob("*px"))
    assert not any(ImageCache.is_complete(d) for d in built)
    cache = get_cache(paths, 16, tmp_path, progress=False)  # the lock died with the process
    assert ImageCache.is_complete(cache.directory) and len(cache) == len(paths)


def test_transforms_shape_normalisation_and_determinism():
    img = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    ev = eval_transform(32)(img)
    assert ev.shape == (3, 32, 32) and ev.dtype == torch.float32
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    gray = ev * std[:, None, None] + mean[:, None, None]
    torch.testing.assert_close(gray[0], gray[2])  # one gray image behind all three channels
    # ImageNet normalisation of channel 0: (x/255 - 0.485) / 0.229
    expected = (torch.from_numpy(img[4:36, 4:36]).float() / 255 - 0.485) / 0.229
    torch.testing.assert_close(ev[0], expected)
    t = train_transform(32)
    torch.manual_seed(1); a = t(img)
    torch.manual_seed(1); b = t(img)
    assert a.shape == (3, 32, 32) and torch.equal(a, b)
    torch.manual_seed(2)
    assert not torch.equal(t(img), a)  # and the draws do depend on the seed
    with pytest.raises(ValueError, match="2-D uint8"):
        t(img.astype(np.float32))
