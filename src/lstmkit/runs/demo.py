"""``lstmkit.runs.demo``: the main job (``lstmkit demo``): everything lstmkit does, on
built-in data, in a few minutes on a 2-core CPU, as a sequence of runs (forecast, tune,
forecast with the contenders' cells, classify) whose results one report combines, written
to one run directory.

1. Engine check: our hand-written BPTT (``backend="fused"``) against torch's native kernel
   on a BiLSTM — outputs and input gradients, max abs difference.
2. Forecasting: a BiLSTM :class:`~lstmkit.tasks.Forecaster` on Airline (144 months); the
   last 12 months are held out and predicted in one go (direct, horizon 12), beside the
   naive, seasonal-naive (m = 12) and mean baselines and, with the ``forecast`` extra,
   AutoETS, AutoTheta and AutoARIMA.
3. WOA-BiLSTM: :func:`lstmkit.runs.tune` searches the BiLSTM's hyper-parameters with
   the Whale Optimization Algorithm on a validation split of the training months only,
   refits the best, and is tested once on the held-out months.
4. Comparison: plain LSTM and GRU with the same training budget, beside the above.
5. Classification: the default :class:`~lstmkit.tasks.SequenceClassifier` (a BiLSTM
   with the LSTM-FCN convolutional branch, ``docs/classification.md``) on ItalyPowerDemand
   (the archive's own train/test split) beside the majority class and, with the
   ``classify`` extra installed, MiniRocket and 1-NN DTW.
6. The report: data, model and cell equations, learning curves, forecast against actual,
   residuals, WOA convergence and the parameters it chose, the comparison table, the
   confusion matrix, gate heatmaps.
"""

import time
from collections.abc import Callable

import numpy as np
import torch

from lstmkit import LSTM
from lstmkit.data import load_airline
from lstmkit.report import figures
from lstmkit.report.html import Report
from lstmkit.report.tasks import forecast_report
from lstmkit.runs.common import RunResult, Table, start
from lstmkit.runs.forecast import forecast
from lstmkit.runs.sequence import classify
from lstmkit.runs.tuning import tune
from lstmkit.tuning.compare import CONTENDERS, Comparison

TEST_MONTHS = 12


def engine_check(seed: int = 0) -> float:
    """Max abs difference between the fused (our BPTT) and native backends: outputs and
    gradients with respect to the input, on a 2-layer BiLSTM."""
    torch.manual_seed(seed)
    lstm = LSTM(3, 16, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(8, 30, 3)
    results = []
    for backend in ("fused", "native"):
        lstm.backend = backend
        xx = x.clone().requires_grad_()
        out, _ = lstm(xx)
        (grad,) = torch.autograd.grad(out.pow(2).sum(), xx)
        results.append((out.detach(), grad))
    return max(float((a - b).abs().max()) for a, b in zip(*results, strict=True))


def demo(*, out=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit demo`` command in one call: the six steps, written to ``out``.
    ``quick=True`` shrinks every budget (for tests): the numbers are then not meaningful."""
    run = start("demo", options, out, None, quiet, say)
    with run.opened():
        result = _six_steps(run.say, run.options["quick"])
        if run.dir is not None:
            run.say(f"report: {run.dir.path / 'report.html'}")
        return run.finished(**result)


def _six_steps(say: Callable[[str], None], quick: bool) -> dict:
    """The :class:`RunResult` fields of the demo."""
    epochs = 8 if quick else 150
    whales, iterations = (2, 1) if quick else (6, 3)
    began = time.perf_counter()

    diff = engine_check()
    say(f"engine check: fused BPTT vs torch native, max abs diff {diff:.2e}")

    air = {"data": "airline", "horizon": TEST_MONTHS, "epochs": epochs, "out": False}
    bilstm, bilstm_seconds = _timed(forecast, **air, bidirectional=True)
    forecaster, forecast_metrics = bilstm.model, bilstm.metrics
    rmse = {name: m["rmse"] for name, m in forecast_metrics.items()}
    beside = sorted((r, name) for name, r in rmse.items() if name not in ("model", "mean"))
    say(  # every baseline, the strongest first (AutoARIMA & co. with the forecast extra)
        f"BiLSTM forecaster: test RMSE {rmse['model']:.1f} ("
        + ", ".join(f"{name.replace('_', ' ')} {r:.1f}" for r, name in beside)
        + ")"
    )

    woa, woa_seconds = _timed(tune, **air, whales=whales, iterations=iterations)
    found, woa_metrics = woa.payload["tuning"], woa.metrics["model"]
    say(
        f"WOA-BiLSTM: {whales} whales x {iterations + 1} generations, validation RMSE "
        f"{found['best_value']:.1f}, test RMSE {woa_metrics['rmse']:.1f}; chose "
        f"{found['best_params']}"
    )

    comparison = Comparison("forecast", (0,))
    comparison.runs["BiLSTM"] = [forecast_metrics["model"]]
    comparison.runs["WOA-BiLSTM"] = [woa_metrics]
    for contender in CONTENDERS[:2]:  # LSTM, GRU with the same budget
        result, seconds = _timed(forecast, **air, **contender.fixed)
        comparison.runs[contender.name] = [result.metrics["model"]]
        comparison.seconds[contender.name] = [seconds]
    comparison.seconds |= {"BiLSTM": [bilstm_seconds], "WOA-BiLSTM": [woa_seconds]}
    comparison.baselines = {k: v for k, v in forecast_metrics.items() if k != "model"}
    say("comparison (test, last 12 months):\n" + comparison.to_markdown())

    budget = {"epochs": epochs} if quick else {}
    italy, seconds = _timed(classify, train_path="italy_power_demand", out=False, **budget)
    classifier, class_rows = italy.model, italy.metrics
    say(f"  ({seconds:.0f} s)")
    beside = ", ".join(f"{k} {v['accuracy']:.3f}" for k, v in class_rows.items() if k != "model")
    say(
        f"classifier, ItalyPowerDemand: test accuracy {class_rows['model']['accuracy']:.3f} "
        f"({beside})"
    )

    months, passengers = load_airline()
    train, test = passengers[:-TEST_MONTHS], passengers[-TEST_MONTHS:]
    # the forecasts the runs scored (their predictions tables), not forecast again
    bilstm_pred = np.array(bilstm.predictions.column("predicted"))
    woa_pred = np.array(woa.predictions.column("predicted"))
    report, figs = forecast_report(
        forecaster,
        data_name="airline (built-in)",
        targets=["Passengers"],
        history=train,
        actual=test,
        predictions={
            "model": bilstm_pred,
            "WOA-BiLSTM": woa_pred,
            # the baselines' forecasts the BiLSTM's run scored, not fitted again
            **{name: bilstm.forecasts[name][:, 0] for name in ("naive", "seasonal_naive")},
        },
        metrics=forecast_metrics,
        time_labels=months,
    )
    report.title = "lstmkit demo"
    intro = Report("").text(
        "Engine check",
        f"Our hand-written BPTT (fused backend) against torch's native LSTM kernel on a "
        f"2-layer BiLSTM: max abs difference of outputs and input gradients {diff:.2e}.",
    )
    report.sections[:0] = intro.sections
    figs["convergence.png"] = figures.convergence(found["history"], "best validation RMSE")
    report.figure(
        "WOA convergence (validation RMSE after each generation)", figs["convergence.png"]
    )
    report.table("Parameters WOA chose", ["parameter", "value"], list(found["best_params"].items()))
    columns = ["rmse", "mae", "mape", "r2"]
    report.table(
        "Comparison on the held-out months (one seed; baselines deterministic)",
        ["model", *columns],
        [[name, *(row[m][0] for m in columns)] for name, row in comparison.summary().items()],
    )
    for section in italy.report.sections:
        section.heading = f"Classifier: {section.heading}"
    report.sections.extend(italy.report.sections)
    figs |= {f"classifier_{name}": png for name, png in italy.figures.items()}

    metrics = {name: runs[0] for name, runs in comparison.runs.items()} | comparison.baselines
    metrics |= {
        f"classifier {k}" if k != "model" else "classifier": v for k, v in class_rows.items()
    }
    predictions = Table(
        ("month", "actual", "BiLSTM", "WOA-BiLSTM"),
        list(zip(months[-TEST_MONTHS:], test, bilstm_pred, woa_pred, strict=True)),
    )
    say(f"done in {time.perf_counter() - began:.0f} s")
    return dict(
        metrics=metrics,
        predictions=predictions,
        models={"forecaster": forecaster, "classifier": classifier},
        draw=lambda: (report, figs),
        payload={"metrics": metrics},
    )


def _timed(job, **options) -> tuple[RunResult, float]:
    """A quiet run of ``job`` and its wall seconds."""
    clock = time.perf_counter()
    result = job(**options, quiet=True)
    return result, time.perf_counter() - clock
