"""The recorder writes a seed's grid from Tune's results into the table, keeps the seeds recorded
before, and says what each seed cost, also when it was recorded in parts."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import replay_record  # noqa: E402

from search.simulation.table import Table  # noqa: E402
from tests.tables import FUSIONS, LAMBDAS  # noqa: E402


def fake_grid(work: Path, seed: int, parts: int) -> None:
    """Tune's results of a 2-epoch grid: every cell's val AUC 0.6 + 0.01 * epoch, 10 s per epoch, and
    one retried epoch 2 in the first cell (its last report counts)."""
    run = work / "ray_results" / f"grid-s{seed}"
    for k, (lam, (fusion, w)) in enumerate((lam, f) for lam in LAMBDAS for f in FUSIONS):
        weight = 0.3 if w is None else w      # avg and max carry the default weights, which they ignore
        config = {"loss": {"lam": lam}, "heads": {"fusion": fusion, "w_d": weight, "w_r": weight}}
        reports = [{"epoch": e, "val_auc": 0.6 + 0.01 * e, "time_this_iter_s": 10.0, "config": config} for e in (1, 2)]
        if k == 0:
            reports.insert(1, {"epoch": 2, "val_auc": 0.1, "time_this_iter_s": 99.0, "config": config})
        (run / f"trial_{k:05d}").mkdir(parents=True)
        (run / f"trial_{k:05d}" / "result.json").write_text("\n".join(json.dumps(r) for r in reports) + "\n")
    for p in range(parts):
        (run / f"experiment_state-2026-12-07_0{p}-00-00.json").write_text("{}")
    (work / f"done-s{seed}").write_text("123\n")


def test_a_seed_recorded_in_parts_joins_the_seeds_recorded_before(tmp_path, monkeypatch):
    work, out = tmp_path / "work", tmp_path / "table.csv"
    monkeypatch.setattr(replay_record, "code_versions", lambda w: {"grid-s0": "v0", "grid-s3": "v3"})
    fake_grid(work, 0, parts=1)
    replay_record.record(work, [0], out, 2)
    fake_grid(work, 3, parts=3)
    replay_record.record(work, [3], out, 2)
    text = out.read_text()
    assert "\r" not in out.read_bytes().decode()      # one line ending, as the committed table has
    assert "# seed 0: code v0, 700 trial-seconds over its cells, recorded in 1 part(s)" in text
    assert "# seed 3: code v3, 700 trial-seconds over its cells, recorded in 3 part(s)" in text
    t = Table.read(out)
    assert t.all_seeds == [0, 3] and t.pool_seeds == [0] and t.held_out == [3]
    first = t.nearest({"loss.lam": 0.0, "heads.fusion": "avg"})
    assert t.curves[first][3] == [0.61, 0.62]      # the retried epoch's last report
