"""CSV time series: one column per variable, an optional time column, a header line
(:func:`read_csv` returns a :class:`~lstmkit.data.frame.TimeSeriesFrame`; the missing-value
policy and the error messages: :mod:`lstmkit.data.frame`)."""

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lstmkit.data.frame import (
    MISSING_POLICIES,
    TIME_COLUMN_NAMES,
    TimeSeriesFrame,
    _as_path,
    _check_missing,
    _fill_missing,
    _is_number,
    _number,
    _read_text,
)
from lstmkit.messages import listed, short_errors


def _csv_rows(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """(line number of the record's last line, fields) for each record; blank lines at
    the start and end dropped."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        rows = [(reader.line_num, fields) for fields in reader]
    except csv.Error as e:
        raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({e})") from None
    while rows and not rows[-1][1]:
        rows.pop()
    while rows and not rows[0][1]:
        rows.pop(0)
    return rows


def _csv_header(path: Path, line: int, header: list[str]) -> tuple[list[str], int]:
    """Stripped column names and the first named column (1 after an unnamed index)."""
    names = [h.strip() for h in header]
    start = 1 if len(names) > 1 and names[0] == "" else 0
    seen: dict[str, int] = {}  # name → its first column (a set, not a scan: wide files)
    for j in range(start, len(names)):
        if names[j] == "":
            raise ValueError(
                f"{path}, line {line}: column {j + 1} has an empty name; expected a name for "
                f"every column (only a leading index column may be unnamed)"
            )
        if names[j] in seen:
            first = seen[names[j]] + 1
            raise ValueError(
                f"{path}, line {line}: duplicate column name {names[j]!r} (columns {first} "
                f"and {j + 1}); expected unique names"
            )
        seen[names[j]] = j
    return names, start


@short_errors
def read_csv(
    path: str | os.PathLike,
    *,
    time_column: str | None = "auto",
    columns: Sequence[str] | None = None,
    missing: str = "error",
) -> TimeSeriesFrame:
    """Read a wide CSV time series: one row per time step, one column per variable.

    The first line is the header. A leading column with an empty name (the row index
    pandas' ``to_csv`` writes) is dropped. Header names and cells are stripped of
    surrounding spaces; quoted fields and a UTF-8 byte-order mark are handled; blank
    lines at the start and end are ignored (in a one-column file, a blank line inside
    is an empty, i.e. missing, cell).

    Args:
        path: the CSV file.
        time_column: ``"auto"`` (default): the first named column holds time labels if
            its name is one of date, time, month, year, quarter, timestamp, ds, index (any
            case) or if it holds a cell that is not a number, and the file has another
            column; a column name: that column; ``None``: no time column.
        columns: the value columns to read, in this order (default: every column but the
            time column). Columns not read are not parsed.
        missing: ``"error"``, ``"ffill"``, ``"interpolate"`` or ``"drop"`` (see the module
            docstring).

    Returns:
        A :class:`TimeSeriesFrame`; ``time`` holds the time column's cells as written.

    Raises:
        ValueError: an empty or header-only file, duplicate or empty column names, a row
            with a different number of fields than the header, an unknown column, a
            non-numeric or infinite cell, a missing value the policy cannot handle.
    """
    _check_missing(missing, MISSING_POLICIES)
    path = _as_path(path)
    rows = _csv_rows(path, _read_text(path))
    if not rows:
        raise ValueError(f"{path}: empty file; expected a header line and data rows, got none")
    header_line, header = rows[0]
    names, start = _csv_header(path, header_line, header)
    data = rows[1:]
    if not data:
        raise ValueError(
            f"{path}: header only (line {header_line}); expected at least one data row "
            f"after the header, got none"
        )
    width = len(names)
    for i, (line, fields) in enumerate(data):
        if not fields and width == 1:
            data[i] = (line, [""])
        elif len(fields) != width:
            got = "a blank line" if not fields else f"{len(fields)}"
            raise ValueError(
                f"{path}, line {line}: expected {width} fields (as in the header), got {got}"
            )

    named = names[start:]
    if time_column == "auto":
        first = names[start]
        is_time = first.lower() in TIME_COLUMN_NAMES or not all(
            _is_number(fields[start]) for _, fields in data
        )
        time_name = first if is_time and len(named) > 1 else None
    elif time_column is None:
        time_name = None
    elif isinstance(time_column, str):
        if time_column not in named:
            raise ValueError(
                f"{path}: unknown time column {time_column!r}; available: {listed(named)}"
            )
        time_name = time_column
    else:
        raise TypeError(f"time_column: expected 'auto', a column name or None, got {time_column!r}")

    available = [n for n in named if n != time_name]
    if columns is None:
        chosen = available
    else:
        if isinstance(columns, str):
            raise TypeError(f"columns: expected a sequence of column names, got {columns!r}")
        chosen = list(columns)
        if not chosen:
            raise ValueError(f"{path}: columns: expected at least one column name, got none")
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"{path}: columns: expected unique names, got {chosen}")
        for name in chosen:
            if name == time_name:
                raise ValueError(
                    f"{path}: column {name!r} is the time column; expected a value column, "
                    f"one of {listed(available)} (or pass time_column=None)"
                )
            if name not in available:
                raise ValueError(
                    f"{path}: unknown column {name!r}; available: {listed(available) or 'none'}"
                )
    if not chosen:
        raise ValueError(
            f"{path}: no value columns; expected a column besides the time column "
            f"{time_name!r}, got none"
        )

    column = {name: j for j, name in enumerate(names) if j >= start}
    index = [column[n] for n in chosen]
    values = np.empty((len(data), len(index)), dtype=np.float64)  # (T, D)
    for t, (line, fields) in enumerate(data):
        for k, j in enumerate(index):
            try:
                values[t, k] = _number(fields[j])
            except ValueError as e:
                raise ValueError(f"{path}, line {line}, column {names[j]!r}: {e}") from None

    def where(t: int | None, k: int) -> str:
        at = f", line {data[t][0]}" if t is not None else ""
        return f"{path}{at}, column {chosen[k]!r}"

    values, keep = _fill_missing(values, missing, where, str(path))
    time = None
    if time_name is not None:
        kept = data if keep is None else [row for row, k in zip(data, keep, strict=True) if k]
        time = tuple(fields[column[time_name]].strip() for _, fields in kept)
    return TimeSeriesFrame(values, tuple(chosen), time)
