"""Panels: many separate time series of different lengths, one forecasting model for all.

A panel comes as

* a list (or tuple) of 1-D arrays, lists or pandas Series — forecasts come back as a list;
* a dict ``{id: series}`` — forecasts come back as a dict with the same keys;
* a long DataFrame with one row per (series, time): ``id``, ``time`` and ``value``
  columns (names settable; Nixtla's ``unique_id``/``ds``/``y`` are recognised) —
  forecasts come back as a long DataFrame.

:func:`as_panel` turns each into a :class:`Panel` and checks what a forecaster needs:
every series has at least 2 finite numbers, a long frame has no duplicate (id, time)
and its rows are put in time order within each series. A pandas frequency, when there is
one, gives the season (:func:`season_of`).

Per-step covariates come with the panel: for a long frame, the names of its columns that
hold them (``covariates``: known up to each forecast origin; ``future_covariates``: known
over the horizon too, like a calendar or a planned promotion); for a list or dict, a list
or dict of the same shape holding a (T_i,) or (T_i, C) array beside each series, as long
as it. Their values for the steps to forecast come later, through :func:`future_rows`.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lstmkit.data.frame import check_magnitude
from lstmkit.messages import listed, shown

# pandas frequency → season length: yearly 1, quarterly 4, monthly 12, weekly 52,
# daily 7, business-daily 5, hourly 24 (the first letter of the offset alias)
SEASONS = {"A": 1, "Y": 1, "Q": 4, "M": 12, "W": 52, "D": 7, "B": 5, "H": 24}

NIXTLA_COLUMNS = ("unique_id", "ds", "y")
STEPWISE = ("covariates", "future_covariates")  # the keywords of per-step covariates


@dataclass(frozen=True)
class Panel:
    """Series ``values[i]`` (float64, 1-D, ≥ 2 points) named ``ids[i]``, in input order.

    ``kind`` is how it came ("list", "dict" or "long"); ``ends`` the last time stamp of
    each series (long frames and pandas Series with a time index; else None);
    ``frequency`` the pandas frequency when one is known; ``columns`` the (id, time,
    value) column names of a long frame. ``covariates`` (T_i, C) and ``future`` (T_i, F):
    each series' past and known-future covariates, step by step (None: none); ``names``
    the long frame's (past, future) covariate columns."""

    ids: list
    values: list[np.ndarray]
    kind: str
    frequency: str | None = None
    ends: list | None = None
    columns: tuple[str, str, str] | None = None
    covariates: list[np.ndarray] | None = None
    future: list[np.ndarray] | None = None
    names: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def __len__(self) -> int:
        return len(self.values)


def season_of(frequency: str | None) -> int | None:
    """The season length of a pandas frequency alias ('MS', 'QE-DEC', 'h', '2D'…), or None."""
    return SEASONS.get((frequency or "").lstrip("0123456789").upper()[:1])


def _is_long_frame(data, id_column: str | None) -> bool:
    columns = getattr(data, "columns", None)
    if columns is None or not hasattr(data, "groupby"):
        return False
    # a named id column makes a frame a panel (a missing one is then an error, not ignored)
    return id_column is not None or "id" in columns or "unique_id" in columns


def is_panel(data, id_column: str | None = None) -> bool:
    """Whether ``data`` is a panel (see the module docstring) rather than one series."""
    if isinstance(data, Mapping):
        return True
    if isinstance(data, list | tuple) and data:
        first = data[0]
        return hasattr(first, "__len__") and not isinstance(first, str | bytes)
    return _is_long_frame(data, id_column)


def _float64(given, what: str, unwrap: bool = True) -> np.ndarray:
    """``given`` (array-like, or anything with ``to_numpy``, which ``unwrap`` calls first) as
    a float64 array; a ValueError naming ``what`` if it does not hold numbers."""
    if unwrap and hasattr(given, "to_numpy"):
        given = given.to_numpy()
    try:
        return np.asarray(given, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: expected numbers, got {err}") from err


def _series_values(name, values, min_points: int = 2) -> np.ndarray:
    """One series as float64 (n,), checked: numbers, 1-D, finite, ``min_points`` or more."""
    array = _float64(values, f"series {name!r}")
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"series {name!r}: expected 1 dim (T,), got shape {array.shape}")
    if array.shape[0] < min_points:
        raise ValueError(
            f"series {name!r}: expected at least {min_points} points"
            f"{' to forecast from' if min_points == 2 else ''}, got {array.shape[0]}"
        )
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"series {name!r}: expected finite values, got {array[bad[0]]} at position "
            f"{int(bad[0])} (fill missing values first)"
        )
    check_magnitude(array, lambda at: f"series {name!r}, position {at[0]}")
    return array


def static_matrix(panel: Panel, static) -> np.ndarray | None:
    """Per-series static covariates as float64 (n_series, S), rows in the panel's order:
    from a DataFrame indexed by the series' ids, or with them in the panel's id column
    (Nixtla's ``static_df``; its other columns the covariates), a dict
    ``{id: number or numbers}``, or an array-like of n_series rows (or numbers) in the
    panel's order. None stays None. Raises ValueError naming the series and the problem
    (a missing id, a non-numeric or non-finite value, rows of different widths)."""
    if static is None:
        return None
    if hasattr(static, "index") and hasattr(static, "columns"):  # a DataFrame by id
        id_name = panel.columns[0] if panel.columns else NIXTLA_COLUMNS[0]
        if id_name in static.columns:  # Nixtla's static_df: the ids in a column
            static = static.set_index(id_name)
        static = {i: static.loc[i].to_numpy() for i in static.index}
    if isinstance(static, Mapping):
        missing = [i for i in panel.ids if i not in static]
        if missing:
            raise ValueError(
                f"static_covariates: expected a row for every series, missing {missing[0]!r}"
                f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}"
            )
        rows = [(i, static[i]) for i in panel.ids]
    else:
        try:
            rows = list(zip(panel.ids, static, strict=True))
        except (TypeError, ValueError):
            got = len(static) if hasattr(static, "__len__") else type(static).__name__
            raise ValueError(
                f"static_covariates: expected {len(panel)} rows (one per series), got {got}"
            ) from None
    out = []
    for name, row in rows:
        what = f"static_covariates of series {name!r}"
        vector = np.atleast_1d(_float64(row, what, unwrap=False))
        if vector.ndim != 1 or (out and len(vector) != len(out[0])):
            width = len(out[0]) if out else "some"
            raise ValueError(f"{what}: expected {width} numbers, got shape {vector.shape}")
        if not np.isfinite(vector).all():
            raise ValueError(f"{what}: expected finite numbers, got {vector}")
        out.append(vector)
    return np.stack(out)


def _index_end(values):
    """(last stamp, frequency) of a Series with a DatetimeIndex/PeriodIndex, else Nones."""
    index = getattr(values, "index", None)
    if index is None or not hasattr(index, "freqstr") or len(index) == 0:
        return None, None
    return index[-1], index.freqstr


def as_panel(
    data,
    *,
    id_column: str | None = None,
    time_column: str | None = None,
    value_column: str | None = None,
    min_points: int = 2,
    covariates=None,
    future_covariates=None,
) -> Panel:
    """A :class:`Panel` from a list/tuple or dict of series, or a long DataFrame.

    For a long frame the columns default to ``id``/``time``/``value``, or Nixtla's
    ``unique_id``/``ds``/``y`` when the frame has those. ``covariates`` and
    ``future_covariates``: see the module docstring. Raises ValueError naming the series
    and the problem: fewer than ``min_points`` (2) points, a non-numeric or missing value, a
    duplicate time stamp, an unknown column, covariates of another length than their series."""
    if _is_long_frame(data, id_column):
        names = (id_column, time_column, value_column)
        return _long_panel(data, names, min_points, (covariates, future_covariates))
    if isinstance(data, Mapping):
        kind, items = "dict", list(data.items())
    elif isinstance(data, list | tuple):
        kind, items = "list", list(enumerate(data))
    else:
        raise TypeError(
            "panel: expected a list or dict of series or a long DataFrame with an id "
            f"column, got {type(data).__name__}"
        )
    if not items:
        raise ValueError("panel: expected at least one series, got none")
    values = [_series_values(name, v, min_points) for name, v in items]
    ends, frequencies = zip(*(_index_end(v) for _, v in items), strict=True)
    known = {f for f in frequencies if f}
    ids = [name for name, _ in items]
    lengths = [len(v) for v in values]
    return Panel(
        ids=ids,
        values=values,
        kind=kind,
        frequency=known.pop() if len(known) == 1 else None,
        ends=list(ends) if all(e is not None for e in ends) else None,
        covariates=aligned_steps(ids, covariates, "covariates", lengths),
        future=aligned_steps(ids, future_covariates, "future_covariates", lengths),
    )


def step_matrix(name, given, what: str, rows: int | None) -> np.ndarray:
    """One series' per-step covariates as float64 (rows, C), checked: numbers, finite,
    ``rows`` of them (one per point of the series; None: any number ≥ 1)."""
    label = f"{what} of series {name!r}"
    matrix = _float64(given, label)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(
            f"{label}: expected (steps,) or (steps, columns), got shape {matrix.shape}"
        )
    if rows is not None and matrix.shape[0] != rows:
        raise ValueError(
            f"{label}: expected {rows} rows (one per point of the series), got {matrix.shape[0]}"
        )
    bad = np.argwhere(~np.isfinite(matrix))
    if bad.size:
        row, column = (int(k) for k in bad[0])
        raise ValueError(
            f"{label}: expected finite values, got {matrix[row, column]} at row {row}, column "
            f"{column}"
        )
    check_magnitude(matrix, lambda at: f"{label}, row {at[0]}")
    return matrix


def aligned_steps(ids: list, given, what: str, lengths) -> list[np.ndarray] | None:
    """Per-step covariates given beside a list or dict panel (a list in its order, or a
    dict by its ids), one checked (T_i, C) matrix per series in the panel's order; all
    with the same columns. ``lengths``: each series' rows (None: any)."""
    if given is None:
        return None
    if isinstance(given, Mapping):
        missing = [i for i in ids if i not in given]
        if missing:
            raise ValueError(f"{what}: expected a value for every series, missing {missing[0]!r}")
        items = [given[i] for i in ids]
    elif isinstance(given, list | tuple) and len(given) == len(ids):
        items = list(given)
    else:
        got = len(given) if isinstance(given, list | tuple) else type(given).__name__
        raise ValueError(
            f"{what}: expected a list or dict of {len(ids)} arrays (one per series), got {got}"
        )
    lengths = [None] * len(ids) if lengths is None else lengths
    out = []
    for name, item, rows in zip(ids, items, lengths, strict=True):
        matrix = step_matrix(name, item, what, rows)
        if out and matrix.shape[1] != out[0].shape[1]:
            raise ValueError(
                f"{what} of series {name!r}: expected {out[0].shape[1]} columns as the first "
                f"series has, got {matrix.shape[1]}"
            )
        out.append(matrix)
    return out


def covariate_columns(given, what: str) -> tuple[str, ...]:
    """A long frame's covariate column names: one name, or a sequence of names."""
    if given is None:
        return ()
    named = (given,) if isinstance(given, str) else tuple(given)
    if not named or not all(isinstance(n, str) for n in named):
        raise ValueError(f"{what}: expected column names of the long frame, got {given!r}")
    return named


def future_rows(panel: Panel, given, rows: int) -> list[np.ndarray]:
    """The known-future covariates of the ``rows`` steps after each series' end, (rows, F)
    per series in the panel's order, from ``given``: a list or dict of arrays for a list
    or dict panel (the first ``rows`` of each are used), one array for a panel of one, or
    a long frame with the id, time and future columns (the rows after each series' last
    time stamp)."""
    width = panel.future[0].shape[1]
    what = "future_covariates"
    if given is None:
        raise ValueError(
            f"{what}: expected the values of the {rows} steps ahead of every series (the model "
            "was fitted with them), got none"
        )
    if panel.kind == "long":
        if not (hasattr(given, "columns") and hasattr(given, "groupby")):
            raise ValueError(f"{what}: expected a long DataFrame, got {type(given).__name__}")
        id_name, time_name, _ = panel.columns
        for column in (id_name, time_name, *panel.names[1]):
            if column not in given.columns:
                raise ValueError(
                    f"{what}: expected a column {column!r}, got {listed(map(str, given.columns))}"
                )
        groups = dict(
            list(given.sort_values(time_name, kind="stable").groupby(id_name, sort=False))
        )
        given = {}
        for name, end in zip(panel.ids, panel.ends, strict=True):
            group = groups.get(name)
            if group is not None:
                group = group[group[time_name] > end]
            given[name] = np.empty((0, width)) if group is None else group[list(panel.names[1])]
    elif panel.kind == "single":
        given = [given]
    ahead = aligned_steps(panel.ids, given, what, None)
    for name, matrix in zip(panel.ids, ahead, strict=True):
        if matrix.shape[1] != width or matrix.shape[0] < rows:
            raise ValueError(
                f"{what} of series {name!r}: expected at least {rows} rows of {width} "
                f"columns (the steps ahead), got shape {matrix.shape}"
            )
    return [m[:rows] for m in ahead]


def _long_panel(frame, given: tuple, min_points: int, stepwise: tuple) -> Panel:
    """The panel of a long frame: ``given`` its (id, time, value) column names (None: the
    defaults), ``stepwise`` the (past, future) covariate columns it also holds."""
    nixtla = given[0] is None and NIXTLA_COLUMNS[0] in frame.columns
    defaults = NIXTLA_COLUMNS if nixtla else ("id", "time", "value")
    names = tuple(name or default for name, default in zip(given, defaults, strict=True))
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(
            f"panel: expected columns {', '.join(map(repr, missing))} (id, time, value), "
            f"got {listed(map(str, frame.columns))}"
        )
    id_name, time_name, value_name = names
    covariate_names = tuple(map(covariate_columns, stepwise, STEPWISE))
    for what, columns in zip(STEPWISE, covariate_names, strict=True):
        for column in columns:
            if column not in frame.columns or column in names:
                problem = "the id, time or target column" if column in names else "unknown column"
                raise ValueError(
                    f"{what}: {problem} {column!r}; expected another column of "
                    f"{listed(map(str, frame.columns))}"
                )
    if frame.empty:
        raise ValueError("panel: expected at least one row, got an empty frame")
    duplicated = frame.duplicated([id_name, time_name])
    if duplicated.any():
        name, time = (_plain(frame.loc[duplicated, c].iloc[0]) for c in (id_name, time_name))
        if hasattr(time, "isoformat"):  # a pandas/datetime stamp: its text, not its repr
            time = str(time)
        raise ValueError(
            f"series {shown(name)}: expected one value per time stamp, got time {shown(time)} twice"
        )
    ordered = frame.sort_values([time_name], kind="stable")
    ids, values, ends, steps = [], [], [], ([], [])
    for name, group in ordered.groupby(id_name, sort=False):
        name = _plain(name)
        ids.append(name)
        values.append(_series_values(name, group[value_name], min_points))
        ends.append(group[time_name].iloc[-1])
        for what, columns, out in zip(STEPWISE, covariate_names, steps, strict=True):
            if columns:
                out.append(step_matrix(name, group[list(columns)], what, None))
    first_seen = {name: k for k, name in enumerate(dict.fromkeys(frame[id_name]))}
    order = sorted(range(len(ids)), key=lambda i: first_seen[ids[i]])
    frequency = _infer_frequency(ordered, id_name, time_name, ids[order[0]])
    past, future = ([got[i] for i in order] if got else None for got in steps)
    return Panel(
        ids=[ids[i] for i in order],
        values=[values[i] for i in order],
        kind="long",
        frequency=frequency,
        ends=[ends[i] for i in order],
        columns=names,
        covariates=past,
        future=future,
        names=covariate_names if any(covariate_names) else None,
    )


def _infer_frequency(frame, id_name, time_name, series_id) -> str | None:
    """pandas' inferred frequency of one series' time stamps (None if they are not dates)."""
    import pandas as pd

    times = frame.loc[frame[id_name] == series_id, time_name]
    if not (pd.api.types.is_datetime64_any_dtype(times) and len(times) >= 3):
        return None
    try:
        return pd.infer_freq(pd.DatetimeIndex(times))
    except (TypeError, ValueError):
        return None


def _plain(value):
    """A numpy scalar as the Python number it holds (for messages and JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def _json_value(value):
    """An id or time stamp as JSON: numbers and strings as they are, numpy scalars as
    Python ones, pandas stamps and periods by their ISO text (with their type)."""
    value = _plain(value)
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    import pandas as pd

    if isinstance(value, pd.Timestamp):
        return {"timestamp": value.isoformat()}
    if isinstance(value, pd.Period):
        return {"period": str(value), "freq": value.freqstr}
    raise ValueError(
        f"panel: expected ids and time stamps that are numbers, strings or dates, got "
        f"{type(value).__name__} {value!r}"
    )


def _from_json_value(value):
    if not isinstance(value, dict):
        return value
    import pandas as pd

    if "timestamp" in value:
        return pd.Timestamp(value["timestamp"])
    return pd.Period(value["period"], freq=value["freq"])


def panel_to_json(panel: Panel) -> dict:
    """A JSON-able description of ``panel`` (with its values) for a saved model."""
    return {
        "ids": [_json_value(i) for i in panel.ids],
        "values": [v.tolist() for v in panel.values],
        "kind": panel.kind,
        "frequency": panel.frequency,
        "ends": None if panel.ends is None else [_json_value(e) for e in panel.ends],
        "columns": None if panel.columns is None else list(panel.columns),
        "covariates": None if panel.covariates is None else [c.tolist() for c in panel.covariates],
        "future": None if panel.future is None else [f.tolist() for f in panel.future],
        "names": None if panel.names is None else [list(n) for n in panel.names],
    }


def panel_from_json(saved: dict) -> Panel:
    """The :class:`Panel` that :func:`panel_to_json` described, checked again."""
    if saved["kind"] not in ("list", "dict", "long", "single"):
        raise ValueError(f"panel kind: expected list, dict, long or single, got {saved['kind']!r}")
    ids = [_from_json_value(i) for i in saved["ids"]]
    if len(ids) != len(saved["values"]):
        raise ValueError(
            f"panel: expected one id per series ({len(saved['values'])}), got {len(ids)}"
        )
    ends = saved["ends"]
    values = [_series_values(name, v) for name, v in zip(ids, saved["values"], strict=True)]
    lengths = [len(v) for v in values]
    names = saved.get("names")  # models saved before per-step covariates: none
    return Panel(
        ids=ids,
        values=values,
        kind=saved["kind"],
        frequency=saved["frequency"],
        ends=None if ends is None else [_from_json_value(e) for e in ends],
        columns=None if saved["columns"] is None else tuple(saved["columns"]),
        covariates=aligned_steps(ids, saved.get("covariates"), "covariates", lengths),
        future=aligned_steps(ids, saved.get("future"), "future_covariates", lengths),
        names=None if names is None else tuple(tuple(str(c) for c in n) for n in names),
    )
