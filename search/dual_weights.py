"""DualCheXNet (Chen et al. 2019): search the modulated-loss λ and the three heads' fusion weights.

Searches λ in [0, 2], w_D/w_R in [0, 0.5], fusion {concat, avg, max}, learning rate, backbone
pair and iterative training (spaces/dualchexnet.py), with Optuna proposing configs, ASHA
stopping weak trials early where --grace-period asks (real data: no cuts by default), and every
trial logged to MLflow.

    python search/dual_weights.py                      # laptop: embedded synthetic data, CPU profile
    python search/dual_weights.py --data /data/nih     # ChestX-ray14 (or a CheXpert root)
    python search/dual_weights.py --grid --data ...    # the paper's 5 x 7 grid
    ray submit deploy/cluster.yaml search/dual_weights.py -- --data /data/nih
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from a checkout

from search import runner  # noqa: E402
from spaces.dualchexnet import SPEC  # noqa: E402


def main(argv=None):
    return runner.main(SPEC, argv)


if __name__ == "__main__":
    main()
