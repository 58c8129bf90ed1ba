"""Per-epoch system metrics: means of the samples since the last epoch, the trial's own GPUs only."""
from collections import defaultdict

from trainables.system_metrics import SystemSampler, visible_gpus


class FakeGPUs:
    """Two GPUs with fixed readings per sample, as MLflow's GPUMonitor names them."""

    def __init__(self, readings):
        self.readings, self.metrics = iter(readings), defaultdict(list)

    def collect_metrics(self):
        for name, value in next(self.readings).items():
            self.metrics[name].append(value)

    def aggregate_metrics(self):
        return {k: round(sum(v) / len(v), 1) for k, v in self.metrics.items()}

    def clear_metrics(self):
        self.metrics.clear()


def test_an_epoch_gets_the_mean_of_its_samples_for_the_trials_gpu_only():
    gpus = FakeGPUs([{"gpu_0_utilization_percentage": 10, "gpu_1_utilization_percentage": 50},
                     {"gpu_0_utilization_percentage": 20, "gpu_1_utilization_percentage": 70},
                     {"gpu_0_utilization_percentage": 0, "gpu_1_utilization_percentage": 90},
                     {"gpu_0_utilization_percentage": 5, "gpu_1_utilization_percentage": 31}])
    sampler = SystemSampler(interval=3600, monitors=[gpus], gpus=[1])
    try:
        sampler.sample()
        sampler.sample()
        first = sampler.take()   # the two samples and one at the epoch's end
        assert first["system/gpu_1_utilization_percentage"] == 70.0
        assert "system/gpu_0_utilization_percentage" not in first
        assert first["system/process_memory_megabytes"] > 10   # this Python process's resident memory
        assert sampler.take()["system/gpu_1_utilization_percentage"] == 31.0   # the next epoch starts over
    finally:
        sampler.close()


def test_the_real_cpu_monitor_reports_the_node_figures():
    sampler = SystemSampler(interval=3600, gpus=[])
    try:
        got = sampler.take()
        assert 0 <= got["system/cpu_utilization_percentage"] <= 100
        assert got["system/system_memory_usage_megabytes"] > 0
    finally:
        sampler.close()


def test_the_trials_gpus_are_those_ray_made_visible(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == [2, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus() is None
