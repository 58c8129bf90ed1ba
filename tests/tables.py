"""Hand-built recorded tables in the documented format (docs/recorded_tables.md), for the table
reader's, the replay's and the simulated trainable's tests."""
from pathlib import Path

LAMBDAS = (0.0, 0.5, 1.0, 1.5, 2.0)
# DualCheXNet's 7 fusions as the recorded table has them: (fusion, w_d = w_r or None)
FUSIONS = [("avg", None), ("max", None)] + [("concat", round(0.1 * k, 1)) for k in range(5)]
DUAL_HEADER = """# table: hand-built
# metric: val_auc max
# param: loss.lam float 0 2
# param: heads.fusion choice concat|avg|max
# param: heads.w_d float 0 0.5
# param: heads.w_r float 0 0.5
# warm: loss.lam=0.5 heads.fusion=concat heads.w_d=0.3 heads.w_r=0.3
{pool}# a comment line, as the recorder writes them
seed,loss.lam,heads.fusion,heads.w_d,heads.w_r,epoch,val_auc,seconds
"""


def cell_name(lam: float, fusion: str, w) -> str:
    return f"{lam} {fusion}{'' if w is None else round(w * 10)}"


def write_dual(path: Path, value, seeds=(0, 1, 2), epochs: int = 6, pool: str | None = None,
               seconds=lambda cell, s, e: 1.0) -> Path:
    """DualCheXNet's 35 cells; value(cell name e.g. '0.5 concat3', seed, epoch) -> val AUC, and
    seconds(the same) -> the epoch's seconds."""
    rows = []
    for lam in LAMBDAS:
        for fusion, w in FUSIONS:
            cells = f"{lam},{fusion},{'' if w is None else w},{'' if w is None else w}"
            name = cell_name(lam, fusion, w)
            rows += [f"{s},{cells},{e},{value(name, s, e)},{seconds(name, s, e)}"
                     for s in seeds for e in range(1, epochs + 1)]
    path.write_text(DUAL_HEADER.format(pool=f"# pool: {pool}\n" if pool else "") + "\n".join(rows) + "\n")
    return path
