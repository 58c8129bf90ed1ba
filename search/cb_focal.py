"""Nugroho 2021: search the class-balanced weighted focal loss with two-stage EfficientNet training.

Searches the class-balanced 1-β on a log scale (1e-6 ... 1e-2), focal α in [0.25, 0.75] and γ
in [0, 3], the backbone (EfficientNet-B0/B3, DenseNet-121), two-stage progressive resizing
on/off and the RAdam + Lookahead learning rate (spaces/cb_focal.py), with Optuna proposing
configs (first: β 1-2e-4, α 0.5, γ 1, EfficientNet-B3 two-stage), ASHA stopping weak trials
early where --grace-period asks (real data: no cuts by default; one epoch counter across both
stages), and every trial logged to MLflow.

    python search/cb_focal.py                          # laptop: embedded synthetic data, CPU profile
    python search/cb_focal.py --data /data/nih         # ChestX-ray14 (or a CheXpert root)
    python search/cb_focal.py --grid --data ...        # the paper's five β of eq. 10
    ray submit deploy/cluster.yaml search/cb_focal.py -- --data /data/nih
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from a checkout

from search import runner  # noqa: E402
from spaces.cb_focal import SPEC  # noqa: E402


def main(argv=None):
    return runner.main(SPEC, argv)


if __name__ == "__main__":
    main()
