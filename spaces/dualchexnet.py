"""DualCheXNet (Chen et al. 2019) search space: modulated-loss λ and decision-level fusion.

Searched: λ of eq. 2 in [0, 2]; w_D, w_R in [0, 0.5] with w_F = 1 (eq. 4; ignored by the avg
and max fusions); fusion in {concat, avg, max}; SGD learning rate (log scale); backbone pair;
Algorithm 1's iterative training on/off (the CPU profile: λ and the fusion only, below). Warm
start: the paper's best (λ 0.5, Concat3 = w_D = w_R = 0.3). `--grid`: the paper's
λ {0, .5, 1, 1.5, 2} x {AVG, MAX, Concat0..Concat4}.
"""
from ray import tune

from spaces import LAPTOP, SCRATCH_ASHA, SMOKE, SearchSpec, profile
from spaces.paper_numbers import PaperRow
from trainables.papers import SETUPS

PAPER_PAIRS = ["resnet50+densenet121", "resnet101+densenet169"]
# Laptop stand-in: a DenseNet-121 stream runs at ~0.55x the speed of a ResNet-10-T one on one CPU
# thread; from scratch at 64 px, two ResNet-10-T streams with SGD at 0.05 learn fastest per second.
CPU_PAIR = "resnet10t+resnet10t"

BASE = SETUPS["dualchexnet"]

SPACE = {
    "loss": {"lam": tune.uniform(0.0, 2.0)},
    "heads": {"fusion": tune.choice(["concat", "avg", "max"]),
              "w_d": tune.uniform(0.0, 0.5), "w_r": tune.uniform(0.0, 0.5)},
    "optim": {"lr": tune.loguniform(1e-4, 1e-2)},
    "model": {"backbones": tune.choice(PAPER_PAIRS)},
    "train": {"iterative": tune.choice([False, True])},
}

BEST = {
    "loss": {"lam": 0.5},
    "heads": {"fusion": "concat", "w_d": 0.3, "w_r": 0.3},
    "optim": {"lr": 1e-3},
    "model": {"backbones": PAPER_PAIRS[0]},
    "train": {"iterative": False},
}

FUSION_GRID = [{"fusion": "avg", "w_f": 1.0}, {"fusion": "max", "w_f": 1.0}] + [
    {"fusion": "concat", "w_f": 1.0, "w_d": round(0.1 * k, 1), "w_r": round(0.1 * k, 1)} for k in range(5)]
GRID = {"loss": {"lam": tune.grid_search([0.0, 0.5, 1.0, 1.5, 2.0])},
        "heads": tune.grid_search(FUSION_GRID)}

# The CPU profile searches what the paper's grid does (λ and the fusion with its weights) and keeps the
# learning rate, the pair and one-shot training at the values the grid and the replay's table
# (benchmarks/replay.py) were trained with, so the table models the no-argument run. Searching the
# rate too cost the 5-minute run most of its trials: 24 of 33 TPE proposals in docs/replay.md's 12-trial
# runs took a lower rate than the profile's 0.05 and learned less in 6 epochs.
# 3 trials, ASHA's first cut at epoch 3 (SCRATCH_ASHA): about 15 trial-epochs, what 300 s on 2 cores
# afford (28 s + 16 s per trial-epoch). No setting that cheap picks better than the paper's config,
# which it picks (the 3-seed replay, docs/replay.md "Earlier evidence"); on the 6-seed table with
# held-out scoring, the real-data default (random search, no cuts, confirmation within a fifth of the
# budget) matches the grid's pick from a quarter of the grid's trial-epochs (docs/replay.md).
CPU_FIXED = {"model": {"backbones": CPU_PAIR}, "optim": {"lr": 5e-2}, "train": {"iterative": False}}
CPU_SPACE = {"model": {"backbones": tune.choice([CPU_PAIR])}, "optim": {"lr": tune.choice([5e-2])},
             "train": {"iterative": tune.choice([False])}}

SPEC = SearchSpec(
    name="dualchexnet", script="dual_weights", description=__doc__,
    base=BASE, space=SPACE, best=BEST, grid=GRID,
    columns=["loss/lam", "heads/fusion", "heads/w_d", "heads/w_r", "optim/lr", "train/iterative"],
    cpu=profile(LAPTOP, 3, {**CPU_FIXED, "data": {"epoch_images": 1280}}, space=CPU_SPACE, best=CPU_FIXED,
                asha=SCRATCH_ASHA),
    smoke=profile(SMOKE, 3, {"model": {"backbones": "resnet10t+resnet10t"}},
                  space={"model": {"backbones": tune.choice(["resnet10t+resnet10t"])}},
                  best={"model": {"backbones": "resnet10t+resnet10t"}}),
    paper={"chestxray14": PaperRow("DualCheXNet-1 (R-50 & D-121; DLF Concat3, λ=0.5)", "chestxray14", "official")},
)
