"""The embedded set's pixels: one synthetic chest film per image, a pure function of
(seed, patient, follow-up, labels, severity, view).

Each label is drawn as its own sign with its own size and place, its strength growing with the
severity (so some positives are faint); negatives carry look-alikes (calcified granulomas, ECG
leads, borderline hearts, faint haze), so a small CNN learns the set to a mean AUC well above
chance but far from 1, and rare labels stay hard.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from trainables.data import NIH_LABELS

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
