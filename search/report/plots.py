"""The report's figures (matplotlib, no display): learning curves with ASHA's cuts, importance bars,
val AUC against each searched parameter, and per-label val AUC of the top trials."""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from optuna.distributions import CategoricalDistribution  # noqa: E402

from search.report.data import Search  # noqa: E402

STYLE = {"completed": ("tab:blue", "-"), "stopped_early": ("tab:orange", "-"), "out_of_time": ("tab:purple", "-"),
         "search_stopped": ("tab:purple", "--"),
         "errored": ("tab:red", ":"), "interrupted": ("tab:gray", ":")}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves(search: Search, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    for rung in search.rungs():
        ax.axvline(rung, color="0.8", ls="--", lw=1, zorder=0)
        ax.text(rung, 1.0, f" rung {rung}", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="0.45")
    shown = set()
    for t in search.trials:
        if not t.curve:
            continue
        x, y = zip(*t.curve)
        color, ls = STYLE.get(t.status, ("tab:gray", "--"))
        label = t.status.replace("_", " ") if t.status not in shown else None
        shown.add(t.status)
        ax.plot(x, y, ls, color=color, lw=1.2, alpha=0.8, marker=".", label=label)
        if t.status == "stopped_early":
            ax.plot(x[-1], y[-1], "x", color=color, ms=8, mew=2)
    for t in search.trials:
        if t.warm and t.curve:
            x, y = zip(*t.curve)
            ax.plot(x, y, "-", color="black", lw=2.6, marker="o", label="paper's config (warm start)", zorder=5)
    best = search.ranked()[:1]
    if best and best[0].curve:
        x, y = zip(*best[0].curve)
        ax.annotate(f"best {best[0].val_auc:.3f}", (x[-1], y[-1]), textcoords="offset points", xytext=(6, 4),
                    fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("val AUC (mean over labels)")
    ax.set_title(f"{search.name}: val AUC per epoch; × = stopped by ASHA at a rung")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def importance(values: dict[str, float], note: str | None, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(len(values), 3) + 1.2))
    if values:
        keys = list(values)[::-1]
        ax.barh(keys, [values[k] for k in keys], color="tab:blue")
        ax.set_xlabel("fANOVA importance (share of val AUC variance)")
        ax.set_xlim(0, 1)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, note or "no importance", ha="center", va="center", wrap=True)
    ax.set_title("Which hyperparameters mattered")
    return _save(fig, path)


def file_name(key: str) -> str:
    return "val_auc_vs_" + re.sub(r"[^A-Za-z0-9_]+", "_", key) + ".png"


def against_params(search: Search, folder: Path) -> list[Path]:
    """One figure per searched parameter: a scatter (log axis where the space is log), or a box
    per category."""
    paths = []
    trials = search.scored()
    for key, dist in search.dists.items():
        fig, ax = plt.subplots(figsize=(6, 4))
        pairs = [(t.params[key], t.val_auc, t) for t in trials if key in t.params]
        if isinstance(dist, CategoricalDistribution):
            cats = [str(c) for c in dist.choices]
            groups = [[auc for v, auc, _ in pairs if v == c] for c in cats]
            ax.boxplot([g or [np.nan] for g in groups], tick_labels=cats)
            for i, g in enumerate(groups, start=1):
                ax.scatter(np.full(len(g), i) + np.linspace(-0.08, 0.08, len(g)), g, s=14, color="tab:blue", zorder=3)
                ax.text(i, 0.02, f"n={len(g)}", transform=ax.get_xaxis_transform(), ha="center", fontsize=8)
        else:
            x = [float(v) for v, _, _ in pairs]
            ax.scatter(x, [auc for _, auc, _ in pairs], s=22,
                       c=["tab:orange" if t.status == "stopped_early" else "tab:blue" for _, _, t in pairs])
            warm = [(float(v), auc) for v, auc, t in pairs if t.warm]
            if warm:
                ax.scatter(*zip(*warm), s=90, facecolors="none", edgecolors="black", lw=1.5, label="paper's config")
                ax.legend(fontsize=8)
            if getattr(dist, "log", False):
                ax.set_xscale("log")
            else:  # the whole searched range, so a cluster at one end shows as such
                ax.set_xlim(dist.low, dist.high)
        ax.set_xlabel(key)
        ax.set_ylabel("val AUC (last epoch; orange: stopped early)")
        ax.set_title(f"val AUC vs {key}")
        ax.grid(alpha=0.3)
        paths.append(_save(fig, folder / file_name(key)))
    return paths


def per_label(search: Search, path: Path, top: int = 5) -> Path:
    trials = [t for t in search.ranked()[:top] if t.per_label]
    labels = sorted({k for t in trials for k in t.per_label})
    grid = np.array([[t.per_label.get(k, np.nan) for k in labels] for t in trials]) if trials else np.zeros((0, 0))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(labels) + 3), 0.55 * max(len(trials), 1) + 2.4))
    if grid.size:
        low = min(0.5, float(np.nanmin(grid)))  # below-chance labels keep their own colour
        im = ax.imshow(grid, cmap="viridis", vmin=low, vmax=1.0, aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            if np.isfinite(v):
                dark = v < (low + 1.0) / 2
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if dark else "black")
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(trials)), [f"{t.name} ({t.val_auc:.3f})" for t in trials], fontsize=8)
        fig.colorbar(im, ax=ax, label="val AUC")
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, "no per-label val AUC logged", ha="center", va="center")
    ax.set_title(f"Per-label val AUC, top {len(trials)} trials")
    return _save(fig, path)
