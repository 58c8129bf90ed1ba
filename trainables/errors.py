"""Mistakes a user can fix, and how every command reports them: `error: <message>`, exit 2.

A `UserError`'s message names what is wrong and how to fix it, so a traceback adds nothing;
`CXR_TUNE_DEBUG=1` shows it anyway. Anything else is a bug in cxr-tune and keeps its traceback.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys

EXIT_USER_ERROR = 2  # argparse's status for a bad command line


class UserError(Exception):
    """Bad input: a flag, a config, a dataset, a server or a resource request."""


class UsageError(UserError):
    """A flag or argument out of range or in conflict with another."""


def one_line(message: str) -> str:
    return " ".join(str(message).split())


def cli(main):
    """Wrap a command's main(): a UserError becomes one line on stderr and exit status 2."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            if os.environ.get("CXR_TUNE_DEBUG") == "1":
                raise
            print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_USER_ERROR) from None
    return wrapper


class DefaultOnce(argparse.HelpFormatter):
    """Help that states each default once: a flag's own text where it says "default", else
    "(default: X)" from the value, and nothing for None or a switch (argparse's
    ArgumentDefaultsHelpFormatter prints "(default: None)" after "default: the profile's")."""

    def _get_help_string(self, action):
        text = action.help or ""
        unstated = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text.lower() or unstated or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class Parser(argparse.ArgumentParser):
    """argparse whose errors are UserErrors, so `cli` prints them as one line like any other.
    No abbreviated flags: a typo such as --num-sample must not pass for --num-samples."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", DefaultOnce)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def at_least(low, kind=int, high=None):
    """An argparse type: a number of `kind` >= low (and <= high, if given)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not value >= low:  # NaN too
            raise argparse.ArgumentTypeError(f"{text} must be >= {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{text} must be <= {high}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse
