"""The runner's param space: the paper's grid expands as the paper ran it, and every cell trains."""
from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.search.variant_generator import generate_variants

from search import runner
from spaces.dualchexnet import SPEC
from trainables.config import resolve
from trainables.errors import UsageError
from trainables.models import DualCheXNet
from trainables.registry import ConfigError
from trainables.objective import Objective


def test_dualchexnet_grid_is_the_papers_5_x_7_cells_and_each_is_a_valid_config():
    space, warm = runner.build_param_space(SPEC, runner.parse_args(SPEC, ["--grid"]), {})
    assert warm == []
    cells = set()
    for _, config in generate_variants(space):
        cfg = resolve(config)
        objective = Objective(cfg, SimpleNamespace(heads=DualCheXNet.heads), np.ones(14))
        cells.add((cfg["loss"]["lam"], cfg["heads"]["fusion"], objective.weights["d"], objective.weights["r"]))
    concat = {(lam, "concat", w, w) for lam in (0.0, 0.5, 1.0, 1.5, 2.0) for w in (0.0, 0.1, 0.2, 0.3, 0.4)}
    # avg/max ignore w_d, w_r (they default to 1.0)
    other = {(lam, f, 1.0, 1.0) for lam in (0.0, 0.5, 1.0, 1.5, 2.0) for f in ("avg", "max")}
    assert cells == concat | other and len(cells) == 35


def test_an_unknown_fusion_is_a_config_error_naming_the_choices():
    cfg = resolve({"heads": {"fusion": "mean"}})
    with pytest.raises(ConfigError, match=r"heads.fusion='mean'.*'avg', 'concat', 'max'"):
        Objective(cfg, SimpleNamespace(heads=DualCheXNet.heads), np.ones(14))


def test_gpus_per_trial_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("CXR_TUNE_GPUS_PER_TRIAL", "0.5")
    assert runner.parse_args(SPEC, []).gpus_per_trial == 0.5
    assert runner.parse_args(SPEC, ["--gpus-per-trial", "1"]).gpus_per_trial == 1
    monkeypatch.setenv("CXR_TUNE_GPUS_PER_TRIAL", "one")
    with pytest.raises(UsageError, match="CXR_TUNE_GPUS_PER_TRIAL='one' must be a number"):
        runner.parse_args(SPEC, [])
    monkeypatch.setenv("CXR_TUNE_GPUS_PER_TRIAL", "-1")
    with pytest.raises(UsageError, match="CXR_TUNE_GPUS_PER_TRIAL='-1' must be >= 0"):
        runner.parse_args(SPEC, [])


def _node(cpu, gpu=0, alive=True):
    return {"Alive": alive, "Resources": {"CPU": cpu, **({"GPU": gpu} if gpu else {})}}


@pytest.mark.parametrize("gpus, nodes, cpus", [
    (1, [_node(8, 1)], 8),                       # g5.2xlarge: the trial gets the node's 8 CPUs
    (1, [_node(8, 1), _node(48, 4)], 8),         # the scarcest GPU node decides (48/4 = 12)
    (2, [_node(48, 4)], 24),
    (1, [_node(16, 0), _node(7, 2)], 3),         # CPU-only nodes do not count; 3.5 rounds down
    (1, [_node(8, 1, alive=False), _node(16, 1)], 16),
    (0.5, [_node(8, 1)], 1), (0, [_node(8, 1)], 1),  # GPU fractions and CPU trials: 1
    (1, [_node(4)], 1),                          # no GPU node up yet (autoscaling)
])
def test_a_whole_gpu_trial_gets_the_cpus_that_come_with_its_gpus(gpus, nodes, cpus):
    assert runner.default_cpus(gpus, nodes) == cpus


def test_cpus_per_trial_falls_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("CXR_TUNE_CPUS_PER_TRIAL", "6")
    assert runner.parse_args(SPEC, []).cpus_per_trial == 6
    monkeypatch.delenv("CXR_TUNE_CPUS_PER_TRIAL")
    assert runner.parse_args(SPEC, []).cpus_per_trial is None


def test_asha_and_confirmation_defaults_come_from_the_profile_then_the_paper_setup_then_the_runner():
    from dataclasses import replace

    from spaces import SCRATCH_ASHA, get

    spec = replace(get("mlrfnet"), asha={"grace_period": 2, "reduction_factor": 3})
    assert runner.defaults(spec, spec.cpu) == {**SCRATCH_ASHA, "confirm": 0, "confirm_seeds": 2, "sampler": "random"}
    assert runner.defaults(spec, {}) == {"grace_period": 2, "reduction_factor": 3, "confirm": 3, "confirm_seeds": 2,
                                         "sampler": "random"}
    assert runner.defaults(get("mlrfnet"), {"sampler": "tpe"})["sampler"] == "tpe"
    assert runner.defaults(get("mlrfnet"), {}) == {**runner.ASHA, **runner.CONFIRM, "sampler": runner.SAMPLER}


def _args(**given):
    return SimpleNamespace(**{"grace_period": None, "reduction_factor": None, "confirm": None, "confirm_seeds": None,
                              "sampler": None, "replicates": 0, "grid": False, **given})


def test_real_data_confirms_the_top_configs_only_where_it_fits_in_a_fifth_of_the_trainings():
    # K x 2 seeds <= num_samples / 4: 8 trials afford 2 trainings (one config: useless, so none), 16
    # afford 4 (K = 2), 24 and more the default's 3
    assert [runner.confirm_for_budget(3, 2, n) for n in (8, 15, 16, 24, 100)] == [0, 0, 2, 3, 3]
    assert runner.confirm_for_budget(3, 1, 8) == 2
    for n, k in ((8, 0), (20, 2), (40, 3)):
        args = _args()
        runner.fill_defaults(SPEC, {}, args, num_samples=n)
        assert (args.confirm, args.confirm_seeds, args.sampler) == (k, 2, "random")
        assert args.grace_period is None     # real data: every epoch (set once the epochs are known): no cuts
    args = _args(confirm=3)                  # the user's --confirm is kept whatever the budget
    runner.fill_defaults(SPEC, {}, args, num_samples=8)
    assert args.confirm == 3
    args = _args()                           # a profile's confirmation is its own (the laptop's: none)
    runner.fill_defaults(SPEC, SPEC.cpu, args, num_samples=100)
    assert args.confirm == 0


def test_trials_per_gpu_comes_from_the_flag_or_the_environment_and_excludes_gpus_per_trial(monkeypatch):
    assert runner.parse_args(SPEC, []).trials_per_gpu is None
    assert runner.parse_args(SPEC, ["--trials-per-gpu", "auto"]).trials_per_gpu == "auto"
    monkeypatch.setenv("CXR_TUNE_TRIALS_PER_GPU", "3")
    assert runner.parse_args(SPEC, []).trials_per_gpu == 3
    with pytest.raises(UsageError, match="give one"):
        runner.parse_args(SPEC, ["--trials-per-gpu", "2", "--gpus-per-trial", "0.5"])
    # the command line beats the environment: --gpus-per-trial drops the variable's packing
    args = runner.parse_args(SPEC, ["--gpus-per-trial", "0.5"])
    assert args.trials_per_gpu is None and args.gpus_per_trial == 0.5
    monkeypatch.setenv("CXR_TUNE_TRIALS_PER_GPU", "9")
    with pytest.raises(UsageError, match="CXR_TUNE_TRIALS_PER_GPU '9': give a whole number 1-4 or auto"):
        runner.parse_args(SPEC, [])


def test_on_the_cluster_packing_beats_its_one_gpu_and_eight_cpus_per_trial(monkeypatch):
    # deploy/cluster_env.sh sets these for every search; a user adds CXR_TUNE_TRIALS_PER_GPU=2
    for key, value in {"CXR_TUNE_GPUS_PER_TRIAL": "1", "CXR_TUNE_CPUS_PER_TRIAL": "8",
                       "CXR_TUNE_TRIALS_PER_GPU": "2"}.items():
        monkeypatch.setenv(key, value)
    args = runner.parse_args(SPEC, [])
    assert (args.trials_per_gpu, args.gpus_per_trial, args.cpus_per_trial) == (2, None, None)
    assert runner.parse_args(SPEC, ["--cpus-per-trial", "3"]).cpus_per_trial == 3   # given: kept
    monkeypatch.delenv("CXR_TUNE_TRIALS_PER_GPU")
    args = runner.parse_args(SPEC, [])
    assert (args.trials_per_gpu, args.gpus_per_trial, args.cpus_per_trial) == (None, 1, 8)


def test_the_declared_cpus_per_gpu_must_be_a_count(monkeypatch):
    monkeypatch.setenv("CXR_TUNE_TRIALS_PER_GPU", "2")
    monkeypatch.setenv("CXR_TUNE_CPUS_PER_GPU", "eight")
    with pytest.raises(UsageError, match="CXR_TUNE_CPUS_PER_GPU='eight'"):
        runner.parse_args(SPEC, [])
    monkeypatch.setenv("CXR_TUNE_CPUS_PER_GPU", "12")
    assert runner.parse_args(SPEC, []).cpus_per_gpu == 12


@pytest.mark.parametrize("cluster, resources, limit, autoscales, pending", [
    ({"CPU": 2.0}, {"cpu": 0.25, "gpu": 0}, 250, False, 8),      # 1,000 trials on a laptop: 8 fit, not 250 ahead
    ({"CPU": 2.0}, {"cpu": 1, "gpu": 0}, 2, False, 2),           # the default laptop run: its limit
    ({"CPU": 64.0, "GPU": 8.0}, {"cpu": 8, "gpu": 1}, 25, False, 8),   # GPUs are the scarcer resource
    ({"CPU": 2.0}, {"cpu": 2, "gpu": 0}, 25, False, 2),          # at least 2, so a start is always queued
    ({"CPU": 8.0}, {"cpu": 1, "gpu": 1}, 25, True, 25),          # an autoscaler adds nodes for pending trials
    ({"CPU": 2.0}, {"cpu": 1, "gpu": 0}, None, False, None),     # a grid: Tune's own
    ({"CPU": 2.0}, {"cpu": 0.25, "gpu": 0}, 1, False, 1),        # --max-concurrent 1: never more
])
def test_tune_holds_as_many_proposals_waiting_as_the_cluster_runs_at_once(monkeypatch, cluster, resources, limit,
                                                                           autoscales, pending):
    monkeypatch.setattr(runner.ray, "cluster_resources", lambda: cluster)
    monkeypatch.setattr(runner, "autoscaling", lambda: autoscales)
    assert runner.pending_trials(resources, limit) == pending


def test_a_short_recorded_table_caps_the_default_grace_period_but_not_a_given_one():
    profile = SPEC.cpu   # grace 3 (SCRATCH_ASHA)
    args = _args()
    runner.fill_defaults(SPEC, profile, args, max_epochs=1)
    assert args.grace_period == 1 and args.reduction_factor == 2
    args = _args()
    runner.fill_defaults(SPEC, {}, args, max_epochs=4)    # real data's "every epoch" is the table's 4
    assert args.grace_period == 4
    args = _args(grace_period=4)
    runner.fill_defaults(SPEC, profile, args, max_epochs=1)
    assert args.grace_period == 4   # the user's: the runner's own check names it


@pytest.mark.parametrize("was, simulate, error", [
    (None, "t.csv", "was trained, not simulated: resume it without --simulate"),
    ("TABLE", None, "was simulated from TABLE: pass --simulate TABLE"),
    ("TABLE", "t.csv", None),
    (None, None, None),
])
def test_resume_keeps_a_search_simulated_or_trained_as_it_began(monkeypatch, tmp_path, was, simulate, error):
    from search.report import data
    from search.simulation.table import Table
    from tests.tables import write_dual

    table = write_dual(tmp_path / "t.csv", lambda c, s, e: 0.6)
    was = str(table) if was == "TABLE" else was
    parent = SimpleNamespace(data=SimpleNamespace(tags={"cxr.simulated_table": was} if was else {}))
    monkeypatch.setattr(data, "search_parent", lambda client, experiment, exp_path: parent)
    args = SimpleNamespace(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment_name="dual_weights",
                           grid=False, replicates=0, replicate_eta=2)
    read = Table.read(table) if simulate else None
    if error is None:
        runner.check_resume_matches(args, "rr/sim", read)
    else:
        with pytest.raises(UsageError, match=error.replace("TABLE", str(table))):
            runner.check_resume_matches(args, "rr/sim", read)


@pytest.mark.parametrize("began, now, error", [
    ({}, (0, 2), None),                                                    # began before the flag existed
    ({"search.replicates": "2", "search.replicate_eta": "3"}, (2, 3), None),
    ({"search.replicates": "2", "search.replicate_eta": "3"}, (0, 2), "began with --replicates 2 --replicate-eta 3"),
    ({"search.replicates": "0", "search.replicate_eta": "2"}, (1, 2), "began with --replicates 0 --replicate-eta 2"),
    ({"search.replicates": "1", "search.replicate_eta": "2"}, (1, 3), "began with --replicates 1 --replicate-eta 2"),
    ({"search.replicates": "0", "search.replicate_eta": "2"}, (0, 3), None),  # no rungs either way: eta unused
])
def test_resume_keeps_the_replicate_rungs_it_began_with(monkeypatch, tmp_path, began, now, error):
    from search.report import data

    parent = SimpleNamespace(data=SimpleNamespace(tags={}, params=began))
    monkeypatch.setattr(data, "search_parent", lambda client, experiment, exp_path: parent)
    args = SimpleNamespace(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment_name="dual_weights",
                           grid=False, replicates=now[0], replicate_eta=now[1])
    if error is None:
        runner.check_resume_matches(args, "rr/s", None)
    else:
        with pytest.raises(UsageError, match=error):
            runner.check_resume_matches(args, "rr/s", None)
