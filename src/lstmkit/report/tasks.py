"""Reports of the task runs: the sections and figures each kind of run shows.

``forecast_report``, ``panel_forecast_report`` and ``sequence_report`` return the
:class:`~lstmkit.report.html.Report` and the figures (name → PNG bytes) so that the caller
writes both: the HTML with the figures embedded, and the PNG files beside it.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from lstmkit.report import figures
from lstmkit.report.html import GRU_EQUATIONS, LSTM_EQUATIONS, Report
from lstmkit.tasks.global_forecast import level_index


def _model_summary(report: Report, model) -> None:
    described = model.describe()
    report.table("Model", ["option", "value"], [[k, v] for k, v in described.items()])
    cell = described.get("cell", "lstm")
    report.equations(
        f"The {cell.upper()} cell", LSTM_EQUATIONS if cell == "lstm" else GRU_EQUATIONS
    )


def _report(title: str, model, data: list, heading: str, metrics: Mapping) -> Report:
    """What every task run's report opens with: the data, the model, the test metrics."""
    report = Report(title)
    report.table("Data", ["item", "value"], data)
    _model_summary(report, model)
    return report.metrics(heading, metrics)


def _gate_maps(model, gates: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One layer's gates as the heatmaps show them: i, f, o, C (LSTM) or r, z (GRU)."""
    names = ("i", "f", "o", "C") if model.describe().get("cell", "lstm") == "lstm" else ("r", "z")
    return {name: gates[name.lower()] for name in names}


def _gates_figure(model, gates: Mapping[str, Mapping[str, np.ndarray]]) -> bytes:
    """Heatmaps of the last layer's forward direction."""
    layer = model.describe()["num_layers"] - 1
    maps = _gate_maps(model, gates[f"l{layer}"])
    return figures.gates(maps, title=f"layer {layer}, forward direction")


def _with_figures(
    report: Report, figs: dict[str, bytes], captions: Mapping[str, str]
) -> tuple[Report, dict[str, bytes]]:
    """``report`` with the figures appended (each under its caption), and the figures."""
    for name, png in figs.items():
        report.figure(captions[name], png)
    return report, figs


def forecast_report(
    model,
    *,
    data_name: str,
    targets: Sequence[str],
    history: np.ndarray,
    actual: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    metrics: Mapping[str, Mapping],
    time_labels: Sequence[str] | None = None,
) -> tuple[Report, dict[str, bytes]]:
    """A forecast run: data, model, learning curves, forecast against actual (first target)
    with the origin marked, residuals, the metrics table with the baselines, and the gates
    of the window the forecast starts from."""
    data = [
        ["data", data_name],
        ["targets", ", ".join(targets)],
        ["steps", len(history) + len(actual)],
        ["training steps (incl. validation)", len(history)],
        ["held-out test steps", len(actual)],
        ["time span", f"{time_labels[0]} … {time_labels[-1]}" if time_labels else "–"],
    ]
    heading = "Test metrics (original scale) beside the baselines"
    report = _report(f"lstmkit forecast: {data_name}", model, data, heading, metrics)
    first = {k: np.asarray(v).reshape(len(actual), -1)[:, 0] for k, v in predictions.items()}
    truth = np.asarray(actual).reshape(len(actual), -1)[:, 0]
    context = min(48, len(history))
    labels = None
    if time_labels is not None:
        labels = list(time_labels[len(history) - context : len(history) + len(actual)])
    figs = {
        "learning_curves.png": figures.learning_curves(model.history_.epochs),
        "forecast.png": figures.forecast(
            np.asarray(history).reshape(len(history), -1)[:, 0], truth, first, labels, context
        ),
        "residuals.png": figures.residuals(truth, first["model"]),
        "gates.png": _gates_figure(model, model.gate_activations()),
    }
    captions = {
        "learning_curves.png": "Learning curves",
        "forecast.png": f"Forecast against actual ({targets[0]}); dashed line: forecast origin",
        "residuals.png": "Residuals of the model per step ahead",
        "gates.png": "Gate activations on the last input window",
    }
    return _with_figures(report, figs, captions)


def panel_forecast_report(
    model,
    *,
    data_name: str,
    history: Mapping[object, np.ndarray],
    actual: Mapping[object, np.ndarray],
    quantiles: np.ndarray,
    metrics: Mapping[str, Mapping],
    level: float = 80,
    shown: int = 6,
) -> tuple[Report, dict[str, bytes]]:
    """A panel forecast run (one global model over many series): data, model, the metrics
    table with the model beside every baseline, learning curves, and a fan chart of the
    first ``shown`` series: the tail of the history, the actual held-out part, the median
    and the central ``level`` % band.

    ``history`` and ``actual`` map each series id (``model.panel_.ids``) to its training
    values and its held-out values; ``quantiles`` (n_series, steps, Q) are
    ``model.panel_quantiles(steps)``, at the levels ``model.quantiles_``."""
    ids, levels = list(model.panel_.ids), tuple(model.quantiles_)
    quantiles = np.asarray(quantiles, dtype=float)
    if quantiles.shape[:1] != (len(ids),) or quantiles.shape[2:] != (len(levels),):
        raise ValueError(
            f"quantiles: expected shape ({len(ids)}, steps, {len(levels)}) (series, steps, "
            f"levels), got {quantiles.shape}"
        )
    lengths = [len(history[i]) for i in ids]
    data = [
        ["data", data_name],
        ["series", len(ids)],
        ["training points per series", f"{min(lengths)} … {max(lengths)}"],
        ["held-out test points per series", quantiles.shape[1]],
        ["frequency", model.panel_.frequency or "–"],
        ["season", model.season_ or 1],
        ["quantiles", ", ".join(f"{q:g}" for q in levels)],
    ]
    heading = (
        "Test metrics beside the baselines (mean over series; sMAPE in %, MASE and CRPS "
        f"scaled by the in-sample seasonal naive error, coverage and MSIS of the {level:g} % "
        "interval)"
    )
    report = _report(f"lstmkit forecast: {data_name}", model, data, heading, metrics)
    alpha = 1 - level / 100
    low, high = level_index(levels, alpha / 2), level_index(levels, 1 - alpha / 2)
    median = levels.index(0.5)
    first = range(min(shown, len(ids)))
    band = low is not None and high is not None
    figs = {
        "learning_curves.png": figures.learning_curves(model.history_.epochs),
        "fan_chart.png": figures.fan_chart(
            [str(ids[k]) for k in first],
            [history[ids[k]] for k in first],
            [actual[ids[k]] for k in first],
            [quantiles[k, :, median] for k in first],
            [quantiles[k, :, low] for k in first] if band else None,
            [quantiles[k, :, high] for k in first] if band else None,
            band=f"{level:g} % interval",
        ),
    }
    networks = model.describe().get("n_models", 1)
    interval = (
        f", {level:g} % interval (q{levels[low]:g}–q{levels[high]:g}) shaded"
        if band
        else f" (no {level:g} % interval among the quantiles)"
    )
    captions = {
        "learning_curves.png": "Learning curves"
        + (f" (the first of {networks} networks)" if networks > 1 else ""),
        "fan_chart.png": f"Forecasts of the first {len(first)} of {len(ids)} series: history, "
        f"actual, median{interval}; dashed line: forecast origin",
    }
    return _with_figures(report, figs, captions)


def sequence_report(
    model,
    *,
    kind: str,
    data_name: str,
    n_train: int,
    n_test: int,
    metrics: Mapping[str, Mapping],
    sample: np.ndarray,
) -> tuple[Report, dict[str, bytes]]:
    """A classify/regress/tag run: data, model, learning curves, the metrics beside the
    baseline, the confusion matrix and per-class metrics (classification), and the gates
    of one test sequence (``sample``)."""
    data = [["data", data_name], ["training sequences", n_train], ["test sequences", n_test]]
    report = _report(
        f"lstmkit {kind}: {data_name}", model, data, "Test metrics beside the baseline", metrics
    )
    figs = {"learning_curves.png": figures.learning_curves(model.history_.epochs)}
    captions = {
        "learning_curves.png": "Learning curves",
        "confusion.png": "Confusion matrix (test)",
        "gates.png": "Gate activations of test sequence 0",
    }
    m = metrics["model"]
    if "confusion_matrix" in m:
        figs["confusion.png"] = figures.confusion(m["confusion_matrix"], m["classes"])
        rows = [
            [c, v["precision"], v["recall"], v["f1"], v["support"]]
            for c, v in m["per_class"].items()
        ]
        report.table("Per-class metrics", ["class", "precision", "recall", "f1", "support"], rows)
    figs["gates.png"] = _gates_figure(model, model.gate_activations(sample))
    return _with_figures(report, figs, captions)


def explain_report(model, gates: Mapping[str, Mapping[str, np.ndarray]], what: str):
    """The gates of one sample: one heatmap figure per layer and direction."""
    report = Report(f"lstmkit explain: {type(model).__name__}")
    report.text("Sample", f"Gate activations of {what}.")
    _model_summary(report, model)
    figs = {}
    for layer, g in gates.items():
        figs[f"gates_{layer}.png"] = figures.gates(_gate_maps(model, g), title=layer)
        report.figure(f"Layer {layer}", figs[f"gates_{layer}.png"])
    return report, figs
