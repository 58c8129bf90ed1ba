"""Decode any chest X-ray PNG/JPEG to one uint8 grayscale channel.

ChestX-ray14 is mostly 8-bit `L`, but a few images are `RGBA`; exports from other tools are
16-bit (`I;16`, or `I` once PIL widens them). All must give the same pixels for the same
picture, so 16-bit values are mapped back with /257 (the exact inverse of 8->16 bit scaling).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, UnidentifiedImageError

from trainables.data import DataError

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


def load_gray(path: str) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in _SIXTEEN_BIT:
                arr = np.asarray(img, dtype=np.float64)
                return np.clip(np.rint(arr / 257.0), 0, 255).astype(np.uint8)
            if img.mode == "F":
                arr = np.asarray(img, dtype=np.float64)
                return np.clip(np.rint(arr), 0, 255).astype(np.uint8)
            # RGBA/LA: NIH's RGBA images are opaque; the alpha channel carries no anatomy.
            return np.asarray(img.convert("L"), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"Image not found: {path}. Check the dataset root and that every "
                        "image folder was downloaded and extracted.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"Unreadable image {path} ({type(err).__name__}: {err}). Re-download or "
                        "re-extract this file; the archive copy may be truncated.") from None


def resize_square(arr: np.ndarray, size: int) -> np.ndarray:
    """Shorter side to `size`, then centre crop: the papers' Resize(256)->crop convention."""
    h, w = arr.shape
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = Image.fromarray(arr)
    if (nh, nw) != (h, w):
        img = img.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.asarray(img, dtype=np.uint8)[top:top + size, left:left + size]
