"""The packing benchmark's CPU smoke mode: K real trials in K processes, and its machine-readable line."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_smoke_mode_runs_packed_trials_and_prints_the_packing_line():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_packing.py"), "--smoke", "--setups", "cb_focal"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^cb_focal compile=off k=2: [\d.]+ images/s", proc.stdout, re.M)
    line = re.search(r"^packing cb_focal: k1_img_s=([\d.]+) best_img_s=([\d.]+) gain=([\d.]+) at k=([12]) "
                     r"compile=off peak_gib=0.00$", proc.stdout, re.M)
    assert line, proc.stdout
    k1, best, gain = (float(line.group(i)) for i in (1, 2, 3))
    assert k1 > 0 and best >= k1 and gain == pytest.approx(best / k1, abs=0.01)


def test_without_a_gpu_the_real_mode_says_how_to_run_it():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_packing.py")], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    if proc.returncode == 0:
        pytest.skip("a CUDA device is visible here")
    assert "error: no CUDA device" in proc.stderr and "--smoke" in proc.stderr
