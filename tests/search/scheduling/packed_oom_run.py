"""A packed search on a 1-GPU node in which a trial runs out of GPU memory once; run as a script by
test_oom_retry.py, it prints each trial's final result as JSON.

`fake` (CPU): Ray pretends there is a GPU; one trial raises torch.cuda.OutOfMemoryError at epoch 2
and another fails with a different error. `real` (a CUDA device): two trials share the GPU and each
holds 60 % of its memory, so the one that allocates second really runs out of it."""
import json
import os
import sys
import tempfile

import ray
import torch
from ray import tune

from search.scheduling.oom_retry import PackedASHA


def trainable(config):
    if config["fail"] == "real":
        return real_trainable()
    start = 0
    if tune.get_checkpoint():
        with tune.get_checkpoint().as_directory() as d:
            start = json.load(open(os.path.join(d, "epoch.json")))["epoch"]
    gpu = tune.get_context().get_trial_resources().required_resources.get("GPU", 0)
    for epoch in range(start + 1, 4):
        if epoch == 2 and start == 0 and config["fail"] == "oom":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if epoch == 2 and config["fail"] == "other":
            raise RuntimeError("a bug")
        with tempfile.TemporaryDirectory() as d:
            json.dump({"epoch": epoch}, open(os.path.join(d, "epoch.json"), "w"))
            tune.report({"epoch": epoch, "val_auc": 0.5 + epoch / 10, "gpu": gpu, "resumed_from": start},
                        checkpoint=tune.Checkpoint.from_directory(d))


def real_trainable():
    import time

    total = torch.cuda.get_device_properties(0).total_memory
    gpu = tune.get_context().get_trial_resources().required_resources.get("GPU", 0)
    block = torch.empty(int(total * 0.6), dtype=torch.uint8, device="cuda")   # two do not fit one GPU
    time.sleep(10)   # hold it while the other trial allocates
    tune.report({"epoch": 1, "val_auc": 0.6, "gpu": gpu, "resumed_from": 0, "held_gib": block.numel() / 2 ** 30})


if __name__ == "__main__":
    real = sys.argv[2:] == ["real"]
    ray.init(num_cpus=2, num_gpus=None if real else 1, include_dashboard=False)
    scheduler = PackedASHA(time_attr="epoch", metric="val_auc", mode="max", max_t=1 if real else 3,
                           grace_period=1 if real else 3, alone={"cpu": 1, "gpu": 1})
    results = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 0.5, "gpu": 0.5}),
        param_space={"fail": tune.grid_search(["real", "real"] if real else ["oom", "none", "other"])},
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=False),
        run_config=tune.RunConfig(storage_path=sys.argv[1], name="packed", verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1))).fit()
    for r in results:
        print("RESULT " + json.dumps({"fail": r.config["fail"], "trial": r.metrics.get("trial_id"),
                                      "epoch": r.metrics.get("epoch"), "gpu": r.metrics.get("gpu"),
                                      "resumed_from": r.metrics.get("resumed_from"), "error": bool(r.error)}))
    print("RETRIED " + json.dumps(scheduler.retried))
