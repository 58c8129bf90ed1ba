"""Class-balanced weighted focal loss + EfficientNet (Nugroho 2021) search space.

Searched: the class-balanced beta as 1 - beta on a log scale, 1e-6 ... 1e-2 (`loss.one_minus_beta`;
the paper's five values of eq. 10, 2e-6 ... 2e-3, lie inside), focal alpha in [0.25, 0.75]
(the paper's stated range) and gamma in [0, 3], the backbone (EfficientNet-B0 / B3,
DenseNet-121), two-stage progressive resizing on/off, and the RAdam + Lookahead ("Ranger")
learning rate (log scale; the paper gives none, 1e-3 is Ranger's default). Fixed: weights
scaled by 0.1 as in the authors' code (PAPERS.md section 3), lr x0.1 on validation-loss
plateau, 224 px and batch 32 in stage 1, 448 px and batch 16 in stage 2 from stage 1's best
weights, 10 epochs (stage 2 from epoch 6; the paper's Ranger runs converge by epoch 5).
Deviation: every backbone starts at 224 px (the paper gives EfficientNet-B3 300 -> 600); set
data.image_size: 300 for that. Warm start: the paper's best, beta 1-2e-4 ("0.9998"),
alpha 0.5, gamma 1, EfficientNet-B3 two-stage. `--grid`: the five betas of eq. 10 with
everything else at the warm start (5 trials).
"""
from ray import tune

from spaces import LAPTOP, SCRATCH_ASHA, SMOKE, SearchSpec, profile
from spaces.paper_numbers import PaperRow
from trainables.papers import SETUPS

BASE = SETUPS["cb_focal"]

SPACE = {
    "loss": {"one_minus_beta": tune.loguniform(1e-6, 1e-2), "alpha": tune.uniform(0.25, 0.75),
             "gamma": tune.uniform(0.0, 3.0)},
    "model": {"backbone": tune.choice(["efficientnet_b0", "efficientnet_b3", "densenet121"])},
    "train": {"two_stage": tune.choice([True, False])},
    "optim": {"lr": tune.loguniform(3e-5, 3e-3)},
}

BEST = {
    "loss": {"one_minus_beta": 2e-4, "alpha": 0.5, "gamma": 1.0},
    "model": {"backbone": "efficientnet_b3"},
    "train": {"two_stage": True},
    "optim": {"lr": 1e-3},
}

GRID = {"loss": {"one_minus_beta": tune.grid_search([2e-6, 2e-5, 2e-4, 7e-4, 2e-3])}}

# Laptop profiles train from scratch, so a higher learning rate range. B3 and DenseNet-121 at
# 2x size are too slow on a CPU core, and EfficientNet-B0 from scratch stays at chance AUC
# (0.49-0.51 after 2 epochs of 1024 images at 48 px, with cb_focal or BCE) where timm's
# small ResNet-10-T reaches 0.59 after 3: the cpu run trains ResNet-10-T.
SCRATCH_LR = {"optim": {"lr": tune.loguniform(1e-4, 1e-2)}}
# The laptop run trains ResNet-10-T in one stage at 64 px, warm start included. Two stages from
# 32 px (stage 2 at 64) reach only 0.63 val AUC after 5 epochs of 2048 images; one stage at 64 px
# reaches 0.71 after 6 epochs of 1536 images with Ranger at 4e-3 (0.73 with 2048, which do not
# fit 4 trials in 5 minutes), and a stage 2 at 128 px would cost 4x per image. ResNet-18 costs
# 1.8x per image and did no better in a default run (0.62-0.68 against 0.73).
CPU_ONE_STAGE = {"config": {"model": {"backbone": "resnet10t"}, "train": {"two_stage": False}},
                 "space": {"train": {"two_stage": tune.choice([False])}}}
SMOKE_SPACE = {"space": {"model": {"backbone": tune.choice(["efficientnet_b0"])}, **SCRATCH_LR},
               "best": {"model": {"backbone": "efficientnet_b0"}, "optim": {"lr": 1e-3}}}

SPEC = SearchSpec(
    name="cb_focal", script="cb_focal", description=__doc__,
    base=BASE, space=SPACE, best=BEST, grid=GRID,
    columns=["loss/one_minus_beta", "loss/alpha", "loss/gamma", "model/backbone", "train/two_stage", "optim/lr"],
    cpu=profile(LAPTOP, 4, {**CPU_ONE_STAGE["config"], "optim": {"lr": 4e-3}, "data": {"epoch_images": 1536}},
                space={"model": {"backbone": tune.choice(["resnet10t"])},
                       "optim": {"lr": tune.loguniform(3e-4, 1e-2)}, **CPU_ONE_STAGE["space"]},
                best={**CPU_ONE_STAGE["config"], "optim": {"lr": 4e-3}}, asha=SCRATCH_ASHA),
    smoke=profile(SMOKE, 3, {"model": {"backbone": "efficientnet_b0"}}, **SMOKE_SPACE),
    paper={"chestxray14": PaperRow("weighted focal loss β=0.9998 EfficientNet-B3 two-stage", "chestxray14", "official")},
)
