"""Every command the README names still answers where users call it, whatever the layout inside:
the module paths, the console scripts pyproject installs, and a search script run as a file."""
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (how it is called, a flag its --help must list: it is that command's parser, not another's)
# `python -m search.report --help` is tests/search/report/test_no_ray.py's.
COMMANDS = [
    (["-m", "search.evaluate"], "--retrain"),
    (["-m", "search.sync"], "path"),
    (["-m", "search.export"], "--top"),
    (["-m", "trainables.train"], "--config"),
    (["search/dual_weights.py"], "--grace-period"),  # the other four run as files in their e2e tests
]
SCRIPTS = {"cxr-train": "--config", "cxr-export": "--top", "cxr-evaluate": "--retrain", "cxr-sync": "path"}


def help_text(cmd: list[str]) -> str:
    out = subprocess.run([*cmd, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.mark.parametrize("cmd,flag", COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_each_documented_command_answers_help(cmd, flag):
    assert flag in help_text([sys.executable, *cmd])


def test_the_console_scripts_are_the_ones_pyproject_installs():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(declared) == set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_each_console_script_answers_help(script):
    path = shutil.which(script)
    assert path, f"{script} is not on PATH: pip install -e . installs it"
    assert SCRIPTS[script] in help_text([path])
