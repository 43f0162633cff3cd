"""``lstmkit.runs.tune`` and ``compare``: WOA-BiLSTM (or another Optuna sampler) tuned on a
validation split of the training part and tested once on the held-out part; the comparison
of LSTM, GRU, BiLSTM, WOA-BiLSTM and random search over seeds beside the baselines."""

import json

import numpy as np

from lstmkit.cli_types import SEED_MAX
from lstmkit.report import figures
from lstmkit.report.html import Report
from lstmkit.report.rundir import jsonable
from lstmkit.runs.common import Interrupted, RunResult, Table, ints, start
from lstmkit.runs.inputs import target_series, train_test
from lstmkit.runs.sequence import test_predictions
from lstmkit.tasks import Forecaster, SequenceClassifier, SequenceRegressor, SequenceTagger

TASK_ESTIMATORS = {
    "forecast": Forecaster,
    "classify": SequenceClassifier,
    "regress": SequenceRegressor,
    "tag": SequenceTagger,
}


def _inputs(p: dict):
    """(estimator class, fixed keywords, fit arguments, test arguments, data name)."""
    if p["task"] not in TASK_ESTIMATORS:
        raise ValueError(f"--task: expected one of {', '.join(TASK_ESTIMATORS)}, got {p['task']!r}")
    estimator = TASK_ESTIMATORS[p["task"]]
    fixed = {} if p["epochs"] is None else {"epochs": p["epochs"]}
    if p["task"] == "forecast":
        if not p["data"]:
            raise ValueError("--data: expected a CSV file or a built-in set for --task forecast")
        _, _, y, test = target_series(p, "error")
        fixed["horizon"] = p["horizon"]
        return estimator, fixed, (y[:-test],), (y[-test:],), p["data"]
    if not p["train_path"]:
        raise ValueError(
            f"--train: expected a .ts/.npz file or a built-in set for --task {p['task']}"
        )
    X_train, y_train, X_test, y_test = train_test(p["train_path"], p["test_path"], p["task"])
    return estimator, fixed, (X_train, y_train), (X_test, y_test), p["train_path"]


def _tested(task: str, model, train, test) -> tuple[dict, Table]:
    """The model's test metrics with the task's baselines (as in metrics.json) and
    predictions.csv of the held-out part: for a forecast (step, actual, predicted), the
    forecast the metrics scored; else as the sequence runs write it."""
    if task != "forecast":
        return model.evaluate(*test, train=train), test_predictions(model, *test)
    (actual,) = test
    metrics, forecasts = model.evaluate(actual, return_forecasts=True)
    pred, truth = forecasts["model"], np.asarray(actual).reshape(len(actual), -1)
    rows = [(i + 1, truth[i, 0], pred[i, 0]) for i in range(len(actual))]
    return metrics, Table(("step", "actual", "predicted"), rows)


def tune(*, out=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit tune`` command in one call: ``tune(data="airline", whales=6)``."""
    import optuna

    from lstmkit.tuning.compare import bilstm_space
    from lstmkit.tuning.space import SearchSpace
    from lstmkit.tuning.tune import tune as run_tune

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our summary; failures in tuning.json
    run = start("tune", options, out, None, quiet, say)
    p = run.options
    estimator, fixed, train, test, name = _inputs(p)
    fixed |= {"cell": "lstm", "bidirectional": True, "seed": p["seed"], "progress": False}
    space = SearchSpace({k: v for k, v in bilstm_space(p["task"]).items() if k not in fixed})
    with run.opened():
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
        metrics, predictions = _tested(p["task"], model, train, test)
        tuning = {
            "sampler": p["sampler"],
            "metric": found.metric,
            "direction": found.direction,
            "best_value": found.best_value,
            "best_params": found.best_params,
            "history": found.history,
            "trials": found.counts,
        }

        def draw():
            report = Report(f"lstmkit tune: {name}")
            shown = [[k, v] for k, v in tuning.items() if k not in ("best_params", "history")]
            report.table("Search", ["item", "value"], shown)
            chosen = list(found.best_params.items())
            report.table("Parameters chosen", ["parameter", "value"], chosen)
            png = figures.convergence(found.history, f"best validation {found.metric}")
            report.figure("Convergence (best validation score after each generation)", png)
            report.metrics("Test metrics of the refitted model beside the baselines", metrics)
            return report, {"convergence.png": png}

        best = f"{found.metric} {found.best_value:.4g}"
        run.say(f"{p['sampler']}: best validation {best} with {found.best_params}")
        run.say_metrics(metrics, ("rmse", "mae", "r2", "accuracy", "f1"), prefix="test ")
        return run.finished(
            metrics=metrics,
            predictions=predictions,
            models={"model": model},
            draw=draw,
            files={"tuning.json": json.dumps(jsonable(tuning), indent=1)},
            payload={"metrics": metrics, "tuning": tuning},
        )


def compare(*, out=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit compare`` command in one call: ``compare(data="airline", epochs=60)``."""
    import optuna

    from lstmkit.tuning.compare import HEADLINE
    from lstmkit.tuning.compare import compare as run_compare

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    run = start("compare", options, out, None, quiet, say)
    p = run.options
    estimator, fixed, train, test, name = _inputs(p)
    seeds = ints(p["seeds"], "--seeds", 0, SEED_MAX)
    with run.opened():
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
            progress=None if quiet else run.say,
        )
        table = result.to_markdown()
        summary = result.summary()
        metrics = {
            row: {k: mean for k, (mean, _) in values.items()}
            | {f"{k}_std": std for k, (_, std) in values.items()}
            for row, values in summary.items()
        }
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
        run.say(table)
        return run.finished(
            metrics=metrics,
            draw=lambda: (report, {}),
            files={
                "comparison.md": table + "\n",
                "tuning.json": json.dumps(jsonable(result.tuned), indent=1),
            },
            payload={"metrics": metrics},
        )


def _pm_cell(value) -> str:
    if value is None:
        return "–"
    mean, std = value
    return f"{mean:.4g} ± {std:.2g}" if std else f"{mean:.4g}"
