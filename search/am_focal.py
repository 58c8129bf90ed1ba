"""AM_DenseNet (Zhao et al. 2021): search the focal loss's α, γ and the CBAM reduction ratio.

Searches focal α in [0.05, 0.95], γ in [0, 5], CBAM reduction r in {8, 16, 32} and the Adam
learning rate for DenseNet-121 with CBAM after dense blocks 1-3 (spaces/am_densenet.py), with
Optuna proposing configs (first: α 0.25, γ 2, r 16, lr 1e-4), ASHA stopping weak trials early
where --grace-period asks (real data: no cuts by default), and every trial logged to MLflow.

    python search/am_focal.py                          # laptop: embedded synthetic data, CPU profile
    python search/am_focal.py --data /data/nih         # ChestX-ray14 (or a CheXpert root)
    python search/am_focal.py --grid --data ...        # our 3 x 3 α x γ grid (the paper has none)
    ray submit deploy/cluster.yaml search/am_focal.py -- --data /data/nih
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from a checkout

from search import runner  # noqa: E402
from spaces.am_densenet import SPEC  # noqa: E402


def main(argv=None):
    return runner.main(SPEC, argv)


if __name__ == "__main__":
    main()
