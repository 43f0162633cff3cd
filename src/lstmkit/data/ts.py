"""UEA/UCR ``.ts`` files: N cases of D dimensions, equal or unequal lengths, with class
labels or regression targets (:func:`read_ts` returns N arrays (T_i, D) and (N,) labels,
float targets or ``None``)."""

import math
import os
import re
from functools import partial
from pathlib import Path

import numpy as np

from lstmkit.data.frame import (
    _as_path,
    _check_missing,
    _data_lines,
    _fill_missing,
    _float,
    _header_key,
    _number,
    _read_text,
    _true_or_false,
)
from lstmkit.messages import listed, short_errors

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


def _ts_header(path: Path, header: dict, line: int, text: str) -> bool:
    """Parse one ``@key value...`` line into ``header[key] = (value, line)``; whether it
    was ``@data`` (then the header is checked as a whole)."""
    where = f"{path}, line {line}"
    key, _, args = _header_key(where, text, header, _TS_KEYS, ", ".join(_TS_KEYS.values()), None)
    name = _TS_KEYS[key]
    if key == "problemname":
        if not args:
            raise ValueError(f"{where}: {name}: expected a name, got nothing")
        value: object = " ".join(args)
    elif key == "data":
        value = True
    elif key == "classlabel":
        if not args:
            raise ValueError(f"{where}: {name}: expected true or false, got nothing")
        labels = args[1:]
        if not _true_or_false(where, name, args[0]):
            if labels:
                raise ValueError(
                    f"{where}: {name} false: expected nothing after false, got {labels}"
                )
            value = None
        else:
            if not labels:
                raise ValueError(
                    f"{where}: {name} true: expected the class labels after true, got none"
                )
            if len(set(labels)) != len(labels):
                raise ValueError(f"{where}: {name}: expected unique labels, got {labels}")
            value = tuple(labels)
    elif len(args) != 1:
        raise ValueError(f"{where}: {name}: expected one value, got {args}")
    elif key in _TS_BOOL_KEYS:
        value = _true_or_false(where, name, args[0])
        if key == "timestamps" and value:
            raise ValueError(
                f"{where}: @timeStamps true: timestamped .ts files are not supported; expected "
                f"@timeStamps false"
            )
    else:  # dimensions, serieslength
        if not re.fullmatch(r"[0-9]{1,18}", args[0]) or int(args[0]) < 1:
            raise ValueError(f"{where}: {name}: expected a positive integer, got {args[0][:40]!r}")
        value = int(args[0])
    header[key] = (value, line)
    if key == "data":
        _ts_check_header(path, header)
    return key == "data"


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


def _ts_case(at: str, fields: list[str], missing: str) -> np.ndarray:
    """One case: D ':'-separated dimension fields of ','-separated values -> (T, D)."""
    dims = []
    for d, field in enumerate(fields):
        if not field.strip():
            raise ValueError(
                f"{at}, dimension {d + 1}: expected comma-separated numbers, got nothing"
            )
        row = []
        for t, token in enumerate(field.split(",")):
            s = token.strip()
            try:
                row.append(math.nan if s == "?" else _float(s))
            except ValueError as e:
                raise ValueError(f"{at}, dimension {d + 1}, value {t + 1}: {e}") from None
        if dims and len(row) != len(dims[0]):
            raise ValueError(
                f"{at}, dimension {d + 1}: expected {len(dims[0])} values (as "
                f"dimension 1; the dimensions of one case have equal length), got {len(row)}"
            )
        dims.append(row)
    values = np.ascontiguousarray(np.array(dims, dtype=np.float64).T)  # (D, T) -> (T, D)

    def where(t: int | None, d: int) -> str:
        return f"{at}, dimension {d + 1}" + ("" if t is None else f", value {t + 1}")

    return _fill_missing(values, missing, where, at)[0]


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
    X: list[np.ndarray] = []
    y: list = []
    first_line = 0  # the first case's line, the reference for D and T
    read_header = partial(_ts_header, path, header)
    for line, text in _data_lines(path, _read_text(path), read_header, clip=None):
        at = f"{path}, line {line}"
        labels = header.get("classlabel", (None, 0))
        target = header.get("targetlabel", (False, 0))
        fields = text.split(":")
        if labels[0] is not None or target[0]:
            if len(fields) < 2:
                raise ValueError(
                    f"{at}: expected dimensions then a label, separated by ':', got no ':'"
                )
            label = fields.pop().strip()
            if labels[0] is not None and label not in labels[0]:
                raise ValueError(
                    f"{at}: unknown class label {label!r}; expected one of "
                    f"{listed(labels[0], quote=False)} (@classLabel, line {labels[1]})"
                )
            if target[0]:
                try:
                    value = _number(label)
                except ValueError as e:
                    raise ValueError(f"{at}, target label: {e}") from None
                if math.isnan(value):
                    raise ValueError(f"{at}, target label: expected a number, got {label!r}")
                y.append(value)
            else:
                y.append(label)
        _ts_check_dims(at, len(fields), header, X, first_line)
        case = _ts_case(at, fields, missing)
        _ts_check_length(at, case.shape[0], header, X, first_line)
        if not X:
            first_line = line
        X.append(case)
    if not X:
        raise ValueError(
            f"{path}, line {header['data'][1]}: no cases after @data; expected at least one "
            f"data line"
        )
    if labels[0] is not None:  # the header as the data lines read it
        return X, np.array(y, dtype=str)
    return X, np.array(y, dtype=np.float64) if target[0] else None


def _ts_expect(at: str, want: int, got: int, what: str, why: str) -> None:
    if got != want:
        raise ValueError(f"{at}: expected {want} {what} ({why}), got {got}")


def _ts_check_dims(at: str, got: int, header: dict, X: list, first_line: int) -> None:
    if header.get("univariate", (False, 0))[0]:
        _ts_expect(at, 1, got, "dimension", f"@univariate true, line {header['univariate'][1]}")
    if "dimensions" in header:
        want, line = header["dimensions"]
        _ts_expect(at, want, got, "dimensions", f"@dimensions, line {line}")
    elif X:
        _ts_expect(at, X[0].shape[1], got, "dimensions", f"as on line {first_line}")


def _ts_check_length(at: str, got: int, header: dict, X: list, first_line: int) -> None:
    equal = header.get("equallength")
    if equal is not None and not equal[0]:
        return
    if "serieslength" in header:
        want, line = header["serieslength"]
        _ts_expect(at, want, got, "values per dimension", f"@seriesLength, line {line}")
    if equal is not None and X:
        why = f"@equalLength true, line {equal[1]}; as on line {first_line}"
        _ts_expect(at, X[0].shape[0], got, "values per dimension", why)
