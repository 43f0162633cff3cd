"""``lstmkit.runs.predict``, ``evaluate`` and ``explain``: a saved model (its folder, or a
run directory for its ``model/``) put to work on new data, measured on labelled data, or
opened up: the gate activations of one sample."""

import io

import numpy as np

from lstmkit.data import read_csv, read_poems
from lstmkit.messages import shown
from lstmkit.report.html import Report
from lstmkit.report.tasks import explain_report
from lstmkit.runs.common import RunResult, Table, names, start
from lstmkit.runs.inputs import load_model, read_file, read_labelled, refuse_panel
from lstmkit.tasks import Forecaster, TextGenerator


def predict(*, out=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit predict`` command in one call: ``predict(model_dir="runs/air", steps=12)``:
    a forecast past the end of the model's series (a panel model: of every series, with its
    quantiles), or labels/values for the sequences in ``data``."""
    run = start("predict", options, out, None, quiet, say)
    p = run.options
    model = load_model(p["model_dir"])
    kind = type(model).__name__
    if isinstance(model, Forecaster) and p["data"]:
        raise ValueError(
            f"--data: a {kind} forecasts past the end of the series it was trained on; "
            f"expected no --data (--steps sets how far), got {shown(p['data'])}"
        )
    if not isinstance(model, Forecaster) and p["steps"] is not None:
        raise ValueError(f"--steps: for a Forecaster; a {kind} predicts the sequences in --data")
    if isinstance(model, Forecaster) and model.panel_ is not None:
        every = model.panel_quantiles(p["steps"])  # (n_series, steps, Q)
        median = model.quantiles_.index(0.5)
        rows = [
            (name, t + 1, every[i, t, median], *every[i, t])
            for i, name in enumerate(model.panel_.ids)
            for t in range(every.shape[1])
        ]
        header = ("id", "step", "predicted", *(f"q{q:g}" for q in model.quantiles_))
        pred = {str(name): every[i, :, median] for i, name in enumerate(model.panel_.ids)}
    elif isinstance(model, Forecaster):
        pred = model.predict(p["steps"])
        rows = [(i + 1, *np.atleast_1d(v)) for i, v in enumerate(pred)]
        header = ("step", *(f"predicted_{k}" for k in range(len(rows[0]) - 1)))
    elif isinstance(model, TextGenerator):
        raise ValueError("--model: a TextGenerator writes poems: use lstmkit generate --model")
    else:
        if not p["data"]:
            raise ValueError("--data: expected a .ts or .npz file of sequences, got none")
        X = read_file(p["data"], "--data")[0]
        pred = model.predict(X)
        rows = [(i, v) for i, v in enumerate(pred)]
        header = ("index", "predicted")
    with run.opened():
        run.say(f"{len(rows)} predictions written")
        return run.finished(predictions=Table(header, rows), payload={"predictions": pred})


def evaluate(*, out=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit evaluate`` command in one call:
    ``evaluate(model_dir="runs/italy", data="ItalyPowerDemand_TEST.ts")``."""
    run = start("evaluate", options, out, None, quiet, say)
    p = run.options
    model = load_model(p["model_dir"])
    refuse_panel(model, "evaluate")
    if isinstance(model, Forecaster):
        frame = read_csv(p["data"])
        actual = frame.select(names(p["target"]) or list(frame.columns))
        metrics = model.evaluate(actual)
    elif isinstance(model, TextGenerator):
        metrics = {"model": {"perplexity": model.perplexity(read_poems(p["data"]))["model"]}}
    else:
        X, y = read_labelled(p["data"], "--data")
        train = read_labelled(p["train"], "--train") if p["train"] else None
        metrics = model.evaluate(X, y, train=train)
    with run.opened():
        report = Report(f"lstmkit evaluate: {p['model_dir']} on {p['data']}")
        run.say_metrics(metrics, ("rmse", "mae", "r2", "accuracy", "f1", "perplexity"))
        return run.finished(
            metrics=metrics,
            draw=lambda: (report.metrics("Metrics", metrics), {}),
            payload={"metrics": metrics},
        )


def explain(*, out=None, quiet=False, say=None, **options) -> RunResult:
    """The ``lstmkit explain`` command in one call: ``explain(model_dir="runs/air")``: every
    gate at every step, layer and direction of one sample, as gates.npz (arrays
    "<layer>/<gate>", each (T, H)), gates.png and the report."""
    run = start("explain", options, out, None, quiet, say)
    p = run.options
    model = load_model(p["model_dir"])
    refuse_panel(model, "explain")
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
        X = read_file(p["data"], "--data")[0]
        if p["sample"] >= len(X):
            raise ValueError(
                f"--sample: expected an index below {len(X)} (sequences), got {p['sample']}"
            )
        gates = model.gate_activations(X[p["sample"]])
        what = f"sequence {p['sample']} of {p['data']}"
    with run.opened():
        arrays = {f"{layer}/{gate}": v for layer, g in gates.items() for gate, v in g.items()}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        summary = {
            name: {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
            for name, v in arrays.items()
        }
        run.say(f"gates of {what}:")
        for name, stats in summary.items():
            low, high = stats["min"], stats["max"]
            run.say(f"  {name:14} mean {stats['mean']:+.3f}  min {low:+.3f}  max {high:+.3f}")
        return run.finished(
            draw=lambda: explain_report(model, gates, what),
            files={"gates.npz": buffer.getvalue()},
            payload={"gates": summary},
        )
