"""--trials-per-gpu: the Ray resources of a packed trial and how `auto` sizes the packing."""
import pytest

from search import packing
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
