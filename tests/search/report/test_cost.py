"""The report's cost line: the parent's GPU-hours and trial-epochs, and the GPUs' mean utilisation."""
from mlflow.tracking import MlflowClient

from search.report import cost
from search.report import data as report_data


def search_with(tmp_path, parent_metrics: dict, trial_util: list[dict]):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("dual_weights")
    parent = client.create_run(exp, run_name="search", tags={"cxr.role": "search"})
    for k, v in parent_metrics.items():
        client.log_metric(parent.info.run_id, k, v)
    for i, per_epoch in enumerate(trial_util):
        run = client.create_run(exp, run_name=f"t{i}", start_time=i, tags={
            "mlflow.parentRunId": parent.info.run_id, "cxr.role": "trial", "cxr.status": "completed"})
        for key, values in per_epoch.items():
            for epoch, v in enumerate(values, 1):
                client.log_metric(run.info.run_id, key, v, step=epoch)
    return client, report_data.load(client, client.get_run(parent.info.run_id))


def test_gpu_hours_epochs_and_the_mean_utilisation_over_every_trials_epochs(tmp_path):
    client, search = search_with(tmp_path, {"search_gpu_hours": 1.25, "search_trial_epochs": 9}, [
        {"system/gpu_0_utilization_percentage": [40, 60, 80], "system/cpu_utilization_percentage": [99, 99, 99]},
        {"system/gpu_0_utilization_percentage": [20]}])
    assert cost.gpu_utilisation(client, search) == 50.0   # (40 + 60 + 80 + 20) / 4; the CPU's is not a GPU's
    assert cost.lines(client, search) == [
        "cost: 1.25 GPU-hours (each trial's time x its GPU share), 9 trial-epochs; the GPUs were 50 % busy on "
        "average over the trials' epochs"]


def test_a_cpu_search_says_so_and_an_old_one_says_nothing(tmp_path):
    client, search = search_with(tmp_path / "a", {"search_gpu_hours": 0.0, "search_trial_epochs": 14}, [{}])
    assert cost.lines(client, search) == ["cost: 14 trial-epochs, on CPUs (no GPU-hours)"]
    client, search = search_with(tmp_path / "b", {}, [{}])
    assert cost.lines(client, search) == []
