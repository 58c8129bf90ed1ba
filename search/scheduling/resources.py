"""Can any node run one trial? Checked before fit(), per node, not against cluster totals.

Without this, a request no node can meet (`--gpus-per-trial 1` on a CPU machine, 64 CPUs on an
8-CPU node) leaves every trial PENDING forever, with only a warning from Tune each minute. With
an autoscaler a bigger node may still come: then the search starts and says what it waits for.
"""
from __future__ import annotations

import json
import os

from trainables.errors import UserError

GIB = 2 ** 30
FLAGS = {"CPU": "--cpus-per-trial", "GPU": "--gpus-per-trial", "memory": "--memory-per-trial"}


class ResourcesUnavailable(UserError):
    pass


def describe(request: dict) -> str:
    return ", ".join(f"{v / GIB:g} GiB memory" if k == "memory" else f"{v:g} {k}" for k, v in request.items())


def unmet(request: dict, nodes: list[dict]) -> str | None:
    """None when an alive node has every requested resource; else what the largest nodes have."""
    request = {k: v for k, v in request.items() if v}
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive")]
    if any(all(res.get(k, 0) >= v for k, v in request.items()) for res in alive):
        return None
    short = [k for k, v in request.items() if max((res.get(k, 0) for res in alive), default=0) < v]
    have = describe({k: max((res.get(k, 0) for res in alive), default=0) for k in request}) or "nothing"
    flags = ", ".join(FLAGS[k] for k in (short or request) if k in FLAGS)
    return (f"no node can run a trial: each trial asks for {describe(request)}, and the largest of the "
            f"{len(alive)} alive node(s) have at most {have}; lower {flags}, or add a node that has it")


def autoscaling() -> bool:
    """Whether an autoscaler can add nodes to this cluster. CXR_TUNE_AUTOSCALING=1/0 says so
    outright. Otherwise: every head runs a monitor that publishes a status in the GCS, and on a
    cluster started by hand (or a local Ray) it is a read-only one whose node types are the
    nodes themselves, `node_<id>`; a real autoscaler reports its configured types."""
    forced = os.environ.get("CXR_TUNE_AUTOSCALING")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        from ray._private.ray_constants import DEBUG_AUTOSCALING_STATUS
        from ray.experimental.internal_kv import _internal_kv_get

        report = json.loads(_internal_kv_get(DEBUG_AUTOSCALING_STATUS) or b"{}").get("autoscaler_report") or {}
        types = set(report.get("active_nodes") or {}) | set(report.get("idle_nodes") or {}) \
            | set(report.get("pending_launches") or {})
        if any(not t.startswith("node_") for t in types):
            return True
        from ray.autoscaler.v2.utils import is_autoscaler_v2

        return bool(is_autoscaler_v2())
    except Exception:  # noqa: BLE001 - no GCS key, no v2 module: treat as a fixed cluster
        return False


def check_resources(request: dict, nodes: list[dict], scaling: bool) -> None:
    problem = unmet(request, nodes)
    if problem is None:
        return
    if not scaling:
        raise ResourcesUnavailable(problem)
    print(f"pending: {problem.split(';')[0]}; the autoscaler must add such a node before trials start "
          "(`ray status` shows its progress)", flush=True)
