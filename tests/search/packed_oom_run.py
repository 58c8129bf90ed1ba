"""A packed search on a fake 1-GPU node in which one trial runs out of GPU memory once (a simulated
torch.cuda.OutOfMemoryError at epoch 2) and another fails with a different error; run as a script by
test_oom_retry.py, it prints each trial's final result as JSON."""
import json
import os
import sys
import tempfile

import ray
import torch
from ray import tune

from search.oom_retry import PackedASHA


def trainable(config):
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


if __name__ == "__main__":
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False)
    scheduler = PackedASHA(time_attr="epoch", metric="val_auc", mode="max", max_t=3, grace_period=3,
                           alone={"cpu": 1, "gpu": 1})
    results = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 0.5, "gpu": 0.5}),
        param_space={"fail": tune.grid_search(["oom", "none", "other"])},
        tune_config=tune.TuneConfig(scheduler=scheduler, reuse_actors=False),
        run_config=tune.RunConfig(storage_path=sys.argv[1], name="packed", verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=1))).fit()
    for r in results:
        print("RESULT " + json.dumps({"fail": r.config["fail"], "epoch": r.metrics.get("epoch"),
                                      "gpu": r.metrics.get("gpu"), "resumed_from": r.metrics.get("resumed_from"),
                                      "error": bool(r.error)}))
    print("RETRIED " + json.dumps(scheduler.retried))
