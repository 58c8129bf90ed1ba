"""Does the replay model the product? The default search, N seeds, run twice over one recorded table:
through the real stack (`search/dual_weights.py --simulate TABLE --seed S`: Ray Tune, ASHA, Optuna,
the concurrency limit, MLflow) and through the replay (benchmarks/replay_sim.py). Same seeds, same
scoring (the pick's regret on the table's held-out seeds, all seeds where it holds none out).

    python benchmarks/agreement.py [--seeds 30] [--work DIR]     # ~40 s per real-stack search on 2 cores

Prints, per side, the median and 90th percentile of trial-epochs and regret, and the test: the two
samples agree when a two-sided Mann-Whitney U test does not tell them apart (p > 0.05) on
trial-epochs nor on regret, and their medians are within 1 trial-epoch and 0.005 regret. The last
line is machine-readable. The real-stack searches are kept in --work (a rerun reads them back).

What it found first (54d2809, speedup 100): the replay stepped every running trial an epoch at a
time, so the warm start, started first, reached every rung first and was never cut; in the product
the trial with the faster epochs gets there first. The real stack's median regret was 0.0108 above
the replay's (0.0413 against 0.0305). The replay now orders results by the recorded seconds; the same
30 real-stack searches then agree seed by seed in 29 (the 30th: two trials 0.025 s apart at the rung).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))        # replay, replay_sim
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))    # search, spaces

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from replay import DATA, default_method  # noqa: E402
from replay_sim import search  # noqa: E402
from search.simulation.table import Table  # noqa: E402
from search.simulation.trainable import proposal  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EPOCHS_TOLERANCE, REGRET_TOLERANCE, ALPHA = 1.0, 0.005, 0.05


def real_search(table_path: Path, work: Path, seed: int, speedup: float) -> tuple[float, dict]:
    """(trial-epochs, the picked config) of one default search on the real stack, run once and kept."""
    from mlflow.tracking import MlflowClient

    name = f"sim-s{seed}"
    best = work / "rr" / name / "best_config.yaml"
    if not best.is_file():
        cmd = [sys.executable, str(ROOT / "search" / "dual_weights.py"), "--simulate", str(table_path),
               "--simulate-speedup", str(speedup), "--seed", str(seed), "--storage-path", str(work / "rr"),
               "--name", name, "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"]
        with open(work / f"{name}.log", "w") as log:
            proc = subprocess.run(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            sys.exit(f"error: the seed-{seed} search failed; see {work / f'{name}.log'}")
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    parent = client.search_runs([client.get_experiment_by_name("dual_weights").experiment_id],
                                filter_string=f"tags.`cxr.role` = 'search' and attributes.run_name = '{name}'")[0]
    return parent.data.metrics["search_trial_epochs"], yaml.safe_load(best.read_text())["config"]


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):.4g}, p90 {np.percentile(values, 90):.4g}"


def main(argv=None) -> None:
    from scipy.stats import mannwhitneyu

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA, help="the recorded table")
    p.add_argument("--seeds", type=int, default=30, help="searches per side (seeds 0..N-1)")
    p.add_argument("--speedup", type=float, default=100.0, help="--simulate-speedup of the real-stack searches")
    p.add_argument("--work", type=Path, default=Path("agreement-work"), help="where the real-stack searches go")
    args = p.parse_args(argv)
    table = Table.read(args.data)
    args.work.mkdir(parents=True, exist_ok=True)
    default = default_method()
    real_epochs, real_regret, sim_epochs, sim_regret, same_pick, same_epochs = [], [], [], [], 0, 0
    for seed in range(args.seeds):
        epochs, config = real_search(args.data.resolve(), args.work.resolve(), seed, args.speedup)
        real_epochs.append(epochs)
        picked = table.nearest(proposal(table, config))
        real_regret.append(table.regret(picked))
        out = search(table, default, seed)
        same_pick += picked == out.cell
        same_epochs += epochs == out.trial_epochs
        sim_epochs.append(out.trial_epochs)
        sim_regret.append(out.regret)
        print(f"seed {seed}: real stack {epochs:.0f} trial-epochs, regret {real_regret[-1]:.4f}; "
              f"replay {out.trial_epochs} trial-epochs, regret {out.regret:.4f}", flush=True)
    p_epochs = mannwhitneyu(real_epochs, sim_epochs).pvalue
    p_regret = mannwhitneyu(real_regret, sim_regret).pvalue
    d_epochs = abs(statistics.median(real_epochs) - statistics.median(sim_epochs))
    d_regret = abs(statistics.median(real_regret) - statistics.median(sim_regret))
    agree = (p_epochs > ALPHA or d_epochs == 0) and (p_regret > ALPHA or d_regret == 0) \
        and d_epochs <= EPOCHS_TOLERANCE and d_regret <= REGRET_TOLERANCE
    print(f"\n{args.seeds} seeds of the default search ({default}) over {table.name}:")
    print(f"  real stack: trial-epochs {summary(real_epochs)}; regret {summary(real_regret)}")
    print(f"  replay:     trial-epochs {summary(sim_epochs)}; regret {summary(sim_regret)}")
    print(f"  Mann-Whitney U (two-sided): trial-epochs p={p_epochs:.3f}, regret p={p_regret:.3f}; medians differ by "
          f"{d_epochs:g} trial-epochs and {d_regret:.4f} regret "
          f"(tolerance {EPOCHS_TOLERANCE:g} and {REGRET_TOLERANCE})")
    print(f"  seed by seed: the same pick in {same_pick} of {args.seeds}, the same trial-epochs in {same_epochs}")
    print(f"agreement: seeds={args.seeds} agree={str(agree).lower()} p_epochs={p_epochs:.3f} p_regret={p_regret:.3f} "
          f"median_epochs_diff={d_epochs:g} median_regret_diff={d_regret:.4f}")


if __name__ == "__main__":
    main()
