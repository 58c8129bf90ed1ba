"""The packing benchmark's CPU smoke mode: K real trials in K processes, and its machine-readable line."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from gpu_packing import together  # noqa: E402


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


def test_packed_trials_count_their_images_over_the_span_they_ran_together():
    # the second starts 0.5 s late and, alone at the end, finishes at 2 s: 200 images in 2 s, not the
    # 100 + 66.7 images/s their own rates add up to
    got = [{"images": 100.0, "begin": 10.0, "end": 11.0, "peak_gib": 1.5, "compile_s": 3.0, "oom": False},
           {"images": 100.0, "begin": 10.5, "end": 12.0, "peak_gib": 2.0, "compile_s": 4.0, "oom": False}]
    assert together(got) == {"img_s": 100.0, "peak_gib": 2.0, "compile_s": 4.0, "oom": False}
    assert together(got[:1] + [{"aborted": True}, {"oom": True}])["oom"] is True
