r"""The comparison such papers print, done honestly: plain LSTM, GRU and BiLSTM with their
defaults, WOA-BiLSTM, and random-search-BiLSTM with the same budget, over k seeds.

Protocol (``SPEC.md`` §7):

* the caller splits train and test; only ``train`` is seen by fitting and tuning — tuning
  takes its validation part from ``train`` (:func:`lstmkit.tuning.tune.tune`), the test part
  is evaluated once per model and seed, after fitting;
* WOA-BiLSTM and random-BiLSTM search the same space (the task's default space without
  ``cell`` and ``bidirectional``, which are fixed to a BiLSTM) with the same budget of
  ``n_whales × (iterations + 1)`` trials, then refit the best on all of ``train``;
* every contender runs with seeds ``seeds`` (the estimator's seed and the tuner's), and the
  table reports the mean ± standard deviation (ddof = 1) of each test metric and of the wall
  time; the baselines (forecasting: naive, seasonal-naive, mean; classification: the
  majority class, and with the ``classify`` extra MiniRocket and 1-NN DTW; regression: the
  training mean, and MiniRocket) are fitted once and listed beside them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lstmkit.data.sequences import as_sequences
from lstmkit.tasks.baselines import sequence_baselines
from lstmkit.train.loop import interrupted
from lstmkit.tuning.space import SearchSpace, default_space
from lstmkit.tuning.tune import _metric, task_of, tune


@dataclass(frozen=True)
class Contender:
    """One row of the table: an estimator configuration, fitted with its defaults
    (``sampler=None``) or tuned by ``sampler`` ("woa", "random", "tpe", "cmaes")."""

    name: str
    fixed: Mapping[str, object]
    sampler: str | None = None


CONTENDERS = (
    Contender("LSTM", {"cell": "lstm", "bidirectional": False}),
    Contender("GRU", {"cell": "gru", "bidirectional": False}),
    Contender("BiLSTM", {"cell": "lstm", "bidirectional": True}),
    Contender("WOA-BiLSTM", {"cell": "lstm", "bidirectional": True}, "woa"),
    Contender("random-BiLSTM", {"cell": "lstm", "bidirectional": True}, "random"),
)

# the metrics shown first for each task
HEADLINE = {
    "forecast": ("rmse", "mae", "mape", "r2"),
    "regress": ("rmse", "mae", "r2"),
    "classify": ("accuracy", "precision", "recall", "f1"),
    "tag": ("accuracy", "precision", "recall", "f1"),
}


@dataclass
class Comparison:
    """Per contender and baseline: the test metrics of every seed, wall times, and the
    tuned parameters. ``summary()`` gives mean ± std; ``to_markdown()`` the table."""

    task: str
    seeds: tuple[int, ...]
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    tuned: dict[str, list[dict]] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, tuple[float, float]]]:
        """{row: {metric: (mean, std)}}, std 0 for one seed and for the baselines."""
        out = {}
        for name, runs in self.runs.items():
            keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
            out[name] = {k: _mean_std([r[k] for r in runs]) for k in keys}
            out[name]["seconds"] = _mean_std(self.seconds[name])
        for name, metrics in self.baselines.items():
            out[name] = {k: (v, 0.0) for k, v in metrics.items() if isinstance(v, int | float)}
        return out

    def to_markdown(self, metrics: Sequence[str] | None = None) -> str:
        metrics = list(metrics or HEADLINE[self.task])
        summary = self.summary()
        header = ["model", *metrics, "wall s"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for name, row in summary.items():
            cells = [_pm(*row[m]) if m in row else "–" for m in metrics]
            wall = _pm(*row["seconds"]) if "seconds" in row else "–"
            lines.append("| " + " | ".join([name, *cells, wall]) + " |")
        count = f"{len(self.seeds)} seed{'s' if len(self.seeds) > 1 else ''}"
        note = f"{count} ({', '.join(map(str, self.seeds))}); mean ± std"
        return "\n".join(lines) + f"\n\n{note}; baselines are deterministic."


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [float(v) for v in values]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), std


def _pm(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.4g} ± {std:.2g}" if std else f"{mean:.4g}"


def bilstm_space(task: str) -> SearchSpace:
    """The task's default space without ``cell`` and ``bidirectional`` (a BiLSTM is fixed)."""
    full = default_space(task)
    return SearchSpace({k: v for k, v in full.items() if k not in ("cell", "bidirectional")})


def _evaluate(task: str, model, test) -> tuple[dict, dict]:
    """(model metrics, baseline metrics) on the test part."""
    if task == "forecast":
        result = model.evaluate(*test)
        return result["model"], {k: v for k, v in result.items() if k != "model"}
    return model.evaluate(*test, baselines=False)["model"], {}


def compare(
    estimator: type,
    train: Sequence,
    test: Sequence,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    n_whales: int = 6,
    iterations: int = 3,
    contenders: Sequence[Contender] = CONTENDERS,
    fixed: Mapping | None = None,
    space: SearchSpace | None = None,
    metric: str | None = None,
    validation: float = 0.2,
    progress=None,
) -> Comparison:
    """Fit and test every contender with every seed; see the module docstring.

    Args:
        estimator: Forecaster, SequenceClassifier, SequenceRegressor or SequenceTagger.
        train: the arguments of ``fit``: ``(series,)`` or ``(X, y)``.
        test: the arguments of ``evaluate``: ``(actual,)`` (the steps after ``series``) or
            ``(X_test, y_test)``.
        fixed: keywords given to every estimator (e.g. ``{"horizon": 24}``,
            ``{"epochs": 50}``) and taken out of the tuners' space; a contender's own
            ``fixed`` (cell, bidirectional) wins.
        space: the tuners' space (default :func:`bilstm_space`).
        progress: ``callable(str)`` told what runs, e.g. ``print``.
    """
    task = task_of(estimator)
    _metric(task, metric)  # a wrong metric fails now, not after the plain models trained
    if not seeds:
        raise ValueError("seeds: expected at least one seed, got none")
    if task == "forecast" and len(test) != 1:
        raise ValueError(f"test: expected (actual,) for a Forecaster, got {len(test)} items")
    if task != "forecast" and len(test) != 2:
        raise ValueError(f"test: expected (X_test, y_test), got {len(test)} items")
    space = space or bilstm_space(task)
    result = Comparison(task, tuple(seeds))
    if task != "forecast":  # the same rows as evaluate: majority/mean, MiniRocket, 1-NN DTW
        result.baselines = sequence_baselines(
            task, as_sequences(train[0]), train[1], as_sequences(test[0]), test[1]
        )
    for contender in contenders:
        for seed in seeds:
            if progress:
                progress(f"{contender.name}, seed {seed}")
            options = {**(fixed or {}), **contender.fixed, "seed": seed, "progress": False}
            began = time.perf_counter()
            if contender.sampler is None:
                model = estimator(**options).fit(*train)
                if interrupted(model.history_):  # Ctrl-C: no table of cut-short fits
                    raise KeyboardInterrupt
            else:  # what the caller fixes is not searched
                searched = SearchSpace({k: v for k, v in space.items() if k not in options})
                found = tune(
                    estimator,
                    searched,
                    *train,
                    n_whales=n_whales,
                    iterations=iterations,
                    sampler=contender.sampler,
                    fixed=options,
                    seed=seed,
                    metric=metric,
                    validation=validation,
                )
                model = found.estimator
                result.tuned.setdefault(contender.name, []).append(
                    {"seed": seed, "params": found.best_params, "validation": found.best_value}
                )
            seconds = time.perf_counter() - began
            metrics, baselines = _evaluate(task, model, test)
            result.runs.setdefault(contender.name, []).append(metrics)
            result.seconds.setdefault(contender.name, []).append(seconds)
            result.baselines.update(baselines)
    return result
