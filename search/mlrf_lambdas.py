"""MLRFNet (Li et al. 2024): search the CSRA λ1-λ3 and T and the biased focal loss's α, β, s.

Searches λ1, λ2, λ3 in [0, 1], T in {1, 2, 4, 99 (max pooling)}, BFL α in [0.1, 0.9], β in [0,
4], shift s in [0, 0.4] and the Adam learning rate for Res2Net-50 + ECA + three CSRA heads
(spaces/mlrfnet.py); on a CheXpert root also the uncertainty policy, with `val_auc` the mean
over CheXpert's 5 evaluation observations. Optuna proposes configs (first: the paper's λ
0.5/0.3/0.1, T 99, α 0.4, β 2, s 0.2, lr 1e-4), ASHA stops weak trials early where --grace-
period asks (real data: no cuts by default), and every trial is logged to MLflow.

    python search/mlrf_lambdas.py                               # laptop: embedded synthetic data, CPU profile
    python search/mlrf_lambdas.py --data /data/CheXpert-v1.0-small   # or a ChestX-ray14 root
    python search/mlrf_lambdas.py --grid --data /data/nih       # the paper's λ grid {0.1, 0.3, 0.5}³
    ray submit deploy/cluster.yaml search/mlrf_lambdas.py -- --data /data/nih
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from a checkout

from search import runner  # noqa: E402
from spaces.mlrfnet import SPEC  # noqa: E402


def main(argv=None):
    return runner.main(SPEC, argv)


if __name__ == "__main__":
    main()
