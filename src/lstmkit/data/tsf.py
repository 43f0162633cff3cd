r"""The Monash forecasting archive's ``.tsf`` format: :func:`read_tsf` and :func:`write_tsf`.

The format (Godahewa et al., "Monash Time Series Forecasting Archive", NeurIPS 2021
Datasets and Benchmarks; <https://forecastingdata.org>) holds N univariate series of any
lengths, each with a few per-series attributes::

    # comment lines start with '#'; blank lines are ignored
    @relation tourism_yearly
    @attribute series_name string
    @attribute start_timestamp date
    @frequency yearly
    @horizon 4
    @missing false
    @equallength false
    @data
    T1:1979-01-01 00-00-00:1508,1440,1551
    T2:1982-01-01 00-00-00:4.5,?,6.25,7

Header lines (keys in any case), each at most once except ``@attribute``:

==========================  ============================================================
``@relation NAME``          the data set's name (words joined by one space)
``@attribute NAME TYPE``    one per attribute column, in column order; TYPE is
                            ``string``, ``numeric`` or ``date`` (``YYYY-MM-DD HH-MM-SS``)
``@frequency F``            e.g. yearly, quarterly, monthly, weekly, daily, hourly,
                            half_hourly, 10_minutes, minutely, 4_seconds (kept as written)
``@horizon H``              the forecast horizon, a positive integer
``@missing true|false``     whether ``?`` may appear (``@missingvalues`` is read too)
``@equallength true|false`` whether all series have the same length
``@data``                   ends the header
==========================  ============================================================

After ``@data`` each line is one series: its attribute values, then its values, all
separated by ``:``; the values are separated by ``,``; ``?`` (or NaN) is a missing value.
Infinite values, and numbers that overflow to infinity, are never accepted.

Missing values follow one explicit policy, ``missing``:

* ``"error"`` (default): the first missing value raises ``ValueError`` naming the series
  and the value's position;
* ``"keep"``: missing values are NaN;
* ``"interpolate"``: linear in the value index, the ends take the nearest value:
  :math:`x_t = x_a + (x_b - x_a)(t - a)/(b - a)` between known values a < t < b (computed
  as :math:`(1 - w) x_a + w x_b`, which cannot overflow); a series with no value raises.

Whatever the policy, a ``?`` in a file that declares ``@missing false`` raises, as does a
length that breaks ``@equallength true``.

Malformed input raises ``ValueError`` whose message starts with the file and the line
(1-based), names the series (and the value, 1-based) where there is one, and says what was
expected and what came. A missing file raises ``FileNotFoundError``; a directory,
``ValueError``.
"""

import math
import os
import re
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np

from lstmkit.data.frame import (
    _as_path,
    _check_missing,
    _data_lines,
    _header_key,
    _read_text,
    _true_or_false,
)
from lstmkit.messages import short_errors
from lstmkit.train.atomic import write_atomically

TSF_MISSING_POLICIES = ("error", "keep", "interpolate")
ATTRIBUTE_TYPES = ("string", "numeric", "date")
DATE_FORMAT = "%Y-%m-%d %H-%M-%S"  # as written in the archive: 1979-01-01 00-00-00
NAME_COLUMN, START_COLUMN = "series_name", "start_timestamp"

# key (lower case) -> the spelling used in messages and written by write_tsf
_KEYS = {
    "relation": "@relation",
    "attribute": "@attribute",
    "frequency": "@frequency",
    "horizon": "@horizon",
    "missing": "@missing",
    "missingvalues": "@missing",
    "equallength": "@equallength",
    "data": "@data",
}
_EXPECTED = "@relation, @attribute, @frequency, @horizon, @missing (or @missingvalues), "
_EXPECTED += "@equallength, @data"
_TOKEN = re.compile(r"[A-Za-z0-9_]+")
_INT = re.compile(r"[+-]?[0-9]+")


# @frequency → season length (the seasonal baselines and MASE)
SEASONS = {"yearly": 1, "quarterly": 4, "monthly": 12, "weekly": 52, "daily": 7, "hourly": 24}


@dataclass(frozen=True, eq=False)
class TsfData:
    """N univariate series of a ``.tsf`` file and their attributes.

    ==============  ==========================================================================
    field           holds
    ==============  ==========================================================================
    names           N str: the ``series_name`` attribute as written, else ``'1'``, ``'2'``, ...
    series          N float64 arrays (T_i,); NaN only where ``missing="keep"`` kept a ``?``
    starts          N str: the ``start_timestamp`` attribute as written, else N ``None``
    attributes      every attribute column by name, in file order: N values each, ``int``
                    or ``float`` (numeric; ``int`` where written as an integer), ``str``
                    (string, and date as written)
    frequency       ``@frequency`` as written, or ``None``
    horizon         ``@horizon``, or ``None``
    missing         ``@missing``; without it, whether the file had a missing value
    equal_length    ``@equallength``; without it, whether all series have the same length
    relation        ``@relation``, or ``None``
    ==============  ==========================================================================

    Compares by identity (``eq=False``): compare the fields, the series with NumPy.
    """

    names: list[str]
    series: list[np.ndarray]
    starts: list[str | None]
    attributes: dict[str, list]
    frequency: str | None = None
    horizon: int | None = None
    missing: bool = False
    equal_length: bool = False
    relation: str | None = None

    @property
    def season(self) -> int | None:
        """The season length of ``frequency`` (:data:`SEASONS`), or None for another or none."""
        return SEASONS.get((self.frequency or "").lower())

    def __post_init__(self) -> None:
        names, starts = list(self.names), list(self.starts)
        if not all(isinstance(n, str) for n in names):
            raise TypeError(f"names: expected str names, got {names!r}")
        if not all(s is None or isinstance(s, str) for s in starts):
            raise TypeError(f"starts: expected str or None, got {starts!r}")
        series = []
        for i, values in enumerate(self.series):
            try:
                array = np.asarray(values, dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise ValueError(f"series {i}: expected a 1-D array of numbers ({e})") from None
            if array.ndim != 1 or array.size == 0:
                raise ValueError(
                    f"series {i}: expected a 1-D array with at least one value, got shape "
                    f"{array.shape}"
                )
            series.append(array)
        n = len(series)
        if n == 0:
            raise ValueError("series: expected at least one series, got none")
        if len(names) != n or len(starts) != n:
            raise ValueError(
                f"expected one name and one start per series ({n} series), got {len(names)} "
                f"names and {len(starts)} starts"
            )
        attributes = {}
        for key, column in dict(self.attributes).items():
            if not isinstance(key, str):
                raise TypeError(f"attributes: expected str names, got {key!r}")
            column = list(column)
            if len(column) != n:
                raise ValueError(
                    f"attributes[{key!r}]: expected {n} values (one per series), got {len(column)}"
                )
            attributes[key] = column
        if self.frequency is not None and not isinstance(self.frequency, str):
            raise TypeError(f"frequency: expected a str or None, got {self.frequency!r}")
        if self.horizon is not None and (
            isinstance(self.horizon, bool) or not isinstance(self.horizon, int | np.integer)
        ):
            raise TypeError(f"horizon: expected an int or None, got {self.horizon!r}")
        if self.relation is not None and not isinstance(self.relation, str):
            raise TypeError(f"relation: expected a str or None, got {self.relation!r}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "series", series)
        object.__setattr__(self, "starts", starts)
        object.__setattr__(self, "attributes", attributes)
        object.__setattr__(self, "horizon", None if self.horizon is None else int(self.horizon))
        object.__setattr__(self, "missing", bool(self.missing))
        object.__setattr__(self, "equal_length", bool(self.equal_length))

    def __len__(self) -> int:
        return len(self.series)


# -- reading ----------------------------------------------------------------------------


def _header(path: Path, header: dict, columns: list, line: int, text: str) -> bool:
    """Parse one ``@key value...`` line into ``header[key] = (value, line)`` or, for
    ``@attribute``, append ``(name, type)`` to ``columns``; whether it was ``@data``."""
    where = f"{path}, line {line}"
    key, name, args = _header_key(where, text, header, _KEYS, _EXPECTED, clip=40)
    if key == "attribute":
        if len(args) != 2:
            raise ValueError(
                f"{where}: @attribute: expected a name and a type ({', '.join(ATTRIBUTE_TYPES)}),"
                f" got {args}"
            )
        column, kind = args[0], args[1].lower()
        if kind not in ATTRIBUTE_TYPES:
            raise ValueError(
                f"{where}: @attribute {column}: unknown type {args[1]!r}; expected one of "
                f"{', '.join(ATTRIBUTE_TYPES)}"
            )
        if any(c == column for c, _ in columns):
            raise ValueError(f"{where}: @attribute {column} given twice; expected unique names")
        columns.append((column, kind))
        return False
    if key == "relation":
        if not args:
            raise ValueError(f"{where}: @relation: expected a name, got nothing")
        value: object = " ".join(args)
    elif key == "data":
        value = True
    elif len(args) != 1:
        raise ValueError(f"{where}: {name}: expected one value, got {args}")
    elif key == "frequency":
        if not _TOKEN.fullmatch(args[0]):
            raise ValueError(
                f"{where}: @frequency: expected a word such as yearly or 10_minutes "
                f"(letters, digits, _), got {args[0]!r}"
            )
        value = args[0]
    elif key == "horizon":
        if not re.fullmatch(r"[0-9]{1,18}", args[0]) or int(args[0]) < 1:
            raise ValueError(f"{where}: @horizon: expected a positive integer, got {args[0]!r}")
        value = int(args[0])
    else:  # missing, equallength
        value = _true_or_false(where, name, args[0])
    header[key] = (value, line)
    return key == "data"


def _attribute(where: str, column: str, kind: str, text: str) -> object:
    """One attribute value, typed: int/float (numeric) or str (string, date)."""
    where = f"{where}, attribute {column!r}"
    if kind == "numeric":
        try:
            if _INT.fullmatch(text):
                return int(text)
            value = float(text)
        except ValueError:  # not a number, or an int of more digits than Python allows
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"{where}: expected a finite number (numeric), got {text!r}")
        return value
    if kind == "date" and not _is_date(text):
        raise ValueError(f"{where}: expected a date YYYY-MM-DD HH-MM-SS, got {text!r}")
    return text


def _values(where: str, field: str) -> np.ndarray:
    """The ``,``-separated values of one series, NaN where missing (``?`` or NaN)."""
    if not field:
        raise ValueError(
            f"{where}: empty series; expected at least one comma-separated value, got nothing"
        )
    tokens = field.split(",")
    values = np.empty(len(tokens), dtype=np.float64)  # (T,)
    for t, token in enumerate(tokens):
        s = token.strip()
        if s == "?":
            values[t] = math.nan
            continue
        try:
            values[t] = float(s)
        except ValueError:
            raise ValueError(
                f"{where}, value {t + 1}: expected a number or '?' (missing), got {s[:40]!r}"
            ) from None
        if math.isinf(values[t]):
            raise ValueError(f"{where}, value {t + 1}: expected a finite number, got {s[:40]!r}")
    return values


def _interpolate(where: str, values: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """Fill ``values[lost]`` linearly between known neighbours, the nearest at the ends."""
    known = np.flatnonzero(~lost)
    if known.size == 0:
        raise ValueError(
            f"{where}: every value is missing; expected at least one number to interpolate "
            f"from (missing='interpolate'), got none"
        )
    gaps = np.flatnonzero(lost)
    after = np.searchsorted(known, gaps)  # index into known of the next known value
    a = known[np.maximum(after - 1, 0)]
    b = known[np.minimum(after, known.size - 1)]
    a = np.where(after == 0, b, a)  # before the first known value: take it
    b = np.where(after == known.size, a, b)  # after the last: take it
    w = np.where(a == b, 0.0, (gaps - a) / np.maximum(b - a, 1))
    out = values.copy()
    out[gaps] = (1.0 - w) * values[a] + w * values[b]
    return out


def _apply_missing(where: str, values: np.ndarray, missing: str, header: dict) -> np.ndarray:
    lost = np.isnan(values)
    if not lost.any():
        return values
    t = int(np.argmax(lost))
    declared = header.get("missing")
    if declared is not None and not declared[0]:
        raise ValueError(
            f"{where}, value {t + 1}: missing value '?', but the header declares @missing false "
            f"(line {declared[1]}); expected a number (or @missing true in the header)"
        )
    if missing == "error":
        raise ValueError(
            f"{where}, value {t + 1}: missing value '?'; expected a number (missing='error'); "
            f"pass missing='interpolate' to fill it or missing='keep' to keep it as NaN"
        )
    if missing == "interpolate":
        return _interpolate(where, values, lost)
    return values  # keep


@short_errors
def read_tsf(path: str | os.PathLike, *, missing: str = "error") -> TsfData:
    """Read a Monash forecasting archive ``.tsf`` file (format: see the module docstring).

    Args:
        path: the ``.tsf`` file (UTF-8, with or without a byte-order mark).
        missing: ``"error"``, ``"keep"`` (NaN) or ``"interpolate"``, within each series.

    Returns:
        :class:`TsfData`: the N series (float64, (T_i,)), their names, start timestamps and
        attribute columns, and the header's frequency, horizon, missing and equal-length.

    Raises:
        ValueError: not UTF-8, an unknown, repeated or malformed header line, an unknown
            attribute type, no ``@data``, a header line after it or a data line before it,
            no series, a line with the wrong number of ``:`` fields, an empty series, a
            value that is not a finite number or ``?``, a numeric attribute that is not a
            number, a date not in ``YYYY-MM-DD HH-MM-SS`` form, a missing value the policy
            (or ``@missing false``) refuses, lengths that break ``@equallength true``.
        FileNotFoundError: no such file.
    """
    _check_missing(missing, TSF_MISSING_POLICIES)
    path = _as_path(path)
    try:
        text = _read_text(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file; expected a .tsf file") from None
    header: dict = {}
    columns: list[tuple[str, str]] = []  # (name, type) per @attribute, in column order
    saw_missing = False  # whether any value was missing, before the policy
    names: list[str] = []
    starts: list[str | None] = []
    series: list[np.ndarray] = []
    attributes: dict[str, list] = {}  # the typed values of each column, in column order
    first = (0, "")  # the first series' line and name: the reference for @equallength
    for line, stripped in _data_lines(path, text, partial(_header, path, header, columns), clip=40):
        at = f"{path}, line {line}"
        fields = stripped.split(":")
        if len(fields) != len(columns) + 1:
            expected = ", ".join(c for c, _ in columns)
            expected = f"the attributes {expected}, then" if columns else "no attributes, only"
            raise ValueError(
                f"{at}: expected {len(columns) + 1} ':'-separated fields ({expected} the "
                f"values), got {len(fields)}"
            )
        fields = [f.strip() for f in fields]
        written = {c: v for (c, _), v in zip(columns, fields, strict=False)}
        name = written.get(NAME_COLUMN, str(len(series) + 1))
        where = f"{at}, series {name[:40]!r}"
        row = [_attribute(where, c, k, v) for (c, k), v in zip(columns, fields, strict=False)]
        values = _values(where, fields[-1])
        saw_missing = saw_missing or bool(np.isnan(values).any())
        values = _apply_missing(where, values, missing, header)
        equal = header.get("equallength")
        if equal is not None and equal[0] and series and values.size != series[0].size:
            raise ValueError(
                f"{where}: expected {series[0].size} values (@equallength true, line "
                f"{equal[1]}; as series {first[1]!r} on line {first[0]}), got {values.size}"
            )
        if not series:
            first = (line, name)
        for (column, _), value in zip(columns, row, strict=True):
            attributes.setdefault(column, []).append(value)
        names.append(name)
        starts.append(written.get(START_COLUMN))
        series.append(values)
    if not series:
        raise ValueError(
            f"{path}, line {header['data'][1]}: no series after @data; expected at least one "
            f"data line"
        )
    given = {key: value for key, (value, _) in header.items()}
    return TsfData(
        names=names,
        series=series,
        starts=starts,
        attributes=attributes,
        frequency=given.get("frequency"),
        horizon=given.get("horizon"),
        missing=given.get("missing", saw_missing),
        equal_length=given.get("equallength", len({s.size for s in series}) == 1),
        relation=given.get("relation"),
    )


# -- writing ----------------------------------------------------------------------------


def _is_date(value: object) -> bool:
    try:
        datetime.strptime(value, DATE_FORMAT)  # a TypeError for what is not a str
    except (TypeError, ValueError):
        return False
    return True


def _column_type(name: str, column: list) -> str:
    """The ``@attribute`` type of a column of values: numeric, date or string."""
    if all(isinstance(v, int | float | np.integer | np.floating) for v in column):
        if any(isinstance(v, bool | np.bool_) for v in column):
            raise ValueError(f"attributes[{name!r}]: expected numbers or str, got a bool")
        return "numeric"
    if all(isinstance(v, str) for v in column):
        return "date" if all(_is_date(v) for v in column) else "string"
    kinds = sorted({type(v).__name__ for v in column})
    raise ValueError(
        f"attributes[{name!r}]: expected all numbers or all str, got {', '.join(kinds)}"
    )


def _attribute_text(name: str, i: int, value: object, first: bool) -> str:
    """One attribute value as written; refuses what would not read back the same."""
    if not isinstance(value, str):
        if isinstance(value, int | np.integer):
            return str(int(value))
        if not math.isfinite(value):
            raise ValueError(f"attributes[{name!r}][{i}]: expected a finite number, got {value}")
        return repr(float(value))
    bad = any(c in value for c in ":\n\r") or value != value.strip()
    if bad or (first and value.startswith(("#", "@"))):
        raise ValueError(
            f"attributes[{name!r}][{i}]: expected text without ':', line breaks or surrounding "
            f"spaces{' and not starting with # or @ (first column)' if first else ''}, got "
            f"{value!r}"
        )
    return value


def write_tsf(path: str | os.PathLike, data: TsfData) -> Path:
    """Write ``data`` as a ``.tsf`` file, atomically (a temporary sibling, then a rename).

    The header is ``@relation`` (when set), one ``@attribute`` per column of
    ``data.attributes`` in order (numeric for numbers, date when every value is a
    ``YYYY-MM-DD HH-MM-SS`` string, else string), ``@frequency`` and ``@horizon`` (when
    set), ``@missing``, ``@equallength``, ``@data``. Without a ``series_name`` column,
    ``data.names`` are written as one (first); without a ``start_timestamp`` column, the
    ``data.starts`` are written as one when they are not all ``None``. Values are written
    with ``repr`` (exact), NaN as ``?``. :func:`read_tsf` reads the file back to equal
    fields.

    Returns:
        The path written.

    Raises:
        ValueError: NaN values with ``data.missing`` false, unequal lengths with
            ``data.equal_length`` true, infinite values, ``names``/``starts`` that disagree
            with the ``series_name``/``start_timestamp`` columns, text that would not read
            back the same (a ``:``, a line break, surrounding spaces), mixed or non-finite
            attribute values, a start that is not a date.
        TypeError: ``data`` is not a :class:`TsfData`.
    """
    if not isinstance(data, TsfData):
        raise TypeError(f"data: expected a TsfData, got {type(data).__name__}")
    columns = dict(data.attributes)
    for field, column in (("names", NAME_COLUMN), ("starts", START_COLUMN)):
        written = columns.get(column)
        given = getattr(data, field)
        if written is not None and all(isinstance(v, str) for v in written) and written != given:
            raise ValueError(
                f"{field}: expected the values of attributes[{column!r}], got different ones"
            )
    if NAME_COLUMN not in columns:
        columns = {NAME_COLUMN: list(data.names), **columns}
    if START_COLUMN not in columns and any(s is not None for s in data.starts):
        if not all(_is_date(s) for s in data.starts):
            raise ValueError(
                f"starts: expected all dates YYYY-MM-DD HH-MM-SS (or all None), got {data.starts!r}"
            )
        columns[START_COLUMN] = list(data.starts)

    lines = []
    if data.relation is not None:
        if " ".join(data.relation.split()) != data.relation or not data.relation:
            raise ValueError(
                f"relation: expected words separated by single spaces, got {data.relation!r}"
            )
        lines.append(f"@relation {data.relation}")
    for name, column in columns.items():
        if not name or name.split() != [name]:
            raise ValueError(f"attributes: expected names without spaces, got {name!r}")
        lines.append(f"@attribute {name} {_column_type(name, column)}")
    if data.frequency is not None:
        if not _TOKEN.fullmatch(data.frequency):
            raise ValueError(
                f"frequency: expected a word (letters, digits, _), got {data.frequency!r}"
            )
        lines.append(f"@frequency {data.frequency}")
    if data.horizon is not None:
        if data.horizon < 1:
            raise ValueError(f"horizon: expected a positive integer, got {data.horizon}")
        lines.append(f"@horizon {data.horizon}")
    lines.append(f"@missing {str(data.missing).lower()}")
    lines.append(f"@equallength {str(data.equal_length).lower()}")
    lines.append("@data")
    for i, values in enumerate(data.series):
        label = f"series {i} ({data.names[i]!r})"
        if np.isinf(values).any():
            raise ValueError(f"{label}: expected finite values or NaN, got inf")
        if np.isnan(values).any() and not data.missing:
            raise ValueError(f"{label}: NaN (missing) values, but data.missing is false")
        if data.equal_length and values.size != data.series[0].size:
            raise ValueError(
                f"{label}: expected {data.series[0].size} values (data.equal_length is true; "
                f"as series 0), got {values.size}"
            )
        fields = [
            _attribute_text(name, i, column[i], first=k == 0)
            for k, (name, column) in enumerate(columns.items())
        ]
        fields.append(",".join("?" if math.isnan(v) else repr(v) for v in values.tolist()))
        lines.append(":".join(fields))
    return write_atomically(path, ("\n".join(lines) + "\n").encode("utf-8"))
