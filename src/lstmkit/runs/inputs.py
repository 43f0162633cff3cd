"""The data of a run: a series or a panel for forecasting, a training and a test part for
the sequence tasks, a saved model; built-in sets by name, files by their suffix. Each
reader checks what the run needs before any training (channels, labels seen in training,
a test part shorter than the series)."""

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmkit.data import list_datasets, load_dataset, read_csv, read_npz, read_ts, read_tsf
from lstmkit.data.frame import TIME_COLUMN_NAMES
from lstmkit.data.panel import as_panel
from lstmkit.data.sequences import as_sequences
from lstmkit.messages import listed, shown
from lstmkit.runs.common import names
from lstmkit.tasks import (
    Forecaster,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    TextGenerator,
)

ESTIMATORS = {
    cls.__name__: cls
    for cls in (Forecaster, SequenceClassifier, SequenceRegressor, SequenceTagger, TextGenerator)
}


def read_frame(data: str, missing: str, time_column: str | None = None):
    builtin = {d["name"] for d in list_datasets() if d["task"] == "forecasting"}
    if data in builtin:
        return load_dataset(data)
    return read_csv(data, missing=missing, time_column=time_column or "auto")


def target_series(p: dict, missing: str):
    """(frame, target names, target values (T, K), held-out steps) of --data/--target/--test
    (default: the horizon)."""
    frame = read_frame(p["data"], missing, p.get("time_column"))
    targets = names(p["target"]) or (list(frame.columns) if len(frame.columns) == 1 else [])
    if not targets:
        raise ValueError(
            f"--target: expected one of the columns {listed(frame.columns, quote=False)}; the "
            f"file has {len(frame.columns):,} columns, so name the target"
        )
    y = frame.select(targets)
    test = p["test_steps"] or p["horizon"]
    if test >= len(y):
        option = "--test" if p["test_steps"] else "--horizon (the test split's default)"
        raise ValueError(
            f"{option}: expected fewer steps than the series has ({len(y)}), got {test}"
        )
    return frame, targets, y, test


@dataclass
class PanelData:
    """The series of a panel run in the file's order: ids, values, time labels as written;
    for a long CSV also the frame (time column parsed) that Forecaster.fit reads, with its
    (id, time, value) column names; the season and horizon the data gives (.tsf)."""

    name: str
    ids: list
    values: list[np.ndarray]
    labels: list[list[str]]
    frame: object = None
    columns: tuple[str, str, str] | None = None
    season: int | None = None
    horizon: int | None = None
    static: dict | None = None  # --static-columns: {id: [values]}
    covariates: tuple[str, ...] = ()  # --covariates of a long CSV
    future: tuple[str, ...] = ()  # --future-covariates of a long CSV

    def split(self, steps: int):
        """(training part, held-out part) in Forecaster.fit's form: the last ``steps``
        points of every series held out; a series left with fewer than 2 is an error."""
        short = [
            (i, len(v)) for i, v in zip(self.ids, self.values, strict=True) if len(v) < steps + 2
        ]
        if short:
            (name, n), more = short[0], len(short) - 1
            raise ValueError(
                f"series {name!r}: expected at least --test + 2 = {steps + 2} points (2 to train "
                f"on, {steps} held out), got {n}"
                + (f" ({more} more series too short)" if more else "")
            )
        if self.frame is None:
            pairs = list(zip(self.ids, self.values, strict=True))
            return {i: v[:-steps] for i, v in pairs}, {i: v[-steps:] for i, v in pairs}
        id_name, time_name, _ = self.columns
        ordered = self.frame.sort_values(time_name, kind="stable")
        held = ordered.groupby(id_name, sort=False).tail(steps).index
        return self.frame.drop(held), self.frame.loc[held]

    def fit_columns(self) -> dict:
        """Forecaster.fit's keywords naming the long frame's columns."""
        if self.columns is None:
            return {}
        named = dict(zip(("id_column", "time_column", "value_column"), self.columns, strict=True))
        if self.covariates:
            named["covariates"] = list(self.covariates)
        if self.future:
            named["future_covariates"] = list(self.future)
        return named


def pandas_module(option: str):
    try:
        import pandas
    except ImportError:
        raise ValueError(
            f"{option}: reading a long CSV needs pandas (pip install pandas)"
        ) from None
    return pandas


def is_panel_run(p: dict) -> bool:
    """A panel run: a long CSV (--id-column), a .tsf file, or one series with quantiles or
    an ensemble (a panel of one)."""
    return bool(
        p["id_column"]
        or Path(p["data"]).suffix.lower() == ".tsf"
        or p["quantiles"]
        or p["n_models"] > 1
    )


def read_panel(p: dict) -> PanelData:
    """The panel of --data: a .tsf file, a long CSV (--id-column), or one target column."""
    if Path(p["data"]).suffix.lower() == ".tsf":
        return read_tsf_panel(p)
    if p["id_column"]:
        return read_long_csv(p)
    frame, targets, y, _ = target_series(p, p["missing"])
    if len(targets) != 1:
        raise ValueError(
            f"--quantiles/--models: expected one target column (a panel of one), got "
            f"{len(targets)}: {', '.join(targets)}"
        )
    labels = list(frame.time) if frame.time else [str(t) for t in range(len(y))]
    return PanelData(p["data"], targets, [y[:, 0]], [labels], season=p["season"] or 12)


def read_tsf_panel(p: dict) -> PanelData:
    for key in ("id_column", "time_column", "target"):
        if p[key]:
            raise ValueError(
                f"--{key.replace('_', '-')}: a .tsf file names its series itself; expected none, "
                f"got {p[key]!r}"
            )
    if p["missing"] not in ("error", "interpolate"):
        raise ValueError(
            f"--missing: expected error or interpolate for a .tsf file, got {p['missing']}"
        )
    data = read_tsf(p["data"], missing=p["missing"])
    seen = set()
    for name in data.names:
        if name in seen:
            raise ValueError(
                f"{p['data']}: series {name!r}: expected unique series names, got it twice"
            )
        seen.add(name)
    return PanelData(
        p["data"],
        list(data.names),
        list(data.series),
        [[str(t) for t in range(len(v))] for v in data.series],
        season=data.season,
        horizon=data.horizon,
    )


def long_columns(p: dict, columns: list[str]) -> tuple[str, str, str]:
    """(id, time, value) columns of a long CSV: as given, the time column by its name
    (date, time, ds, …) and the target as the only column left."""
    targets = names(p["target"])
    if len(targets) > 1:
        raise ValueError(f"--target: expected one column for a panel, got {p['target']!r}")
    given = {
        "--id-column": p["id_column"],
        "--time-column": p["time_column"],
        "--target": targets[0] if targets else None,
    }
    covariates = [
        (f"--{key.replace('_', '-')}", name)
        for key in ("static_columns", "covariates", "future_covariates")
        for name in names(p.get(key))
    ]
    for option, name in [*given.items(), *covariates]:
        if name is not None and name not in columns:
            raise ValueError(
                f"{option}: unknown column {shown(name)}; the file has {listed(columns)}"
            )
    others = {n for _, n in covariates}
    rest = [c for c in columns if c not in given.values() and c not in others]
    time_name = given["--time-column"]
    if time_name is None:
        named = [c for c in rest if c.lower() in TIME_COLUMN_NAMES]
        if len(named) != 1:
            raise ValueError(
                f"--time-column: expected the name of the time column, one of {listed(rest)}"
            )
        time_name = named[0]
        rest.remove(time_name)
    value_name = given["--target"]
    if value_name is None:
        if len(rest) != 1:
            raise ValueError(
                f"--target: expected the name of the value column, one of {listed(rest)}"
            )
        value_name = rest[0]
    chosen = {p["id_column"], time_name, value_name}
    if len(chosen) != 3 or chosen & others:
        raise ValueError(
            "--id-column/--time-column/--target/--static-columns/--covariates/"
            f"--future-covariates: expected different columns, got {p['id_column']!r}, "
            f"{time_name!r}, {value_name!r}, {listed(sorted(others))}"
        )
    return p["id_column"], time_name, value_name


def read_long_csv(p: dict) -> PanelData:
    """A long CSV: one row per (series, time). Ids are read as text; times as dates where
    they all parse, else as numbers or text (ordered as such); --missing applies within
    each series."""
    pd = pandas_module("--id-column")
    path = p["data"]
    try:
        frame = pd.read_csv(path, dtype={p["id_column"]: str}, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: expected a CSV file with a header line, got {err}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    columns = long_columns(p, list(frame.columns))
    id_name, time_name, value_name = columns
    for name in (id_name, time_name):
        empty = np.flatnonzero(frame[name].isna().to_numpy())
        if empty.size:
            raise ValueError(
                f"{path}, data row {empty[0] + 1}, column {name!r}: expected a value, got an "
                "empty cell"
            )
    values = pd.to_numeric(frame[value_name], errors="coerce")
    bad = np.flatnonzero((values.isna() & frame[value_name].notna()).to_numpy())
    if bad.size:
        cell = frame[value_name].iloc[bad[0]]
        raise ValueError(
            f"{path}, data row {bad[0] + 1}, column {value_name!r}: expected a number, got {cell!r}"
        )
    frame[value_name] = values.astype(float)
    for name in names(p.get("covariates")) + names(p.get("future_covariates")):
        frame[name] = finite_column(frame, name, path, "a per-step covariate")
    frame[id_name] = frame[id_name].str.strip()
    raw = frame[time_name].astype(str).str.strip()
    if frame[time_name].dtype == object:
        with warnings.catch_warnings():  # pandas warns when it guesses the format per cell
            warnings.simplefilter("ignore", UserWarning)
            dates = pd.to_datetime(raw, errors="coerce")
        frame[time_name] = dates if dates.notna().all() else raw  # else text, ordered as such
    static = static_columns(frame, id_name, names(p.get("static_columns")), path)
    frame = fill_long(frame, columns, p["missing"])
    panel = as_panel(
        frame, id_column=id_name, time_column=time_name, value_column=value_name, min_points=1
    )
    ordered = frame.sort_values(time_name, kind="stable")  # as as_panel orders each series
    labels = {
        name: raw.loc[group.index].tolist() for name, group in ordered.groupby(id_name, sort=False)
    }
    return PanelData(
        path,
        list(panel.ids),
        list(panel.values),
        [labels[i] for i in panel.ids],
        frame=frame,
        columns=columns,
        static=static,
        covariates=tuple(names(p.get("covariates"))),
        future=tuple(names(p.get("future_covariates"))),
    )


def finite_column(frame, name: str, path: str, role: str):
    """Column ``name`` of a long CSV as float numbers, or a ValueError naming the first row
    whose cell is empty, not a number or not finite (``role`` says what the column is)."""
    column = pandas_module(role).to_numeric(frame[name], errors="coerce")
    bad = np.flatnonzero((column.isna() | ~np.isfinite(column.fillna(0))).to_numpy())
    if bad.size:
        raise ValueError(
            f"{path}, data row {bad[0] + 1}, column {shown(name)}: expected a finite number "
            f"({role}), got {shown(frame[name].iloc[bad[0]])}"
        )
    return column.astype(float)


def static_columns(frame, id_name: str, names: list[str], path: str) -> dict | None:
    """{id: [value of each of ``names``]}: numeric columns constant within each series."""
    if not names:
        return None
    values = {}
    for name in names:
        column = finite_column(frame, name, path, "--static-columns")
        spread = column.groupby(frame[id_name], sort=False).agg(["min", "max"])
        varying = spread.index[spread["min"] != spread["max"]]
        if len(varying):
            raise ValueError(
                f"{path}, column {shown(name)}: expected one value per series "
                f"(--static-columns), got several for series {shown(varying[0])}"
            )
        values[name] = spread["min"]
    return {i: [float(values[n][i]) for n in names] for i in values[names[0]].index}


def fill_long(frame, columns: tuple[str, str, str], missing: str):
    """--missing within each series of a long frame (as read_csv does for one series)."""
    id_name, time_name, value_name = columns
    if missing == "error" or not frame[value_name].isna().any():
        return frame
    if missing == "drop":
        return frame[frame[value_name].notna()]
    ordered = frame.sort_values(time_name, kind="stable").groupby(id_name, sort=False)[value_name]
    if missing == "ffill":
        filled = ordered.ffill()
    else:  # interpolate: linear in the step index, the edges take the nearest value
        filled = ordered.transform(lambda s: s.interpolate(limit_direction="both"))
    return frame.assign(**{value_name: filled.reindex(frame.index)})


def read_file(path: str, option: str):
    """(X, y or None) from a .ts or .npz file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".ts":
        return read_ts(path)
    if suffix == ".npz":
        return read_npz(path)
    raise ValueError(f"{option} {path}: expected a .ts or .npz file, got {suffix or 'no suffix'}")


def read_labelled(path: str, option: str):
    """(X, y) from a .ts or .npz file that holds targets."""
    X, y = read_file(path, option)
    if y is None:
        raise ValueError(f"{option} {path}: expected an array 'y' of targets in the file, got none")
    return X, y


def train_test(train: str, test: str | None, task: str):
    """(X_train, y_train, X_test, y_test) of --train/--test, the test part checked against
    the training part before any training: channels, and for ``task`` "classify" labels
    seen in training, for "regress" finite numeric targets."""
    X_train, y_train, X_test, y_test = read_train_test(train, test)
    if task == "classify":
        unseen = sorted(set(np.asarray(y_test).tolist()) - set(np.asarray(y_train).tolist()))
        if unseen:
            raise ValueError(
                f"--test: expected labels seen in --train, got {len(unseen)} unseen, e.g. "
                f"{shown(unseen[0])}"
            )
    if task == "regress":
        try:
            values = np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in y_test])
        except (TypeError, ValueError):
            raise ValueError("--test: expected numeric targets y, got other values") from None
        if not np.isfinite(values).all():
            raise ValueError("--test: expected finite targets y, got NaN or infinity")
    return X_train, y_train, X_test, y_test


def read_train_test(train: str, test: str | None):
    builtin = {d["name"] for d in list_datasets() if d["task"] == "classification"}
    if train in builtin and test is None:
        data = load_dataset(train)
        if hasattr(data, "X_test"):
            return data.X_train, data.y_train, data.X_test, data.y_test
        raise ValueError(f"--train {train}: this built-in set has no test split; give --test")
    if test is None:
        raise ValueError("--test: expected a test file (.ts or .npz), got none")
    X_train, y_train = read_labelled(train, "--train")
    X_test, y_test = read_labelled(test, "--test")
    seen, asked = as_sequences(X_train)[0].shape[1], as_sequences(X_test)[0].shape[1]
    if seen != asked:  # before training, not after it
        raise ValueError(
            f"--test: expected sequences of {seen} channel(s) like --train's, got {asked}"
        )
    return X_train, y_train, X_test, y_test


def load_model(model_dir: str):
    """A saved estimator of any kind; a run directory stands for its model/ folder."""
    if not (Path(model_dir) / "config.json").exists() and (Path(model_dir) / "model").is_dir():
        model_dir = str(Path(model_dir) / "model")
    config_file = Path(model_dir) / "config.json"
    try:
        kind = json.loads(config_file.read_text("utf-8")).get("kind")
    except (OSError, ValueError, AttributeError) as err:  # ValueError: not JSON
        raise ValueError(
            f"--model {model_dir}: expected a saved lstmkit model, got {err}"
        ) from None
    except RecursionError:
        raise ValueError(
            f"--model {model_dir}: expected a saved lstmkit model, got JSON nested too deeply"
        ) from None
    if kind not in ESTIMATORS:
        raise ValueError(
            f"--model {model_dir}: expected a saved {' or '.join(ESTIMATORS)}, got kind {kind!r}"
        )
    return ESTIMATORS[kind].load(model_dir)


def refuse_panel(model, command: str) -> None:
    """Commands that read one series refuse a panel Forecaster (a global model)."""
    if isinstance(model, Forecaster) and model.panel_ is not None:
        raise ValueError(
            f"--model: expected a single-series Forecaster for lstmkit {command}, got a panel "
            "model (one global model over many series; lstmkit forecast evaluates it on its "
            "held-out points)"
        )
