"""`--simulate TABLE` on every search script: the real runner, Tune, ASHA, Optuna, MLflow, the report
and the export, with trials that read recorded curves (seconds, not minutes); never mistaken for
training."""
import itertools

import pytest
import yaml

from search.simulation.table import Table
from search.simulation.trainable import recorded_seed
from tests.search.simulation.simulated import TABLE, run_simulated

# each script's own params, as a user's recorded table names them (the config's dotted keys)
PARAMS = {"msml_weights": [("heads.alpha", "float 0 1"), ("heads.beta", "float 0 1")],
          "cb_focal": [("loss.one_minus_beta", "float 1e-6 1e-2 log"), ("loss.alpha", "float 0.25 0.75"),
                       ("loss.gamma", "float 0 3")],
          "am_focal": [("loss.alpha", "float 0.05 0.95"), ("loss.gamma", "float 0 5")],
          "mlrf_lambdas": [("model.lam1", "float 0 1"), ("model.lam2", "float 0 1"), ("model.lam3", "float 0 1")]}


def write_table(path, params) -> None:
    """Every corner and the centre of the params' box, 3 seeds, 3 epochs; the value rises with the
    first param's (unit) value, so the best config is known."""
    lines = ["# table: corners", "# metric: val_auc max", *[f"# param: {n} {spec}" for n, spec in params],
             "# pool: 0 1", f"seed,{','.join(n for n, _ in params)},epoch,val_auc,seconds"]
    bounds = [tuple(float(x) for x in spec.split()[1:3]) for _, spec in params]
    points = list(itertools.product(*[(lo, hi) for lo, hi in bounds])) + [tuple((lo + hi) / 2 for lo, hi in bounds)]
    for point in points:
        unit = (point[0] - bounds[0][0]) / (bounds[0][1] - bounds[0][0])
        lines += [f"{s},{','.join(f'{v:g}' for v in point)},{e},{0.5 + 0.1 * unit + 0.02 * e + 0.01 * s:.4f},3"
                  for s in range(3) for e in range(1, 4)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("script", ["dual_weights", *PARAMS])
def test_every_script_runs_a_simulated_search_through_the_real_stack(tmp_path, script):
    table = TABLE
    if script in PARAMS:
        table = tmp_path / "table.csv"
        write_table(table, PARAMS[script])
    out, parent, trials = run_simulated(tmp_path, "--num-samples", "4", "--cpus-per-trial", "0.5",
                                        "--simulate-speedup", "1000", "--export", str(tmp_path / "exports"),
                                        script=script, table=table)
    t = Table.read(table)
    assert len(trials) == 4 and parent.info.status == "FINISHED"
    # never mistaken for training: tags, description, printout, best_config.yaml and the exported YAML
    assert parent.data.tags["cxr.simulated"] == t.name and parent.data.tags["cxr.dataset"].startswith("recorded")
    assert parent.data.tags["mlflow.note.content"].startswith("**Simulated search**")
    assert all(r.data.tags["cxr.simulated"] == t.name for r in trials)
    assert "simulated search: values read from recorded curves" in out
    assert "simulated" in yaml.safe_load((tmp_path / "rr" / "sim" / "best_config.yaml").read_text())
    exported = sorted((tmp_path / "exports").glob("*.yaml"))
    assert exported and all("recorded curves" in yaml.safe_load(p.read_text())["simulated"] for p in exported)
    # each trial read the recorded curve of its nearest config, one pool seed, epoch by epoch
    for run in trials:
        config = int(run.data.metrics["recorded_config"])
        seed = int(run.data.metrics["recorded_seed"])
        assert seed in t.pool_seeds and seed == recorded_seed(t, config, 0)
        assert run.data.metrics["val_auc"] == pytest.approx(t.curves[config][seed][int(run.data.metrics["epoch"]) - 1])


def test_a_table_that_does_not_fit_the_script_is_one_line(tmp_path):
    import subprocess
    import sys

    from tests.search.simulation.simulated import ROOT

    proc = subprocess.run([sys.executable, str(ROOT / "search" / "cb_focal.py"), "--simulate", str(TABLE)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: --simulate " + str(TABLE) + ": param(s) loss.lam, heads.fusion, heads.w_d, heads.w_r are not keys")
