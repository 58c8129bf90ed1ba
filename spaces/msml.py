"""Fine-grained MSML (Ge et al. 2018) search space: eq. 5's α and β, backbone, training strategy.

Searched: α in [0, 1] (weight of E_MSML + E_CE) and β in [0, 1] (weight of E_FCE) of
E = α (E_MSML + E_CE) + β E_FCE; the streams' timm architecture (both streams the same);
the training strategy Global / Local / Local-Fixed (sec. 3.2); the Adam learning rate (log
scale). Fixed, as in the paper: Adam betas (0.9, 0.999), lr ÷10 every 3 epochs, 224 crops of
256 images. The paper gives neither batch size nor epochs: batch 16 and 9 epochs (three lr
steps; after them lr is 1e-7), and Local's stream stage lasts 3 epochs (the first lr step;
the FCE fine-tuning runs at 1e-5 and below). Warm start: the paper's α 0.2, β 0.6, Global,
DenseNet-121 (its best same-architecture pair, 0.8462), lr 1e-4. `--grid`: the paper's
Table 2 (the three strategies) for ResNet-18 and DenseNet-121, 6 trials.
"""
from ray import tune

from spaces import LAPTOP, SCRATCH_ASHA, SMOKE, SearchSpec, profile
from spaces.paper_numbers import PaperRow
from trainables.papers import SETUPS

PAPER_BACKBONES = ["resnet18", "densenet121", "resnet50"]
CPU_BACKBONE = "resnet10t"
STRATEGIES = ["global", "local", "local_fixed"]

BASE = SETUPS["msml"]

SPACE = {
    "heads": {"alpha": tune.uniform(0.0, 1.0), "beta": tune.uniform(0.0, 1.0)},
    "model": {"backbone": tune.choice(PAPER_BACKBONES), "strategy": tune.choice(STRATEGIES)},
    "optim": {"lr": tune.loguniform(1e-5, 1e-3)},
}

BEST = {
    "heads": {"alpha": 0.2, "beta": 0.6},
    "model": {"backbone": "densenet121", "strategy": "global"},
    "optim": {"lr": 1e-4},
}

GRID = {"model": {"backbone": tune.grid_search(["resnet18", "densenet121"]),
                  "strategy": tune.grid_search(STRATEGIES)}}

SPEC = SearchSpec(
    name="msml", script="msml_weights", description=__doc__,
    base=BASE, space=SPACE, best=BEST, grid=GRID,
    columns=["heads/alpha", "heads/beta", "model/backbone", "model/strategy", "optim/lr"],
    # From scratch (no ImageNet weights) a higher learning rate is needed. At 48 px and 1536 images
    # per epoch the warm start reaches 0.72 val AUC after 6 epochs with Adam 2e-3 and one lr step
    # (epoch 4), 0.76 with 2048 images; at 64 px and 1152 images per epoch (the same seconds) it
    # stays at 0.63-0.67 with Adam 1e-3 / 2e-3, SGD 0.05 or a smaller bilinear head. An epoch costs
    # ~25 s on a core (ResNet-18 streams ~50 s); 3 trials ran in 199 s, a 4th could add 90 s.
    cpu=profile(LAPTOP, 3, {"model": {"backbone": CPU_BACKBONE, "stage1_epochs": 2, "bilinear_dim": 64,
                                      "embed_dim": 256},
                            "optim": {"lr": 2e-3}, "sched": {"step_size": 4},
                            "data": {"image_size": 48, "resize": 54, "epoch_images": 1536}},
                space={"model": {"backbone": tune.choice([CPU_BACKBONE])},
                       "optim": {"lr": tune.loguniform(1e-4, 1e-2)}},
                best={"model": {"backbone": CPU_BACKBONE}, "optim": {"lr": 2e-3}}, asha=SCRATCH_ASHA),
    smoke=profile(SMOKE, 3, {"model": {"backbone": "resnet10t", "stage1_epochs": 1, "bilinear_dim": 16,
                                       "embed_dim": 32},
                             "optim": {"lr": 1e-3}},
                  space={"model": {"backbone": tune.choice(["resnet10t"])}, "optim": {"lr": tune.loguniform(1e-4, 1e-2)}},
                  best={"model": {"backbone": "resnet10t"}, "optim": {"lr": 1e-3}}),
    paper={"chestxray14": PaperRow("D121 + D121-F-MSML", "chestxray14", "random")},
)
