"""The user's command, as a subprocess: search/cb_focal.py --smoke-test on a hand-written NIH root, then MLflow."""
import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_smoke_search_logs_three_trials_and_two_stage_grows_the_image(smoke_search, tiny_nih, tmp_path):
    work = tmp_path / "search"
    # 2 CPUs per trial: each trial loads its batches in one forkserver worker inside its Ray actor
    out, _, parent, trials = smoke_search("cb_focal", work, "--data", str(tiny_nih), "--cpus-per-trial", "2")
    assert "each trial gets 2 CPU(s) and 0 GPU(s)" in out
    # the driver built the stage-1 (36 px) and the stage-2 (72 px) caches before any trial
    caches = {p.name.split("-")[-1] for p in (Path(os.environ["CXR_TUNE_CACHE"]) / "images").glob("*px")}
    assert {"36px", "72px"} <= caches
    for run in trials:
        params = run.data.params
        assert (params["model.name"], params["loss.name"], params["optim.name"]) == \
            ("timm_classifier", "cb_focal", "lookahead_radam")
        assert 1e-6 <= float(params["loss.one_minus_beta"]) <= 1e-2
        assert 0.25 <= float(params["loss.alpha"]) <= 0.75 and 0 <= float(params["loss.gamma"]) <= 3
    # warm start: the paper's best is the first trial
    p = trials[0].data.params
    assert (p["loss.one_minus_beta"], p["loss.alpha"], p["loss.gamma"], p["train.two_stage"]) == \
        ("0.0002", "0.5", "1.0", "True")

    # every two-stage trial that reached epoch 2 trained it at twice the size
    results = sorted((work / "rr" / "smoke").glob("trial_*/result.json"))
    assert len(results) == 3
    for result in results:
        rows = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        sizes = [r["image_size"] for r in rows]
        two_stage = rows[0]["config"]["train"]["two_stage"]
        assert sizes == ([32, 64] if two_stage else [32, 32])[:len(sizes)]
