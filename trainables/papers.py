"""Each paper's fixed training setup as a nested trial config (the shape of trainables/config.py).

Backbones, loss, optimiser, schedule, resolution, batch and epochs as each paper trained; the
decisions taken where a paper is silent are explained in its search space's docstring
(spaces/<paper>.py), which starts from the setup here and adds what it searches. Kept apart
from the spaces, which need Ray Tune, so that what runs without Ray (the trainable, the GPU
benchmark and tests) can build any paper's model and loss.
"""

SETUPS = {
    "dualchexnet": {
        "model": {"name": "dualchexnet", "backbones": "resnet50+densenet121", "pretrained": True},
        "loss": {"name": "modulated_wce", "lam": 0.5},
        "heads": {"fusion": "concat", "w_f": 1.0, "w_d": 0.3, "w_r": 0.3},
        "optim": {"name": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4},
        "sched": {"name": "plateau", "factor": 0.1, "patience": 1},
        "data": {"image_size": 512, "resize": 556, "batch_size": 8},
        "train": {"max_epochs": 20, "iterative": False},
    },
    "msml": {
        "model": {"name": "fmsml", "backbone": "densenet121", "pretrained": True, "strategy": "global",
                  "stage1_epochs": 3, "bilinear_dim": 128, "embed_dim": 512},
        "loss": {"name": "bce"},  # E_CE and E_FCE; the stream-2 head takes MSML from the model
        "heads": {"fusion": "concat", "alpha": 0.2, "beta": 0.6},
        "optim": {"name": "adam", "lr": 1e-4, "betas": [0.9, 0.999]},
        "sched": {"name": "step", "step_size": 3, "gamma": 0.1},
        "data": {"image_size": 224, "resize": 256, "batch_size": 16},
        "train": {"max_epochs": 9},
    },
    "cb_focal": {
        "model": {"name": "timm_classifier", "backbone": "efficientnet_b3", "pretrained": True},
        "loss": {"name": "cb_focal", "one_minus_beta": 2e-4, "alpha": 0.5, "gamma": 1.0, "scale": 0.1},
        "optim": {"name": "lookahead_radam", "lr": 1e-3},
        "sched": {"name": "plateau", "factor": 0.1, "patience": 1},
        "data": {"image_size": 224, "resize": 256, "batch_size": 32},
        "train": {"max_epochs": 10, "two_stage": True},
    },
    "am_densenet": {
        "model": {"name": "am_densenet", "backbone": "densenet121", "pretrained": True, "reduction": 16},
        "loss": {"name": "focal", "alpha": 0.25, "gamma": 2.0},
        "optim": {"name": "adam", "lr": 1e-4},
        "sched": {"name": "plateau", "factor": 0.1, "patience": 1},
        "data": {"image_size": 512, "resize": 585, "batch_size": 8},
        "train": {"max_epochs": 20},
    },
    "mlrfnet": {
        "model": {"name": "mlrfnet", "backbone": "res2net50_26w_4s", "pretrained": True,
                  "lam1": 0.5, "lam2": 0.3, "lam3": 0.1, "temperature": 99},
        "loss": {"name": "biased_focal", "alpha": 0.4, "beta": 2.0, "shift": 0.2},
        "optim": {"name": "adam", "lr": 1e-4},
        "sched": {"name": "step", "step_size": 2, "gamma": 0.9},
        "data": {"image_size": 224, "resize": 256, "batch_size": 32},
        "train": {"max_epochs": 20},
    },
}
