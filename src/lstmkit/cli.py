"""The ``lstmkit`` command line: a thin layer over the library (click).

Every command that trains or evaluates leaves a run directory (:mod:`lstmkit.report.rundir`):
``config.toml`` (the resolved options), ``metrics.json`` (the model and its baselines),
``predictions.csv``, ``model/`` and ``log.txt``. Options can come from a TOML file
(``--config run.toml``, keys as the long option names); flags given on the command line
override it. Exit codes: 0 success, 2 bad usage or bad input (one line naming the problem,
no traceback unless ``--debug``), 1 an internal error, 130 interrupted.
"""

import functools
import io
import json
import sys
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from lstmkit.cli_types import INT_MAX, SEED_MAX, StrictFloat, StrictInt, check_config_value
from lstmkit.data import (
    list_datasets,
    load_dataset,
    read_csv,
    read_npz,
    read_poems,
    read_ts,
    read_tsf,
)
from lstmkit.data.panel import as_panel
from lstmkit.data.readers import TIME_COLUMN_NAMES, as_sequences
from lstmkit.messages import clipped, listed, shown
from lstmkit.report import figures
from lstmkit.report.html import Report
from lstmkit.report.rundir import RunDir, jsonable
from lstmkit.report.tasks import (
    explain_report,
    forecast_report,
    panel_forecast_report,
    sequence_report,
)
from lstmkit.tasks import (
    Forecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    TextGenerator,
)
from lstmkit.tasks.global_forecast import check_quantiles
from lstmkit.train import interrupts
from lstmkit.train.checkpoint import recover_dir
from lstmkit.train.loop import interrupted

ESTIMATORS = {
    cls.__name__: cls
    for cls in (Forecaster, SequenceClassifier, SequenceRegressor, SequenceTagger, TextGenerator)
}
_OUTPUT_KEYS = ("config", "out", "json_output", "quiet", "resume")
MAX_EPOCHS = 1_000_000
MAX_MODELS = 100  # an ensemble's networks train one after another
MAX_STEPS = 10_000  # forecast steps past the horizon run one network call each
MAX_CONFIG_BYTES = 1 << 20  # a config.toml of options is a few hundred bytes


# -- options shared by commands -------------------------------------------------------------


def _apply_defaults(ctx: click.Context, path: Path) -> None:
    """The keys of the TOML file ``path`` become the command's defaults; each value must be
    of its option's kind (:func:`lstmkit.cli_types.check_config_value`)."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise click.BadParameter(
                f"expected a TOML file of at most {MAX_CONFIG_BYTES} bytes, got "
                f"{path.stat().st_size}"
            )
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise click.BadParameter(f"expected a readable TOML file, got {err}") from None
    except RecursionError:
        raise click.BadParameter("expected a TOML file, got values nested too deeply") from None
    names = {}  # a key may be the parameter's name or any of its long option names
    for param in ctx.command.params:
        if param.name in _OUTPUT_KEYS:
            continue
        names[param.name] = param
        for opt in getattr(param, "opts", []):
            names[opt.lstrip("-").replace("-", "_")] = param
    defaults = {}
    for key, item in data.items():
        param = names.get(key.replace("-", "_"))
        if param is None:
            known = ", ".join(sorted(set(names)))
            raise click.BadParameter(f"unknown key {key[:40]!r}; expected one of {known}")
        check_config_value(param, key, item)
        defaults[param.name] = item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def _load_config(ctx: click.Context, _param, value):
    """--config FILE: its keys become the command's defaults (flags still override)."""
    if value is not None:
        _apply_defaults(ctx, Path(value))
    return value


def _load_run(ctx: click.Context, _param, value):
    """--resume DIR: the run's saved options become the defaults; training continues from
    its checkpoint."""
    if value is not None:
        config = Path(value) / "config.toml"
        if not config.is_file():
            raise click.BadParameter(f"expected a run directory with config.toml, got {value}")
        _apply_defaults(ctx, config)
    return value


def resume_option(f):
    return click.option(
        "--resume",
        type=click.Path(file_okay=False),
        callback=_load_run,
        is_eager=True,
        help="Continue an interrupted run from its directory (its options and checkpoint).",
    )(f)


# the options a resumed run may change: it continues the same model on the same data
RESUMABLE = ("epochs",)


def _open_run(ctx: click.Context, p: dict, command: str) -> RunDir:
    """The command's run directory (``--resume``'s, ``--out`` or a new one) with its
    config.toml written. With ``--resume`` nothing is written before the run is known to
    be resumable: its options may differ from the saved ones in :data:`RESUMABLE` only, and
    its checkpoint must be there (a swap a crash interrupted is recovered first)."""
    if p.get("resume") is not None:
        _check_resumable(ctx, Path(p["resume"]))
    run = RunDir.create(p.get("resume") or p["out"], command)
    _OPENED.append(run)
    run.write_config(_resolved(ctx))
    return run


_OPENED: list[RunDir] = []  # this command's run: abandoned if it is refused before writing


def _abandon_runs() -> None:
    while _OPENED:
        _OPENED.pop().abandon()


def _check_resumable(ctx: click.Context, path: Path) -> None:
    saved = tomllib.loads((path / "config.toml").read_text("utf-8"))
    now = json.loads(json.dumps(_resolved(ctx)))  # tuples as lists, as TOML reads them back
    changed = sorted(
        k for k in saved.keys() | now.keys() if k not in RESUMABLE and saved.get(k) != now.get(k)
    )
    if changed:
        k = changed[0]
        raise ValueError(
            f"--resume {path}: expected the run's own options (only {', '.join(RESUMABLE)} may "
            f"change), got {k} = {now.get(k)!r} where the run has {saved.get(k)!r}"
        )
    checkpoint = path / "checkpoint"
    recover_dir(checkpoint)
    if not checkpoint.is_dir():
        raise ValueError(
            f"--resume {path}: expected a checkpoint to continue from in {checkpoint}, found "
            "none (the run stopped before its first epoch ended); run it again without --resume"
        )


class Interrupted(Exception):
    """Training stopped by Ctrl-C; the best weights are in the run's checkpoint."""


def _stop_if_interrupted(model, run: RunDir, command: str) -> None:
    if interrupted(model.history):
        done = len(model.history.epochs)
        if not (run.path / "checkpoint").is_dir():
            raise Interrupted(
                f"interrupted before the first epoch ended: nothing was saved to resume from; "
                f"run the command again (without --resume) into {run.path}"
            )
        raise Interrupted(
            f"interrupted after epoch {done}; the checkpoint is in {run.path / 'checkpoint'}; "
            f"continue with: lstmkit {command} --resume {run.path}"
        )


def output_options(f):
    """--out, --config, --json, --quiet."""
    options = [
        click.option(
            "--config",
            type=click.Path(dir_okay=False),
            callback=_load_config,
            is_eager=True,
            expose_value=True,
            help="TOML file of options (keys as the long option names); flags override it.",
        ),
        click.option(
            "--out",
            type=click.Path(file_okay=False),
            help="Run directory [default: runs/<time>-<command>].",
        ),
        click.option("--json", "json_output", is_flag=True, help="Print the result as JSON."),
        click.option("--quiet", is_flag=True, help="Print nothing but errors; no progress bar."),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


def model_options(
    f,
    *,
    epochs: int | None,
    bidirectional: bool,
    lr: float | None = 3e-3,
    lr_help: str = "Peak learning rate [default: 3e-3 x batch size / 16].",
):
    """The estimator options every task shares (``epochs``/``lr`` None: from the data)."""
    epochs_help = None if epochs else "[default: a budget from the data (docs/classification.md)]"
    options = [
        click.option(
            "--cell", type=click.Choice(["lstm", "gru"]), default="lstm", show_default=True
        ),
        click.option("--bidirectional/--unidirectional", default=bidirectional, show_default=True),
        click.option("--layers", "num_layers", type=StrictInt(1), default=1, show_default=True),
        click.option("--hidden-size", type=StrictInt(1), default=64, show_default=True),
        click.option("--dropout", type=StrictFloat(0, 1, max_open=True), default=0.0),
        click.option(
            "--epochs",
            type=StrictInt(1, MAX_EPOCHS),
            default=epochs,
            show_default=bool(epochs),
            help=epochs_help,
        ),
        click.option(
            "--lr",
            type=StrictFloat(0, 10, min_open=True),
            default=lr,
            show_default=bool(lr),
            help=None if lr else lr_help,
        ),
        click.option("--patience", type=StrictInt(1), help="Early-stopping patience in epochs."),
        click.option("--seed", type=StrictInt(0, SEED_MAX), default=0, show_default=True),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), variant_options(f))


def variant_options(f):
    """The cell variants (docs/variants.md), for every command that trains a network."""
    rate = StrictFloat(0, 1, max_open=True)
    options = [
        click.option("--layer-norm", is_flag=True, help="Layer-normalised cell (Ba et al. 2016)."),
        click.option("--peephole", is_flag=True, help="Peephole LSTM (Gers & Schmidhuber 2000)."),
        click.option(
            "--recurrent-dropout",
            type=rate,
            default=0.0,
            help="Per-sequence dropout on h before W_hh (Gal & Ghahramani 2016).",
        ),
        click.option(
            "--zoneout", type=rate, default=0.0, help="Zoneout rate of h (Krueger et al. 2016)."
        ),
        click.option(
            "--zoneout-cell", type=rate, default=0.0, help="Zoneout rate of the LSTM cell state."
        ),
        click.option(
            "--forget-bias",
            type=StrictFloat(-100, 100),
            help="Initial forget-gate bias of the LSTM (1.0: Jozefowicz et al. 2015).",
        ),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


_VARIANT_KEYS = ("layer_norm", "peephole", "recurrent_dropout", "zoneout", "zoneout_cell")


def _cell_options(params: dict) -> dict:
    """The cell variants the options ask for (only those not at their default)."""
    options = {k: params[k] for k in _VARIANT_KEYS if params.get(k)}
    if params.get("forget_bias") is not None:
        options["forget_bias"] = params["forget_bias"]
    return options


class _Output:
    """Collects what a command says: printed unless --quiet, and kept for log.txt."""

    def __init__(self, quiet: bool, json_output: bool) -> None:
        self.quiet, self.json_output, self.lines = quiet, json_output, []

    def say(self, text: str) -> None:
        self.lines.append(text)
        if not (self.quiet or self.json_output):
            click.echo(text)

    def finish(self, run: RunDir | None, result: dict) -> None:
        if run is not None:
            self.say(f"run directory: {run.path}")
            run.write_text("log.txt", "\n".join(self.lines) + "\n")
        if self.json_output:
            payload = {"run_dir": None if run is None else str(run.path), **result}
            click.echo(json.dumps(jsonable(payload), ensure_ascii=False, allow_nan=False))


def _resolved(ctx: click.Context) -> dict:
    return {k: v for k, v in ctx.params.items() if k not in _OUTPUT_KEYS and v is not None}


def _estimator_options(params: dict, run: RunDir) -> dict:
    """The estimator's keywords from the command's options; checkpoints go to the run."""
    keys = ("cell", "bidirectional", "num_layers", "hidden_size", "dropout", "epochs", "lr", "seed")
    options = {k: params[k] for k in keys}
    if params.get("patience") is not None:
        options["patience"] = params["patience"]
    if _cell_options(params):
        options["cell_options"] = _cell_options(params)
    return options | {
        "progress": False if params["quiet"] else None,
        "checkpoint": str(run.path / "checkpoint"),
        "resume": params.get("resume") is not None,
    }


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()] if text else []


def _ints(text: str, option: str, minimum: int = 1, maximum: int = INT_MAX) -> list[int]:
    """Integers in [minimum, maximum] separated by commas (none empty), else a ValueError."""
    parse = StrictInt(minimum, maximum)
    try:
        return [parse.convert(v, None, None) for v in (text or "").split(",")]
    except click.BadParameter as err:
        raise ValueError(
            f"{option}: expected integers separated by commas, got {text[:40]!r} ({err.message})"
        ) from None


def _fmt(metrics: dict, keys: tuple[str, ...]) -> str:
    return "  ".join(f"{k} {metrics[k]:.4g}" for k in keys if k in metrics)


# -- the group ------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(package_name="lstmkit")
def cli(debug: bool) -> None:
    """lstmkit: LSTM, BiLSTM, GRU and stacked recurrent networks from their gate formulas.

    \b
    Examples:
      lstmkit demo
      lstmkit datasets
      lstmkit forecast --data airline --horizon 12
      lstmkit classify --train italy_power_demand
      lstmkit generate --corpus tang300 --acrostic 春夏秋冬
    """


@cli.command()
@click.option("--quick", is_flag=True, help="Tiny budgets (seconds; the numbers mean little).")
@output_options
@click.pass_context
def demo(ctx: click.Context, **p) -> None:
    """The main job on built-in data: an engine check, a BiLSTM forecaster on Airline, WOA
    tuning, a comparison with LSTM/GRU and the naive baselines, a sequence classifier on
    ItalyPowerDemand, and the HTML report. A few minutes on a 2-core CPU.

    \b
    Example:
      lstmkit demo
    """
    import optuna

    from lstmkit.demo import run_demo

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    out = _Output(p["quiet"], p["json_output"])
    run = _open_run(ctx, p, "demo")
    metrics = run_demo(run, say=out.say, quick=p["quick"])
    out.say(f"report: {run.path / 'report.html'}")
    out.finish(run, {"metrics": metrics})


@cli.command()
@click.option("--json", "json_output", is_flag=True, help="Print the list as JSON.")
def datasets(json_output: bool) -> None:
    """List the built-in datasets, with their task, source and licence.

    \b
    Example:
      lstmkit datasets --json
    """
    items = list_datasets()
    if json_output:
        click.echo(json.dumps(items, ensure_ascii=False))
        return
    for d in items:
        click.echo(f"{d['name']:20} {d['task']:15} {d['description']}")
        click.echo(f"{'':20} {'':15} licence: {d['licence']}")


# -- forecast -------------------------------------------------------------------------------


def _read_frame(data: str, missing: str, time_column: str | None = None):
    builtin = {d["name"] for d in list_datasets() if d["task"] == "forecasting"}
    if data in builtin:
        return load_dataset(data)
    return read_csv(data, missing=missing, time_column=time_column or "auto")


def _target_series(p: dict, missing: str):
    """(frame, target names, target values (T, K), held-out steps) of --data/--target/--test
    (default: the horizon)."""
    frame = _read_frame(p["data"], missing, p.get("time_column"))
    targets = _names(p["target"]) or (list(frame.columns) if len(frame.columns) == 1 else [])
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
class _PanelData:
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
        if self.columns is None:
            return {}
        return dict(zip(("id_column", "time_column", "value_column"), self.columns, strict=True))


def _pandas(option: str):
    try:
        import pandas
    except ImportError:
        raise ValueError(
            f"{option}: reading a long CSV needs pandas (pip install pandas)"
        ) from None
    return pandas


def _is_panel_run(p: dict) -> bool:
    """A panel run: a long CSV (--id-column), a .tsf file, or one series with quantiles or
    an ensemble (a panel of one)."""
    return bool(
        p["id_column"]
        or Path(p["data"]).suffix.lower() == ".tsf"
        or p["quantiles"]
        or p["n_models"] > 1
    )


def _read_panel(p: dict) -> _PanelData:
    """The panel of --data: a .tsf file, a long CSV (--id-column), or one target column."""
    if Path(p["data"]).suffix.lower() == ".tsf":
        return _read_tsf_panel(p)
    if p["id_column"]:
        return _read_long_csv(p)
    frame, targets, y, _ = _target_series(p, p["missing"])
    if len(targets) != 1:
        raise ValueError(
            f"--quantiles/--models: expected one target column (a panel of one), got "
            f"{len(targets)}: {', '.join(targets)}"
        )
    labels = list(frame.time) if frame.time else [str(t) for t in range(len(y))]
    return _PanelData(p["data"], targets, [y[:, 0]], [labels], season=p["season"] or 12)


def _read_tsf_panel(p: dict) -> _PanelData:
    for option, key in (
        ("--id-column", "id_column"),
        ("--time-column", "time_column"),
        ("--target", "target"),
    ):
        if p[key]:
            raise ValueError(
                f"{option}: a .tsf file names its series itself; expected none, got {p[key]!r}"
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
    season = data.season
    return _PanelData(
        p["data"],
        list(data.names),
        list(data.series),
        [[str(t) for t in range(len(v))] for v in data.series],
        season=season,
        horizon=data.horizon,
    )


def _long_columns(p: dict, columns: list[str]) -> tuple[str, str, str]:
    """(id, time, value) columns of a long CSV: as given, the time column by its name
    (date, time, ds, …) and the target as the only column left."""
    targets = _names(p["target"])
    if len(targets) > 1:
        raise ValueError(f"--target: expected one column for a panel, got {p['target']!r}")
    given = {
        "--id-column": p["id_column"],
        "--time-column": p["time_column"],
        "--target": targets[0] if targets else None,
    }
    static = _names(p.get("static_columns"))
    for option, name in [*given.items(), *(("--static-columns", n) for n in static)]:
        if name is not None and name not in columns:
            raise ValueError(
                f"{option}: unknown column {shown(name)}; the file has {listed(columns)}"
            )
    rest = [c for c in columns if c not in given.values() and c not in static]
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
    if len({p["id_column"], time_name, value_name}) != 3 or {time_name, value_name} & set(static):
        raise ValueError(
            f"--id-column/--time-column/--target/--static-columns: expected different "
            f"columns, got {p['id_column']!r}, {time_name!r}, {value_name!r}, {listed(static)}"
        )
    return p["id_column"], time_name, value_name


def _read_long_csv(p: dict) -> _PanelData:
    """A long CSV: one row per (series, time). Ids are read as text; times as dates where
    they all parse, else as numbers or text (ordered as such); --missing applies within
    each series."""
    pd = _pandas("--id-column")
    path = p["data"]
    try:
        frame = pd.read_csv(path, dtype={p["id_column"]: str}, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: expected a CSV file with a header line, got {err}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    columns = _long_columns(p, list(frame.columns))
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
    frame[id_name] = frame[id_name].str.strip()
    raw = frame[time_name].astype(str).str.strip()
    if frame[time_name].dtype == object:
        with warnings.catch_warnings():  # pandas warns when it guesses the format per cell
            warnings.simplefilter("ignore", UserWarning)
            dates = pd.to_datetime(raw, errors="coerce")
        frame[time_name] = dates if dates.notna().all() else raw  # else text, ordered as such
    static = _static_columns(frame, id_name, _names(p.get("static_columns")), path)
    frame = _fill_long(frame, columns, p["missing"])
    panel = as_panel(
        frame, id_column=id_name, time_column=time_name, value_column=value_name, min_points=1
    )
    ordered = frame.sort_values(time_name, kind="stable")  # as as_panel orders each series
    labels = {
        name: raw.loc[group.index].tolist() for name, group in ordered.groupby(id_name, sort=False)
    }
    return _PanelData(
        path,
        list(panel.ids),
        list(panel.values),
        [labels[i] for i in panel.ids],
        frame=frame,
        columns=columns,
        static=static,
    )


def _static_columns(frame, id_name: str, names: list[str], path: str) -> dict | None:
    """{id: [value of each of ``names``]}: numeric columns constant within each series."""
    if not names:
        return None
    pd = _pandas("--static-columns")
    values = {}
    for name in names:
        column = pd.to_numeric(frame[name], errors="coerce")
        bad = np.flatnonzero((column.isna() | ~np.isfinite(column.fillna(0))).to_numpy())
        if bad.size:
            raise ValueError(
                f"{path}, data row {bad[0] + 1}, column {shown(name)}: expected a finite number "
                f"(--static-columns), got {shown(frame[name].iloc[bad[0]])}"
            )
        spread = column.groupby(frame[id_name], sort=False).agg(["min", "max"])
        varying = spread.index[spread["min"] != spread["max"]]
        if len(varying):
            raise ValueError(
                f"{path}, column {shown(name)}: expected one value per series "
                f"(--static-columns), got several for series {shown(varying[0])}"
            )
        values[name] = spread["min"]
    return {i: [float(values[n][i]) for n in names] for i in values[names[0]].index}


def _fill_long(frame, columns: tuple[str, str, str], missing: str):
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


def _interval_level(levels) -> float:
    """The central interval the metrics and the fan chart show: 80 % when the 0.1 and 0.9
    quantiles were trained, else the widest pair q, 1 − q (80, none shown, when none)."""
    widths = [
        round(100 * (1 - 2 * q), 6)
        for q in levels
        if q < 0.5 and np.isclose(levels, 1 - q, rtol=0, atol=1e-9).any()
    ]
    return 80 if 80 in widths or not widths else max(widths)


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in _names(text)]
    except ValueError:
        raise ValueError(
            f"{option}: expected numbers separated by commas, got {shown(text)}"
        ) from None


def _quantile_levels(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return check_quantiles(_floats(text, "--quantiles"))
    except ValueError as err:
        raise ValueError(f"--quantiles {shown(text)}: {clipped(str(err))}") from None


@cli.command()
@click.option(
    "--data",
    required=True,
    help="A CSV file (wide: a column per variable; long with --id-column: a row per series "
    "and time), a Monash .tsf file of many series, or a built-in forecasting dataset (airline).",
)
@click.option(
    "--target",
    help="Target column(s), comma-separated [default: the only column]; a long CSV: its one "
    "value column [default: the column left].",
)
@click.option(
    "--id-column",
    help="A long CSV's column naming the series: one global model over all of them (a panel).",
)
@click.option(
    "--time-column",
    help="The time column [default: the one named date, time, ds, …]; in a long CSV dates "
    "where every cell parses, else numbers or text, ordered as such.",
)
@click.option(
    "--static-columns",
    help="A long CSV's numeric columns that are constant within each series (size, region "
    "code, …), comma-separated: static covariates the global model reads beside each series.",
)
@click.option("--covariates", help="Past covariate columns (known up to each origin).")
@click.option("--future-covariates", help="Known-future covariate columns.")
@click.option("--horizon", type=StrictInt(1), help="[default: a .tsf file's @horizon, else 12]")
@click.option(
    "--lookback",
    type=StrictInt(1),
    help="Steps the network reads before each forecast [default: 24 for one series; for a "
    "panel four seasons, within 24–96].",
)
@click.option(
    "--strategy", type=click.Choice(["direct", "recursive"]), default="direct", show_default=True
)
@click.option(
    "--test",
    "test_steps",
    type=StrictInt(1),
    help="Steps held out at the end [default: horizon].",
)
@click.option(
    "--season",
    type=StrictInt(1),
    help="Season of the seasonal baselines and MASE [default: from the data (a .tsf "
    "@frequency, the dates of a long CSV), else 1 for a panel; 12 for one series].",
)
@click.option(
    "--deseasonalize/--no-deseasonalize",
    default=True,
    show_default=True,
    help="Panels: divide each series that tests seasonal by its multiplicative seasonal "
    "indices before the network reads it, and multiply the forecasts back.",
)
@click.option(
    "--missing",
    type=click.Choice(["error", "ffill", "interpolate", "drop"]),
    default="error",
    show_default=True,
    help="Missing values (within each series of a panel; a .tsf file: error or interpolate).",
)
@click.option(
    "--quantiles",
    help="Quantile levels trained with the pinball loss, comma-separated, with 0.5 (the point "
    "forecast) [default: 0.1,0.5,0.9 for a panel]; one series is then fitted as a panel of one.",
)
@click.option(
    "--models",
    "n_models",
    type=StrictInt(1, MAX_MODELS),
    default=1,
    show_default=True,
    help="Ensemble size: networks with seeds seed, seed+1, … combined by the median of each "
    "quantile (as --quantiles for one series).",
)
@functools.partial(
    model_options,
    epochs=300,
    bidirectional=False,
    lr=None,
    lr_help="Learning rate [default: 3e-3 for one series, 1e-2 (the one-cycle peak) for a panel].",
)
@output_options
@resume_option
@click.pass_context
def forecast(ctx: click.Context, **p) -> None:
    """Train a forecaster on a series, or one global model on a panel of series, and test it
    on the last steps beside the naive baselines (and, with the forecast extra, AutoETS,
    AutoTheta and AutoARIMA for a panel).

    \b
    Examples:
      lstmkit forecast --data airline --horizon 12
      lstmkit forecast --data sales.csv --target sales --future-covariates promo --horizon 8
      lstmkit forecast --data panel.csv --id-column store --time-column date --target sales
      lstmkit forecast --data tourism_monthly.tsf --quantiles 0.05,0.5,0.95 --models 3
    """
    out = _Output(p["quiet"], p["json_output"])
    if p["static_columns"] and not p["id_column"]:
        raise ValueError(
            "--static-columns: expected a long CSV with --id-column (one value per series of "
            f"a panel), got {shown(p['static_columns'])} without one"
        )
    if _is_panel_run(p):
        _forecast_panel(ctx, p, out)
        return
    p["horizon"] = ctx.params["horizon"] = p["horizon"] or 12
    p["season"] = ctx.params["season"] = p["season"] or 12
    frame, targets, y, test = _target_series(p, p["missing"])
    overlap = set(targets) & set(_names(p["covariates"]) + _names(p["future_covariates"]))
    if overlap:
        raise ValueError(
            f"--covariates/--future-covariates: expected columns other than the target, got "
            f"{', '.join(sorted(overlap))} (the target would be its own input)"
        )
    past = frame.select(_names(p["covariates"])) if p["covariates"] else None
    fut = frame.select(_names(p["future_covariates"])) if p["future_covariates"] else None
    cut = len(y) - test
    if p["season"] > cut:  # the seasonal naive baseline and MASE repeat one training season
        raise ValueError(
            f"--season {p['season']}: expected at most the {cut} training steps (the seasonal "
            "baselines repeat the last season of them)"
        )
    run = _open_run(ctx, p, "forecast")
    model = Forecaster(
        horizon=p["horizon"],
        lookback=p["lookback"],
        strategy=p["strategy"],
        **_estimator_options(p, run),
    )
    model.fit(
        y[:cut],
        covariates=None if past is None else past[:cut],
        future_covariates=None if fut is None else fut[:cut],
    )
    _stop_if_interrupted(model, run, "forecast")
    fut_test = None if fut is None else fut[cut:]
    metrics = model.evaluate(y[cut:], future_covariates=fut_test, season=p["season"])
    pred = model.predict(test, future_covariates=fut_test).reshape(test, -1)
    run.write_metrics(metrics)
    times = frame.time[cut:] if frame.time else [str(t) for t in range(cut, len(y))]
    rows = [
        (t, name, y[cut + i, k], pred[i, k])
        for i, t in enumerate(times)
        for k, name in enumerate(targets)
    ]
    run.write_csv("predictions.csv", ("time", "target", "actual", "predicted"), rows)
    model.save(run.model)
    preds = {"model": pred} | {
        name: baseline.fit(y[:cut]).predict(test)
        for name, baseline in (
            ("naive", NaiveForecaster()),
            ("seasonal_naive", SeasonalNaiveForecaster(p["season"])),
        )
    }
    report, figs = forecast_report(
        model,
        data_name=p["data"],
        targets=targets,
        history=y[:cut],
        actual=y[cut:],
        predictions=preds,
        metrics=metrics,
        time_labels=frame.time,
    )
    run.write_report(report, figs)
    out.say(f"forecast: {', '.join(targets)}, last {test} steps held out")
    for name, m in metrics.items():
        out.say(f"  {name:15} {_fmt(m, ('rmse', 'mae', 'mape', 'r2'))}")
    out.finish(run, {"metrics": metrics})


def _forecast_panel(ctx: click.Context, p: dict, out: _Output) -> None:
    """The forecast command on a panel: one global model, quantile forecasts of the last
    --test points of every series, metrics beside every baseline, a fan chart."""
    levels = _quantile_levels(p["quantiles"])
    if p["covariates"] or p["future_covariates"]:
        raise ValueError(
            "--covariates/--future-covariates: expected none for a panel, --quantiles or "
            "--models (the global model reads the targets only), got some"
        )
    if p["strategy"] != "direct":
        raise ValueError(
            f"--strategy: expected direct for a panel, --quantiles or --models, got {p['strategy']}"
        )
    if Path(p["data"]).suffix.lower() != ".tsf":
        p["horizon"] = p["horizon"] or 12
    data = _read_panel(p)
    p["horizon"] = ctx.params["horizon"] = p["horizon"] or data.horizon or 12
    season = p["season"] or data.season  # None: the model infers it from the dates, else 1
    if season is not None:
        ctx.params["season"] = season
    steps = p["test_steps"] or p["horizon"]
    train, test = data.split(steps)
    run = _open_run(ctx, p, "forecast")
    model = Forecaster(
        horizon=p["horizon"],
        lookback=p["lookback"],
        season=season,
        quantiles=levels,
        n_models=p["n_models"],
        deseasonalize=p["deseasonalize"],
        **_estimator_options(p, run),
    )
    model.fit(train, static_covariates=data.static, **data.fit_columns())
    _stop_if_interrupted(model, run, "forecast")
    level = _interval_level(model.quantiles_)
    metrics = model.evaluate(test, level=level)
    run.write_metrics(metrics)
    every = model.panel_quantiles(steps)  # (n_series, steps, Q), in model.panel.ids order
    where = {name: k for k, name in enumerate(data.ids)}
    median = model.quantiles_.index(0.5)
    rows = []
    for i, name in enumerate(model.panel.ids):
        k = where[name]
        times, actual = data.labels[k][-steps:], data.values[k][-steps:]
        rows += [
            (name, times[t], actual[t], every[i, t, median], *every[i, t]) for t in range(steps)
        ]
    header = ("id", "time", "actual", "predicted", *(f"q{q:g}" for q in model.quantiles_))
    run.write_csv("predictions.csv", header, rows)
    model.save(run.model)
    report, figs = panel_forecast_report(
        model,
        data_name=data.name,
        history={name: v[:-steps] for name, v in zip(data.ids, data.values, strict=True)},
        actual={name: v[-steps:] for name, v in zip(data.ids, data.values, strict=True)},
        quantiles=every,
        metrics=metrics,
        level=level,
    )
    run.write_report(report, figs)
    out.say(
        f"forecast: {len(data.ids)} series of {data.name}, last {steps} points of each held out "
        f"(season {model.season_ or 1})"
    )
    for name, m in metrics.items():
        out.say(f"  {name:15} {_fmt(m, ('smape', 'mase', 'coverage', 'msis', 'crps'))}")
    out.finish(run, {"metrics": metrics})


# -- sequence tasks -------------------------------------------------------------------------


def _read_file(path: str, option: str):
    """(X, y or None) from a .ts or .npz file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".ts":
        return read_ts(path)
    if suffix == ".npz":
        return read_npz(path)
    raise ValueError(f"{option} {path}: expected a .ts or .npz file, got {suffix or 'no suffix'}")


def _read_labelled(path: str, option: str):
    """(X, y) from a .ts or .npz file that holds targets."""
    X, y = _read_file(path, option)
    if y is None:
        raise ValueError(f"{option} {path}: expected an array 'y' of targets in the file, got none")
    return X, y


def _train_test(train: str, test: str | None, task: str):
    """(X_train, y_train, X_test, y_test) of --train/--test, the test part checked against
    the training part before any training: channels, and for ``task`` "classify" labels
    seen in training, for "regress" finite numeric targets."""
    X_train, y_train, X_test, y_test = _read_train_test(train, test)
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


def _read_train_test(train: str, test: str | None):
    builtin = {d["name"] for d in list_datasets() if d["task"] == "classification"}
    if train in builtin and test is None:
        data = load_dataset(train)
        if hasattr(data, "X_test"):
            return data.X_train, data.y_train, data.X_test, data.y_test
        raise ValueError(f"--train {train}: this built-in set has no test split; give --test")
    if test is None:
        raise ValueError("--test: expected a test file (.ts or .npz), got none")
    X_train, y_train = _read_labelled(train, "--train")
    X_test, y_test = _read_labelled(test, "--test")
    seen, asked = as_sequences(X_train)[0].shape[1], as_sequences(X_test)[0].shape[1]
    if seen != asked:  # before training, not after it
        raise ValueError(
            f"--test: expected sequences of {seen} channel(s) like --train's, got {asked}"
        )
    return X_train, y_train, X_test, y_test


def _sequence_options(f):
    options = [
        click.option(
            "--train",
            "train_path",
            required=True,
            help="A .ts or .npz file, or a built-in set with a test split.",
        ),
        click.option("--test", "test_path", help="A .ts or .npz file."),
        click.option(
            "--pooling",
            default="last+max",
            show_default=True,
            help="last, mean, max joined by '+'.",
        ),
        click.option("--batch-size", type=StrictInt(1), help="[default: from the data size]"),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


def _run_sequence(ctx, p, cls, options: dict, kind: str) -> None:
    out = _Output(p["quiet"], p["json_output"])
    X_train, y_train, X_test, y_test = _train_test(p["train_path"], p["test_path"], kind)
    run = _open_run(ctx, p, kind)
    model = cls(**options, **_sequence_estimator_options(p, run))
    model.fit(X_train, y_train)
    _stop_if_interrupted(model, run, kind)
    metrics = _test_metrics(kind, model, (X_train, y_train), (X_test, y_test))
    run.write_metrics(metrics)
    _write_test_predictions(run, kind, model, (X_test, y_test))
    keys = ("rmse", "mae", "r2") if kind == "regress" else ("accuracy", "f1", "precision", "recall")
    model.save(run.model)
    report, figs = sequence_report(
        model,
        kind=kind,
        data_name=p["train_path"],
        n_train=len(X_train),
        n_test=len(X_test),
        metrics=metrics,
        sample=X_test[0],
    )
    run.write_report(report, figs)
    out.say(f"{kind}: {len(X_train)} training sequences, {len(X_test)} test sequences")
    for name, m in metrics.items():
        out.say(f"  {name:10} {_fmt(m, keys)}")
    out.finish(run, {"metrics": metrics})


def _recipe_options(f):
    """The sequence recipe (docs/classification.md): the convolutional branch, patches,
    normalisation, ensembles, the schedule."""
    options = [
        click.option(
            "--conv-filters",
            help="Filters of the 3 convolutional blocks beside the recurrent layers (LSTM-FCN), "
            "e.g. 64,128,64, or 'none'. [default: 64,128,64; none for per-step outputs]",
        ),
        click.option(
            "--rnn-steps",
            help="The recurrent layers read window means of a sequence so that it has about "
            "this many steps, or 'none' (every step). [default: 64; none for per-step outputs]",
        ),
        click.option(
            "--conv-steps",
            help="The convolutional branch reads patches (every value kept) so that a "
            "sequence has about this many steps, or 'none'. [default: 128]",
        ),
        click.option(
            "--normalize",
            type=click.Choice(["auto", "global", "sequence"]),
            default="auto",
            show_default=True,
            help="Standardise each channel over the training set (global), or each sequence "
            "alone (sequence); auto: sequence for classes, global for values.",
        ),
        click.option(
            "--models",
            "n_models",
            type=StrictInt(1, MAX_MODELS),
            default=1,
            show_default=True,
            help="Ensemble size: models with seeds seed, seed+1, … averaged.",
        ),
        click.option(
            "--schedule",
            type=click.Choice(["onecycle", "plateau"]),
            default="onecycle",
            show_default=True,
            help="A fixed one-cycle budget, or early stopping on --validation.",
        ),
        click.option(
            "--validation",
            type=StrictFloat(0, 1, max_open=True),
            default=0.0,
            show_default=True,
            help="Share of the training data held out for early stopping.",
        ),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


def _none_or(text: str | None, option: str, parse):
    """None for an absent option ("auto" then), the parsed value, or () / None for 'none'."""
    if text is None:
        return "auto"
    if text.strip().lower() == "none":
        return None
    return parse(text, option)


def _one_int(text: str, option: str) -> int:
    values = _ints(text, option)
    if len(values) != 1:
        raise ValueError(f"{option}: expected one integer or 'none', got {text!r}")
    return values[0]


def _sequence_estimator_options(p: dict, run: RunDir) -> dict:
    options = _estimator_options(p, run)
    if "pooling" in p:
        options["pooling"] = p["pooling"]
    filters = _none_or(p["conv_filters"], "--conv-filters", _ints)
    options["conv_filters"] = () if filters is None else filters
    options["rnn_steps"] = _none_or(p["rnn_steps"], "--rnn-steps", _one_int)
    options["conv_steps"] = _none_or(p["conv_steps"], "--conv-steps", _one_int)
    for key in ("normalize", "n_models", "schedule", "validation"):
        options[key] = p[key]
    if p["batch_size"] is not None:
        options["batch_size"] = p["batch_size"]
    return options


@cli.command()
@_sequence_options
@click.option(
    "--class-weight", type=click.Choice(["none", "balanced"]), default="none", show_default=True
)
@_recipe_options
@functools.partial(model_options, epochs=None, bidirectional=True, lr=None)
@output_options
@resume_option
@click.pass_context
def classify(ctx: click.Context, **p) -> None:
    """Sequence classification: train on --train, report on --test beside the baselines.

    The baselines: the majority class, and with the classify extra (pip install
    'lstmkit[classify]') MiniRocket and 1-NN DTW on the same split. The default model is a
    BiLSTM with a convolutional branch (LSTM-FCN) trained with a one-cycle budget
    (docs/classification.md).

    \b
    Examples:
      lstmkit classify --train italy_power_demand
      lstmkit classify --train GunPoint_TRAIN.ts --test GunPoint_TEST.ts --models 3
      lstmkit classify --train A.ts --test B.ts --conv-filters none   # the BiLSTM alone
    """
    weight = None if p["class_weight"] == "none" else p["class_weight"]
    _run_sequence(ctx, p, SequenceClassifier, {"class_weight": weight}, "classify")


@cli.command()
@_sequence_options
@click.option(
    "--output", type=click.Choice(["last", "sequence"]), default="last", show_default=True
)
@_recipe_options
@functools.partial(model_options, epochs=None, bidirectional=True, lr=None)
@output_options
@resume_option
@click.pass_context
def regress(ctx: click.Context, **p) -> None:
    """Sequence regression beside the training mean (and MiniRocket with the classify
    extra): a value per sequence, or with --output sequence a value per step (.npz files
    whose 'y' is (N, T)).

    \b
    Example:
      lstmkit regress --train train.ts --test test.ts
    """
    _run_sequence(ctx, p, SequenceRegressor, {"output": p["output"]}, "regress")


@cli.command()
@_sequence_options
@_recipe_options
@functools.partial(model_options, epochs=None, bidirectional=True, lr=None)
@output_options
@resume_option
@click.pass_context
def tag(ctx: click.Context, **p) -> None:
    """Sequence tagging (a label per step) beside the majority tag; .npz files whose 'y'
    holds one label array per sequence.

    \b
    Example:
      lstmkit tag --train train.npz --test test.npz
    """
    _run_sequence(ctx, p, SequenceTagger, {}, "tag")


# -- generate -------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--corpus",
    default="tang300",
    show_default=True,
    help="tang300, or a JSON file or directory of poems.",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Load a trained generator instead of training.",
)
@click.option("--poems", "n_poems", type=StrictInt(1), default=5, show_default=True)
@click.option("--temperature", type=StrictFloat(1e-3, 1e3), default=0.8, show_default=True)
@click.option("--top-k", type=StrictInt(1), default=20, show_default=True)
@click.option("--opening", default="", help="Text each poem starts with.")
@click.option("--acrostic", default="", help="Characters that begin each line (藏头诗).")
@click.option("--epochs", type=StrictInt(1, MAX_EPOCHS), default=30, show_default=True)
@click.option("--seed", type=StrictInt(0, SEED_MAX), default=0, show_default=True)
@variant_options
@output_options
@click.pass_context
def generate(ctx: click.Context, **p) -> None:
    """Train a character-level poem writer on a corpus (or load one), then write poems.

    \b
    Examples:
      lstmkit generate --corpus tang300 --poems 3
      lstmkit generate --model runs/poet/model --acrostic 春夏秋冬
    """
    out = _Output(p["quiet"], p["json_output"])
    run = _open_run(ctx, p, "generate")
    metrics = {}
    if p["model_dir"]:
        model = TextGenerator.load(p["model_dir"])
    else:
        poems = load_dataset("tang300") if p["corpus"] == "tang300" else read_poems(p["corpus"])
        model = TextGenerator(
            epochs=p["epochs"],
            seed=p["seed"],
            progress=False if p["quiet"] else None,
            cell_options=_cell_options(p) or None,
        )
        model.fit(poems)
        if interrupted(model.history):
            raise Interrupted(
                f"interrupted after epoch {len(model.history.epochs)}; nothing was written "
                f"to {run.path} but its config.toml (generate keeps no checkpoint: run it again)"
            )
        pp = model.perplexity(model.validation_poems_)
        metrics = {"model": {"perplexity": pp["model"]}, "unigram": {"perplexity": pp["unigram"]}}
        out.say(f"validation perplexity {pp['model']:.1f} (unigram {pp['unigram']:.1f})")
    written = [
        model.generate(
            opening=p["opening"],
            acrostic=p["acrostic"],
            temperature=p["temperature"],
            top_k=p["top_k"],
            seed=p["seed"] + k,
        )
        for k in range(p["n_poems"])
    ]
    for poem in written:
        out.say(poem)
    run.write_text("poems.txt", "\n".join(written) + "\n")
    report = Report(f"lstmkit generate: {p['model_dir'] or p['corpus']}")
    report.text("Poems", *written)
    figs = {}
    if metrics:
        run.write_metrics(metrics)
        model.save(run.model)
        report.metrics("Validation perplexity beside the unigram model", metrics)
        figs["learning_curves.png"] = figures.learning_curves(model.history.epochs)
        report.figure("Learning curves", figs["learning_curves.png"])
    report.table("Model", ["option", "value"], list(model.params.items()))
    run.write_report(report, figs)
    out.finish(run, {"metrics": metrics, "poems": written})


# -- predict / evaluate with a saved model --------------------------------------------------


def _load_model(model_dir: str):
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


def _refuse_panel(model, command: str) -> None:
    """Commands that read one series refuse a panel Forecaster (a global model)."""
    if isinstance(model, Forecaster) and model.panel is not None:
        raise ValueError(
            f"--model: expected a single-series Forecaster for lstmkit {command}, got a panel "
            "model (one global model over many series; lstmkit forecast evaluates it on its "
            "held-out points)"
        )


# -- tune / compare -------------------------------------------------------------------------

TASK_ESTIMATORS = {
    "forecast": Forecaster,
    "classify": SequenceClassifier,
    "regress": SequenceRegressor,
    "tag": SequenceTagger,
}


def _tuning_options(f):
    """The data of a tuning or comparison run, for any task."""
    options = [
        click.option(
            "--task",
            type=click.Choice(list(TASK_ESTIMATORS)),
            default="forecast",
            show_default=True,
        ),
        click.option("--data", help="forecast: a CSV file or a built-in set (airline)."),
        click.option("--target", help="forecast: the target column(s)."),
        click.option("--horizon", type=StrictInt(1), default=12, show_default=True),
        click.option(
            "--test",
            "test_steps",
            type=StrictInt(1),
            help="forecast: steps held out [horizon].",
        ),
        click.option("--train", "train_path", help="Sequence tasks: .ts/.npz, or a built-in set."),
        click.option("--test-file", "test_path", help="Sequence tasks: the test .ts/.npz file."),
        click.option(
            "--epochs",
            type=StrictInt(1, MAX_EPOCHS),
            help="Fix the epochs instead of searching them.",
        ),
        click.option("--whales", type=StrictInt(2), default=6, show_default=True),
        click.option("--iterations", type=StrictInt(1), default=3, show_default=True),
        click.option("--metric", help="Validation metric [rmse; accuracy for classification]."),
        click.option(
            "--validation",
            type=StrictFloat(0, 1, min_open=True, max_open=True),
            default=0.2,
            show_default=True,
        ),
    ]
    return functools.reduce(lambda g, opt: opt(g), reversed(options), f)


def _tuning_inputs(p: dict):
    """(estimator class, fixed keywords, fit arguments, evaluate arguments, data name)."""
    estimator = TASK_ESTIMATORS[p["task"]]
    fixed = {} if p["epochs"] is None else {"epochs": p["epochs"]}
    if p["task"] == "forecast":
        if not p["data"]:
            raise ValueError("--data: expected a CSV file or a built-in set for --task forecast")
        _, _, y, test = _target_series(p, "error")
        fixed["horizon"] = p["horizon"]
        return estimator, fixed, (y[:-test],), (y[-test:],), p["data"]
    if not p["train_path"]:
        raise ValueError(
            f"--train: expected a .ts/.npz file or a built-in set for --task {p['task']}"
        )
    X_train, y_train, X_test, y_test = _train_test(p["train_path"], p["test_path"], p["task"])
    return estimator, fixed, (X_train, y_train), (X_test, y_test), p["train_path"]


@cli.command()
@_tuning_options
@click.option(
    "--sampler",
    type=click.Choice(["woa", "tpe", "random", "cmaes"]),
    default="woa",
    show_default=True,
)
@click.option("--storage", help="Optuna storage: a .db (SQLite), .log/.journal file or a URL.")
@click.option("--study-name", help="Name of the study in the storage (to resume or share).")
@click.option("--workers", type=StrictInt(1), default=1, show_default=True)
@click.option("--seed", type=StrictInt(0, SEED_MAX), default=0, show_default=True)
@output_options
@click.pass_context
def tune(ctx: click.Context, **p) -> None:
    """Tune a BiLSTM's hyper-parameters with WOA (or another Optuna sampler) on a validation
    split of the training part, refit the best, and test it once on the held-out part.

    \b
    Examples:
      lstmkit tune --data airline --horizon 12 --whales 6 --iterations 3
      lstmkit tune --task classify --train italy_power_demand --storage tune.db
      lstmkit tune --data airline --sampler tpe --storage tune.db --study-name air-tpe
    """
    import optuna

    from lstmkit.woa.compare import bilstm_space
    from lstmkit.woa.space import SearchSpace
    from lstmkit.woa.tune import tune as run_tune

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our summary; failures in tuning.json
    out = _Output(p["quiet"], p["json_output"])
    estimator, fixed, train, test, name = _tuning_inputs(p)
    fixed |= {"cell": "lstm", "bidirectional": True, "seed": p["seed"], "progress": False}
    space = SearchSpace({k: v for k, v in bilstm_space(p["task"]).items() if k not in fixed})
    run = _open_run(ctx, p, "tune")
    try:
        found = run_tune(
            estimator,
            space,
            *train,
            n_whales=p["whales"],
            iterations=p["iterations"],
            sampler=p["sampler"],
            storage=p["storage"],
            study_name=p["study_name"],
            workers=p["workers"],
            validation=p["validation"],
            metric=p["metric"],
            fixed=fixed,
            seed=p["seed"],
        )
    except KeyboardInterrupt:
        kept = (
            f"the finished trials are in {p['storage']}: run the same command to continue"
            if p["storage"]
            else "without --storage nothing was kept"
        )
        raise Interrupted(
            f"interrupted; the trial that was running is marked FAIL; {kept}"
        ) from None
    model = found.estimator
    metrics = _test_metrics(p["task"], model, train, test)
    tuning = {
        "sampler": p["sampler"],
        "metric": found.metric,
        "direction": found.direction,
        "best_value": found.best_value,
        "best_params": found.best_params,
        "history": found.history,
        "trials": found.counts,
    }
    run.write_text("tuning.json", json.dumps(jsonable(tuning), indent=1))
    run.write_metrics(metrics)
    model.save(run.model)
    _write_test_predictions(run, p["task"], model, test)
    report = Report(f"lstmkit tune: {name}")
    report.table(
        "Search",
        ["item", "value"],
        [[k, v] for k, v in tuning.items() if k not in ("best_params", "history")],
    )
    report.table("Parameters chosen", ["parameter", "value"], list(found.best_params.items()))
    figs = {
        "convergence.png": figures.convergence(found.history, f"best validation {found.metric}")
    }
    report.figure(
        "Convergence (best validation score after each generation)", figs["convergence.png"]
    )
    report.metrics("Test metrics of the refitted model beside the baselines", metrics)
    run.write_report(report, figs)
    best = f"{found.metric} {found.best_value:.4g}"
    out.say(f"{p['sampler']}: best validation {best} with {found.best_params}")
    for key, m in metrics.items():
        out.say(f"  test {key:15} {_fmt(m, ('rmse', 'mae', 'r2', 'accuracy', 'f1'))}")
    out.finish(run, {"metrics": metrics, "tuning": tuning})


def _per_step(model) -> bool:
    """True for models with one target per step (tagging, per-step regression)."""
    return isinstance(model, SequenceTagger) or model.params.get("output") == "sequence"


def _write_test_predictions(run: RunDir, task: str, model, test) -> None:
    """predictions.csv of the held-out part: (step, actual, predicted) for a forecast,
    (index, actual, predicted) per sequence, or (index, step, actual, predicted) per step."""
    if task == "forecast":
        (actual,) = test
        pred = model.predict(len(actual)).reshape(len(actual), -1)
        truth = np.asarray(actual).reshape(len(actual), -1)
        rows = [(i + 1, truth[i, 0], pred[i, 0]) for i in range(len(actual))]
        run.write_csv("predictions.csv", ("step", "actual", "predicted"), rows)
        return
    X_test, y_test = test
    pairs = enumerate(zip(y_test, model.predict(X_test), strict=True))
    if _per_step(model):
        rows = [
            (i, t, a, b)
            for i, (ya, yp) in pairs
            for t, (a, b) in enumerate(zip(np.asarray(ya), yp, strict=True))
        ]
        run.write_csv("predictions.csv", ("index", "step", "actual", "predicted"), rows)
    else:
        rows = [(i, a, b) for i, (a, b) in pairs]
        run.write_csv("predictions.csv", ("index", "actual", "predicted"), rows)


def _test_metrics(task: str, model, train, test) -> dict:
    """The model's test metrics with the task's baselines, as in metrics.json: naive,
    seasonal-naive and mean (forecast); the majority class (classify, tag) or the training
    mean (regress), and with the classify extra MiniRocket and 1-NN DTW
    (:mod:`lstmkit.tasks.baselines`)."""
    if task == "forecast":
        return model.evaluate(*test)
    return model.evaluate(*test, train=train)


@cli.command()
@_tuning_options
@click.option("--seeds", default="0,1,2", show_default=True, help="Seeds, comma-separated.")
@output_options
@click.pass_context
def compare(ctx: click.Context, **p) -> None:
    """The honest comparison table: LSTM, GRU, BiLSTM (defaults), WOA-BiLSTM and random-search
    BiLSTM with the same budget, over several seeds, tested once on the held-out part,
    beside the naive baselines.

    \b
    Examples:
      lstmkit compare --data airline --horizon 12 --epochs 60 --seeds 0,1,2
      lstmkit compare --task classify --train italy_power_demand --whales 4 --iterations 2
    """
    import optuna

    from lstmkit.woa.compare import HEADLINE
    from lstmkit.woa.compare import compare as run_compare

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    out = _Output(p["quiet"], p["json_output"])
    estimator, fixed, train, test, name = _tuning_inputs(p)
    seeds = _ints(p["seeds"], "--seeds", 0, SEED_MAX)
    run = _open_run(ctx, p, "compare")
    result = run_compare(
        estimator,
        train,
        test,
        seeds=seeds,
        n_whales=p["whales"],
        iterations=p["iterations"],
        fixed=fixed,
        metric=p["metric"],
        validation=p["validation"],
        progress=None if p["quiet"] else out.say,
    )
    table = result.to_markdown()
    summary = result.summary()
    metrics = {
        row: {k: mean for k, (mean, _) in values.items()}
        | {f"{k}_std": std for k, (_, std) in values.items()}
        for row, values in summary.items()
    }
    run.write_metrics(metrics)
    run.write_text("comparison.md", table + "\n")
    run.write_text("tuning.json", json.dumps(jsonable(result.tuned), indent=1))
    headline = [*HEADLINE[result.task], "seconds"]
    rows = [[row, *(_pm_cell(summary[row].get(k)) for k in headline)] for row in summary]
    report = Report(f"lstmkit compare: {name}")
    report.text(
        "Protocol",
        f"Seeds {', '.join(map(str, seeds))}; tuners {p['whales']} whales x "
        f"{p['iterations'] + 1} generations (the same number of trials for random search); "
        "the test part is used once per model and seed; mean ± std over seeds.",
    )
    report.table("Comparison", ["model", *headline], rows)
    run.write_report(report, {})
    out.say(table)
    out.finish(run, {"metrics": metrics})


def _pm_cell(value) -> str:
    if value is None:
        return "–"
    mean, std = value
    return f"{mean:.4g} ± {std:.2g}" if std else f"{mean:.4g}"


@cli.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--onnx", "onnx_path", required=True, type=click.Path(dir_okay=False), help="File to write."
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--json", "json_output", is_flag=True, help="Print the result as JSON.")
def export(model_dir: str, onnx_path: str, quiet: bool, json_output: bool) -> None:
    """Export a saved model to ONNX: standard LSTM/GRU operators (gate order converted) with
    the estimator's scaling and head around them, dynamic batch and sequence length;
    written atomically and checked with onnx.checker. Needs the onnx extra
    (pip install 'lstmkit[onnx]'); docs/onnx.md says what stays in Python.

    \b
    Examples:
      lstmkit export --model runs/italy/model --onnx italy.onnx
      lstmkit export --model runs/air --onnx air.onnx --json
    """
    try:
        from lstmkit.interop.onnx import export_onnx
    except ImportError as err:
        raise ValueError(str(err)) from err
    model = _load_model(model_dir)
    path = export_onnx(model, onnx_path)
    graph = onnx_graph_summary(path)
    out = _Output(quiet, json_output)
    out.say(f"wrote {path}: {graph['operators']} ({graph['bytes']} bytes)")
    out.finish(None, {"onnx": str(path), **graph})


def onnx_graph_summary(path) -> dict:
    """The recurrent operators and the size of an exported file, for the export message."""
    import onnx

    nodes = [n.op_type for n in onnx.load(str(path)).graph.node]
    recurrent = [op for op in nodes if op in ("LSTM", "GRU")]
    text = ", ".join(f"{recurrent.count(op)} {op}" for op in ("LSTM", "GRU") if op in recurrent)
    return {"operators": text or "no recurrent operator", "bytes": Path(path).stat().st_size}


@cli.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", help="Sequences to predict (.ts or .npz); not for a Forecaster.")
@click.option(
    "--steps",
    type=StrictInt(1, MAX_STEPS),
    help="Forecaster: steps ahead [default: its horizon].",
)
@output_options
@click.pass_context
def predict(ctx: click.Context, **p) -> None:
    """Predict with a saved model: a forecast past the end of its series (a panel model:
    of every series, with its quantiles), or labels/values for the sequences in --data.

    \b
    Examples:
      lstmkit predict --model runs/air/model --steps 12
      lstmkit predict --model runs/italy/model --data ItalyPowerDemand_TEST.ts
    """
    out = _Output(p["quiet"], p["json_output"])
    model = _load_model(p["model_dir"])
    kind = type(model).__name__
    if isinstance(model, Forecaster) and p["data"]:
        raise ValueError(
            f"--data: a {kind} forecasts past the end of the series it was trained on; "
            f"expected no --data (--steps sets how far), got {shown(p['data'])}"
        )
    if not isinstance(model, Forecaster) and p["steps"] is not None:
        raise ValueError(f"--steps: for a Forecaster; a {kind} predicts the sequences in --data")
    if isinstance(model, Forecaster) and model.panel is not None:
        every = model.panel_quantiles(p["steps"])  # (n_series, steps, Q)
        median = model.quantiles_.index(0.5)
        rows = [
            (name, t + 1, every[i, t, median], *every[i, t])
            for i, name in enumerate(model.panel.ids)
            for t in range(every.shape[1])
        ]
        header = ("id", "step", "predicted", *(f"q{q:g}" for q in model.quantiles_))
        pred = {str(name): every[i, :, median] for i, name in enumerate(model.panel.ids)}
    elif isinstance(model, Forecaster):
        pred = model.predict(p["steps"])
        rows = [(i + 1, *np.atleast_1d(v)) for i, v in enumerate(pred)]
        header = ("step", *(f"predicted_{k}" for k in range(len(rows[0]) - 1)))
    elif isinstance(model, TextGenerator):
        raise ValueError("--model: a TextGenerator writes poems: use lstmkit generate --model")
    else:
        if not p["data"]:
            raise ValueError("--data: expected a .ts or .npz file of sequences, got none")
        X = _read_file(p["data"], "--data")[0]
        pred = model.predict(X)
        rows = [(i, v) for i, v in enumerate(pred)]
        header = ("index", "predicted")
    run = _open_run(ctx, p, "predict")
    run.write_csv("predictions.csv", header, rows)
    out.say(f"{len(rows)} predictions written")
    out.finish(run, {"predictions": pred})


@cli.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option(
    "--data",
    required=True,
    help="Labelled sequences (.ts or .npz); for a Forecaster a CSV of the steps after its series.",
)
@click.option("--target", help="Forecaster: the target column(s) of the CSV.")
@click.option(
    "--train",
    help="Sequence models: the training data (.ts or .npz), for the baseline rows.",
)
@output_options
@click.pass_context
def evaluate(ctx: click.Context, **p) -> None:
    """Evaluate a saved model on labelled data; metrics.json as for training runs.

    \b
    Example:
      lstmkit evaluate --model runs/italy/model --data ItalyPowerDemand_TEST.ts
    """
    out = _Output(p["quiet"], p["json_output"])
    model = _load_model(p["model_dir"])
    _refuse_panel(model, "evaluate")
    if isinstance(model, Forecaster):
        frame = read_csv(p["data"])
        actual = frame.select(_names(p["target"]) or list(frame.columns))
        metrics = model.evaluate(actual)
    elif isinstance(model, TextGenerator):
        metrics = {"model": {"perplexity": model.perplexity(read_poems(p["data"]))["model"]}}
    else:
        X, y = _read_labelled(p["data"], "--data")
        train = _read_labelled(p["train"], "--train") if p["train"] else None
        metrics = model.evaluate(X, y, train=train)
    run = _open_run(ctx, p, "evaluate")
    run.write_metrics(metrics)
    report = Report(f"lstmkit evaluate: {p['model_dir']} on {p['data']}")
    run.write_report(report.metrics("Metrics", metrics), {})
    for name, m in metrics.items():
        out.say(f"  {name:15} {_fmt(m, ('rmse', 'mae', 'r2', 'accuracy', 'f1', 'perplexity'))}")
    out.finish(run, {"metrics": metrics})


@cli.command()
@click.option("--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--data", help="Sequence models: the .ts or .npz file the sample is taken from.")
@click.option(
    "--sample",
    type=StrictInt(0),
    default=0,
    show_default=True,
    help="Sequence models: the index of the sequence in --data; a Forecaster: how many steps "
    "before the end of its series the input window ends.",
)
@output_options
@click.pass_context
def explain(ctx: click.Context, **p) -> None:
    """The gate activations of one sample: every gate at every step, layer and direction,
    saved as gates.npz (arrays "<layer>/<gate>", each (T, H)), drawn in gates.png and the report.

    \b
    Examples:
      lstmkit explain --model runs/air/model
      lstmkit explain --model runs/italy --data ItalyPowerDemand_TEST.ts --sample 5
    """
    out = _Output(p["quiet"], p["json_output"])
    model = _load_model(p["model_dir"])
    _refuse_panel(model, "explain")
    if isinstance(model, TextGenerator):
        raise ValueError("--model: expected a forecaster or a sequence model, got a TextGenerator")
    if isinstance(model, Forecaster):
        if p["data"]:
            raise ValueError(
                "--data: a Forecaster explains a window of the series it was trained on; "
                f"expected no --data (--sample sets which), got {shown(p['data'])}"
            )
        gates = model.gate_activations(back=p["sample"])
        what = f"the input window ending {p['sample']} steps before the end of the series"
    else:
        if not p["data"]:
            raise ValueError(
                "--data: expected a .ts or .npz file to take the sample from, got none"
            )
        X = _read_file(p["data"], "--data")[0]
        if p["sample"] >= len(X):
            raise ValueError(
                f"--sample: expected an index below {len(X)} (sequences), got {p['sample']}"
            )
        gates = model.gate_activations(X[p["sample"]])
        what = f"sequence {p['sample']} of {p['data']}"
    run = _open_run(ctx, p, "explain")
    report, figs = explain_report(model, gates, what)
    run.write_report(report, figs)
    arrays = {f"{layer}/{gate}": v for layer, g in gates.items() for gate, v in g.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    run.write_bytes("gates.npz", buffer.getvalue())
    summary = {
        name: {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
        for name, v in arrays.items()
    }
    out.say(f"gates of {what}:")
    for name, stats in summary.items():
        low, high = stats["min"], stats["max"]
        out.say(f"  {name:14} mean {stats['mean']:+.3f}  min {low:+.3f}  max {high:+.3f}")
    out.finish(run, {"gates": summary})


@cli.command()
@click.option("--hidden", "hidden_sizes", default="32,128", show_default=True, help="Hidden sizes.")
@click.option("--steps", type=StrictInt(1, 100_000), default=100, show_default=True)
@click.option("--batch", type=StrictInt(1, 100_000), default=32, show_default=True)
@click.option("--rounds", type=StrictInt(1, 1000), default=7, show_default=True)
@click.option("--json", "json_output", is_flag=True, help="Print the results as JSON.")
def bench(hidden_sizes: str, steps: int, batch: int, rounds: int, json_output: bool) -> None:
    """A quick speed check on this machine: lstmkit against torch.nn, same run, as ratios
    (the full grid is benchmarks/engine.py in the repository).

    \b
    Example:
      lstmkit bench --hidden 64 --steps 200
    """
    from lstmkit.bench import quick_bench

    sizes = _ints(hidden_sizes, "--hidden", 1, 4096)
    results = quick_bench(sizes, steps=steps, batch=batch, rounds=rounds)
    if json_output:
        click.echo(json.dumps(results))
        return
    click.echo(f"{'case':36} {'torch.nn ms':>11} {'lstmkit ms':>10} {'speed':>6} backend")
    for r in results:
        click.echo(
            f"{r['case']:36} {r['torch_ms']:11.2f} {r['lstmkit_ms']:10.2f} {r['speed']:6.2f} "
            f"{r['backend']}"
        )


# -- entry point ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 2 bad usage or input, 1 internal, 130 ^C)."""
    args = sys.argv[1:] if argv is None else list(argv)
    with interrupts.handling():  # SIGTERM is handled as Ctrl-C; neither can be lost
        return _run(args, debug="--debug" in args)


def _run(args: list[str], debug: bool) -> int:
    """One command, its failures turned into an exit code and one line on stderr; a run
    directory the failed command opened and wrote nothing but its config into is put back
    as it was (:meth:`RunDir.abandon`)."""
    try:
        try:
            cli.main(args=args, prog_name="lstmkit", standalone_mode=False)
        except (Interrupted, click.exceptions.Abort):  # Ctrl-C (click's Abort): the run is kept
            raise
        except Exception:
            _abandon_runs()
            raise
        finally:
            _OPENED.clear()
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.UsageError as err:  # one line: the command, the problem, where help is
        path = err.ctx.command_path if err.ctx is not None else "lstmkit"
        message = _one_line(err.format_message())
        click.echo(f"{path}: error: {message} (see '{path} --help')", err=True)
        return err.exit_code
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except Interrupted as stop:
        click.echo(f"lstmkit: {stop}", err=True)
        return 130
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("lstmkit: interrupted", err=True)
        return 130
    except (ValueError, OSError) as err:  # bad input: the library's ValueErrors, files
        if debug:
            raise
        click.echo(f"lstmkit: error: {_one_line(str(err))}", err=True)
        return 2
    except Exception as err:  # an internal error: say so, with the way to see more
        if debug:
            raise
        click.echo(
            f"lstmkit: internal error: {type(err).__name__}: {err} (rerun with --debug for "
            "the traceback)",
            err=True,
        )
        return 1
    return 0


def _one_line(message: str) -> str:
    """An error for stderr: one line (a value with line breaks is joined), long quotes cut
    (:func:`lstmkit.messages.clipped`)."""
    return clipped(" ".join(message.splitlines()))


if __name__ == "__main__":
    sys.exit(main())
