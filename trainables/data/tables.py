"""Reading a dataset's CSV and list files: any malformed file becomes a DataError naming it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from trainables.data import DataError
from trainables.errors import one_line


def read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty (no header, no rows); re-download it from the dataset's release") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path} is not a readable CSV ({type(err).__name__}: {one_line(err)[:200]}); "
                        "it may be truncated or not a CSV at all: re-download it") from None


def read_lines(path: Path) -> list[str]:
    """Non-blank lines, stripped."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a text file of image names, one per line; re-download it") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def require_values(df: pd.DataFrame, columns, path: Path) -> None:
    """Every row has a non-blank value in each of `columns` (pandas reads blanks as NaN)."""
    for col in columns:
        blank = df.index[df[col].isna() | (df[col].astype(str).str.strip() == "")]
        if len(blank):
            lines = ", ".join(str(i + 2) for i in blank[:5])  # the header is line 1
            raise DataError(f"{path} has {len(blank)} row(s) with no {col!r} (line(s) {lines}"
                            f"{', ...' if len(blank) > 5 else ''}); the file may be truncated: re-download it")
