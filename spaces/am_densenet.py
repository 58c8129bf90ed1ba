"""AM_DenseNet (Zhao et al. 2021) search space: focal-loss α, γ and the CBAM reduction ratio.

Searched: focal α in [0.05, 0.95] and γ in [0, 5] (eq. 4; the paper gives no values, so they
are the search), the CBAM MLP reduction r in {8, 16, 32}, and the Adam learning rate (log
scale). Fixed, as in the paper: DenseNet-121 + CBAM after dense blocks 1-3, Adam 1e-4, lr x0.1
on validation-loss plateau, batch 8, 512x512 crops, 20 epochs. Warm start: Lin et al.'s focal
defaults (α 0.25, γ 2) with r 16 and lr 1e-4. `--grid`: the paper reports no grid; this is a
small one of our own, α {0.25, 0.5, 0.75} x γ {0, 1, 2} (9 trials, γ 0 = α-weighted BCE).
"""
from ray import tune

from spaces import LAPTOP, SCRATCH_ASHA, SMOKE, SearchSpec, profile
from spaces.paper_numbers import PaperRow
from trainables.papers import SETUPS

BASE = SETUPS["am_densenet"]

SPACE = {
    "loss": {"alpha": tune.uniform(0.05, 0.95), "gamma": tune.uniform(0.0, 5.0)},
    "model": {"reduction": tune.choice([8, 16, 32])},
    "optim": {"lr": tune.loguniform(1e-5, 1e-3)},
}

BEST = {
    "loss": {"alpha": 0.25, "gamma": 2.0},
    "model": {"reduction": 16},
    "optim": {"lr": 1e-4},
}

GRID = {"loss": {"alpha": tune.grid_search([0.25, 0.5, 0.75]), "gamma": tune.grid_search([0.0, 1.0, 2.0])}}

# From scratch (no ImageNet weights) a higher learning rate is needed.
SCRATCH_LR = {"space": {"optim": {"lr": tune.loguniform(1e-4, 1e-2)}}, "best": {"optim": {"lr": 1e-3}}}
# Laptop stand-in: a DenseNet-121 from scratch at 64 px stays at 0.50-0.54 val AUC on the embedded
# set after 3-5 epochs of 1280 images (Adam 1e-3 or SGD 0.05), at ~35 images/s on a core. A
# DenseNet of the same design, 3-4-6-3 layers per block and growth rate 16 (0.26 M weights; CBAM
# after blocks 1-3 as in the paper), runs at ~210 images/s and reaches 0.81 after 6 epochs of
# 2560 images with Adam 1e-3 (0.71 after 4).
CPU_DENSENET = {"block_config": [3, 4, 6, 3], "growth_rate": 16}

SPEC = SearchSpec(
    name="am_densenet", script="am_focal", description=__doc__,
    base=BASE, space=SPACE, best=BEST, grid=GRID,
    columns=["loss/alpha", "loss/gamma", "model/reduction", "optim/lr"],
    cpu=profile(LAPTOP, 8, {"model": CPU_DENSENET, "data": {"epoch_images": 2560}}, asha=SCRATCH_ASHA,
                **SCRATCH_LR),
    smoke=profile(SMOKE, 3, {"optim": {"lr": 1e-3}}, **SCRATCH_LR),
    paper={"chestxray14": PaperRow("AM_DenseNet (DenseNet-121 + CBAM, focal loss)", "chestxray14", "random")},
)
