"""Text for a terminal: lines of at most WIDTH columns. No Ray here: the report and the evaluation
print through it and load without Ray (tests/search/report/test_no_ray.py)."""
from __future__ import annotations

import shutil
import textwrap

WIDTH = 100


def width() -> int:
    return min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)


def fit(text: str, cols: int | None = None) -> str:
    cols = cols or width()
    return text if len(text) <= cols else text[:cols - 1] + "…"


def say(text: str = "") -> None:
    """Print `text` with each line wrapped at WIDTH columns, continued two spaces further in; a word
    longer than that (a path, a URL) stays whole, on a line of its own."""
    for line in text.split("\n"):
        indent = " " * (len(line) - len(line.lstrip(" ")))
        print(textwrap.fill(line, WIDTH, subsequent_indent=indent + "  ", break_long_words=False,
                            break_on_hyphens=False) if line.strip() else line, flush=True)


def clock(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{s:02d}" if minutes >= 60 else f"{minutes}:{s:02d}"
