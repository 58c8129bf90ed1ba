"""Fine-grained MSML (Ge et al. 2018): search eq. 5's α and β, the backbone and the training strategy.

Searches α in [0, 1] and β in [0, 1] of E = α (E_MSML + E_CE) + β E_FCE, the streams' backbone,
the strategy (Global / Local / Local-Fixed) and the Adam learning rate for the two-stream
bilinear F-MSML network (spaces/msml.py), with Optuna proposing configs (first: the paper's α
0.2, β 0.6, Global, lr 1e-4), ASHA stopping weak trials early where --grace-period asks (real
data: no cuts by default), and every trial logged to MLflow.

    python search/msml_weights.py                      # laptop: embedded synthetic data, CPU profile
    python search/msml_weights.py --data /data/nih     # ChestX-ray14 (or a CheXpert root)
    python search/msml_weights.py --grid --data ...    # Table 2: 3 strategies x {R18, D121}
    ray submit deploy/cluster.yaml search/msml_weights.py -- --data /data/nih
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a file from a checkout

from search import runner  # noqa: E402
from spaces.msml import SPEC  # noqa: E402


def main(argv=None):
    return runner.main(SPEC, argv)


if __name__ == "__main__":
    main()
