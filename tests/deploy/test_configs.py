"""deploy/: the Ray cluster config passes Ray's own schema, the KubeRay manifests are consistent,
the cluster's environment is what search/runner.py reads, and no file holds a secret."""
from __future__ import annotations

import copy
import re
import shlex
import subprocess
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
REMOTE_ROOT = "/home/ray/cxr-tune/"  # where cluster.yaml and the image put this checkout


def cluster() -> dict:
    return yaml.safe_load((DEPLOY / "cluster.yaml").read_text())


def manifests() -> list[dict]:
    docs = []
    for f in sorted((DEPLOY / "kuberay").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return docs


def by_kind(kind: str) -> list[dict]:
    return [d for d in manifests() if d["kind"] == kind]


# ---------------------------------------------------------------- cluster.yaml (Ray autoscaler)

def test_cluster_yaml_passes_rays_schema_validation():
    # What `ray up` does before touching AWS: fill in the provider's defaults, then validate.
    validate_config(prepare_config(cluster()))


@pytest.mark.parametrize("mutate, error", [
    (lambda c: c.update(head_node_typ="head"), jsonschema.ValidationError),       # unknown key
    (lambda c: c["docker"].update(image=["not", "a", "string"]), jsonschema.ValidationError),
    (lambda c: c.update(head_node_type="gpu_8x"), ValueError),                     # no such type
    (lambda c: c.update(max_workers=-1), jsonschema.ValidationError),
])
def test_schema_validation_rejects_a_broken_copy(mutate, error):
    """The validation above can fail: the same call rejects small mistakes."""
    broken = copy.deepcopy(cluster())
    mutate(broken)
    with pytest.raises(error):
        validate_config(prepare_config(broken))


def test_cluster_has_a_cpu_head_and_autoscaling_gpu_types():
    c = cluster()
    types = c["available_node_types"]
    head = types[c["head_node_type"]]
    assert head["resources"] == {"CPU": 0} and "--num-cpus=0" in " ".join(c["head_start_ray_commands"])
    gpus_of = {"g5.2xlarge": 1, "g5.12xlarge": 4}  # AWS: A10G count per instance type
    workers = {k: v for k, v in types.items() if k != c["head_node_type"]}
    assert sorted(gpus_of[w["node_config"]["InstanceType"]] for w in workers.values()) == [1, 4]
    for w in workers.values():
        assert w["resources"]["GPU"] == gpus_of[w["node_config"]["InstanceType"]]
        assert w["min_workers"] == 0 and w["max_workers"] >= 1
    assert c["max_workers"] == sum(w["max_workers"] for w in workers.values())


def test_no_ray_or_mlflow_port_is_open_and_token_auth_is_on():
    c = cluster()
    # A security group per node type stops Ray from creating its own, which opens SSH to 0.0.0.0/0.
    for name, t in c["available_node_types"].items():
        assert t["node_config"].get("SecurityGroupIds"), name
    assert "security_group" not in c["provider"]
    head = " ".join(c["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    for cmd in c["head_start_ray_commands"] + c["worker_start_ray_commands"]:
        if "ray start" in cmd:
            assert "RAY_AUTH_MODE=token ray start" in cmd, cmd
    assert c["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    start = (DEPLOY / "start_mlflow.sh").read_text()
    assert '--host "${MLFLOW_HOST:-127.0.0.1}"' in start and "--app-name basic-auth" in start


def test_every_script_the_cluster_runs_exists():
    c = cluster()
    commands = " ".join(c["setup_commands"] + c["head_start_ray_commands"] + c["worker_start_ray_commands"])
    referenced = set(re.findall(re.escape(REMOTE_ROOT) + r"([\w./-]+\.sh)", commands))
    assert referenced == {"deploy/cluster_env.sh", "deploy/sync_data.sh", "deploy/start_mlflow.sh"}
    for rel in referenced:
        assert (ROOT / rel).is_file(), rel
        subprocess.run(["bash", "-n", str(ROOT / rel)], check=True)  # parses
    assert c["file_mounts"][REMOTE_ROOT.rstrip("/")] == "."


def test_the_cluster_environment_is_what_the_search_script_reads(tmp_path, monkeypatch):
    """`ray submit` runs the script in a login shell on the head: ~/.bashrc sources cluster_env.sh."""
    (tmp_path / ".cxr-tune").mkdir()
    (tmp_path / ".cxr-tune" / "cluster.env").write_text(
        "CXR_TUNE_BUCKET=my-bucket\nMLFLOW_AUTH_ADMIN_USERNAME=alice\nMLFLOW_AUTH_ADMIN_PASSWORD=pw\n")
    env = subprocess.run(["bash", "-c", f". {DEPLOY / 'cluster_env.sh'} && env"], env={"HOME": str(tmp_path)},
                         capture_output=True, text=True, check=True).stdout
    env = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_ADDRESS"] == "auto"
    assert env["MLFLOW_TRACKING_USERNAME"] == "alice" and env["MLFLOW_TRACKING_PASSWORD"] == "pw"
    for key in ("MLFLOW_TRACKING_URI", "CXR_TUNE_STORAGE_PATH", "CXR_TUNE_CACHE", "CXR_TUNE_GPUS_PER_TRIAL",
                "CXR_TUNE_CPUS_PER_TRIAL", "CXR_TUNE_CPUS_PER_GPU"):
        monkeypatch.setenv(key, env[key])
    from search import runner
    from spaces.dualchexnet import SPEC

    args = runner.parse_args(SPEC, ["--data", "/mnt/cxr/data/nih"])
    assert args.storage_path == "s3://my-bucket/ray_results"
    assert args.tracking_uri == "http://127.0.0.1:5000"
    assert args.gpus_per_trial == 1  # no GPU exists yet when an autoscaling cluster starts the search
    assert args.cpus_per_trial == 8  # a g5.2xlarge's CPUs, for the trial's loader workers
    # packed (--trials-per-gpu 2): each trial gets half a GPU and half of the 8 CPUs it brings
    from search.scheduling import packing

    args = runner.parse_args(SPEC, ["--data", "/mnt/cxr/data/nih", "--trials-per-gpu", "2"])
    assert (args.gpus_per_trial, args.cpus_per_trial) == (None, None)
    head = [{"Alive": True, "Resources": {"CPU": 8.0}}]   # no GPU worker yet
    assert packing.plan(args.trials_per_gpu, {}, head, probe=None, declared=args.cpus_per_gpu)[0] \
        == {"gpu": 0.5, "cpu": 4}


def test_dockerfile_matches_this_ray_and_copies_existing_paths():
    text = (DEPLOY / "Dockerfile").read_text()
    # Ray refuses a client whose version differs from the cluster's.
    assert re.search(r"^ARG RAY_VERSION=(\S+)$", text, re.M).group(1) == ray.__version__
    assert "FROM rayproject/ray:${RAY_VERSION}-py311-gpu" in text
    for src in re.findall(r"^COPY --chown=\S+ (.+) /home/ray/cxr-tune/?\S*$", text, re.M):
        for path in src.split():
            assert (ROOT / path).exists(), path
    assert yaml.safe_load((DEPLOY / "cluster.yaml").read_text())["docker"]["image"].endswith(":0.1.0-gpu")


# ---------------------------------------------------------------- KubeRay

def test_kuberay_manifests_parse_and_have_the_pieces():
    kinds = sorted(d["kind"] for d in manifests())
    assert {"RayCluster", "RayJob", "Deployment", "StatefulSet", "Service", "ConfigMap"} <= set(kinds)
    for d in manifests():
        assert d["apiVersion"] and d["metadata"]["name"], d
    assert all(s["spec"]["type"] == "ClusterIP" for s in by_kind("Service"))  # nothing public


# Field names of KubeRay's ray.io/v1 CRDs (RayClusterSpec, WorkerGroupSpec, RayJobSpec): a typo
# here would be dropped silently by an API server without strict field validation.
RAYCLUSTER_FIELDS = {"rayVersion", "enableInTreeAutoscaling", "autoscalerOptions", "headGroupSpec",
                     "workerGroupSpecs", "suspend", "headServiceAnnotations", "authOptions", "managedBy",
                     "gcsFaultToleranceOptions"}
GROUP_FIELDS = {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template",
                "numOfHosts", "scaleStrategy", "suspend", "idleTimeoutSeconds"}
RAYJOB_FIELDS = {"entrypoint", "rayClusterSpec", "clusterSelector", "submitterPodTemplate", "runtimeEnvYAML",
                 "jobId", "metadata", "shutdownAfterJobFinishes", "ttlSecondsAfterFinished", "suspend",
                 "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "submissionMode",
                 "activeDeadlineSeconds", "backoffLimit", "managedBy", "deletionStrategy", "submitterConfig"}


def test_kuberay_specs_use_known_fields():
    (rc,) = by_kind("RayCluster")
    (job,) = by_kind("RayJob")
    assert set(rc["spec"]) <= RAYCLUSTER_FIELDS
    for group in rc["spec"]["workerGroupSpecs"]:
        assert set(group) <= GROUP_FIELDS
    assert set(job["spec"]) <= RAYJOB_FIELDS
    # KubeRay rejects deleting a cluster it did not create: clusterSelector needs this false.
    assert job["spec"]["shutdownAfterJobFinishes"] is False


def test_rayjob_runs_an_existing_script_with_valid_flags():
    from search import runner
    from spaces.dualchexnet import SPEC

    (job,) = by_kind("RayJob")
    (rc,) = by_kind("RayCluster")
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == rc["metadata"]["name"]
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[0] == "python" and argv[1].startswith(REMOTE_ROOT)
    assert (ROOT / argv[1][len(REMOTE_ROOT):]).is_file(), argv[1]
    args = runner.parse_args(SPEC, argv[2:])  # exits on an unknown flag
    worker = rc["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert args.gpus_per_trial <= int(worker["resources"]["limits"]["nvidia.com/gpu"])
    assert args.cpus_per_trial <= float(worker["resources"]["limits"]["cpu"])


def test_gpu_requests_are_consistent():
    (rc,) = by_kind("RayCluster")
    head = rc["spec"]["headGroupSpec"]
    assert all("nvidia.com/gpu" not in c.get("resources", {}).get("limits", {})
               for c in head["template"]["spec"]["containers"])
    assert head["rayStartParams"]["num-cpus"] == "0"
    for group in rc["spec"]["workerGroupSpecs"]:
        (c,) = group["template"]["spec"]["containers"]
        limits, requests = c["resources"]["limits"], c["resources"]["requests"]
        assert limits["nvidia.com/gpu"] == requests["nvidia.com/gpu"] == group["rayStartParams"]["num-gpus"]
        assert int(limits["nvidia.com/gpu"]) >= 1
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_kuberay_images_match_cluster_yaml():
    image = cluster()["docker"]["image"]
    images = set(re.findall(r"^\s*image: (\S+)", "".join(
        f.read_text() for f in (DEPLOY / "kuberay").glob("*.yaml")), re.M))
    assert images - {"postgres:16"} == {image}


def test_secrets_are_referenced_not_inlined():
    assert not by_kind("Secret")  # created by the user with kubectl, never from a file
    for d in manifests():
        for env in re.findall(r"\{'name': '([A-Z_]*(?:PASSWORD|TOKEN|SECRET)[A-Z_]*)', 'value'", str(d)):
            pytest.fail(f"{d['metadata']['name']}: {env} has an inline value")
    token_envs = [e for d in manifests() for e in re.findall(r"'name': 'RAY_AUTH_TOKEN', 'valueFrom': \{'secretKeyRef'", str(d))]
    assert len(token_envs) >= 2  # head + workers (the anchor repeats it) + the job submitter


# ---------------------------------------------------------------- no secret in any file

SECRET_KEY = r"(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)"
ASSIGN = re.compile(rf"\b\w*{SECRET_KEY}\w*\s*[:=]\s*['\"]?([^\s'\"#,}}]+)", re.I)
URI_CREDS = re.compile(r"://[^/\s:@]+:([^@\s/]+)@")
LITERALS = [re.compile(p) for p in (
    r"AKIA[0-9A-Z]{16}",                          # AWS access key id
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"\b[0-9a-f]{32,}\b",                         # hex tokens (Ray's, Flask keys)
    r"\b[A-Za-z0-9+/]{40,}={0,2}(?![\w/])",       # base64 blobs
)]


def is_reference(value: str) -> bool:
    """An env or k8s reference (`${X:?...}`, `$(X)`), a placeholder in capitals, or a pointer to
    where the value lives (a path, a secret's name)."""
    v = value.strip("'\"")
    return (v.startswith(("$", "{", "~", "/", "<", ":?", "?", ":-", "-")) or v.isupper() or "REPLACE_ME" in v
            or v in {"token", "valueFrom", "secretKeyRef", "auth_token", "disabled"}
            or v.endswith((":", ".ini", ".sh")) or re.fullmatch(r"[\w.-]*(?:secret|token|password)[\w.-]*", v, re.I) is not None)


def secrets_in(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not LITERALS[0].search(line):
            continue  # prose; a real key id in a comment still counts
        for m in ASSIGN.finditer(line):
            if m.group(1) and not is_reference(m.group(1)):
                found.append(line.strip())
        for m in URI_CREDS.finditer(line):
            if not is_reference(m.group(1)):
                found.append(line.strip())
        found += [line.strip() for p in LITERALS if p.search(line)]
    return found


@pytest.mark.parametrize("text", [
    "MLFLOW_AUTH_ADMIN_PASSWORD=hunter2hunter2",
    "  admin_password: s3cr3t-Value",
    "MLFLOW_BACKEND_STORE_URI=postgresql+psycopg://mlflow:pa55word@db:5432/mlflow",
    "RAY_AUTH_TOKEN: 3f9a0c1d2e4b5a6978877665544332211aabbccddeeff00",
    "aws_key = AKIAIOSFODNN7EXAMPLE",
])
def test_the_secret_scan_catches_planted_secrets(text):
    assert secrets_in(text), text


@pytest.mark.parametrize("text", [
    "MLFLOW_AUTH_ADMIN_PASSWORD=",
    "value: postgresql+psycopg://mlflow:$(POSTGRES_PASSWORD)@cxr-tune-postgres:5432/mlflow",
    'export MLFLOW_TRACKING_PASSWORD="${MLFLOW_TRACKING_PASSWORD:-${MLFLOW_AUTH_ADMIN_PASSWORD:-}}"',
    "secretKeyRef: {name: cxr-tune-ray-auth, key: auth_token}",
    ': "${MLFLOW_AUTH_ADMIN_PASSWORD:?set it in ~/.cxr-tune/cluster.env}"',
    ": postgresql+psycopg://USER:PASS@HOST:5432/mlflow",
])
def test_the_secret_scan_lets_references_through(text):
    assert not secrets_in(text), secrets_in(text)


def test_no_file_under_deploy_contains_a_password_or_token():
    files = [f for f in DEPLOY.rglob("*") if f.is_file()]
    assert len(files) >= 10
    leaks = {str(f.relative_to(ROOT)): s for f in files if (s := secrets_in(f.read_text()))}
    assert not leaks, leaks


def test_store_uris_name_the_driver_the_image_installs():
    """SQLAlchemy 2.1 reads postgresql:// as psycopg 3, 2.0 as psycopg2: the URIs say which, and the
    image installs it through the deploy extra, the same list the stack test runs on."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("psycopg[binary]") for d in extras["deploy"])
    assert "cxr-tune[deploy]" in extras["dev"]
    assert '"/home/ray/cxr-tune[deploy]"' in (DEPLOY / "Dockerfile").read_text()
    uris = [(f.name, m) for f in DEPLOY.rglob("*") if f.is_file()
            for m in re.findall(r"postgres\w*(?:\+\w+)?://", f.read_text())]
    assert len(uris) >= 6, uris  # cluster.env.example, start_mlflow.sh, kuberay/mlflow.yaml
    assert {m for _, m in uris} == {"postgresql+psycopg://"}, uris
