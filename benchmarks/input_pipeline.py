"""Input-pipeline benchmark: training-transform images/s from raw 1024 px PNGs vs from the cache.

Writes a synthetic ChestX-ray14 set at the NIH's 1024x1024, then times, side by side in one
run, the same training transform fed (a) by decoding + resizing each PNG on every access (what
a trial would do without the cache) and (b) by the preprocessed uint8 cache. Prints figures
and, last, `speedup <ratio>`. The target is >= 10x.

    python benchmarks/input_pipeline.py [--patients 40] [--image-size 224] [--repeats 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from trainables.data import synthetic
from trainables.data.cache import get_cache
from trainables.data.images import load_gray, resize_square
from trainables.data.nih import read_nih
from trainables.data.transforms import train_transform


def rate(fn, items, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        for item in items:
            fn(item)
    return repeats * len(items) / (time.perf_counter() - start)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--patients", type=int, default=40)
    p.add_argument("--image-size", type=int, default=224, help="training crop")
    p.add_argument("--repeats", type=int, default=2, help="passes over the images per path")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    resize = round(args.image_size * 8 / 7)
    transform = train_transform(args.image_size)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        root = synthetic.generate(Path(d) / "nih1024", n_patients=args.patients, image_size=1024, seed=0)
        print(f"generated a 1024 px synthetic set in {time.perf_counter() - t0:.1f} s")
        paths = read_nih(root).train.paths
        t0 = time.perf_counter()
        cache = get_cache(paths, resize, Path(d) / "cache", workers=1)
        print(f"built the {resize} px cache of {len(paths)} images in {time.perf_counter() - t0:.1f} s (1 worker)")
        rows = cache.rows(paths)

        def from_png(path):
            return transform(resize_square(load_gray(path), resize))

        def from_cache(row):
            return transform(cache[row])

        from_cache(rows[0]), from_png(paths[0])  # warm up
        png = rate(from_png, paths, args.repeats)
        cached = rate(from_cache, rows, args.repeats)
    print(f"images: {len(paths)} x {args.repeats} passes, crop {args.image_size}, one thread")
    print(f"png path:   {png:8.1f} images/s")
    print(f"cache path: {cached:8.1f} images/s")
    print(f"speedup {cached / png:.1f}")


if __name__ == "__main__":
    main()
