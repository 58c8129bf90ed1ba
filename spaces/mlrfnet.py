"""MLRFNet (Li et al. 2024) search space: the CSRA λ1-λ3 and T, the biased focal loss's α, β, s.

Searched: λ1, λ2, λ3 in [0, 1] (stages 2, 3, 4; eq. 2), the CSRA temperature T in {1, 2, 4,
99} (99 = max pooling, PAPERS.md section 5), BFL α in [0.1, 0.9], β in [0, 4], shift s in
[0, 0.4] (eq. 3-4; the paper fixes α 0.4, s 0.2 and gives no β) and the Adam learning rate in
[1e-5, 1e-3] (log; the paper tried 1e-3, 1e-4, 1e-5). On a CheXpert root also the uncertainty
policy (`data.policy`: mixed, ones, zeros, ignore; the paper reports mixed). Fixed, as in the
paper: Res2Net-50 + ECA (kernel 3) + three CSRA heads, P_sum = P1 + P2 + P3; Adam, lr x0.9
every 2 epochs; batch 32; resize 256, crop 224, hflip, rotation 5°, jitter 0.9-1.1; 20 epochs.
Warm start: the paper's best, λ (0.5, 0.3, 0.1), T 99, α 0.4, s 0.2, lr 1e-4, with β 2 (Lin
et al.'s focal default). `--grid`: the paper's λ grid {0.1, 0.3, 0.5}³ (27 trials).
"""
from ray import tune

from spaces import LAPTOP, SCRATCH_ASHA, SMOKE, SearchSpec, profile
from spaces.paper_numbers import PaperRow
from trainables.data.chexpert import NAMED_POLICIES
from trainables.papers import SETUPS

BASE = SETUPS["mlrfnet"]

SPACE = {
    "model": {"lam1": tune.uniform(0.0, 1.0), "lam2": tune.uniform(0.0, 1.0), "lam3": tune.uniform(0.0, 1.0),
              "temperature": tune.choice([1, 2, 4, 99])},
    "loss": {"alpha": tune.uniform(0.1, 0.9), "beta": tune.uniform(0.0, 4.0), "shift": tune.uniform(0.0, 0.4)},
    "optim": {"lr": tune.loguniform(1e-5, 1e-3)},
}

BEST = {
    "model": {"lam1": 0.5, "lam2": 0.3, "lam3": 0.1, "temperature": 99},
    "loss": {"alpha": 0.4, "beta": 2.0, "shift": 0.2},
    "optim": {"lr": 1e-4},
}

GRID = {"model": {f"lam{i}": tune.grid_search([0.1, 0.3, 0.5]) for i in (1, 2, 3)}}

# Only on a CheXpert root: the uncertainty policy joins the search; the paper's mixed is fixed
# for --grid and evaluated first.
CHEXPERT = {
    "config": {"data": {"policy": "mixed"}},
    "space": {"data": {"policy": tune.choice(list(NAMED_POLICIES))}},  # ones, zeros, ignore, mixed
    "best": {"data": {"policy": "mixed"}},
}

# From scratch (no ImageNet weights) a higher learning rate is needed.
SCRATCH_LR = {"space": {"optim": {"lr": tune.loguniform(1e-4, 1e-2)}}, "best": {"optim": {"lr": 1e-3}}}
# Laptop stand-in backbone: Res2Net-50 from scratch at 48 px reaches 0.59-0.61 val AUC on the
# embedded set after 4 epochs of 640 images; timm's ResNet-10-T (the same five feature levels,
# so the same ECA/CSRA heads on layers 2-4) reaches 0.78 with the paper's config after 6 epochs
# of 1280 images at 64 px, at ~95 images/s on a core.
CPU_BACKBONE = {"model": {"backbone": "resnet10t"}}

SPEC = SearchSpec(
    name="mlrfnet", script="mlrf_lambdas", description=__doc__,
    base=BASE, space=SPACE, best=BEST, grid=GRID,
    columns=["model/lam1", "model/lam2", "model/lam3", "model/temperature",
             "loss/alpha", "loss/beta", "loss/shift", "optim/lr"],
    chexpert=CHEXPERT,
    cpu=profile(LAPTOP, 6, {**CPU_BACKBONE, "data": {"epoch_images": 1280}}, asha=SCRATCH_ASHA, **SCRATCH_LR),
    smoke=profile(SMOKE, 3, {"optim": {"lr": 1e-3}}, **SCRATCH_LR),
    paper={"chestxray14": PaperRow("MLRFNet (Res2Net50 + ECA + MRFC, biased focal loss)", "chestxray14", "70/10/20"),
           "chexpert": PaperRow("MLRFNet (U-O&U-Z: U-Ones for Atelectasis/Edema, U-Zeros for others)", "chexpert", "official")},
)
