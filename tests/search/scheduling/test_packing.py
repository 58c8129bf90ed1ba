"""--trials-per-gpu: the Ray resources of a packed trial and how `auto` sizes the packing."""
import pytest

from search.scheduling import packing
from trainables.errors import UsageError

KEY = "dualchexnet/resnet50+densenet121 512px batch 8 compile=off"


@pytest.mark.parametrize("n, cpus_per_gpu, want", [
    (1, 8, {"gpu": 1.0, "cpu": 8}), (2, 8, {"gpu": 0.5, "cpu": 4}),
    (3, 8, {"gpu": 0.3333, "cpu": 2}),   # 3 x 0.3333 fits one GPU; 1/3 rounded up would not
    (4, 2, {"gpu": 0.25, "cpu": 1}),     # never less than one CPU
])
def test_a_packed_trial_asks_for_its_share_of_the_gpu_and_its_cpus(n, cpus_per_gpu, want):
    assert packing.share(n, cpus_per_gpu) == want
    assert n * packing.share(n, cpus_per_gpu)["gpu"] <= 1


def test_the_flag_takes_a_count_or_auto_and_names_what_is_wrong():
    assert packing.parse("3") == 3 and packing.parse("auto") == "auto"
    for bad in ("0", "5", "two", "1.5"):
        with pytest.raises(UsageError, match="--trials-per-gpu"):
            packing.parse(bad)


def test_the_setup_key_names_what_the_memory_depends_on():
    config = {"model": {"name": "dualchexnet", "backbones": "resnet50+densenet121"},
              "data": {"image_size": 512, "batch_size": 8}, "train": {}}
    assert packing.setup_key(config) == KEY


def test_auto_picks_the_fastest_measured_count_that_fits():
    # 139 GiB x 0.9 = 125.1 GiB; 20 GiB + 0.5 GiB context per trial: 6 fit, capped at 4; 3 is fastest
    measured = {"H200": {KEY: {"peak_gib": 20.0, "img_s": {"1": 100.0, "2": 250.0, "3": 280.0, "4": 270.0}}}}
    got = packing.auto(KEY, "H200", 139.0, 16, measured)
    assert got.per_gpu == 3 and "2.80x one trial" in got.reason


def test_auto_without_speeds_on_this_gpu_packs_what_fits_by_memory_and_cpus():
    measured = {"H200": {KEY: {"peak_gib": 20.0, "img_s": {"1": 100.0, "4": 300.0}}}}
    # on an 80 GiB card: 72 GiB // 20.5 = 3; its speeds were measured on another model, so not used
    assert packing.auto(KEY, "H100", 80.0, 16, measured).per_gpu == 3
    assert packing.auto(KEY, "H100", 80.0, 2, measured).per_gpu == 2   # 2 CPUs per GPU: 2 trials


def test_auto_without_a_measured_peak_runs_one_trial_per_gpu_and_says_why():
    got = packing.auto(KEY, "H200", 139.0, 16, {})
    assert got.per_gpu == 1 and "no measured peak GPU memory" in got.reason and "--trials-per-gpu N" in got.reason


NODES = [{"Alive": True, "Resources": {"CPU": 16.0, "GPU": 2.0}},     # 8 CPUs per GPU
         {"Alive": True, "Resources": {"CPU": 2.0}},                  # the head: no GPU
         {"Alive": False, "Resources": {"CPU": 1.0, "GPU": 1.0}}]     # gone: not counted


def _space(backbones):
    from ray import tune
    return {"model": {"name": "dualchexnet", "backbones": tune.choice(backbones)},
            "data": {"image_size": 512, "batch_size": 8}, "train": {}}


def test_a_searched_backbone_packs_for_its_largest_measured_choice():
    space = _space(["resnet50+densenet121", "resnet101+densenet169"])
    small, large = packing.setup_keys(space)
    assert small == KEY and large == "dualchexnet/resnet101+densenet169 512px batch 8 compile=off"
    measured = {"NVIDIA H200": {small: {"peak_gib": 20.0, "img_s": {"1": 100.0, "4": 300.0}},
                                large: {"peak_gib": 40.0, "img_s": {"1": 60.0, "2": 110.0, "3": 130.0}}}}
    resources, alone, why = packing.plan("auto", space, NODES, lambda up: ("NVIDIA H200", 139.0), measured)
    # 125.1 GiB // 40.5 = 3 of the larger pair; 3 was its fastest measured
    assert resources == {"gpu": 0.3333, "cpu": 2} and alone == {"gpu": 1, "cpu": 8}
    assert why.startswith("trials per GPU: 3 per GPU") and "resnet101+densenet169" in why
    unmeasured = {"NVIDIA H200": {small: measured["NVIDIA H200"][small]}}
    h200 = lambda up: ("NVIDIA H200", 139.0)  # noqa: E731
    assert packing.plan("auto", space, NODES, h200, unmeasured)[0] == {"gpu": 1.0, "cpu": 8}


def test_a_given_count_needs_no_probe_and_no_gpu_node_is_an_error():
    space = _space(["resnet50+densenet121"])
    resources, _, why = packing.plan(2, space, NODES, probe=None)
    assert resources == {"gpu": 0.5, "cpu": 4} and why == "trials per GPU: 2 per GPU (--trials-per-gpu)"
    with pytest.raises(UsageError, match="no GPU node is up.*set CXR_TUNE_CPUS_PER_GPU"):
        packing.plan(2, space, NODES[1:], probe=None)
    assert packing.plan("auto", space, NODES, lambda up: None)[0] == {"gpu": 1.0, "cpu": 8}


def test_an_autoscaling_cluster_with_no_gpu_node_yet_packs_by_the_declared_cpus_and_waits_for_the_probe():
    space, asked = _space(["resnet50+densenet121"]), []
    # deploy/cluster_env.sh: 8 CPUs per GPU fits every GPU node type; none is up when the search starts
    resources, alone, _ = packing.plan(2, space, NODES[1:], probe=None, declared=8)
    assert resources == {"gpu": 0.5, "cpu": 4} and alone == {"cpu": 8, "gpu": 1}
    packing.plan("auto", space, NODES[1:], lambda up: asked.append(up), declared=8)
    assert asked == [False]   # the probe is told no GPU node is up: it waits for the autoscaler
    # a node type with more CPUs per GPU (12) is held to the declared 8, so every type fits the trials
    big = [{"Alive": True, "Resources": {"CPU": 48.0, "GPU": 4.0}}]
    assert packing.plan(4, space, big, probe=None, declared=8)[0] == {"gpu": 0.25, "cpu": 2}
    assert packing.plan(4, space, big, probe=None)[0] == {"gpu": 0.25, "cpu": 3}


def test_a_users_own_peaks_raise_the_shipped_ones(tmp_path):
    shipped, mine = tmp_path / "shipped.json", tmp_path / "mine.json"
    shipped.write_text('{"NVIDIA H200": {"k": {"peak_gib": 10.0, "img_s": {"1": 5.0}}}}')
    packing.remember({"NVIDIA H200": {"k": 12.5, "other": 3.0}}, user=mine)
    packing.remember({"NVIDIA H200": {"k": 11.0}}, user=mine)          # a lower peak does not lower it
    got = packing.load(shipped, user=mine)["NVIDIA H200"]
    assert got["k"] == {"peak_gib": 12.5, "img_s": {"1": 5.0}} and got["other"] == {"peak_gib": 3.0}


def test_a_search_records_each_setups_peak_for_the_next_auto(tmp_path):
    from types import SimpleNamespace

    mine = tmp_path / "mine.json"
    recorder = packing.PeakRecorder(user=mine)
    config = {"model": {"name": "dualchexnet", "backbones": "resnet50+densenet121"},
              "data": {"image_size": 512, "batch_size": 8}, "train": {}}
    trial = SimpleNamespace(config=config)
    for peak in (7.5, 9.25, 8.0):   # the peak so far, per epoch
        recorder.on_trial_result(0, [], trial, {"gpu_peak_gib": peak, "gpu_name": "NVIDIA H200"})
    recorder.on_trial_result(0, [], trial, {"val_auc": 0.6})   # a CPU trial reports no peak
    recorder.on_experiment_end([])
    assert packing.load(tmp_path / "none.json", user=mine) == {"NVIDIA H200": {KEY: {"peak_gib": 9.25}}}


def test_a_damaged_peaks_file_is_named_with_the_fix_and_does_not_fail_the_search(tmp_path, capsys):
    mine = tmp_path / "mine.json"
    mine.write_text('{"NVIDIA H200": {"k": ')   # cut off mid-write
    with pytest.raises(UsageError, match=r"mine.json: cannot read the measured GPU peaks .*delete the file"):
        packing.load(tmp_path / "none.json", user=mine)
    recorder = packing.PeakRecorder(user=mine)
    recorder.peaks = {"NVIDIA H200": {KEY: 9.0}}
    recorder.on_experiment_end([])   # after the search's results are saved: says so, does not raise
    assert "peak GPU memory was not saved for --trials-per-gpu auto" in capsys.readouterr().out
    assert mine.read_text() == '{"NVIDIA H200": {"k": '   # left for the user to see
