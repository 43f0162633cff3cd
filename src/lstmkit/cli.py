"""The ``lstmkit`` command line: a thin layer over the library (click).

Every command that trains or evaluates leaves a run directory (:mod:`lstmkit.report.rundir`):
``config.toml`` (the resolved options), ``metrics.json`` (the model and its baselines),
``predictions.csv``, ``model/`` and ``log.txt``. Options can come from a TOML file
(``--config run.toml``, keys as the long option names); flags given on the command line
override it. Exit codes: 0 success, 2 bad usage or bad input (one line naming the problem,
no traceback unless ``--debug``), 1 an internal error, 130 interrupted.
"""

import functools
import json
import os
import sys
import tomllib
from pathlib import Path

import click

from lstmkit import runs
from lstmkit.cli_types import SEED_MAX, StrictFloat, StrictInt, check_config_value
from lstmkit.data import list_datasets
from lstmkit.messages import clipped
from lstmkit.runs.common import Interrupted, ints
from lstmkit.runs.tuning import TASK_ESTIMATORS
from lstmkit.train import interrupts
from lstmkit.train.threads import THREADS_ENV

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
    names = {  # a key may be the parameter's name or any of its long option names
        key: param
        for param in ctx.command.params
        if param.name not in _OUTPUT_KEYS
        for key in (param.name, *(opt.lstrip("-").replace("-", "_") for opt in param.opts))
    }
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


def _together(*decorators):
    """One decorator for ``decorators`` stacked in this order (the order --help lists them)."""
    return lambda f: functools.reduce(lambda g, d: d(g), reversed(decorators), f)


resume_option = click.option(
    "--resume",
    type=click.Path(file_okay=False),
    callback=_load_run,
    is_eager=True,
    help="Continue an interrupted run from its directory (its options and checkpoint).",
)
_json_option = click.option("--json", "json_output", is_flag=True, help="Print the result as JSON.")
output_options = _together(  # --out, --config, --json, --quiet
    click.option(
        "--config",
        type=click.Path(dir_okay=False),
        callback=_load_config,
        is_eager=True,
        help="TOML file of options (keys as the long option names); flags override it.",
    ),
    click.option(
        "--out",
        type=click.Path(file_okay=False),
        help="Run directory [default: runs/<time>-<command>].",
    ),
    _json_option,
    click.option("--quiet", is_flag=True, help="Print nothing but errors; no progress bar."),
)
_seed_option = click.option("--seed", type=StrictInt(0, SEED_MAX), default=0)
_model_dir_option = click.option(
    "--model", "model_dir", required=True, type=click.Path(exists=True, file_okay=False)
)


def _rate_option(name: str, help: str | None = None):
    """An option of a rate in [0, 1), 0 unless given (a default --help does not show)."""
    rate = StrictFloat(0, 1, max_open=True)
    return click.option(name, type=rate, default=0.0, show_default=False, help=help)


variant_options = _together(  # the cell variants (docs/variants.md), for every trained network
    click.option("--layer-norm", is_flag=True, help="Layer-normalised cell (Ba et al. 2016)."),
    click.option("--peephole", is_flag=True, help="Peephole LSTM (Gers & Schmidhuber 2000)."),
    _rate_option(
        "--recurrent-dropout", "Per-sequence dropout on h before W_hh (Gal & Ghahramani 2016)."
    ),
    _rate_option("--zoneout", "Zoneout rate of h (Krueger et al. 2016)."),
    _rate_option("--zoneout-cell", "Zoneout rate of the LSTM cell state."),
    click.option(
        "--forget-bias",
        type=StrictFloat(-100, 100),
        help="Initial forget-gate bias of the LSTM (1.0: Jozefowicz et al. 2015).",
    ),
)


def model_options(
    *,
    epochs: int | None,
    bidirectional: bool,
    lr_help: str = "Peak learning rate [default: 3e-3 x batch size / 16].",
    hidden_help: str | None = None,
):
    """The estimator options every task shares (``epochs`` None: from the data)."""
    epochs_help = None if epochs else "[default: a budget from the data (docs/classification.md)]"
    return _together(
        click.option("--cell", type=click.Choice(["lstm", "gru"]), default="lstm"),
        click.option("--bidirectional/--unidirectional", default=bidirectional),
        click.option("--layers", "num_layers", type=StrictInt(1), default=1),
        click.option(
            "--hidden-size",
            type=StrictInt(1),
            default=None if hidden_help else 64,
            help=hidden_help,
        ),
        _rate_option("--dropout"),
        click.option("--epochs", type=StrictInt(1, MAX_EPOCHS), default=epochs, help=epochs_help),
        click.option("--lr", type=StrictFloat(0, 10, min_open=True), help=lr_help),
        click.option("--patience", type=StrictInt(1), help="Early-stopping patience in epochs."),
        _seed_option,
        variant_options,
    )


def _call(job, p: dict) -> None:
    """Run ``job`` (a :mod:`lstmkit.runs` function) with the command's options; its lines
    are printed as it goes unless --quiet or --json, which prints one JSON document."""
    keywords = {k: p[k] for k in ("out", "resume", "quiet") if k in p}
    say = None if p.get("quiet") or p.get("json_output") else click.echo
    options = {k: v for k, v in p.items() if k not in _OUTPUT_KEYS}
    result = job(**options, **keywords, say=say)
    if p.get("json_output"):
        click.echo(result.to_json())


# -- the group ------------------------------------------------------------------------------


# --help shows every option's default (but where show_default=False: the rates, empty texts)
_HELP = {"help_option_names": ["-h", "--help"], "max_content_width": 100, "show_default": True}


@click.group(context_settings=_HELP)
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.option(
    "--threads",
    type=StrictInt(1, 1024),
    help="Torch's intra-op threads while training [default: 1 for a model of at most 120k "
    "parameters, else torch's own; docs/benchmarks.md, Threads].",
)
@click.version_option(package_name="lstmkit")
def cli(debug: bool, threads: int | None) -> None:
    """lstmkit: LSTM, BiLSTM, GRU and stacked recurrent networks from their gate formulas.

    \b
    Examples:
      lstmkit demo
      lstmkit datasets
      lstmkit forecast --data airline --horizon 12
      lstmkit classify --train italy_power_demand
      lstmkit generate --corpus tang300 --acrostic 春夏秋冬
    """
    if threads is not None:  # read by lstmkit.train.threads (and by tuning workers)
        os.environ[THREADS_ENV] = str(threads)


@cli.command()
@click.option("--quick", is_flag=True, help="Tiny budgets (seconds; the numbers mean little).")
@output_options
def demo(**p) -> None:
    """The main job on built-in data: an engine check, a BiLSTM forecaster on Airline, WOA
    tuning, a comparison with LSTM/GRU and the naive baselines, a sequence classifier on
    ItalyPowerDemand, and the HTML report. A few minutes on a 2-core CPU.

    \b
    Example:
      lstmkit demo
    """
    _call(runs.demo, p)


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
@click.option("--strategy", type=click.Choice(["direct", "recursive"]), default="direct")
@click.option(
    "--test", "test_steps", type=StrictInt(1), help="Steps held out at the end [default: horizon]."
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
    help="Panels: divide each series that tests seasonal by its multiplicative seasonal "
    "indices before the network reads it, and multiply the forecasts back.",
)
@click.option(
    "--missing",
    type=click.Choice(["error", "ffill", "interpolate", "drop"]),
    default="error",
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
    help="Ensemble size: networks with seeds seed, seed+1, … combined by the median of each "
    "quantile (as --quantiles for one series).",
)
@model_options(
    epochs=300,
    bidirectional=False,
    lr_help="Learning rate [default: 3e-3 for one series, 1e-2 (the one-cycle peak) for a panel].",
    hidden_help="[default: 64; for a panel 128 from 65,536 training windows on]",
)
@output_options
@resume_option
def forecast(**p) -> None:
    """Train a forecaster on a series, or one global model on a panel of series, and test it
    on the last steps beside the naive baselines (and, with the forecast extra, AutoETS,
    AutoTheta and AutoARIMA).

    \b
    Examples:
      lstmkit forecast --data airline --horizon 12
      lstmkit forecast --data sales.csv --target sales --future-covariates promo --horizon 8
      lstmkit forecast --data panel.csv --id-column store --time-column date --target sales
      lstmkit forecast --data tourism_monthly.tsf --quantiles 0.05,0.5,0.95 --models 3
    """
    _call(runs.forecast, p)


# -- sequence tasks -------------------------------------------------------------------------


_sequence_options = _together(
    click.option(
        "--train",
        "train_path",
        required=True,
        help="A .ts or .npz file, or a built-in set with a test split.",
    ),
    click.option("--test", "test_path", help="A .ts or .npz file."),
    click.option("--pooling", default="last+max", help="last, mean, max joined by '+'."),
    click.option("--batch-size", type=StrictInt(1), help="[default: from the data size]"),
)


# The sequence recipe (docs/classification.md): the convolutional branch, patches,
# normalisation, ensembles, the schedule; then the model, the output and --resume.
_recipe_and_model_options = _together(
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
        help="Standardise each channel over the training set (global), or each sequence "
        "alone (sequence); auto: sequence for classes, global for values.",
    ),
    click.option(
        "--models",
        "n_models",
        type=StrictInt(1, MAX_MODELS),
        default=1,
        help="Ensemble size: models with seeds seed, seed+1, … averaged.",
    ),
    click.option(
        "--schedule",
        type=click.Choice(["onecycle", "plateau"]),
        default="onecycle",
        help="A fixed one-cycle budget, or early stopping on --validation.",
    ),
    click.option(
        "--validation",
        type=StrictFloat(0, 1, max_open=True),
        default=0.0,
        help="Share of the training data held out for early stopping.",
    ),
    model_options(epochs=None, bidirectional=True),
    output_options,
    resume_option,
)


@cli.command()
@_sequence_options
@click.option("--class-weight", type=click.Choice(["none", "balanced"]), default="none")
@click.option(
    "--restarts",
    type=StrictInt(0, 100),
    default=2,
    help="More one-cycle runs of the same budget while the training accuracy is below 0.99.",
)
@_recipe_and_model_options
def classify(**p) -> None:
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
    _call(runs.classify, p)


@cli.command()
@_sequence_options
@click.option("--output", type=click.Choice(["last", "sequence"]), default="last")
@_recipe_and_model_options
def regress(**p) -> None:
    """Sequence regression beside the training mean (and MiniRocket with the classify
    extra): a value per sequence, or with --output sequence a value per step (.npz files
    whose 'y' is (N, T)).

    \b
    Example:
      lstmkit regress --train train.ts --test test.ts
    """
    _call(runs.regress, p)


@cli.command()
@_sequence_options
@_recipe_and_model_options
def tag(**p) -> None:
    """Sequence tagging (a label per step) beside the majority tag; .npz files whose 'y'
    holds one label array per sequence.

    \b
    Example:
      lstmkit tag --train train.npz --test test.npz
    """
    _call(runs.tag, p)


# -- generate -------------------------------------------------------------------------------


@cli.command()
@click.option("--corpus", default="tang300", help="tang300, or a JSON file or directory of poems.")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False),
    help="Load a trained generator instead of training.",
)
@click.option("--poems", "n_poems", type=StrictInt(1), default=5)
@click.option("--temperature", type=StrictFloat(1e-3, 1e3), default=0.8)
@click.option("--top-k", type=StrictInt(1), default=20)
@click.option("--opening", default="", show_default=False, help="Text each poem starts with.")
@click.option(
    "--acrostic", default="", show_default=False, help="Characters that begin each line (藏头诗)."
)
@click.option("--epochs", type=StrictInt(1, MAX_EPOCHS), default=30)
@_seed_option
@variant_options
@output_options
def generate(**p) -> None:
    """Train a character-level poem writer on a corpus (or load one), then write poems.

    \b
    Examples:
      lstmkit generate --corpus tang300 --poems 3
      lstmkit generate --model runs/poet/model --acrostic 春夏秋冬
    """
    _call(runs.generate, p)


# -- tune / compare -------------------------------------------------------------------------


# The data of a tuning or comparison run, for any task.
_tuning_options = _together(
    click.option("--task", type=click.Choice(list(TASK_ESTIMATORS)), default="forecast"),
    click.option("--data", help="forecast: a CSV file or a built-in set (airline)."),
    click.option("--target", help="forecast: the target column(s)."),
    click.option("--horizon", type=StrictInt(1), default=12),
    click.option(
        "--test", "test_steps", type=StrictInt(1), help="forecast: steps held out [horizon]."
    ),
    click.option("--train", "train_path", help="Sequence tasks: .ts/.npz, or a built-in set."),
    click.option("--test-file", "test_path", help="Sequence tasks: the test .ts/.npz file."),
    click.option(
        "--epochs", type=StrictInt(1, MAX_EPOCHS), help="Fix the epochs instead of searching them."
    ),
    click.option("--whales", type=StrictInt(2), default=6),
    click.option("--iterations", type=StrictInt(1), default=3),
    click.option("--metric", help="Validation metric [rmse; accuracy for classification]."),
    click.option("--validation", type=StrictFloat(0, 1, min_open=True, max_open=True), default=0.2),
)


@cli.command()
@_tuning_options
@click.option("--sampler", type=click.Choice(["woa", "tpe", "random", "cmaes"]), default="woa")
@click.option("--storage", help="Optuna storage: a .db (SQLite), .log/.journal file or a URL.")
@click.option("--study-name", help="Name of the study in the storage (to resume or share).")
@click.option("--workers", type=StrictInt(1), default=1)
@_seed_option
@output_options
def tune(**p) -> None:
    """Tune a BiLSTM's hyper-parameters with WOA (or another Optuna sampler) on a validation
    split of the training part, refit the best, and test it once on the held-out part.

    \b
    Examples:
      lstmkit tune --data airline --horizon 12 --whales 6 --iterations 3
      lstmkit tune --task classify --train italy_power_demand --storage tune.db
      lstmkit tune --data airline --sampler tpe --storage tune.db --study-name air-tpe
    """
    _call(runs.tune, p)


@cli.command()
@_tuning_options
@click.option("--seeds", default="0,1,2", help="Seeds, comma-separated.")
@output_options
def compare(**p) -> None:
    """The honest comparison table: LSTM, GRU, BiLSTM (defaults), WOA-BiLSTM and random-search
    BiLSTM with the same budget, over several seeds, tested once on the held-out part,
    beside the naive baselines.

    \b
    Examples:
      lstmkit compare --data airline --horizon 12 --epochs 60 --seeds 0,1,2
      lstmkit compare --task classify --train italy_power_demand --whales 4 --iterations 2
    """
    _call(runs.compare, p)


# -- export / predict / evaluate / explain with a saved model -------------------------------


@cli.command()
@_model_dir_option
@click.option(
    "--onnx", "onnx_path", required=True, type=click.Path(dir_okay=False), help="File to write."
)
@click.option("--quiet", is_flag=True, help="Print nothing but errors.")
@_json_option
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
    model = runs.inputs.load_model(model_dir)
    path = export_onnx(model, onnx_path)
    graph = onnx_graph_summary(path)
    if not (quiet or json_output):
        click.echo(f"wrote {path}: {graph['operators']} ({graph['bytes']} bytes)")
    if json_output:
        click.echo(runs.RunResult("export", {}, payload={"onnx": str(path), **graph}).to_json())


def onnx_graph_summary(path) -> dict:
    """The recurrent operators and the size of an exported file, for the export message."""
    import onnx

    nodes = [n.op_type for n in onnx.load(str(path)).graph.node]
    text = ", ".join(f"{nodes.count(op)} {op}" for op in ("LSTM", "GRU") if op in nodes)
    return {"operators": text or "no recurrent operator", "bytes": Path(path).stat().st_size}


@cli.command()
@_model_dir_option
@click.option("--data", help="Sequences to predict (.ts or .npz); not for a Forecaster.")
@click.option(
    "--steps", type=StrictInt(1, MAX_STEPS), help="Forecaster: steps ahead [default: its horizon]."
)
@output_options
def predict(**p) -> None:
    """Predict with a saved model: a forecast past the end of its series (a panel model:
    of every series, with its quantiles), or labels/values for the sequences in --data.

    \b
    Examples:
      lstmkit predict --model runs/air/model --steps 12
      lstmkit predict --model runs/italy/model --data ItalyPowerDemand_TEST.ts
    """
    _call(runs.predict, p)


@cli.command()
@_model_dir_option
@click.option(
    "--data",
    required=True,
    help="Labelled sequences (.ts or .npz); for a Forecaster a CSV of the steps after its series.",
)
@click.option("--target", help="Forecaster: the target column(s) of the CSV.")
@click.option(
    "--train", help="Sequence models: the training data (.ts or .npz), for the baseline rows."
)
@output_options
def evaluate(**p) -> None:
    """Evaluate a saved model on labelled data; metrics.json as for training runs.

    \b
    Example:
      lstmkit evaluate --model runs/italy/model --data ItalyPowerDemand_TEST.ts
    """
    _call(runs.evaluate, p)


@cli.command()
@_model_dir_option
@click.option("--data", help="Sequence models: the .ts or .npz file the sample is taken from.")
@click.option(
    "--sample",
    type=StrictInt(0),
    default=0,
    help="Sequence models: the index of the sequence in --data; a Forecaster: how many steps "
    "before the end of its series the input window ends.",
)
@output_options
def explain(**p) -> None:
    """The gate activations of one sample: every gate at every step, layer and direction,
    saved as gates.npz (arrays "<layer>/<gate>", each (T, H)), drawn in gates.png and the report.

    \b
    Examples:
      lstmkit explain --model runs/air/model
      lstmkit explain --model runs/italy --data ItalyPowerDemand_TEST.ts --sample 5
    """
    _call(runs.explain, p)


@cli.command()
@click.option("--hidden", "hidden_sizes", default="32,128", help="Hidden sizes.")
@click.option("--steps", type=StrictInt(1, 100_000), default=100)
@click.option("--batch", type=StrictInt(1, 100_000), default=32)
@click.option("--rounds", type=StrictInt(1, 1000), default=7)
@click.option("--json", "json_output", is_flag=True, help="Print the results as JSON.")
def bench(hidden_sizes: str, steps: int, batch: int, rounds: int, json_output: bool) -> None:
    """A quick speed check on this machine: lstmkit against torch.nn, same run, as ratios
    (the full grid is benchmarks/engine.py in the repository).

    \b
    Example:
      lstmkit bench --hidden 64 --steps 200
    """
    from lstmkit.bench import quick_bench

    sizes = ints(hidden_sizes, "--hidden", 1, 4096)
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
    threads = os.environ.get(THREADS_ENV)
    try:
        with interrupts.handling():  # SIGTERM is handled as Ctrl-C; neither can be lost
            return _run(args, debug="--debug" in args)
    finally:  # --threads holds for this command only
        if threads is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = threads


def _run(args: list[str], debug: bool) -> int:
    """One command, its failures turned into an exit code and one line on stderr; a run
    directory the failed command opened and wrote nothing but its config into is put back
    as it was (:meth:`RunDir.abandon`)."""
    try:
        cli.main(args=args, prog_name="lstmkit", standalone_mode=False)
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
