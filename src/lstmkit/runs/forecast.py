"""``lstmkit.runs.forecast``: train a forecaster on a series, or one global model on a
panel, and test it on the last steps of each series beside the baselines.

One series: a :class:`~lstmkit.tasks.Forecaster` (direct or recursive, with covariates)
tested on the held-out steps beside the naive and seasonal-naive forecasts. A panel (a long
CSV, a .tsf file, or one series with quantiles or an ensemble): one global model with
quantile forecasts, tested beside every baseline :meth:`Forecaster.evaluate` fits (the
statistical ones with the ``forecast`` extra), with interval coverage, MSIS and CRPS.
"""

from pathlib import Path

import numpy as np

from lstmkit.messages import clipped, shown
from lstmkit.report.tasks import forecast_report, panel_forecast_report
from lstmkit.runs.common import RunResult, Table, estimator_options, floats, names, start
from lstmkit.runs.inputs import PanelData, is_panel_run, read_panel, target_series
from lstmkit.tasks import Forecaster
from lstmkit.tasks.global_forecast import check_quantiles


def forecast(*, out=None, resume=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit forecast`` command in one call: ``forecast(data="airline", horizon=12)``
    (options and run keywords: :mod:`lstmkit.runs.common`)."""
    run = start("forecast", options, out, resume, quiet, say)
    p = run.options
    if p["static_columns"] and not p["id_column"]:
        raise ValueError(
            "--static-columns: expected a long CSV with --id-column (one value per series of "
            f"a panel), got {shown(p['static_columns'])} without one"
        )
    if is_panel_run(p):
        return _forecast_panel(run)
    p["horizon"] = p["horizon"] or 12
    p["season"] = p["season"] or 12
    frame, targets, y, test = target_series(p, p["missing"])
    overlap = set(targets) & set(names(p["covariates"]) + names(p["future_covariates"]))
    if overlap:
        raise ValueError(
            f"--covariates/--future-covariates: expected columns other than the target, got "
            f"{', '.join(sorted(overlap))} (the target would be its own input)"
        )
    past = frame.select(names(p["covariates"])) if p["covariates"] else None
    fut = frame.select(names(p["future_covariates"])) if p["future_covariates"] else None
    cut = len(y) - test
    if p["season"] > cut:  # the seasonal naive baseline and MASE repeat one training season
        raise ValueError(
            f"--season {p['season']}: expected at most the {cut} training steps (the seasonal "
            "baselines repeat the last season of them)"
        )
    with run.opened():
        model = Forecaster(
            horizon=p["horizon"],
            lookback=p["lookback"],
            strategy=p["strategy"],
            **estimator_options(p, run),
        )
        model.fit(
            y[:cut],
            covariates=None if past is None else past[:cut],
            future_covariates=None if fut is None else fut[:cut],
        )
        run.stop_if_interrupted(model)
        fut_test = None if fut is None else fut[cut:]
        metrics, forecasts = model.evaluate(
            y[cut:], future_covariates=fut_test, season=p["season"], return_forecasts=True
        )
        pred = forecasts["model"]
        times = frame.time[cut:] if frame.time else [str(t) for t in range(cut, len(y))]
        rows = [
            (t, name, y[cut + i, k], pred[i, k])
            for i, t in enumerate(times)
            for k, name in enumerate(targets)
        ]

        def draw():
            preds = {name: forecasts[name] for name in ("model", "naive", "seasonal_naive")}
            return forecast_report(
                model,
                data_name=p["data"],
                targets=targets,
                history=y[:cut],
                actual=y[cut:],
                predictions=preds,
                metrics=metrics,
                time_labels=frame.time,
            )

        run.say(f"forecast: {', '.join(targets)}, last {test} steps held out")
        run.say_metrics(metrics, ("rmse", "mae", "mape", "r2"))
        return run.finished(
            metrics=metrics,
            predictions=Table(("time", "target", "actual", "predicted"), rows),
            models={"model": model},
            draw=draw,
            payload={"metrics": metrics},
            forecasts=forecasts,
        )


def _forecast_panel(run) -> RunResult:
    """A panel: one global model, quantile forecasts of the last --test points of every
    series, metrics beside every baseline, a fan chart."""
    p = run.options
    levels = quantile_levels(p["quantiles"])
    if (p["covariates"] or p["future_covariates"]) and not p["id_column"]:
        raise ValueError(
            "--covariates/--future-covariates: expected a long CSV with --id-column for a "
            "panel, --quantiles or --models (their columns beside each series' values), got "
            "a one-column series or a .tsf file"
        )
    if p["strategy"] != "direct":
        raise ValueError(
            f"--strategy: expected direct for a panel, --quantiles or --models, got {p['strategy']}"
        )
    if Path(p["data"]).suffix.lower() != ".tsf":
        p["horizon"] = p["horizon"] or 12
    data: PanelData = read_panel(p)
    p["horizon"] = p["horizon"] or data.horizon or 12
    p["season"] = p["season"] or data.season  # None: the model infers it from the dates, else 1
    steps = p["test_steps"] or p["horizon"]
    train, test = data.split(steps)
    with run.opened():
        model = Forecaster(
            horizon=p["horizon"],
            lookback=p["lookback"],
            season=p["season"],
            quantiles=levels,
            n_models=p["n_models"],
            deseasonalize=p["deseasonalize"],
            **estimator_options(p, run),
        )
        model.fit(train, static_covariates=data.static, **data.fit_columns())
        run.stop_if_interrupted(model)
        level = interval_level(model.quantiles_)
        # every: (n_series, steps, Q), in model.panel_.ids order
        metrics, every = model.evaluate(test, level=level, return_forecasts=True)
        where = {name: k for k, name in enumerate(data.ids)}
        median = model.quantiles_.index(0.5)
        rows = []
        for i, name in enumerate(model.panel_.ids):
            k = where[name]
            times, actual = data.labels[k][-steps:], data.values[k][-steps:]
            rows += [
                (name, times[t], actual[t], every[i, t, median], *every[i, t]) for t in range(steps)
            ]
        header = ("id", "time", "actual", "predicted", *(f"q{q:g}" for q in model.quantiles_))
        pairs = list(zip(data.ids, data.values, strict=True))

        def draw():
            return panel_forecast_report(
                model,
                data_name=data.name,
                history={name: v[:-steps] for name, v in pairs},
                actual={name: v[-steps:] for name, v in pairs},
                quantiles=every,
                metrics=metrics,
                level=level,
            )

        run.say(
            f"forecast: {len(data.ids)} series of {data.name}, last {steps} points of each held "
            f"out (season {model.season_ or 1})"
        )
        run.say_metrics(metrics, ("smape", "mase", "coverage", "msis", "crps"))
        return run.finished(
            metrics=metrics,
            predictions=Table(header, rows),
            models={"model": model},
            draw=draw,
            payload={"metrics": metrics},
        )


def interval_level(levels) -> float:
    """The central interval the metrics and the fan chart show: 80 % when the 0.1 and 0.9
    quantiles were trained, else the widest pair q, 1 − q (80, none shown, when none)."""
    widths = [
        round(100 * (1 - 2 * q), 6)
        for q in levels
        if q < 0.5 and np.isclose(levels, 1 - q, rtol=0, atol=1e-9).any()
    ]
    return 80 if 80 in widths or not widths else max(widths)


def quantile_levels(text) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return check_quantiles(floats(text, "--quantiles"))
    except ValueError as err:
        raise ValueError(f"--quantiles {shown(text)}: {clipped(str(err))}") from None
