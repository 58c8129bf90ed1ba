"""ASHA's rungs, as Ray's ASHA places them. No Ray here: the report reads them too."""
from __future__ import annotations


def milestones(grace: int, eta: int, max_t: int) -> tuple[int, ...]:
    """The epochs where ASHA compares trials before their last: grace, grace x eta, ... below max_t."""
    out, epoch = [], grace
    while epoch < max_t:
        out.append(epoch)
        epoch *= eta
    return tuple(out)
