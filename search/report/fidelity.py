"""What a search's early epochs were worth: how well each ASHA rung's val AUC ranked the trials the way
a later epoch did.

ASHA cuts a trial at a rung because its val AUC there is low; that is only as good as the rank
correlation between that epoch and the end. The search's own trials measure it: over the trials
that reached both the rung and the last epoch (or, when too few ran to the end, the furthest epoch
enough trials reached), Spearman's rho of the two val AUCs. The report shows it per rung, and the
end-of-search printout warns when ASHA cut trials on a rung that ranked them little better than chance.
"""
from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import spearmanr

from search.report.data import Search, Trial

MIN_PAIRS = 4        # fewer trials than this reaching both epochs: no correlation is reported
UNINFORMATIVE = 0.3  # rho below this: the rung ranked trials little better than chance


@dataclass(frozen=True)
class Agreement:
    rung: int
    against: int           # the later epoch the rung is compared with (max_t when enough trials got there)
    pairs: int             # trials that reached both
    rho: float | None      # None: fewer than MIN_PAIRS trials reached both
    cut: int               # trials ASHA stopped at this rung

    @property
    def uninformative(self) -> bool:
        return self.rho is not None and self.rho < UNINFORMATIVE and self.cut > 0


def reached(trials: list[Trial], epoch: int) -> list[Trial]:
    return [t for t in trials if t.at(epoch) is not None]


def _stopped_at(t: Trial) -> int | None:
    return t.epochs if t.status == "stopped_early" else None


def agreement(search: Search) -> list[Agreement]:
    trials = [t for t in search.trials if t.curve]
    try:
        max_t = int(search.param("asha.max_t"))
    except (TypeError, ValueError):
        max_t = max((t.epochs for t in trials), default=0)
    out = []
    for rung in search.rank_epochs():
        at_rung = reached(trials, rung)
        later = [e for e in range(max_t, rung, -1) if len(reached(at_rung, e)) >= MIN_PAIRS]
        against = later[0] if later else max_t
        both = reached(at_rung, against)
        rho = None
        if len(both) >= MIN_PAIRS:
            rho = float(spearmanr([t.at(rung) for t in both], [t.at(against) for t in both]).statistic)
            rho = None if rho != rho else rho  # constant values: undefined
        out.append(Agreement(rung, against, len(both), rho, sum(_stopped_at(t) == rung for t in trials)))
    return out


def lines(found: list[Agreement]) -> list[str]:
    """One line per rung, for the summary, the description and the page."""
    out = []
    for a in found:
        where = f"epoch {a.rung} vs epoch {a.against}"
        if a.rho is None:
            out.append(f"{where}: too few trials reached both ({a.pairs}; {MIN_PAIRS} needed); {a.cut} cut at "
                       f"epoch {a.rung}")
        else:
            out.append(f"{where}: Spearman {a.rho:.2f} over {a.pairs} trials; {a.cut} cut at epoch {a.rung}")
    return out


def warnings(search: Search, found: list[Agreement]) -> list[str]:
    bad = [a for a in found if a.uninformative]
    if not bad:
        return []
    grace = int(search.param("asha.grace_period", 1))
    first_good = min((a.rung for a in found if a.rho is not None and a.rho >= UNINFORMATIVE), default=None)
    advice = f"--grace-period {first_good}" if first_good else f"a --grace-period above {bad[-1].rung}"
    cuts = ", ".join(f"{a.cut} at epoch {a.rung} (Spearman {a.rho:.2f} vs epoch {a.against})" for a in bad)
    return [f"ASHA cut trials on rungs that ranked them little better than chance: {cuts}; the grace period was "
            f"{grace}: rerun with {advice} so cuts wait for an epoch that ranks trials"]


def caveat(found: list[Agreement], epoch: int | None) -> str:
    """What to make of values at `epoch` when that rung ranked trials poorly ('' otherwise)."""
    poor = [a for a in found if a.rung == epoch and a.rho is not None and a.rho < UNINFORMATIVE]
    return (f"; epoch {epoch} ranked trials poorly here (Spearman {poor[0].rho:.2f} vs epoch {poor[0].against}), "
            "so this says little about the end") if poor else ""
