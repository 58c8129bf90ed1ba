"""Embedded synthetic ChestX-ray14: a small stand-in for the NIH release, generated on first use.

A fresh machine has no 45 GB download, yet the search, its demos and the end-to-end tests must
train on something that behaves like chest X-rays. This module writes a set in the NIH's own
on-disk format (`Data_Entry_2017.csv`, `train_val_list.txt`, `test_list.txt`, `images/*.png`),
so the real reader (`trainables.data.nih.read_nih`) reads it and no code path is synthetic-only.

What makes it worth training on:
- labels follow ChestX-ray14's per-image prevalences and ~54% No Finding, with realistic
  co-occurrence from a Gaussian copula (a shared "sick" factor plus cardiac/fluid, infection,
  neoplasm and chronic-lung factors); patients have several images, a persistent anatomy and a
  patient-level share of the latent disease state, so the patient-disjoint split matters;
- each label is drawn as its own sign with its own size and place, its strength grows with how
  far the latent passes the threshold (so some positives are faint), and negatives carry
  look-alikes (calcified granulomas, ECG leads, borderline hearts, faint haze), so a small CNN
  learns it to a mean AUC well above chance but far from 1, and rare labels stay hard.
Everything is a function of (seed, patient, follow-up): same arguments, byte-identical files,
whatever the number of worker processes.
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import re
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from statistics import NormalDist

import numpy as np
from filelock import FileLock
from PIL import Image, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from trainables.data import NIH_LABELS, DataError
from trainables.errors import Parser, UsageError, at_least, cli

FORMAT_VERSION = 1
DEFAULT_PATIENTS = 1400
DEFAULT_IMAGE_SIZE = 128
DEFAULT_SEED = 0
MIN_PATIENTS = 10   # fewer cannot give a test split and a validation split carved by patient
MIN_IMAGE_SIZE = 32
MARKER = "SYNTHETIC_COMPLETE.json"
HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
          "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],")
OWN_FILES = {"Data_Entry_2017.csv", "train_val_list.txt", "test_list.txt", "images", MARKER}
TEST_FRACTION = 25596 / 112120     # the official split's share of images
NAME = re.compile(r"\d{8}_\d{3}\.png")

# ChestX-ray14 per-image prevalences, NIH_LABELS order.
PREVALENCE = np.array([0.103, 0.025, 0.119, 0.177, 0.052, 0.056, 0.013, 0.047, 0.042, 0.021,
                       0.022, 0.015, 0.030, 0.002])
SICK_LOADING = 0.32   # calibrated by Monte Carlo (3e5 patients): 54.0% No Finding, NIH 53.8%
FACTORS = {
    "cardiac/fluid": {"Cardiomegaly": .45, "Effusion": .5, "Edema": .55, "Atelectasis": .3},
    "infection": {"Pneumonia": .5, "Consolidation": .5, "Infiltration": .4, "Atelectasis": .25,
                  "Effusion": .3},
    "neoplasm": {"Mass": .5, "Nodule": .5, "Pleural_Thickening": .2},
    "chronic": {"Emphysema": .55, "Pneumothorax": .5, "Fibrosis": .45, "Pleural_Thickening": .4},
}
PATIENT_SHARE = 0.5   # of the latent variance that a patient's follow-ups share


def _loadings() -> np.ndarray:
    b = np.zeros((len(NIH_LABELS), 1 + len(FACTORS)))
    b[:, 0] = SICK_LOADING
    for j, group in enumerate(FACTORS.values(), start=1):
        for label, w in group.items():
            b[NIH_LABELS.index(label), j] = w
    return b


@dataclass
class Cohort:
    """One row per image, in image-name order; `severity` is in (0, 1] for positives, else 0."""
    names: list[str]
    patient: np.ndarray
    followup: np.ndarray
    age: np.ndarray
    male: np.ndarray
    ap: np.ndarray
    labels: np.ndarray
    severity: np.ndarray
    test: np.ndarray

    def findings(self, i: int) -> str:
        return "|".join(lab for lab, y in zip(NIH_LABELS, self.labels[i]) if y) or "No Finding"


def _check(n_patients: int, image_size: int) -> None:
    if int(n_patients) < MIN_PATIENTS:
        raise UsageError(f"n_patients={n_patients} is too few: at least {MIN_PATIENTS} are needed "
                         "for patient-disjoint train/validation/test splits")
    if int(image_size) < MIN_IMAGE_SIZE:
        raise UsageError(f"image_size={image_size} is too small to draw the signs; use at least "
                         f"{MIN_IMAGE_SIZE} (the default is {DEFAULT_IMAGE_SIZE})")


def sample_labels(n_patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED) -> Cohort:
    """Labels, metadata and split only (no pixels): what `generate` writes to the CSV and lists."""
    _check(n_patients, MIN_IMAGE_SIZE)
    rng = np.random.default_rng([seed, 0])
    counts = np.minimum(rng.geometric(1 / 3, n_patients), 8)   # 1-8 images, skewed to few
    patient = np.repeat(np.arange(1, n_patients + 1), counts)
    followup = np.concatenate([np.arange(c) for c in counts])
    m, b = len(patient), _loadings()
    idio = np.sqrt(1.0 - (b ** 2).sum(axis=1))
    k = b.shape[1] + len(NIH_LABELS)
    z = (math.sqrt(PATIENT_SHARE) * rng.standard_normal((n_patients, k))[patient - 1]
         + math.sqrt(1 - PATIENT_SHARE) * rng.standard_normal((m, k)))
    latent = z[:, :b.shape[1]] @ b.T + z[:, b.shape[1]:] * idio
    labels = latent > np.array([NormalDist().inv_cdf(1 - p) for p in PREVALENCE])
    # Rank of the latent among positives: uniform severity, and persistent within a patient.
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(latent / math.sqrt(2.0)))
    severity = np.where(labels, np.clip((cdf - (1 - PREVALENCE)) / PREVALENCE, 1e-3, 1.0), 0.0)
    age = np.minimum(rng.integers(18, 86, n_patients)[patient - 1] + followup // 2, 95)
    male = (rng.random(n_patients) < 0.56)[patient - 1]
    # Bedside (AP) films are commoner for sick patients, as in the real set.
    ap = rng.random(m) < np.where(labels.any(axis=1), 0.45, 0.25)
    order, in_test, n_test = rng.permutation(n_patients), np.zeros(n_patients, bool), 0
    for p in order:
        if n_test >= TEST_FRACTION * m:
            break
        in_test[p], n_test = True, n_test + counts[p]
    names = [f"{p:08d}_{f:03d}.png" for p, f in zip(patient, followup)]
    return Cohort(names, patient, followup, age, male, ap, labels, severity, in_test[patient - 1])


# ----------------------------------------------------------------------------------- drawing
# Coordinates: u (right) and v (down) in [-1, 1] over the image, in "anatomy" units that the
# per-image jitter shifts and scales. Density D is brighter where higher (bone, fluid, heart).

@lru_cache(maxsize=4)
def _grid(size: int):
    c = ((np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0)
    return np.meshgrid(c, c)


def _step(x, width):
    return 0.5 + 0.5 * np.tanh(x / width)


def _texture(rng, cells: int) -> np.ndarray:
    g = rng.standard_normal((cells + 3, cells + 3)).astype(np.float32)
    g = (g[:-1, :-1] + g[1:, :-1] + g[:-1, 1:] + g[1:, 1:]) / 2.0   # soften bilinear facets
    return g / g.std()


def _sample(grid, u, v, span=1.3):
    """Bilinear lookup of a low-resolution texture at anatomy coordinates (any image size)."""
    n = grid.shape[0] - 1
    x = np.clip((u + span) * (n / (2 * span)), 0, n - 1e-3)
    y = np.clip((v + span) * (n / (2 * span)), 0, n - 1e-3)
    i, j = y.astype(np.int32), x.astype(np.int32)
    fy, fx = y - i, x - j
    top = grid[i, j] * (1 - fx) + grid[i, j + 1] * fx
    return top * (1 - fy) + (grid[i + 1, j] * (1 - fx) + grid[i + 1, j + 1] * fx) * fy


def _anatomy(seed: int, pid: int) -> dict:
    r = np.random.default_rng([seed, pid, 1])
    return dict(w=r.uniform(0.76, 0.9), top=r.uniform(-0.86, -0.74), base=r.uniform(0.42, 0.58),
                dome=r.uniform(0.09, 0.16), ctr=float(np.clip(r.normal(0.45, 0.035), 0.36, 0.505)),
                tissue=r.uniform(0.5, 0.62), air=r.uniform(0.3, 0.4), rib=r.uniform(0.04, 0.08),
                rib_gap=r.uniform(0.11, 0.15), rib_phase=r.random(), mark=r.uniform(0.04, 0.07),
                vessels=_texture(r, 22), breast=r.uniform(0.02, 0.08) * (r.random() < 0.45))


class Canvas:
    def __init__(self, size: int, a: dict, du: float, dv: float, scale: float):
        U, V = _grid(size)
        self.size, self.du, self.dv, self.scale, self.a = size, du, dv, scale, a
        self.u, self.v = (U - du) / scale, (V - dv) / scale
        self.px = 2.0 / (size * scale)
        self.edge = max(self.px, 0.012)   # at least a pixel: anti-aliased at every size
        self.add = np.zeros_like(U)
        self.keep = np.ones_like(U)       # share of the lung markings left (pneumothorax: none)
        u, v = self.u, self.v
        hw = a["ctr"] * a["w"]
        self.heart = (0.28 * hw, a["base"] - 0.05 - 0.4 * hw, hw, 0.72 * hw)
        hx, hy, hw, hh = self.heart
        self.H = _step((1 - ((u - hx) / hw) ** 2 - ((v - hy) / hh) ** 2) * hh / 2, self.edge)
        self.lungs = {}
        for s in (-1, 1):   # s=-1: image left, the patient's right lung (higher hemidiaphragm)
            base = a["base"] - (0.03 if s < 0 else 0.0)
            cx, rx = s * (a["w"] + 0.09) / 2, (a["w"] - 0.09) / 2
            ry = (base - a["top"]) / 2 * 1.2
            cy = a["top"] + ry
            ex, ey = (u - cx) / rx, (v - cy) / ry
            shape = np.abs(ex) ** 2.4 + np.abs(ey) ** 2.4
            dome = base - a["dome"] * np.clip(1 - ex ** 2, 0, 1)
            wall = (1 - shape) * rx / 2.4                # ~ distance inside the chest wall
            dist = np.minimum(wall, dome - v)
            mask = _step(dist, self.edge) * (1 - self.H)
            self.lungs[s] = dict(cx=cx, cy=cy, rx=rx, ry=ry, base=base, shape=shape, wall=wall,
                                 mask=mask)
        self.L = self.lungs[-1]["mask"] + self.lungs[1]["mask"]

    def point(self, rng, side=None, zone=(0.15, 0.85)):
        """A point well inside a lung (and off the heart); zone: 0 = apex, 1 = base."""
        for _ in range(100):
            s = side or (-1 if rng.random() < 0.5 else 1)
            g = self.lungs[s]
            u0 = g["cx"] + rng.uniform(-0.8, 0.8) * g["rx"]
            dome = g["base"] - self.a["dome"] * max(0.0, 1 - ((u0 - g["cx"]) / g["rx"]) ** 2)
            v0 = self.a["top"] + rng.uniform(*zone) * (dome - self.a["top"])
            hx, hy, hw, hh = self.heart
            inside = abs((u0 - g["cx"]) / g["rx"]) ** 2.4 + abs((v0 - g["cy"]) / g["ry"]) ** 2.4 < 0.75
            if inside and ((u0 - hx) / hw) ** 2 + ((v0 - hy) / hh) ** 2 > 1.3:
                return u0, v0, s
        return g["cx"], g["cy"], s

    def disc(self, u0, v0, r, soft=0.3):
        d = np.sqrt((self.u - u0) ** 2 + (self.v - v0) ** 2)
        return _step(r - d, max(soft * r, self.px * 0.7))

    def blob(self, u0, v0, sx, sy):
        return np.exp(-((self.u - u0) / sx) ** 2 - ((self.v - v0) / sy) ** 2)

    def to_px(self, u, v):
        half = self.size / 2
        return (u * self.scale + self.du + 1) * half, (v * self.scale + self.dv + 1) * half


def _pick_sides(rng, p_left=0.4, p_right=0.3):
    x = rng.random()
    return (-1,) if x < p_left else (1,) if x < p_left + p_right else (-1, 1)


# Anatomy signs change the patient's shape before drawing; the others paint onto the canvas.
def _cardiomegaly(a, s):
    a["ctr"] = max(a["ctr"], 0.49) + 0.01 + 0.12 * s   # overlaps AP-magnified normals


def _emphysema(a, s):
    # hyperinflated, hyperlucent lungs with a flattened diaphragm, fewer markings, a narrow heart
    a.update(top=a["top"] - 0.03 * s, base=a["base"] + 0.02 + 0.05 * s,
             dome=a["dome"] * (0.5 - 0.3 * s),
             w=a["w"] * (1.01 + 0.03 * s), air=a["air"] + 0.01 + 0.05 * s,
             mark=a["mark"] * (0.85 - 0.35 * s), ctr=a["ctr"] * 0.93)


def _nodule(c, s, rng):
    for _ in range(1 + (rng.random() < 0.35) + (rng.random() < 0.15)):
        u0, v0, _ = c.point(rng)
        c.add += (0.08 + 0.18 * s) * c.disc(u0, v0, rng.uniform(0.03, 0.05))


def _mass(c, s, rng):
    u0, v0, side = c.point(rng, zone=(0.2, 0.75))
    r = rng.uniform(0.07, 0.1) + 0.05 * s
    theta = np.arctan2(c.v - v0, c.u - u0)
    lobes = 1 + 0.12 * np.sin(3 * theta + rng.uniform(0, 6.3))   # lobulated edge
    d = np.sqrt((c.u - u0) ** 2 + (c.v - v0) ** 2) / lobes
    c.add += (0.12 + 0.14 * s) * _step(r - d, 0.25 * r) * c.lungs[side]["mask"]


def _effusion(c, s, rng):
    for side in _pick_sides(rng):
        g = c.lungs[side]
        h = 0.1 + 0.26 * s + rng.uniform(-0.02, 0.02)
        lateral = np.clip(side * (c.u - g["cx"]) / g["rx"], 0, 1)
        level = g["base"] - h * (0.45 + 0.55 * lateral ** 2)   # meniscus climbs the wall
        c.add += 0.85 * c.a["air"] * _step(c.v - level, 0.025) * g["mask"]


def _atelectasis(c, s, rng):
    for _ in range(1 + (rng.random() < 0.3)):
        u0, v0, side = c.point(rng, zone=(0.7, 0.88))
        half, thick, t = 0.12 + 0.1 * s, 0.012 + 0.02 * s, rng.uniform(-0.35, 0.35)
        x = (c.u - u0) * np.cos(t) + (c.v - v0) * np.sin(t)
        y = -(c.u - u0) * np.sin(t) + (c.v - v0) * np.cos(t)
        band = _step(half - np.abs(x), 0.03) * np.exp(-(y / max(thick, c.px)) ** 2)
        c.add += (0.12 + 0.15 * s) * band * c.lungs[side]["mask"]


def _patchy(c, rng, amp, cells=12):
    n = _sample(_texture(rng, cells), c.u, c.v)
    region = sum(c.blob(*c.point(rng)[:2], rng.uniform(0.25, 0.4), rng.uniform(0.25, 0.4))
                 for _ in range(1 + (rng.random() < 0.5)))
    c.add += amp * _step(n - 0.3, 0.25) * np.minimum(region, 1) * c.L


def _infiltration(c, s, rng):
    _patchy(c, rng, 0.06 + 0.1 * s)


def _pneumonia(c, s, rng):
    u0, v0, side = c.point(rng, zone=(0.35, 0.85))
    n = _sample(_texture(rng, 14), c.u, c.v)
    blob = c.blob(u0, v0, 0.1 + 0.06 * s, 0.12 + 0.06 * s)
    c.add += (0.08 + 0.12 * s) * blob * (0.75 + 0.25 * np.tanh(n)) * c.lungs[side]["mask"]


def _consolidation(c, s, rng):
    u0, v0, side = c.point(rng, zone=(0.25, 0.8))
    fissure = v0 + rng.uniform(-0.06, 0.06) + rng.uniform(0.2, 0.5) * side * (c.u - u0)
    lobe = _step((c.v - fissure) * (1 if rng.random() < 0.6 else -1), c.edge)   # sharp border
    spread = c.blob(u0, v0, rng.uniform(0.18, 0.26), rng.uniform(0.18, 0.26))
    c.add += (0.14 + 0.14 * s) * lobe * _step(spread - 0.35, 0.1) * c.lungs[side]["mask"]


def _pneumothorax(c, s, rng):
    side = -1 if rng.random() < 0.5 else 1
    g, gap = c.lungs[side], 0.06 + 0.14 * s
    shrunk = (np.abs((c.u - g["cx"]) / (g["rx"] - gap)) ** 2.4
              + np.abs((c.v - g["cy"] - 0.3 * gap) / (g["ry"] - gap)) ** 2.4)
    d = (shrunk - 1) * (g["rx"] - gap) / 2.4                  # > 0 outside the collapsed lung
    upper = _step(g["cy"] + 0.1 * g["ry"] - c.v, 0.08)
    region = g["mask"] * _step(d, c.edge) * upper
    c.keep *= 1 - region
    line = np.exp(-(d / max(c.px, 0.008)) ** 2) * g["mask"] * upper   # the visceral pleura
    c.add += 0.13 * line - (0.06 + 0.06 * s) * region


def _edema(c, s, rng):
    for side in (-1, 1):
        g = c.lungs[side]
        blob = c.blob(side * 0.22, g["cy"] + 0.08, 0.17 + 0.05 * s, 0.22 + 0.06 * s)
        c.add += (0.05 + 0.12 * s) * blob * g["mask"]
    c.a["mark"] *= 1.3   # engorged vessels


def _fibrosis(c, s, rng):
    lines = np.exp(-(_sample(_texture(rng, 26), c.u, c.v) / 0.18) ** 2)   # zero set: a net
    for side in (-1, 1):
        g = c.lungs[side]
        where = _step(g["shape"] - 0.45, 0.15) * _step(g["cy"] + 0.1 - c.v, 0.12)
        c.add += (0.06 + 0.12 * s) * lines * where * g["mask"]


def _pleural_thickening(c, s, rng):
    for side in _pick_sides(rng, 0.4, 0.4):
        g, depth = c.lungs[side], 0.02 + 0.03 * s
        arc = (_step(g["cy"] - 0.4 * g["ry"] - c.v, 0.05) if rng.random() < 0.5 else
               _step(side * (c.u - g["cx"]) - 0.3 * g["rx"], 0.05) * _step(g["base"] - 0.1 - c.v, 0.05))
        c.add += (0.18 + 0.14 * s) * _step(depth - g["wall"], c.px) * g["mask"] * arc


def _hernia(c, s, rng):
    hx, _, hw, _ = c.heart
    r = 0.07 + 0.05 * s
    u0, v0 = hx + rng.uniform(-0.15, 0.05) * hw, c.a["base"] - r - 0.02
    d = c.disc(u0, v0, r, soft=0.15)
    air = _step(v0 - 0.25 * r - c.v, c.edge)   # gas above an air-fluid level
    c.add += (0.06 + 0.08 * s) * d - (0.1 + 0.08 * s) * d * air


ANATOMY_SIGNS = {"Cardiomegaly": _cardiomegaly, "Emphysema": _emphysema}
SIGNS = {"Atelectasis": _atelectasis, "Effusion": _effusion, "Infiltration": _infiltration,
         "Mass": _mass, "Nodule": _nodule, "Pneumonia": _pneumonia, "Pneumothorax": _pneumothorax,
         "Consolidation": _consolidation, "Edema": _edema, "Fibrosis": _fibrosis,
         "Pleural_Thickening": _pleural_thickening, "Hernia": _hernia}
assert set(ANATOMY_SIGNS) | set(SIGNS) == set(NIH_LABELS)


def _lookalikes(c, prng, irng, ap):
    """Hard negatives: things on any film that resemble a sign without being one."""
    if prng.random() < 0.2:   # calcified granulomas: tiny, dense, nodule-like; they persist
        for _ in range(prng.integers(1, 4)):
            u0, v0, _ = c.point(prng)
            c.add += prng.uniform(0.2, 0.35) * c.disc(u0, v0, prng.uniform(0.01, 0.018), 0.15)
    if irng.random() < (0.45 if ap else 0.12):   # ECG leads and electrodes (rings ~ nodules)
        wires = Image.new("L", (c.size, c.size))
        draw, width = ImageDraw.Draw(wires), max(1, round(c.size / 128))
        for _ in range(irng.integers(1, 4)):
            pts = [c.to_px(irng.uniform(-0.9, 0.9), irng.uniform(-0.9, 0.9)) for _ in range(3)]
            t = np.linspace(0, 1, 24)[:, None]
            p0, p1, p2 = (np.array(p) for p in pts)
            curve = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * p1 + t ** 2 * p2
            draw.line([tuple(p) for p in curve], fill=255, width=width)
            r = 0.03 * c.size / 2 * c.scale
            draw.ellipse([p0[0] - r, p0[1] - r, p0[0] + r, p0[1] + r], outline=255, width=width)
        c.add += irng.uniform(0.08, 0.15) * np.asarray(wires, dtype=np.float32) / 255
    if irng.random() < 0.15:   # faint haze (positioning, soft tissue): infiltration-like
        _patchy(c, irng, irng.uniform(0.02, 0.045))
    if c.a["breast"]:
        for side in (-1, 1):
            g = c.lungs[side]
            shadow = c.blob(g["cx"] + side * 0.1, g["base"] - 0.05, 0.3, 0.2)
            c.add += c.a["breast"] * shadow * _step(g["base"] - c.v, 0.03)


def render(seed: int, size: int, pid: int, followup: int, labels, severity, ap: bool) -> np.ndarray:
    """One image, a pure function of its arguments, as (size, size) uint8."""
    irng = np.random.default_rng([seed, pid, followup, 2])
    a = _anatomy(seed, pid)
    for k, label in enumerate(NIH_LABELS):
        if labels[k] and label in ANATOMY_SIGNS:
            ANATOMY_SIGNS[label](a, float(severity[k]))
    if ap:
        a["ctr"] *= 1.08   # AP films magnify the heart: borderline hearts look enlarged
    du, dv = irng.normal(0, 0.03, 2)
    c = Canvas(size, a, float(du), float(dv), float(irng.uniform(0.93, 1.07)))   # position jitter
    for k, label in enumerate(NIH_LABELS):
        if labels[k] and label in SIGNS:
            SIGNS[label](c, float(severity[k]), np.random.default_rng([seed, pid, 100 + k]))
    _lookalikes(c, np.random.default_rng([seed, pid, 3]), irng, ap)

    u, v = c.u, c.v
    body = _step((1 - (u / (a["w"] + 0.13)) ** 2 - ((v - 0.3) / 1.45) ** 2) * 0.3, c.edge)
    d = a["tissue"] * body - a["air"] * c.L + 0.03 * c.H + 0.08 * np.exp(-(u / 0.07) ** 2) * body
    au = np.abs(u)
    rib_phase = (v - 0.5 * au ** 1.4) / a["rib_gap"] + a["rib_phase"]   # ribs slope down laterally
    ribs = (0.5 + 0.5 * np.cos(2 * np.pi * rib_phase)) ** 4
    chest = body * _step(a["w"] + 0.05 - au, 0.03) * _step(a["base"] - v, 0.05) * _step(au - 0.08, 0.03)
    d += a["rib"] * ribs * chest
    clavicles = np.exp(-((v + 0.72 - 0.18 * au) / 0.035) ** 2) * _step(0.7 - au, 0.05)
    d += 0.07 * clavicles * _step(au - 0.1, 0.03)
    hilar = np.exp(-((au - 0.2) ** 2 + (v - a["top"] - 0.6) ** 2) / 0.25)
    vessels = np.exp(-(_sample(a["vessels"], u, v) / 0.35) ** 2)
    d += a["mark"] * vessels * (0.4 + hilar) * c.L * c.keep + c.add

    contrast, gamma = irng.uniform(0.85, 1.15) * (0.9 if ap else 1.0), irng.uniform(0.8, 1.25)
    tilt = irng.uniform(0, 0.05) * (np.cos(t := irng.uniform(0, 6.3)) * u + np.sin(t) * v)
    img = np.clip(0.5 + (d - 0.42) * contrast + irng.uniform(-0.06, 0.06) + tilt, 0, 1) ** gamma
    img += irng.normal(0, irng.uniform(0.01, 0.035), img.shape).astype(np.float32)
    out = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8))
    if ap:   # bedside films are softer
        out = out.filter(ImageFilter.GaussianBlur(0.5 * size / 128))
    return np.asarray(out)


def _render_chunk(job) -> int:
    images, seed, size, rows = job
    for name, pid, fu, labels, severity, ap in rows:
        pixels = render(seed, size, pid, fu, labels, severity, ap)
        Image.fromarray(pixels, "L").save(os.path.join(images, name))
    return len(rows)


# ----------------------------------------------------------------------------------- files
def default_root(seed: int = DEFAULT_SEED, n_patients: int = DEFAULT_PATIENTS,
                 image_size: int = DEFAULT_IMAGE_SIZE) -> Path:
    cache = Path(os.environ.get("CXR_TUNE_CACHE", Path.home() / ".cache" / "cxr-tune"))
    return cache / f"synthetic-nih-v{FORMAT_VERSION}-seed{seed}-p{n_patients}-{image_size}px"


def generate(root, n_patients: int = DEFAULT_PATIENTS, image_size: int = DEFAULT_IMAGE_SIZE,
             seed: int = DEFAULT_SEED, workers: int | None = None, progress: bool = True) -> Path:
    """Write the whole set into `root` (created); the completion marker is written last."""
    _check(n_patients, image_size)
    root = Path(root).expanduser()
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / MARKER).unlink(missing_ok=True)
    co = sample_labels(n_patients, seed)
    keep = set(co.names)
    for old in os.scandir(root / "images"):   # images of an earlier, larger set in this root
        if old.name not in keep and NAME.fullmatch(old.name):
            os.remove(old.path)
    spacing = 0.143 * 1024 / image_size
    rows = [f"{n},{co.findings(i)},{co.followup[i]},{co.patient[i]},{co.age[i]},"
            f"{'M' if co.male[i] else 'F'},{'AP' if co.ap[i] else 'PA'},{image_size},{image_size},"
            f"{spacing:.3f},{spacing:.3f}"
            for i, n in enumerate(co.names)]
    (root / "Data_Entry_2017.csv").write_text("\n".join([HEADER] + rows) + "\n")
    for name, in_test in (("train_val_list.txt", False), ("test_list.txt", True)):
        (root / name).write_text("".join(n + "\n" for n, t in zip(co.names, co.test) if t == in_test))

    items = [(n, int(co.patient[i]), int(co.followup[i]), co.labels[i].tolist(),
              co.severity[i].tolist(), bool(co.ap[i])) for i, n in enumerate(co.names)]
    images = str(root / "images")
    jobs = [(images, seed, image_size, items[s:s + 64]) for s in range(0, len(items), 64)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if mp.current_process().daemon:   # daemonic processes may not have children
        workers = 1
    bar = tqdm(total=len(items), unit="img", disable=not progress,
               desc=f"synthetic ChestX-ray14: {len(items)} images at {image_size}px")
    if workers == 1:
        for job in jobs:
            bar.update(_render_chunk(job))
    else:
        with ProcessPoolExecutor(workers) as pool:
            for done in pool.map(_render_chunk, jobs):
                bar.update(done)
    bar.close()
    meta = dict(format=FORMAT_VERSION, seed=seed, n_patients=n_patients, image_size=image_size,
                n_images=len(items))
    (root / MARKER).write_text(json.dumps(meta))
    return root


def is_complete(root) -> bool:
    """Complete = marker written last by `generate`, and every image it promised is there."""
    try:
        meta = json.loads((Path(root) / MARKER).read_text())
        return sum(1 for _ in os.scandir(Path(root) / "images")) == meta["n_images"]
    except (OSError, ValueError, KeyError):
        return False


def ensure(root=None, *, n_patients: int = DEFAULT_PATIENTS, image_size: int = DEFAULT_IMAGE_SIZE,
           seed: int = DEFAULT_SEED, workers: int | None = None, progress: bool = True) -> Path:
    """The set at `root` (default: `default_root`), generated first if it is not complete there.

    Generation goes into a temporary sibling renamed into place, under a file lock: a crash
    never leaves a root that looks complete, and concurrent callers generate once.
    """
    _check(n_patients, image_size)
    root = Path(root).expanduser().resolve() if root else default_root(seed, n_patients, image_size)
    wanted = dict(seed=seed, n_patients=n_patients, image_size=image_size)
    if not is_complete(root):
        root.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root) + ".lock"):
            if not is_complete(root):
                if root.exists():
                    foreign = sorted(p.name for p in root.iterdir() if p.name not in OWN_FILES)
                    if foreign:
                        raise DataError(f"{root} holds files that are not a synthetic set "
                                        f"({foreign[:5]}); choose an empty or new directory")
                    shutil.rmtree(root)   # an interrupted or damaged set: start over
                for stale in root.parent.glob(f"{root.name}.tmp-*"):   # left by killed runs
                    shutil.rmtree(stale, ignore_errors=True)
                tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
                try:
                    start = time.perf_counter()
                    generate(tmp, workers=workers, progress=progress, **wanted)
                    os.replace(tmp, root)
                    if progress:
                        took = time.perf_counter() - start
                        print(f"synthetic ChestX-ray14 written to {root} in {took:.1f} s")
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
    meta = json.loads((root / MARKER).read_text())
    found = {k: meta.get(k) for k in wanted}
    if found != wanted:
        raise DataError(f"{root} holds a synthetic set made with {found}, not {wanted}; "
                        "pass another root or delete this one")
    return root


@cli
def main(argv=None) -> None:
    p = Parser(description="Generate (once) the embedded synthetic ChestX-ray14.")
    p.add_argument("--out", default=None, help="target directory (default: under $CXR_TUNE_CACHE)")
    p.add_argument("--patients", type=at_least(MIN_PATIENTS), default=DEFAULT_PATIENTS)
    p.add_argument("--image-size", type=at_least(MIN_IMAGE_SIZE), default=DEFAULT_IMAGE_SIZE)
    p.add_argument("--seed", type=at_least(0), default=DEFAULT_SEED)
    p.add_argument("--workers", type=at_least(1), default=None)
    args = p.parse_args(argv)
    root = ensure(args.out, n_patients=args.patients, image_size=args.image_size, seed=args.seed,
                  workers=args.workers)
    co = sample_labels(args.patients, args.seed)
    print(f"synthetic ChestX-ray14 at {root}")
    print(f"{len(co.names)} images of {args.patients} patients; train_val {int((~co.test).sum())}, "
          f"test {int(co.test.sum())}; No Finding {100 * (~co.labels.any(axis=1)).mean():.1f}%")
    for label, n in zip(NIH_LABELS, co.labels.sum(axis=0)):
        print(f"  {label:<20}{n:6d}  {100 * n / len(co.names):5.1f}%")


if __name__ == "__main__":
    main()
