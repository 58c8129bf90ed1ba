"""GPU-hours and trial-epochs per trial and for the search, and where each trial ran."""
from search.tracking.usage import Usage, gpu_share

HALF, WHOLE = {"CPU": 4, "GPU": 0.5}, {"CPU": 8, "GPU": 1}


def test_a_packed_trial_pays_its_share_and_a_retried_one_the_whole_gpu_after():
    usage = Usage()
    epoch = {"time_this_iter_s": 1800, "hostname": "gpu-1", "node_ip": "10.0.0.7"}
    cost, tags = usage.on_result("a", epoch, HALF)
    assert cost == {"gpu_hours": 0.25, "trial_epochs": 1.0}
    assert tags == {"cxr.node": "gpu-1 (10.0.0.7)", "cxr.gpu_share": "0.5 GPU (one of 2 trials on it)"}
    assert usage.on_result("a", epoch, HALF) == ({"gpu_hours": 0.5, "trial_epochs": 2.0}, None)  # same place: no tags
    cost, tags = usage.on_result("a", epoch, WHOLE)    # retried alone after running out of memory
    assert cost == {"gpu_hours": 1.0, "trial_epochs": 3.0} and tags["cxr.gpu_share"] == "1 GPU"
    usage.on_result("b", {"time_this_iter_s": 3600}, {"CPU": 1})   # a CPU trial: epochs, no GPU-hours
    assert usage.totals() == {"search_gpu_hours": 1.0, "search_trial_epochs": 4.0}


def test_resume_adds_to_the_saved_figures():
    usage = Usage()
    usage.on_result("a", {"time_this_iter_s": 720}, WHOLE)
    resumed = Usage(usage.state())
    assert resumed.on_result("a", {"time_this_iter_s": 720}, WHOLE)[0] == {"gpu_hours": 0.4, "trial_epochs": 2.0}


def test_the_share_reads_as_a_person_would_say_it():
    assert gpu_share({"CPU": 1}) == "no GPU"
    assert gpu_share({"GPU": 0.3333}) == "0.3333 GPU (one of 3 trials on it)"
    assert gpu_share({"GPU": 2}) == "2 GPU"
