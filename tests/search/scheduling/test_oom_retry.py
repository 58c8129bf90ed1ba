"""A packed trial that runs out of GPU memory is retried alone from its checkpoint; other failures
keep their resources. A real Tune run on a fake GPU (Ray's resources, no CUDA needed)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from search.scheduling.oom_retry import out_of_memory

ROOT = Path(__file__).resolve().parents[3]


def packed_search(tmp_path, *mode) -> list[str]:
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("packed_oom_run.py")), str(tmp_path), *mode],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


@pytest.mark.slow
def test_only_the_out_of_memory_trial_gets_a_whole_gpu_and_resumes_from_its_checkpoint(tmp_path):
    lines = packed_search(tmp_path)
    results = {r.pop("fail"): r for r in (json.loads(line[7:]) for line in lines if line.startswith("RESULT "))}
    for r in results.values():
        r.pop("trial")
    assert results["oom"] == {"epoch": 3, "gpu": 1.0, "resumed_from": 1, "error": False}
    assert results["none"] == {"epoch": 3, "gpu": 0.5, "resumed_from": 0, "error": False}
    # a bug is retried as Tune retries it (max_failures), on the share it had, and fails again
    assert results["other"]["gpu"] == 0.5 and results["other"]["error"]
    retried = json.loads(next(line for line in lines if line.startswith("RETRIED "))[8:])
    assert list(retried.values()) == [{"CPU": 0.5, "GPU": 0.5}]
    assert "ran out of GPU memory sharing a GPU (0.5 of one): retried alone" in "\n".join(lines)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_real_out_of_memory_between_two_packed_trials_is_retried_alone(tmp_path):
    lines = packed_search(tmp_path, "real")
    results = [json.loads(line[7:]) for line in lines if line.startswith("RESULT ")]
    assert len(results) == 2 and not any(r["error"] for r in results)
    assert sorted(r["gpu"] for r in results) == [0.5, 1.0]   # the one that ran out finished alone
    retried = json.loads(next(line for line in lines if line.startswith("RETRIED "))[8:])
    assert list(retried.values()) == [{"CPU": 0.5, "GPU": 0.5}]


class _Trial:
    def __init__(self, path):
        self.error_file = str(path) if path else None


def test_the_latest_failure_decides(tmp_path):
    f = tmp_path / "error.txt"
    f.write_text("Failure # 1 (occurred at x)\ntorch.OutOfMemoryError: CUDA out of memory.\n"
                 "Failure # 2 (occurred at y)\nRuntimeError: a bug\n")
    assert not out_of_memory(_Trial(f))
    f.write_text("Failure # 1 (occurred at x)\nRuntimeError: a bug\n"
                 "Failure # 2 (occurred at y)\ntorch.OutOfMemoryError: CUDA out of memory.\n")
    assert out_of_memory(_Trial(f))
    assert not out_of_memory(_Trial(None)) and not out_of_memory(_Trial(tmp_path / "missing"))
