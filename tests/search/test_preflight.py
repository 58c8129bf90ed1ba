"""Before a search starts: can any node run a trial, and does the tracking store answer?"""
import time

import pytest

from search.scheduling.resources import ResourcesUnavailable, check_resources, unmet
from search.tracking.check import TrackingUnavailable, check_tracking
from tests.ports import free_port

GIB = 2 ** 30


def node(cpu, gpu=0, mem=16, alive=True):
    return {"Alive": alive, "Resources": {"CPU": cpu, "memory": mem * GIB, **({"GPU": gpu} if gpu else {})}}


def test_a_request_is_met_per_node_not_by_cluster_totals():
    cluster = [node(8, 1), node(8, 1), node(2)]
    assert unmet({"CPU": 8, "GPU": 1}, cluster) is None
    message = unmet({"CPU": 12, "GPU": 1}, cluster)  # 18 CPUs in all, but no node has 12
    assert "asks for 12 CPU, 1 GPU" in message and "at most 8 CPU, 1 GPU" in message
    assert "--cpus-per-trial" in message and "--gpus-per-trial" not in message
    assert "--gpus-per-trial" in unmet({"CPU": 1, "GPU": 2}, cluster)
    assert "GiB memory" in unmet({"CPU": 1, "memory": 64 * GIB}, cluster)
    assert unmet({"CPU": 1, "GPU": 1}, [node(8, 1, alive=False), node(8)]) is not None  # dead nodes do not count


def test_without_an_autoscaler_it_fails_with_an_autoscaler_it_says_what_is_pending(capsys):
    with pytest.raises(ResourcesUnavailable, match="no node can run a trial"):
        check_resources({"CPU": 1, "GPU": 1}, [node(2)], scaling=False)
    check_resources({"CPU": 1, "GPU": 1}, [node(2)], scaling=True)
    assert capsys.readouterr().out.startswith("pending: no node can run a trial")



def test_an_unreachable_server_is_named_within_the_timeout():
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(TrackingUnavailable, match=f"{uri} did not answer within 2 s .*--tracking-uri"):
        check_tracking(uri, timeout=2)
    assert time.monotonic() - start < 4


def test_a_local_store_needs_a_writable_folder(tmp_path):
    check_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")
    check_tracking(str(tmp_path / "mlruns" / "deeper"))  # MLflow makes a file store's folders
    with pytest.raises(TrackingUnavailable, match="nowhere does not exist"):
        check_tracking(f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}")


def test_only_an_autoscaler_with_node_types_counts(monkeypatch):
    import json

    import ray.experimental.internal_kv as kv

    from search.scheduling.resources import autoscaling

    def status(*types):
        report = {"autoscaler_report": {"active_nodes": {t: 1 for t in types}, "pending_launches": {}}}
        return lambda key: json.dumps(report).encode()

    monkeypatch.setattr("ray.autoscaler.v2.utils.is_autoscaler_v2", lambda: False)
    monkeypatch.setattr(kv, "_internal_kv_get", status("node_4f1c0e9a"))  # `ray start` by hand: read-only
    assert not autoscaling()
    monkeypatch.setattr(kv, "_internal_kv_get", status("head", "gpu_worker"))  # deploy/cluster.yaml
    assert autoscaling()
    monkeypatch.setenv("CXR_TUNE_AUTOSCALING", "0")
    assert not autoscaling()
