"""Every command the README names still answers where users call it, whatever the layout inside:
the module paths, the console scripts pyproject installs, and a search script run as a file."""
import functools
import re
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
    return _help(tuple(cmd))


@functools.cache   # each command starts Python with Ray and MLflow imported: once per command
def _help(cmd: tuple[str, ...]) -> str:
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


def option_blocks(text: str) -> dict[str, str]:
    """argparse's help, one block of text per option: its line and the lines indented under it."""
    blocks, flag = {}, None
    for line in text.splitlines():
        if re.match(r"  \S", line):   # an option's or an argument's first line
            flag = line.split()[0].rstrip(",")
            blocks[flag] = line
        elif flag and line.startswith("    "):
            blocks[flag] += " " + line.strip()
        else:
            flag = None
    return blocks


@pytest.mark.parametrize("cmd,flag", COMMANDS, ids=[" ".join(c) for c, _ in COMMANDS])
def test_help_states_each_default_once(cmd, flag):
    """A flag's own "default: the profile's" and argparse's "(default: None)" after it said it twice."""
    blocks = option_blocks(help_text([sys.executable, *cmd]))
    assert flag in blocks
    for option, block in blocks.items():
        assert "(default: None)" not in block, option
        assert block.lower().count("default") <= 1, f"{option}: {block}"
