"""Read a table a user wrote by hand or exported from a spreadsheet, or say exactly what is wrong.

Accepts UTF-8 with or without a byte-order mark and Windows line ends; every column is read as text
(an id column with one empty cell stays text instead of turning into floats), so the caller decides
how to convert. Anything else names the file and, where there is one, the line: not UTF-8, empty,
no header, another delimiter than a comma, rows with too many fields. Parquet files are read as
they are. Never pickle.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import MultipredictError
from .messages import one_line
from .outputs import check_input_file

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt", "")
_OTHER_DELIMITERS = (";", "\t", "|")


def read_table(path: str | os.PathLike, *, columns: str, flag: str = "file") -> pd.DataFrame:
    """The table at ``path`` with every CSV column as text; ``columns`` (e.g. ``"arch,latency_ms"``)
    is what the file should hold, for the messages. Column names are stripped of spaces."""
    expected = f"a CSV (or parquet) file with the columns {columns}"
    path = check_input_file(path, flag=flag, expected=expected)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        frame = _read_parquet(path, expected)
    elif suffix in CSV_SUFFIXES:
        frame = _read_csv(path, columns, expected)
    else:
        raise MultipredictError(f"{path}: unsupported file type {path.suffix!r}; give {expected} (.csv or .parquet)")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def bad_numbers(values: pd.Series, *, positive: bool = False) -> tuple[pd.Series, list[int]]:
    """``values`` as floats, and the positions that are not finite numbers (text, empty, inf, NaN)
    or, with ``positive``, not above zero."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    good = np.isfinite(numbers.to_numpy())
    if positive:
        good &= numbers.to_numpy() > 0
    return numbers, np.flatnonzero(~good).tolist()


def latency_ms(frame: pd.DataFrame, origin: str) -> np.ndarray:
    """A measurement table's ``latency_ms`` column as floats, or an error naming the lines that are
    not finite positive milliseconds."""
    latency, bad = bad_numbers(frame["latency_ms"], positive=True)
    if bad:
        values = ", ".join(f"line {i + 2}: {frame['latency_ms'].iloc[i] or '(empty)'}" for i in bad[:10])
        raise MultipredictError(f"{origin}: latency_ms must be a finite positive number of milliseconds; bad values "
                                f"at {values}")
    return latency.to_numpy(float)


def check_unique(keys: pd.Series, origin: str, what: str) -> None:
    """One measurement per ``what`` (arch, model): an error naming the repeated lines."""
    duplicated = keys.duplicated(keep=False).to_numpy()
    if duplicated.any():
        lines = [str(i + 2) for i in np.flatnonzero(duplicated)]
        raise MultipredictError(f"{origin}: the same {what} appears more than once (lines {', '.join(lines[:10])}); "
                                f"keep one measurement per {what} (e.g. the median of repeats)")


def _read_parquet(path: Path, expected: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several types for a damaged or foreign file
        raise MultipredictError(f"{path}: not a readable parquet file ({one_line(str(error))}); give {expected}") \
            from error


def _read_csv(path: Path, columns: str, expected: str) -> pd.DataFrame:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise MultipredictError(f"{path} line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); save the file "
                                f"as UTF-8 (in a spreadsheet: CSV UTF-8)") from None
    if not text.strip():
        raise MultipredictError(f"{path} is empty; expected a header line {columns} and one row per measurement")
    header = text.lstrip().splitlines()[0]
    if "," not in header:
        other = next((d for d in _OTHER_DELIMITERS if d in header), None)
        if other is not None:
            raise MultipredictError(f"{path} line 1: the columns are separated by {other!r}, not by commas "
                                    f"(header {header!r}); save it as comma-separated with the header {columns}")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.ParserError as error:
        raise MultipredictError(f"{path}: not a valid CSV table ({one_line(str(error))}); give {expected}") from None
