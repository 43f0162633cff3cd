"""``lstmkit.runs.classify``, ``regress`` and ``tag``: train a sequence model on
``train_path`` and test it on ``test_path`` (or a built-in set's own split) beside the
baselines its ``evaluate`` fits: the majority class or the training mean, and with the
``classify`` extra MiniRocket and 1-NN DTW (:mod:`lstmkit.tasks.baselines`)."""

import numpy as np

from lstmkit.report.tasks import sequence_report
from lstmkit.runs.common import RunResult, Table, estimator_options, ints, start
from lstmkit.runs.inputs import train_test
from lstmkit.tasks import SequenceClassifier, SequenceRegressor, SequenceTagger


def classify(*, out=None, resume=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit classify`` command in one call:
    ``classify(train_path="italy_power_demand")``."""
    run = start("classify", options, out, resume, quiet, say)
    p = run.options
    weight = None if p["class_weight"] == "none" else p["class_weight"]
    return _run_sequence(run, SequenceClassifier, class_weight=weight, restarts=p["restarts"])


def regress(*, out=None, resume=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit regress`` command in one call: ``regress(train_path=..., test_path=...)``."""
    run = start("regress", options, out, resume, quiet, say)
    return _run_sequence(run, SequenceRegressor, output=run.options["output"])


def tag(*, out=None, resume=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit tag`` command in one call: ``tag(train_path=..., test_path=...)``."""
    run = start("tag", options, out, resume, quiet, say)
    return _run_sequence(run, SequenceTagger)


def _run_sequence(run, cls, **task_options) -> RunResult:
    p, kind = run.options, run.command
    X_train, y_train, X_test, y_test = train_test(p["train_path"], p["test_path"], kind)
    with run.opened():
        model = cls(**task_options, **_sequence_options(p, run))
        model.fit(X_train, y_train)
        run.stop_if_interrupted(model)
        metrics = model.evaluate(X_test, y_test, train=(X_train, y_train))

        def draw():
            return sequence_report(
                model,
                kind=kind,
                data_name=p["train_path"],
                n_train=len(X_train),
                n_test=len(X_test),
                metrics=metrics,
                sample=X_test[0],
            )

        keys = (
            ("rmse", "mae", "r2")
            if kind == "regress"
            else ("accuracy", "f1", "precision", "recall")
        )
        run.say(f"{kind}: {len(X_train)} training sequences, {len(X_test)} test sequences")
        run.say_metrics(metrics, keys, width=10)
        return run.finished(
            metrics=metrics,
            predictions=test_predictions(model, X_test, y_test),
            models={"model": model},
            draw=draw,
            payload={"metrics": metrics},
        )


def test_predictions(model, X_test, y_test) -> Table:
    """predictions.csv of a test part: (index, actual, predicted) per sequence, or (index,
    step, actual, predicted) per step (tagging, per-step regression)."""
    pairs = enumerate(zip(y_test, model.predict(X_test), strict=True))
    if isinstance(model, SequenceTagger) or model.get_params().get("output") == "sequence":
        rows = [
            (i, t, a, b)
            for i, (ya, yp) in pairs
            for t, (a, b) in enumerate(zip(np.asarray(ya), yp, strict=True))
        ]
        return Table(("index", "step", "actual", "predicted"), rows)
    return Table(("index", "actual", "predicted"), [(i, a, b) for i, (a, b) in pairs])


def _none_or(text, option: str, parse):
    """ "auto" for an absent option, the parsed value, or None for 'none'."""
    if text is None:
        return "auto"
    if isinstance(text, str) and text.strip().lower() == "none":
        return None
    return parse(text, option)


def _one_int(text, option: str) -> int:
    values = ints(text, option)
    if len(values) != 1:
        raise ValueError(f"{option}: expected one integer or 'none', got {text!r}")
    return values[0]


def _sequence_options(p: dict, run) -> dict:
    """The sequence estimator's keywords: the model's, the recipe's (docs/classification.md)."""
    options = estimator_options(p, run) | {"pooling": p["pooling"]}
    filters = _none_or(p["conv_filters"], "--conv-filters", ints)
    options["conv_filters"] = () if filters is None else filters
    options["rnn_steps"] = _none_or(p["rnn_steps"], "--rnn-steps", _one_int)
    options["conv_steps"] = _none_or(p["conv_steps"], "--conv-steps", _one_int)
    options |= {k: p[k] for k in ("normalize", "n_models", "schedule", "validation")}
    if p["batch_size"] is not None:
        options["batch_size"] = p["batch_size"]
    return options
