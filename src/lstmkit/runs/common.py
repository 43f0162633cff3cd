"""What every run shares: its options and their defaults, the run directory it writes
(:class:`~lstmkit.report.rundir.RunDir`), what it says, and the :class:`RunResult` it
returns.

A run function takes the command's options by their names in ``config.toml`` (the CLI's
long option names with ``_``: ``horizon``, ``train_path`` for ``--train``, ``n_models`` for
``--models``) and four keywords of the run itself:

- ``out``: the run directory (``None``: a new ``runs/<time>-<command>`` folder, as the CLI;
  ``False``: none, the result stays in memory and :meth:`RunResult.write` writes it later);
- ``resume``: a run directory to continue from its checkpoint (its options must be the
  same, but for :data:`RESUMABLE`);
- ``quiet``: no progress bars;
- ``say``: called with each line the run reports (the CLI prints them; default: nothing).

Errors name the options as the CLI spells them (``--target: expected ...``).
"""

import functools
import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click

from lstmkit.cli_types import INT_MAX, StrictInt
from lstmkit.messages import shown
from lstmkit.report.rundir import RunDir, jsonable
from lstmkit.train.checkpoint import recover_dir
from lstmkit.train.loop import interrupted

# -- options --------------------------------------------------------------------------------

MODEL = {
    "cell": "lstm",
    "bidirectional": True,
    "num_layers": 1,
    "hidden_size": 64,
    "dropout": 0.0,
    "epochs": None,
    "lr": None,
    "patience": None,
    "seed": 0,
}
VARIANTS = {
    "layer_norm": False,
    "peephole": False,
    "recurrent_dropout": 0.0,
    "zoneout": 0.0,
    "zoneout_cell": 0.0,
    "forget_bias": None,
}
RECIPE = {
    "train_path": None,
    "test_path": None,
    "pooling": "last+max",
    "batch_size": None,
    "conv_filters": None,
    "rnn_steps": None,
    "conv_steps": None,
    "normalize": "auto",
    "n_models": 1,
    "schedule": "onecycle",
    "validation": 0.0,
}
TUNING = {
    "task": "forecast",
    "data": None,
    "target": None,
    "horizon": 12,
    "test_steps": None,
    "train_path": None,
    "test_path": None,
    "epochs": None,
    "whales": 6,
    "iterations": 3,
    "metric": None,
    "validation": 0.2,
}
REQUIRED = object()  # an option with no default: the run refuses to start without it

DEFAULTS: dict[str, dict] = {
    "forecast": {
        "data": REQUIRED,
        "target": None,
        "id_column": None,
        "time_column": None,
        "static_columns": None,
        "covariates": None,
        "future_covariates": None,
        "horizon": None,
        "lookback": None,
        "strategy": "direct",
        "test_steps": None,
        "season": None,
        "deseasonalize": True,
        "missing": "error",
        "quantiles": None,
        "n_models": 1,
        **MODEL,
        "hidden_size": None,  # 64, or for a big panel 128 (global_forecast.panel_hidden)
        "bidirectional": False,
        "epochs": 300,
        **VARIANTS,
    },
    "classify": {
        **RECIPE,
        "train_path": REQUIRED,
        "class_weight": "none",
        "restarts": 2,
        **MODEL,
        **VARIANTS,
    },
    "regress": {**RECIPE, "train_path": REQUIRED, "output": "last", **MODEL, **VARIANTS},
    "tag": {**RECIPE, "train_path": REQUIRED, **MODEL, **VARIANTS},
    "generate": {
        "corpus": "tang300",
        "model_dir": None,
        "n_poems": 5,
        "temperature": 0.8,
        "top_k": 20,
        "opening": "",
        "acrostic": "",
        "epochs": 30,
        "seed": 0,
        **VARIANTS,
    },
    "tune": {
        **TUNING,
        "sampler": "woa",
        "storage": None,
        "study_name": None,
        "workers": 1,
        "seed": 0,
    },
    "compare": {**TUNING, "seeds": "0,1,2"},
    "predict": {"model_dir": REQUIRED, "data": None, "steps": None},
    "evaluate": {"model_dir": REQUIRED, "data": REQUIRED, "target": None, "train": None},
    "explain": {"model_dir": REQUIRED, "data": None, "sample": 0},
    "demo": {"quick": False},
}


def resolve(command: str, given: Mapping) -> dict:
    """The command's options: ``given`` over the defaults; an unknown or missing one is a
    TypeError naming what was expected."""
    defaults = DEFAULTS[command]
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(
            f"lstmkit.runs.{command}: unknown option {unknown[0]!r}; expected some of "
            f"{', '.join(defaults)}"
        )
    options = {**defaults, **given}
    missing = [k for k, v in options.items() if v is REQUIRED]
    if missing:
        raise TypeError(f"lstmkit.runs.{command}: expected the option {missing[0]!r}, got none")
    return options


def names(text: str | Sequence[str] | None) -> list[str]:
    """A list option: 'a, b' (as on the command line) or a list of names."""
    if text is None or isinstance(text, str):
        return [n.strip() for n in text.split(",") if n.strip()] if text else []
    return [str(n) for n in text]


def ints(text: str, option: str, minimum: int = 1, maximum: int = INT_MAX) -> list[int]:
    """Integers in [minimum, maximum] separated by commas (none empty), else a ValueError."""
    parse = StrictInt(minimum, maximum)
    if not isinstance(text, str):
        text = ",".join(map(str, text))
    try:
        return [parse.convert(v, None, None) for v in (text or "").split(",")]
    except click.BadParameter as err:
        raise ValueError(
            f"{option}: expected integers separated by commas, got {text[:40]!r} ({err.message})"
        ) from None


def floats(text: str | Sequence[float], option: str) -> list[float]:
    try:
        return [float(v) for v in names(text)]
    except ValueError:
        raise ValueError(
            f"{option}: expected numbers separated by commas, got {shown(text)}"
        ) from None


def cell_options(p: dict) -> dict:
    """The cell variants the options ask for (only those not at their default: a forget
    bias of 0.0 is asked for)."""
    return {k: p[k] for k in VARIANTS if p[k] or (k == "forget_bias" and p[k] is not None)}


def estimator_options(p: dict, run: "Run") -> dict:
    """The estimator's keywords from the run's options; checkpoints go to its directory."""
    options = {k: p[k] for k in MODEL if k != "patience" or p[k] is not None}
    variants = cell_options(p)
    if variants:
        options["cell_options"] = variants
    return options | {
        "progress": False if run.quiet else None,
        "checkpoint": None if run.dir is None else str(run.dir.path / "checkpoint"),
        "resume": run.resume is not None,
    }


# -- the run ---------------------------------------------------------------------------------

# the options a resumed run may change: it continues the same model on the same data
RESUMABLE = ("epochs",)


class Interrupted(Exception):
    """Training stopped by Ctrl-C; the best weights are in the run's checkpoint."""


@dataclass
class Table:
    """A predictions table: column names and rows (``frame()``: a pandas DataFrame)."""

    columns: tuple[str, ...]
    rows: list[tuple]

    def column(self, name: str) -> list:
        """The values of one column, in row order (no pandas needed)."""
        k = self.columns.index(name)
        return [row[k] for row in self.rows]

    def frame(self):
        import pandas

        return pandas.DataFrame(self.rows, columns=list(self.columns))


@dataclass
class RunResult:
    """What a run produced: ``metrics`` (metrics.json: the model and every baseline),
    ``predictions`` (predictions.csv), ``models`` (folder name → estimator; ``model`` the
    main one), the ``report`` and its ``figures`` (made by ``draw`` when first read), other
    ``files`` (name → text or bytes), the ``lines`` it said, ``payload`` (what ``--json``
    prints), ``forecasts`` (a one-series forecast run's: the model's and every
    baseline's forecast of the test part, name → (steps, targets) array, what its report
    draws) and the directory it was written to (``path``; None until written)."""

    command: str
    options: dict
    metrics: dict | None = None
    predictions: Table | None = None
    models: dict = field(default_factory=dict)
    draw: Callable[[], tuple] | None = field(default=None, repr=False)
    files: dict[str, str | bytes] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    payload: dict = field(default_factory=dict)
    forecasts: dict = field(default_factory=dict, repr=False)
    path: Path | None = None

    @property
    def model(self):
        return self.models.get("model")

    @property
    def report(self):
        """The run's :class:`~lstmkit.report.html.Report` (drawn when first asked for:
        a run whose report nobody reads costs no figures)."""
        return self._drawn[0]

    @property
    def figures(self) -> dict[str, bytes]:
        """The report's figures, name → PNG bytes."""
        return self._drawn[1]

    @functools.cached_property
    def _drawn(self) -> tuple:
        return self.draw() if self.draw is not None else (None, {})

    def write(self, out: str | Path | RunDir | None = None) -> Path:
        """Write the run directory (``out``: a path, or None for a new ``runs/<time>-``
        folder): config.toml, metrics.json, predictions.csv, the models, the report and
        its figures, the other files, and log.txt."""
        run = out if isinstance(out, RunDir) else RunDir.create(out, self.command)
        if not isinstance(out, RunDir):
            run.write_config(self.options)
        for name, content in self.files.items():
            (run.write_bytes if isinstance(content, bytes) else run.write_text)(name, content)
        if self.metrics is not None:
            run.write_metrics(self.metrics)
        if self.predictions is not None:
            run.write_csv("predictions.csv", self.predictions.columns, self.predictions.rows)
        for folder, model in self.models.items():
            model.save(run.path / folder)
        if self.report is not None:
            run.write_report(self.report, self.figures)
        self.path = run.path
        lines = [*self.lines, f"run directory: {run.path}"]
        run.write_text("log.txt", "\n".join(lines) + "\n")
        return run.path

    def to_json(self) -> str:
        """One JSON document: the run directory and the payload (``--json``)."""
        payload = {"run_dir": None if self.path is None else str(self.path), **self.payload}
        return json.dumps(jsonable(payload), ensure_ascii=False, allow_nan=False)


class Run:
    """One run in progress: its options, what it says, its directory once opened."""

    def __init__(self, command: str, options: dict, out, resume, quiet: bool, say) -> None:
        self.command, self.options = command, options
        self.out, self.resume, self.quiet = out, resume, quiet
        self._say: Callable[[str], None] | None = say
        self.lines: list[str] = []
        self.dir: RunDir | None = None

    def say(self, text: str) -> None:
        self.lines.append(text)
        if self._say is not None:
            self._say(text)

    def say_metrics(self, metrics: dict, keys: tuple[str, ...], width=15, prefix="") -> None:
        """One line per row of ``metrics`` (the model, each baseline): its ``keys``."""
        for name, row in metrics.items():
            values = "  ".join(f"{k} {row[k]:.4g}" for k in keys if k in row)
            self.say(f"  {prefix}{name:{width}} {values}")

    @contextmanager
    def opened(self):
        """Open the run directory (``--resume``'s, ``out``, or a new one; none for
        ``out=False``) with config.toml written; a run refused inside the block before it
        wrote anything else puts the directory back (:meth:`RunDir.abandon`). With a resume
        nothing is written before the run is known to be resumable."""
        if self.resume is not None:
            check_resumable(Path(self.resume), self.config())
        if self.out is not False:
            self.dir = RunDir.create(self.resume or self.out, self.command)
            self.dir.write_config(self.config())
        try:
            yield self
        except Interrupted:
            raise
        except Exception:
            if self.dir is not None:
                self.dir.abandon()
            raise

    def config(self) -> dict:
        return {k: v for k, v in self.options.items() if v is not None}

    def stop_if_interrupted(self, model) -> None:
        if not interrupted(model.history_):
            return
        where = None if self.dir is None else self.dir.path
        if where is None or not (where / "checkpoint").is_dir():
            raise Interrupted(
                "interrupted before the first epoch ended: nothing was saved to resume from; "
                f"run the command again (without --resume) into {where}"
            )
        raise Interrupted(
            f"interrupted after epoch {len(model.history_.epochs)}; the checkpoint is in "
            f"{where / 'checkpoint'}; continue with: lstmkit {self.command} --resume {where}"
        )

    def finished(self, **fields) -> RunResult:
        """The run's :class:`RunResult` of ``fields`` with what was said; written to the run
        directory if there is one."""
        result = RunResult(self.command, self.config(), lines=self.lines, **fields)
        if self.dir is not None:
            result.write(self.dir)
            self.say(f"run directory: {self.dir.path}")
        return result


def check_resumable(path: Path, options: dict) -> None:
    saved = tomllib.loads((path / "config.toml").read_text("utf-8"))
    now = json.loads(json.dumps(jsonable(options)))  # tuples as lists, as TOML reads them
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


def start(command: str, given: Mapping, out, resume, quiet: bool, say) -> Run:
    """A run of ``command`` with the ``given`` options over its defaults."""
    return Run(command, resolve(command, given), out, resume, quiet, say)
