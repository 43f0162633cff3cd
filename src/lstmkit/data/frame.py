r"""The frame of a time series, and what every reader shares.

:class:`TimeSeriesFrame` holds values (T, D) as float64, the column names and the time
labels (or ``None``); :func:`as_frame` makes one from a pandas ``DataFrame``/``Series``
(recognised by duck typing: no pandas needed) or a (T,) / (T, D) array. The readers:
:mod:`lstmkit.data.csv` (a frame), :mod:`lstmkit.data.ts` (UEA/UCR ``.ts``: N arrays
(T_i, D) and their labels or targets), :mod:`lstmkit.data.npz` (X and y arrays) and
:mod:`lstmkit.data.sequences` (in-memory sequences: N float64 arrays (T_i, D)).

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

import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmkit.messages import listed

MISSING_POLICIES = ("error", "ffill", "interpolate", "drop")
# Training runs in float32 (largest 3.4e38) on standardised values whose variance squares
# them: larger inputs overflow to infinity or NaN somewhere, so they are refused on entry.
MAX_MAGNITUDE = 1e30


def check_magnitude(array: np.ndarray, what: Callable[[tuple[int, ...]], str]) -> None:
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
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = len(_split_lines(data[: e.start].decode("utf-8-sig", errors="replace")))
        raise ValueError(
            f"{path}, line {line}: expected UTF-8 text, got the byte 0x{data[e.start]:02x} "
            f"(offset {e.start})"
        ) from None


def _true_or_false(where: str, name: str, token: str) -> bool:
    """A header's ``true``/``false`` (any case), or ``ValueError`` naming ``where`` and ``name``."""
    if token.lower() not in ("true", "false"):
        raise ValueError(f"{where}: {name}: expected true or false, got {token!r}")
    return token.lower() == "true"


def _header_key(
    where: str, text: str, header: dict, names: dict[str, str], expected: str, clip: int | None
) -> tuple[str, str, list[str]]:
    """(key, as written, arguments) of a ``@key value...`` line, the key as ``names`` spells
    it, lower case; an unknown key (cut to ``clip``), a repeated one and ``@data`` with
    arguments raise ``ValueError``."""
    parts = text[1:].split()
    key = parts[0].lower() if parts else ""
    if key not in names:
        raise ValueError(
            f"{where}: unknown header {text.split()[0][:clip]!r}; expected one of {expected}"
        )
    key, args = names[key][1:].lower(), parts[1:]
    if key in header:
        raise ValueError(
            f"{where}: {names[key]} given twice (first on line {header[key][1]}); expected it once"
        )
    if key == "data" and args:
        raise ValueError(f"{where}: @data: expected nothing after it, got {args}")
    return key, "@" + parts[0], args


def _data_lines(
    path: Path, text: str, read_header: Callable[[int, str], bool], clip: int | None
) -> Iterator[tuple[int, str]]:
    """The data lines of a ``.ts`` or ``.tsf`` file, (line number, stripped text): header
    lines (``@...``) come first and go to ``read_header(line, text)``, which says whether
    the line was ``@data``; blank lines and ``#`` comments are skipped. A header line after
    ``@data`` (its key cut to ``clip`` characters in the message), a data line before it
    and a file without it raise ``ValueError``."""
    data_line = 0
    for line, raw in enumerate(_split_lines(text), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("@"):
            if data_line:
                raise ValueError(
                    f"{path}, line {line}: header line {stripped.split()[0][:clip]!r} after "
                    f"@data (line {data_line}); expected a data line"
                )
            if read_header(line, stripped):
                data_line = line
            continue
        if not data_line:
            raise ValueError(
                f"{path}, line {line}: data line before @data; expected a header line "
                f"(@key value) or @data, got {stripped[:40]!r}"
            )
        yield line, stripped
    if not data_line:
        raise ValueError(f"{path}: no @data line; expected the header to end with @data")


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


# -- in-memory frames -------------------------------------------------------------------


def _numeric_2d(array: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """``array`` (T, D) as float64, NaN for ``None``, ``pd.NA`` and ``NaT``; non-numeric
    cells raise naming the column."""
    if array.dtype.kind in _NUMERIC_KINDS:
        return array.astype(np.float64)
    out = np.empty(array.shape, dtype=np.float64)
    for k, name in enumerate(names):
        for t, value in enumerate(array[:, k]):
            missing = value is None or type(value).__name__ in ("NAType", "NaTType")
            try:
                out[t, k] = math.nan if missing else float(value)
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
    if 0 in frame.values.shape:
        raise ValueError(
            f"data: expected at least one row and one column, got shape {frame.values.shape}"
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
    labels = [] if index is None else list(index)
    return None if labels == list(range(len(labels))) else tuple(str(v) for v in labels)
