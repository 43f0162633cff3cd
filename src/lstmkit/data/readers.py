r"""Readers: CSV time series, UEA/UCR ``.ts`` files, ``.npz`` archives and in-memory data.

Everything comes back as float64 NumPy arrays; no pandas is needed (a pandas
``DataFrame``/``Series`` is accepted by :func:`as_frame`, recognised by duck typing).

Shapes (T time steps, D variables or dimensions, N cases):

============  =======================================================  ===============
function      returns                                                  for
============  =======================================================  ===============
read_csv      :class:`TimeSeriesFrame`: values (T, D), column names,   forecasting
              time labels or ``None``
as_frame      :class:`TimeSeriesFrame` from a DataFrame, Series or      forecasting
              (T,) / (T, D) array
read_ts       X: N arrays (T_i, D); y: (N,) str labels, (N,) float      classification,
              targets or ``None``                                      regression
read_npz      X: (N, ...) array or N arrays; y: (N, ...) or ``None``   sequence tasks
as_sequences  N float64 arrays (T_i, D)                                sequence tasks
============  =======================================================  ===============

Missing values follow one explicit policy, ``missing``:

* ``"error"`` (default): the first missing value raises ``ValueError`` naming where it is;
* ``"ffill"``: each variable carries its last value forward; a missing first value
  cannot be filled and raises;
* ``"interpolate"``: linear in the row (time step) index, the edges take the nearest
  value: :math:`x_t = x_a + (x_b - x_a)(t - a)/(b - a)` between known steps a < t < b;
* ``"drop"``: rows with any missing value are removed (:func:`read_csv` and
  :func:`as_frame` only; a ``.ts`` case cannot lose steps in one dimension alone).

In CSV files an empty cell, ``NA``, ``NaN``, ``nan`` and ``?`` are missing (so is any
other spelling that ``float`` reads as NaN); in ``.ts`` files ``?`` (and NaN). Infinite
values are never accepted.

Malformed input raises ``ValueError`` whose message starts with the file and the line
(1-based; a CSV header is line 1), names the column or dimension, and says what was
expected and what came. A missing file raises ``FileNotFoundError``; a directory,
``ValueError``.
"""

import csv
import io
import math
import os
import re
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmkit.budget import memory_budget
from lstmkit.messages import listed, short_errors, shown

MISSING_POLICIES = ("error", "ffill", "interpolate", "drop")
# Training runs in float32 (largest 3.4e38) on standardised values whose variance squares
# them: larger inputs overflow to infinity or NaN somewhere, so they are refused on entry.
MAX_MAGNITUDE = 1e30


def check_magnitude(array: np.ndarray, what: str) -> None:
    """ValueError naming the first value of ``array`` (finite, float64) beyond
    :data:`MAX_MAGNITUDE`; ``what(index)`` says where it is."""
    if array.size and np.abs(array).max() > MAX_MAGNITUDE:
        index = tuple(int(i) for i in np.argwhere(np.abs(array) > MAX_MAGNITUDE)[0])
        raise ValueError(
            f"{what(index)}: expected values of magnitude at most {MAX_MAGNITUDE:g} (training "
            f"is in float32), got {array[index]:g}"
        )


MISSING_TOKENS = frozenset({"", "NA", "NaN", "nan", "?"})
TIME_COLUMN_NAMES = frozenset(
    {"date", "time", "month", "year", "quarter", "timestamp", "ds", "index"}
)
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned int, float

# Where a value sits, for error messages: (row or step index or None for the whole
# variable, variable index) -> "file, line 7, column 'x'".
_Where = Callable[[int | None, int], str]


# -- the frame --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TimeSeriesFrame:
    """One multivariate time series: ``values`` (T, D) float64, one name per column.

    ``time`` holds the time labels as written (stripped of spaces; e.g. ``'1949-01'``),
    one per row, or ``None`` where the source had none. Frames compare by identity
    (``eq=False``): compare ``values`` with NumPy.
    """

    values: np.ndarray
    columns: tuple[str, ...]
    time: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 2:
            raise ValueError(
                f"values: expected a 2-D array (T, D), got {values.ndim}-D of shape {values.shape}"
            )
        columns = tuple(self.columns)
        if not all(isinstance(c, str) for c in columns):
            raise TypeError("columns: expected str names, got " + repr(columns))
        if len(columns) != values.shape[1]:
            raise ValueError(
                f"columns: expected {values.shape[1]} names (values has D = "
                f"{values.shape[1]}), got {len(columns)}"
            )
        if len(set(columns)) != len(columns):
            raise ValueError(f"columns: expected unique names, got {columns}")
        time = None if self.time is None else tuple(str(t) for t in self.time)
        if time is not None and len(time) != values.shape[0]:
            raise ValueError(
                f"time: expected {values.shape[0]} labels (values has T = "
                f"{values.shape[0]}), got {len(time)}"
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "time", time)

    def __len__(self) -> int:
        return self.values.shape[0]

    def _index(self, name: str) -> int:
        if name not in self.columns:
            raise ValueError(f"unknown column {name!r}; available: {listed(self.columns)}")
        return self.columns.index(name)

    def column(self, name: str) -> np.ndarray:
        """The (T,) values of one column (a view)."""
        return self.values[:, self._index(name)]

    def select(self, names: Sequence[str]) -> np.ndarray:
        """The (T, len(names)) values of the named columns, in the order given (a copy)."""
        if isinstance(names, str):
            raise TypeError(f"names: expected a sequence of column names, got the str {names!r}")
        names = list(names)
        if not names:
            raise ValueError("names: expected at least one column name, got none")
        return self.values[:, [self._index(n) for n in names]]


# -- shared helpers ---------------------------------------------------------------------


def _check_missing(missing: str, allowed: Sequence[str]) -> None:
    if missing not in allowed:
        raise ValueError(f"missing: expected one of {', '.join(allowed)}, got {missing!r}")


def _as_path(path: str | os.PathLike) -> Path:
    path = Path(os.fspath(path))
    if path.is_dir():
        raise ValueError(f"{path}: expected a file, got a directory")
    return path


def _split_lines(text: str) -> list[str]:
    """Lines split at \\r\\n, \\r or \\n, as the csv module and editors count them."""
    return re.split(r"\r\n|\r|\n", text)


def _read_text(path: Path) -> str:
    """The file as text: UTF-8, with or without a byte-order mark."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = len(_split_lines(data[: e.start].decode("utf-8-sig", errors="replace")))
        raise ValueError(
            f"{path}, line {line}: expected UTF-8 text, got the byte 0x{data[e.start]:02x} "
            f"(offset {e.start})"
        ) from None


def _float(text: str) -> float:
    """``float(text)``, NaN included; ``ValueError(expected...)`` if not a finite number."""
    quoted = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {quoted}") from None
    if math.isinf(value):
        raise ValueError(f"expected a finite number, got {quoted}")
    return value


def _number(text: str) -> float:
    """A CSV cell as a float, NaN where missing."""
    return math.nan if text.strip() in MISSING_TOKENS else _float(text.strip())


def _is_number(text: str) -> bool:
    try:
        _number(text)
    except ValueError:
        return False
    return True


def _fill_missing(
    values: np.ndarray, missing: str, where: _Where, source: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply the missing-value policy to ``values`` (T, D), NaN marking a missing value.

    ``where(t, k)`` says where a value is, ``source`` what the whole table is. Returns
    the filled values and, for ``"drop"``, the (T,) mask of the rows kept (else ``None``).
    """
    mask = np.isnan(values)  # (T, D)
    if not mask.any():
        return values, None
    if missing == "error":
        t, k = (int(i) for i in np.argwhere(mask)[0])
        raise ValueError(
            f"{where(t, k)}: missing value; expected a number (missing='error'); pass "
            f"missing='ffill', 'interpolate' or 'drop' to fill or drop it"
        )
    if missing == "drop":
        keep = ~mask.any(axis=1)
        if not keep.any():
            raise ValueError(
                f"{source}: every row has a missing value; expected "
                f"at least one complete row for missing='drop', got none"
            )
        return values[keep], keep
    values = values.copy()
    steps = np.arange(values.shape[0])
    for k in range(values.shape[1]):
        lost = mask[:, k]
        if not lost.any():
            continue
        if missing == "ffill":
            if lost[0]:
                raise ValueError(
                    f"{where(0, k)}: cannot forward-fill a missing first value; use "
                    f"missing='interpolate' or missing='drop'"
                )
            last = np.maximum.accumulate(np.where(lost, 0, steps))
            values[:, k] = values[last, k]
        else:  # interpolate
            known = ~lost
            if not known.any():
                raise ValueError(
                    f"{where(None, k)}: every value is missing; expected at least one "
                    f"number to interpolate from, got none"
                )
            scale = max(1.0, float(np.abs(values[known, k]).max()))  # no overflow near 1e308
            values[lost, k] = np.interp(steps[lost], steps[known], values[known, k] / scale)
            values[lost, k] *= scale
    return values, None


# -- CSV --------------------------------------------------------------------------------


def _csv_rows(path: Path, text: str) -> list[tuple[int, list[str]]]:
    """(line number of the record's last line, fields) for each record; blank lines at
    the start and end dropped."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        for fields in reader:
            rows.append((reader.line_num, fields))
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
    lines = [line for line, _ in data]

    def where(t: int | None, k: int) -> str:
        at = f", line {lines[t]}" if t is not None else ""
        return f"{path}{at}, column {chosen[k]!r}"

    values, keep = _fill_missing(values, missing, where, str(path))
    time = None
    if time_name is not None:
        j = names.index(time_name, start)
        time = [fields[j].strip() for _, fields in data]
        if keep is not None:
            time = [label for label, kept in zip(time, keep, strict=True) if kept]
    return TimeSeriesFrame(values, tuple(chosen), None if time is None else tuple(time))


# -- in-memory frames -------------------------------------------------------------------


def _cell_float(value: object) -> float:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return math.nan
    return float(value)  # type: ignore[arg-type]


def _numeric_2d(array: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """``array`` (T, D) as float64; non-numeric cells raise naming the column."""
    if array.dtype.kind in _NUMERIC_KINDS:
        return array.astype(np.float64)
    out = np.empty(array.shape, dtype=np.float64)
    for k, name in enumerate(names):
        for t, value in enumerate(array[:, k]):
            try:
                out[t, k] = _cell_float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"row {t}, column {name!r}: expected a number, got {value!r}"
                ) from None
    return out


def as_frame(
    data: object,
    *,
    columns: Sequence[str] | None = None,
    missing: str = "error",
) -> TimeSeriesFrame:
    """A :class:`TimeSeriesFrame` from data already in memory.

    Accepts a :class:`TimeSeriesFrame`, a pandas ``DataFrame`` (anything with
    ``to_numpy`` and ``columns``: its column names become strings, an index other than
    0..T-1 becomes the time labels), a pandas ``Series`` (``to_numpy`` and ``name``: one
    column named after it, ``'value'`` if unnamed) or a (T,) / (T, D) array (columns
    named ``'0'``, ``'1'``, ...). NaN, ``None`` and ``pd.NA`` are missing.

    Args:
        data: the series.
        columns: the columns to keep, in this order (default: all).
        missing: the missing-value policy (see the module docstring).

    Raises:
        ValueError: non-numeric or infinite values, no rows or columns, unknown columns,
            a missing value the policy cannot handle.
    """
    _check_missing(missing, MISSING_POLICIES)
    if isinstance(data, TimeSeriesFrame):
        frame = data
    elif hasattr(data, "to_numpy") and hasattr(data, "columns"):  # pandas DataFrame
        names = tuple(str(c) for c in data.columns)
        values = np.asarray(data.to_numpy())
        if values.ndim != 2 or values.shape[1] != len(names):
            raise ValueError(
                f"DataFrame: expected to_numpy() of shape (T, {len(names)}), got {values.shape}"
            )
        frame = TimeSeriesFrame(_numeric_2d(values, names), names, _index_labels(data))
    elif hasattr(data, "to_numpy") and hasattr(data, "name"):  # pandas Series
        name = "value" if data.name is None else str(data.name)
        values = np.asarray(data.to_numpy()).reshape(-1, 1)
        frame = TimeSeriesFrame(_numeric_2d(values, (name,)), (name,), _index_labels(data))
    elif isinstance(data, np.ndarray | list | tuple):
        values = np.asarray(data)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise ValueError(f"data: expected a (T,) or (T, D) array, got shape {values.shape}")
        names = tuple(str(k) for k in range(values.shape[1]))
        frame = TimeSeriesFrame(_numeric_2d(values, names), names)
    else:
        raise TypeError(
            "data: expected a TimeSeriesFrame, a pandas DataFrame or Series or an array, "
            f"got {type(data).__name__}"
        )
    if columns is not None:
        if isinstance(columns, str):
            raise TypeError(f"columns: expected a sequence of column names, got {columns!r}")
        frame = TimeSeriesFrame(frame.select(columns), tuple(columns), frame.time)
    t_size, d_size = frame.values.shape
    if t_size == 0 or d_size == 0:
        raise ValueError(
            f"data: expected at least one row and one column, got shape {(t_size, d_size)}"
        )
    bad = np.argwhere(np.isinf(frame.values))
    if len(bad):
        t, k = bad[0]
        raise ValueError(
            f"row {t}, column {frame.columns[k]!r}: expected a finite number, got "
            f"{frame.values[t, k]}"
        )

    def where(t: int | None, k: int) -> str:
        at = "" if t is None else f"row {t}" + (f" ({frame.time[t]})" if frame.time else "")
        return f"{at}, column {frame.columns[k]!r}" if at else f"column {frame.columns[k]!r}"

    values, keep = _fill_missing(frame.values, missing, where, "data")
    time = frame.time
    if keep is not None and time is not None:
        time = tuple(label for label, kept in zip(time, keep, strict=True) if kept)
    return TimeSeriesFrame(values, frame.columns, time)


def _index_labels(data: object) -> tuple[str, ...] | None:
    """A pandas index as time labels; ``None`` for the default 0..T-1."""
    index = getattr(data, "index", None)
    if index is None:
        return None
    labels = list(index)
    if labels == list(range(len(labels))):
        return None
    return tuple(str(v) for v in labels)


# -- UEA/UCR .ts ------------------------------------------------------------------------

_TS_BOOL_KEYS = ("timestamps", "missing", "univariate", "equallength", "targetlabel")
_TS_KEYS = {
    k[1:].lower(): k
    for k in (
        "@problemName",
        "@timeStamps",
        "@missing",
        "@univariate",
        "@equalLength",
        "@seriesLength",
        "@classLabel",
        "@targetLabel",
        "@dimensions",
        "@data",
    )
}


def _ts_bool(path: Path, line: int, key: str, token: str) -> bool:
    if token.lower() not in ("true", "false"):
        raise ValueError(f"{path}, line {line}: {key}: expected true or false, got {token!r}")
    return token.lower() == "true"


def _ts_header(path: Path, line: int, text: str, header: dict) -> None:
    """Parse one ``@key value...`` line into ``header[key] = (value, line)``."""
    parts = text[1:].split()
    key = parts[0].lower() if parts else ""
    if key not in _TS_KEYS:
        raise ValueError(
            f"{path}, line {line}: unknown header {text.split()[0]!r}; expected one of "
            f"{', '.join(_TS_KEYS.values())}"
        )
    name, args = _TS_KEYS[key], parts[1:]
    if key in header:
        raise ValueError(
            f"{path}, line {line}: {name} given twice (first on line {header[key][1]}); "
            f"expected it once"
        )
    if key == "problemname":
        if not args:
            raise ValueError(f"{path}, line {line}: {name}: expected a name, got nothing")
        value: object = " ".join(args)
    elif key == "data":
        if args:
            raise ValueError(f"{path}, line {line}: @data: expected nothing after it, got {args}")
        value = True
    elif key == "classlabel":
        if not args:
            raise ValueError(f"{path}, line {line}: {name}: expected true or false, got nothing")
        labels = args[1:]
        if not _ts_bool(path, line, name, args[0]):
            if labels:
                raise ValueError(
                    f"{path}, line {line}: {name} false: expected nothing after false, got {labels}"
                )
            value = None
        else:
            if not labels:
                raise ValueError(
                    f"{path}, line {line}: {name} true: expected the class labels after "
                    f"true, got none"
                )
            if len(set(labels)) != len(labels):
                raise ValueError(
                    f"{path}, line {line}: {name}: expected unique labels, got {labels}"
                )
            value = tuple(labels)
    else:
        if len(args) != 1:
            raise ValueError(f"{path}, line {line}: {name}: expected one value, got {args}")
        if key in _TS_BOOL_KEYS:
            value = _ts_bool(path, line, name, args[0])
            if key == "timestamps" and value:
                raise ValueError(
                    f"{path}, line {line}: @timeStamps true: timestamped .ts files are not "
                    f"supported; expected @timeStamps false"
                )
        else:
            if not re.fullmatch(r"[0-9]{1,18}", args[0]) or int(args[0]) < 1:
                raise ValueError(
                    f"{path}, line {line}: {name}: expected a positive integer, got "
                    f"{args[0][:40]!r}"
                )
            value = int(args[0])
    header[key] = (value, line)


def _ts_check_header(path: Path, header: dict) -> None:
    """Checks between header lines, made when ``@data`` is reached."""
    univariate = header.get("univariate", (False, 0))
    dims = header.get("dimensions")
    if univariate[0] and dims is not None and dims[0] != 1:
        raise ValueError(
            f"{path}, line {dims[1]}: @dimensions: expected 1 (@univariate true, line "
            f"{univariate[1]}), got {dims[0]}"
        )
    labels, target = header.get("classlabel"), header.get("targetlabel")
    if labels is not None and labels[0] is not None and target is not None and target[0]:
        raise ValueError(
            f"{path}, line {target[1]}: @targetLabel true: expected @classLabel false with "
            f"it (@classLabel true on line {labels[1]}), got both"
        )


def _ts_case(path: Path, line: int, fields: list[str], missing: str) -> np.ndarray:
    """One case: D ':'-separated dimension fields of ','-separated values -> (T, D)."""
    dims = []
    for d, field in enumerate(fields):
        if not field.strip():
            raise ValueError(
                f"{path}, line {line}, dimension {d + 1}: expected comma-separated numbers, "
                f"got nothing"
            )
        row = []
        for t, token in enumerate(field.split(",")):
            s = token.strip()
            try:
                row.append(math.nan if s == "?" else _float(s))
            except ValueError as e:
                raise ValueError(
                    f"{path}, line {line}, dimension {d + 1}, value {t + 1}: {e}"
                ) from None
        if dims and len(row) != len(dims[0]):
            raise ValueError(
                f"{path}, line {line}, dimension {d + 1}: expected {len(dims[0])} values (as "
                f"dimension 1; the dimensions of one case have equal length), got {len(row)}"
            )
        dims.append(row)
    values = np.ascontiguousarray(np.array(dims, dtype=np.float64).T)  # (D, T) -> (T, D)

    def where(t: int | None, d: int) -> str:
        return f"{path}, line {line}, dimension {d + 1}" + ("" if t is None else f", value {t + 1}")

    return _fill_missing(values, missing, where, f"{path}, line {line}")[0]


@short_errors
def read_ts(
    path: str | os.PathLike, *, missing: str = "error"
) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Read a UEA/UCR ``.ts`` file: multivariate, possibly unequal-length cases.

    The header lines (``@key value``, keys in any case) come first and end with
    ``@data``; ``#`` comments and blank lines are ignored anywhere. Each line after
    ``@data`` is one case: D dimension fields separated by ``:``, each a comma-separated
    series, then the label as the last ``:`` field when ``@classLabel true`` or
    ``@targetLabel true``. ``?`` is a missing value.

    Checked: ``@dimensions``, ``@univariate true`` (D = 1), ``@equalLength true`` and
    ``@seriesLength`` (checked unless ``@equalLength false``) against the data, class
    labels against the declared ones. ``@missing`` is not checked: the ``missing``
    policy decides. ``@timeStamps true`` is not supported.

    Args:
        path: the ``.ts`` file.
        missing: ``"error"``, ``"ffill"`` or ``"interpolate"``, within each dimension of
            each case (``"drop"`` is refused: it would shorten one dimension alone).

    Returns:
        ``(X, y)``: X, a list of N float64 arrays (T_i, D) (the file is dimension-major;
        these are transposed); y, the N labels as a str array exactly as written (class
        labels), a float64 array (``@targetLabel true``) or ``None`` (no label).

    Raises:
        ValueError: a wrong or missing header, a data line before ``@data``, no cases,
            an inconsistent number of dimensions, ragged dimensions within a case, a
            length that breaks ``@equalLength``/``@seriesLength``, a non-numeric value,
            an undeclared class label, a missing value the policy cannot handle.
    """
    _check_missing(missing, ("error", "ffill", "interpolate"))
    path = _as_path(path)
    header: dict = {}
    in_data, data_line = False, 0
    X: list[np.ndarray] = []
    y: list = []
    first_line = 0  # the first case's line, the reference for D and T
    for line, raw in enumerate(_split_lines(_read_text(path)), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("@"):
            if in_data:
                raise ValueError(
                    f"{path}, line {line}: header line {text.split()[0]!r} after @data (line "
                    f"{data_line}); expected a data line"
                )
            _ts_header(path, line, text, header)
            if "data" in header:
                _ts_check_header(path, header)
                in_data, data_line = True, line
            continue
        if not in_data:
            raise ValueError(
                f"{path}, line {line}: data line before @data; expected a header line "
                f"(@key value) or @data, got {text[:40]!r}"
            )
        labels = header.get("classlabel", (None, 0))
        target = header.get("targetlabel", (False, 0))
        fields = text.split(":")
        if labels[0] is not None or target[0]:
            if len(fields) < 2:
                raise ValueError(
                    f"{path}, line {line}: expected dimensions then a label, separated by "
                    f"':', got no ':'"
                )
            label = fields.pop().strip()
            if labels[0] is not None and label not in labels[0]:
                raise ValueError(
                    f"{path}, line {line}: unknown class label {label!r}; expected one of "
                    f"{listed(labels[0], quote=False)} (@classLabel, line {labels[1]})"
                )
            if target[0]:
                try:
                    value = _number(label)
                except ValueError as e:
                    raise ValueError(f"{path}, line {line}, target label: {e}") from None
                if math.isnan(value):
                    raise ValueError(
                        f"{path}, line {line}, target label: expected a number, got {label!r}"
                    )
                y.append(value)
            else:
                y.append(label)
        _ts_check_dims(path, line, len(fields), header, X, first_line)
        case = _ts_case(path, line, fields, missing)
        _ts_check_length(path, line, case.shape[0], header, X, first_line)
        if not X:
            first_line = line
        X.append(case)
    if not in_data:
        raise ValueError(f"{path}: no @data line; expected the header to end with @data")
    if not X:
        raise ValueError(
            f"{path}, line {data_line}: no cases after @data; expected at least one data line"
        )
    if "classlabel" in header and header["classlabel"][0] is not None:
        return X, np.array(y, dtype=str)
    if header.get("targetlabel", (False, 0))[0]:
        return X, np.array(y, dtype=np.float64)
    return X, None


def _ts_check_dims(path: Path, line: int, got: int, header: dict, X: list, first_line: int) -> None:
    if header.get("univariate", (False, 0))[0] and got != 1:
        raise ValueError(
            f"{path}, line {line}: expected 1 dimension (@univariate true, line "
            f"{header['univariate'][1]}), got {got}"
        )
    if "dimensions" in header:
        want, at = header["dimensions"]
        if got != want:
            raise ValueError(
                f"{path}, line {line}: expected {want} dimensions (@dimensions, line {at}), "
                f"got {got}"
            )
    elif X and got != X[0].shape[1]:
        raise ValueError(
            f"{path}, line {line}: expected {X[0].shape[1]} dimensions (as on line "
            f"{first_line}), got {got}"
        )


def _ts_check_length(
    path: Path, line: int, got: int, header: dict, X: list, first_line: int
) -> None:
    equal = header.get("equallength")
    if equal is not None and not equal[0]:
        return
    if "serieslength" in header:
        want, at = header["serieslength"]
        if got != want:
            raise ValueError(
                f"{path}, line {line}: expected {want} values per dimension (@seriesLength, "
                f"line {at}), got {got}"
            )
    if equal is not None and X and got != X[0].shape[0]:
        raise ValueError(
            f"{path}, line {line}: expected {X[0].shape[0]} values per dimension "
            f"(@equalLength true, line {equal[1]}; as on line {first_line}), got {got}"
        )


# -- .npz -------------------------------------------------------------------------------


@short_errors
def read_npz(path: str | os.PathLike) -> tuple[np.ndarray | list[np.ndarray], np.ndarray | None]:
    """Read sequences (and labels or targets) from a NumPy ``.npz`` archive.

    Keys, one layout per file:

    * ``X`` (or ``x``): one array (N, ...), e.g. (N, T, D) equal-length sequences;
    * ``X_0``, ``X_1``, ..., ``X_{N-1}``: N variable-length sequences (T_i, D) or (T_i,);
    * ``X`` flat (sum T_i, D) or (sum T_i,) plus ``lengths`` (N,) positive ints: X is
      split along axis 0 into N sequences of those lengths;

    and optionally ``y`` (N, ...), returned as stored. Other keys are refused, so a typo
    such as ``Y`` does not silently drop the labels. Pickles are never loaded
    (``allow_pickle=False``): an object array raises.

    Returns:
        ``(X, y)``: X, a float64 array (layout ``X``) or a list of N float64 arrays
        (variable lengths; :func:`as_sequences` makes them (T_i, D)); y or ``None``.

    Raises:
        ValueError: not an ``.npz`` archive, no ``X``, unexpected keys, an object (pickled)
            or non-numeric X, lengths that do not split X, a y whose length is not N.
    """
    path = _as_path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # zip: first entry, or empty
            got = "a single .npy array" if magic.startswith(b"\x93NUM") else f"{magic!r}..."
            raise ValueError(
                f"{path}: expected an .npz archive (a zip file from numpy.savez), got {got}"
            )
        f.seek(0)
        try:
            archive = np.load(f, allow_pickle=False)
        except (ValueError, *_NPZ_ERRORS) as e:
            raise ValueError(
                f"{path}: expected an .npz archive (numpy.savez), got unreadable data "
                f"({str(e)[:200]})"
            ) from None
        with archive:
            return _npz_contents(path, archive)


# What a damaged archive raises inside zipfile and numpy.lib.format.
_NPZ_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    KeyError,
    NotImplementedError,
    RuntimeError,
    SyntaxError,  # numpy parses a .npy header dictionary as Python literals
    tokenize.TokenError,
    zlib.error,  # a damaged deflate stream
    OverflowError,  # a header numpy parsed but cannot size
)


def _npz_array(path: Path, archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    _check_npy_size(path, archive, key)
    try:
        array = archive[key]
    except ValueError as e:
        if "allow_pickle" not in str(e):
            raise ValueError(
                f"{path}: {key}: expected a .npy array, got bad data ({str(e)[:200]})"
            ) from None
        hint = (
            "a numeric or str array"
            if key == "y"
            else "a numeric array (store variable lengths as X_0, X_1, ... or as X plus lengths)"
        )
        raise ValueError(
            f"{path}: {key} holds Python objects (a pickle), which are never loaded; "
            f"expected {hint}"
        ) from None
    except _NPZ_ERRORS as e:
        raise ValueError(
            f"{path}: {key}: expected a .npy array, got bad data ({str(e)[:200]})"
        ) from None
    if not isinstance(array, np.ndarray):  # a member not named .npy comes back as bytes
        raise ValueError(f"{path}: {key}: expected a .npy array, got raw bytes")
    return array


def _check_npy_size(path: Path, archive: np.lib.npyio.NpzFile, key: str) -> None:
    """Read the member's .npy header before its data: the array it declares must be what the
    member holds (a header may claim 10^12 elements for a few bytes) and, uncompressed, fit
    a quarter of the memory budget (reading makes float64 copies; a deflate bomb is small on
    disk). Members that are not .npy files are left to the caller."""
    names = archive.zip.namelist()
    name = key if key in names else f"{key}.npy"  # numpy's order: the raw member name first
    if name not in names:
        return
    info = archive.zip.getinfo(name)
    allowed = memory_budget() // 4
    if info.file_size > allowed:
        raise ValueError(
            f"{path}: {key}: expected at most {allowed:,} bytes uncompressed (a quarter of the "
            f"memory budget, LSTMKIT_MEMORY_BUDGET), got {info.file_size:,}"
        )
    try:
        with archive.zip.open(name) as member:
            version = np.lib.format.read_magic(member)
            reader = {  # 3.0 differs from 2.0 in the header's text encoding only
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
                (3, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if reader is None:
                return  # numpy's own reader will say what is wrong
            shape, _, dtype = reader(member)
            header = member.tell()
    except (ValueError, *_NPZ_ERRORS):
        return  # a damaged header: numpy's reader reports it below
    if not all(type(n) is int and n < 2**63 for n in shape):  # numpy takes (True,), 2**64
        raise ValueError(f"{path}: {key}: expected a .npy shape of integers, got {shown(shape)}")
    declared = math.prod(shape) * dtype.itemsize
    if declared > info.file_size - header:
        raise ValueError(
            f"{path}: {key}: expected a .npy array, got a header declaring shape {shape} "
            f"({declared:,} bytes) for {info.file_size - header:,} bytes of data"
        )


def _npz_numeric(path: Path, key: str, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{path}: {key}: expected a numeric array, got dtype {array.dtype}")
    return array.astype(np.float64)


def _npz_contents(
    path: Path, archive: np.lib.npyio.NpzFile
) -> tuple[np.ndarray | list[np.ndarray], np.ndarray | None]:
    keys = set(archive.files)
    found = listed(sorted(keys)) or "none"
    parts = {int(k[2:]): k for k in keys if re.fullmatch(r"X_(0|[1-9][0-9]*)", k)}
    flat = [k for k in ("X", "x") if k in keys]
    unexpected = sorted(keys - set(parts.values()) - {"X", "x", "y", "lengths"})
    if not flat and not parts:
        raise ValueError(
            f"{path}: no X; expected the key X (or x), or X_0, X_1, ...; found keys: {found}"
        )
    if unexpected:
        raise ValueError(
            f"{path}: unexpected keys {listed(unexpected)}; expected X (or x), or X_0, "
            f"X_1, ..., and optionally y and lengths; found keys: {found}"
        )
    if len(flat) == 2 or (flat and parts):
        raise ValueError(
            f"{path}: expected one layout, X (or x) or X_0, X_1, ...; found keys: {found}"
        )
    if parts:
        if "lengths" in keys:
            raise ValueError(
                f"{path}: lengths goes with a flat X, not with X_0, X_1, ...; found keys: {found}"
            )
        absent = sorted(set(range(len(parts))) - set(parts))
        if absent:
            raise ValueError(
                f"{path}: expected X_0 ... X_{len(parts) - 1} for {len(parts)} sequences, "
                f"got no X_{absent[0]}"
            )
        X: np.ndarray | list[np.ndarray] = [
            _npz_numeric(path, f"X_{i}", _npz_array(path, archive, f"X_{i}"))
            for i in range(len(parts))
        ]
        n = len(X)
    else:
        key = flat[0]
        X = _npz_numeric(path, key, _npz_array(path, archive, key))
        if X.ndim == 0:
            raise ValueError(f"{path}: {key}: expected an array of N sequences, got a scalar")
        if "lengths" in keys:
            X = _npz_split(path, key, X, _npz_array(path, archive, "lengths"))
        n = len(X)
    y = None
    if "y" in keys:
        y = _npz_array(path, archive, "y")
        if y.ndim == 0 or y.shape[0] != n:
            raise ValueError(
                f"{path}: y: expected {n} entries (one per sequence), got shape {y.shape}"
            )
    return X, y


def _npz_split(path: Path, key: str, X: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: lengths: expected a 1-D integer array, got dtype {lengths.dtype} and "
            f"shape {lengths.shape}"
        )
    if len(lengths) == 0 or (lengths < 1).any():
        raise ValueError(
            f"{path}: lengths: expected at least one length, all >= 1, got {lengths.tolist()}"
        )
    total = sum(int(n) for n in lengths)  # Python ints: a uint64 sum can wrap around
    if total != X.shape[0]:
        raise ValueError(
            f"{path}: lengths: expected them to sum to {X.shape[0]} ({key} has {X.shape[0]} "
            f"rows), got {total}"
        )
    return np.split(X, np.cumsum(lengths.astype(np.int64))[:-1])


# -- sequences --------------------------------------------------------------------------


def as_sequences(X: object) -> list[np.ndarray]:
    """Normalise input for sequence tasks to a list of N float64 arrays (T_i, D).

    Accepts a (N, T, D) array, a (N, T) array (D = 1), or a list/tuple (or 1-D object
    array) of (T_i, D) or (T_i,) arrays — NumPy arrays, nested lists, CPU tensors or
    anything with ``to_numpy``. The result may share memory with the input.

    Raises:
        ValueError: no sequences, an empty sequence, a sequence that is not (T_i, D) or
            (T_i,), a D that differs from sequence 0's, non-numeric, NaN or infinite
            values; the message names the sequence's index.
        TypeError: X is not an array or a list of arrays.
    """
    if isinstance(X, str | bytes) or not (
        isinstance(X, list | tuple | np.ndarray) or hasattr(X, "__array__")
    ):
        raise TypeError(
            f"X: expected an (N, T, D) or (N, T) array or a list of (T_i, D) arrays, got "
            f"{type(X).__name__}"
        )
    if isinstance(X, list | tuple) or (isinstance(X, np.ndarray) and X.dtype == object):
        items = list(X)
    else:
        array = np.asarray(X)
        if array.ndim not in (2, 3):
            raise ValueError(
                f"X: expected an (N, T, D) or (N, T) array or a list of (T_i, D) arrays, got "
                f"an array of shape {array.shape}"
            )
        items = list(array if array.ndim == 3 else array[..., None])
    if not items:
        raise ValueError("X: expected at least one sequence, got none")
    out = []
    for i, item in enumerate(items):
        if hasattr(item, "to_numpy"):
            item = item.to_numpy()
        try:
            seq = np.asarray(item)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"sequence {i}: expected a (T, D) or (T,) array, got {type(item).__name__} "
                f"that is not one ({e})"
            ) from None
        if seq.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"sequence {i}: expected numbers, got dtype {seq.dtype}")
        if seq.ndim == 1:
            seq = seq[:, None]
        if seq.ndim != 2:
            raise ValueError(f"sequence {i}: expected shape (T, D) or (T,), got {seq.shape}")
        if seq.shape[0] == 0 or seq.shape[1] == 0:
            raise ValueError(
                f"sequence {i}: expected at least one step and one feature, got shape {seq.shape}"
            )
        if out and seq.shape[1] != out[0].shape[1]:
            raise ValueError(
                f"sequence {i}: expected {out[0].shape[1]} features (as sequence 0), got "
                f"{seq.shape[1]}"
            )
        out.append(np.ascontiguousarray(seq, dtype=np.float64))
    flat = np.concatenate(out)  # one check of all values; find the culprit only if needed
    if not np.isfinite(flat).all():
        i, seq = next((i, q) for i, q in enumerate(out) if not np.isfinite(q).all())
        t, d = np.argwhere(~np.isfinite(seq))[0]
        raise ValueError(
            f"sequence {i}: expected finite values, got {seq[t, d]} at step {t}, feature {d}"
        )
    if np.abs(flat).max() > MAX_MAGNITUDE:
        for i, seq in enumerate(out):
            check_magnitude(seq, lambda at, i=i: f"sequence {i}, step {at[0]}, feature {at[1]}")
    return out
