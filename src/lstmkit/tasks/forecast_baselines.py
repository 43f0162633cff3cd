r"""The statistical baselines beside every forecast score: what a forecaster would try first.

With the ``forecast`` extra installed (``pip install "lstmkit[forecast]"``, which brings
statsforecast), :func:`statistical_forecasts` runs statsforecast's models on a panel of
series and returns their point forecasts and prediction intervals:

=================  =======================================================================
name               what runs (statsforecast, its defaults unless said; m = ``season``)
=================  =======================================================================
``AutoETS``        ``AutoETS(season_length=m)``: the exponential-smoothing state-space
                   model chosen by AICc (Hyndman et al. 2008)
``AutoTheta``      ``AutoTheta(season_length=m)``: the best of the Theta variants
                   (Fiorucci et al. 2016), the M3 winner's family
``AutoARIMA``      ``AutoARIMA(season_length=m, approximation=…)``: Hyndman–Khandakar
                   stepwise search; by default its search approximates the likelihood
                   (CSS) when m > 12 or a series is longer than 150 points, as R's
                   ``forecast::auto.arima`` does (its final model is fitted exactly):
                   on a 2,000-point hourly series 9.5 s instead of 162 s
``Naive``          ``Naive()``: the last value, random-walk intervals
``SeasonalNaive``  ``SeasonalNaive(season_length=m)``: the value one season back
=================  =======================================================================

All run through ``StatsForecast(models=[model], freq=1, n_jobs=n_jobs)`` on one long
frame (``unique_id`` the series' position, integer ``ds`` 0, 1, …), one model at a time
so that each gets its own wall and CPU time; intervals are statsforecast's own at
``level=[level]``. The numbers are those of statsforecast run directly on the same frame.

Real panels hold series a model cannot fit: AutoETS and AutoTheta raise
``NotImplementedError("tiny datasets")`` on a few points, SeasonalNaive returns NaN when
the history is shorter than a season. Such a series gets statsforecast's ``Naive``
forecast and intervals instead, and never silently: each model's entry counts them
(``"fallbacks"``) and says why for each (``"fallback_reasons"``, series index → the
exception or ``"non-finite forecast"``). A single-value series has no residual to size
Naive's interval: statsforecast gives it width 0. The mechanism is statsforecast's own
``fallback_model`` hook, given a stand-in that returns NaN, so a model that raises and one
that returns NaN end up in the same place and the other series of the batch are kept.

statsforecast's numba code can reset the OpenMP thread count that torch reads (as aeon's
does, :mod:`lstmkit.tasks.baselines`): torch's setting is restored afterwards.
"""

import importlib.util
import os
import time
import warnings

import numpy as np

from lstmkit.train.forecast_metrics import positive_int
from lstmkit.train.threads import torch_threads

MODELS = ("AutoETS", "AutoTheta", "AutoARIMA", "Naive", "SeasonalNaive")
DEFAULT_MODELS = ("AutoETS", "AutoTheta", "AutoARIMA")
APPROXIMATE_BEYOND = 150  # points: AutoARIMA's search approximates beyond (R's rule)
MISSING = 'the statistical baselines need statsforecast: pip install "lstmkit[forecast]"'


def available() -> bool:
    """True when statsforecast (the ``forecast`` extra) is installed."""
    return importlib.util.find_spec("statsforecast") is not None


class _NaNForecast:
    """statsforecast's ``fallback_model`` for a series whose model raised: NaN forecasts
    and bounds, which :func:`statistical_forecasts` then replaces with Naive's and counts."""

    def forecast(self, y, h, X=None, X_future=None, level=(), fitted=False):
        nan = np.full(h, np.nan)
        bounds = {f"{side}-{lv}": nan for side in ("lo", "hi") for lv in level}
        return {"mean": nan, **bounds}


def _series(series) -> list[np.ndarray]:
    if isinstance(series, np.ndarray) and series.ndim == 1 and series.dtype != object:
        raise ValueError("series: expected a list of 1-D arrays, got one 1-D array")
    out = []
    for i, values in enumerate(series):
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(
                f"series[{i}]: expected a non-empty 1-D array, got shape {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"series[{i}]: expected finite numbers, got NaN or infinity")
        out.append(array)
    if not out:
        raise ValueError("series: expected at least one series, got none")
    return out


def _model(name: str, season: int, approximation: bool = False):
    from statsforecast import models

    if name == "Naive":
        return models.Naive()
    if name == "AutoARIMA":
        return models.AutoARIMA(season_length=season, approximation=approximation)
    return getattr(models, name)(season_length=season)


def _long_frame(series: list[np.ndarray]):
    import pandas as pd

    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.arange(len(series)), [len(s) for s in series]),
            "ds": np.concatenate([np.arange(len(s)) for s in series]),
            "y": np.concatenate(series),
        }
    )


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (statsforecast's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _failure(model, y: np.ndarray, horizon: int, level) -> str:
    """Why ``model`` gave no forecast for ``y``: the exception it raises, or NaN."""
    try:
        with warnings.catch_warnings():  # already shown by the run being explained
            warnings.simplefilter("ignore")
            model.forecast(y=y, h=horizon, level=[level])
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "non-finite forecast"


def _run_model(name, frame, series, horizon, season, level, n_jobs, approximation) -> dict:
    from statsforecast import StatsForecast
    from statsforecast.models import Naive

    n = len(series)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    engine = StatsForecast(
        models=[_model(name, season, approximation)],
        freq=1,
        n_jobs=n_jobs,
        fallback_model=_NaNForecast(),
    )
    out = engine.forecast(df=frame, h=horizon, level=[level])
    lo, hi = f"lo-{level}", f"hi-{level}"  # statsforecast's keys and column suffixes
    columns = [name, f"{name}-{lo}", f"{name}-{hi}"]
    ids = out["unique_id"].to_numpy().reshape(n, horizon)[:, 0]
    block = np.empty((n, horizon, 3))  # (series, step, point/lower/upper)
    block[ids] = out[columns].to_numpy(np.float64).reshape(n, horizon, 3)
    failed = np.flatnonzero(~np.isfinite(block).all(axis=(1, 2)))
    for i in failed:
        naive = Naive().forecast(y=series[i], h=horizon, level=[level])
        block[i] = np.stack([naive["mean"], naive[lo], naive[hi]], axis=1)
        if not np.isfinite(block[i]).all():
            raise ValueError(
                f"series[{i}]: {name} failed and its Naive fallback gave non-finite values"
            )
    seconds, cpu_seconds = time.perf_counter() - wall, _cpu_seconds() - cpu
    reasons = {
        int(i): _failure(_model(name, season, approximation), series[i], horizon, level)
        for i in failed
    }
    return {
        "point": [block[i, :, 0].copy() for i in range(n)],
        "lower": [block[i, :, 1].copy() for i in range(n)],
        "upper": [block[i, :, 2].copy() for i in range(n)],
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "fallbacks": len(failed),
        "fallback_reasons": reasons,
    }


def statistical_forecasts(
    series,
    horizon: int,
    season: int,
    *,
    level: float = 80,
    models=DEFAULT_MODELS,
    n_jobs: int = 1,
    approximation: bool | None = None,
) -> dict[str, dict]:
    """Forecasts of statsforecast's models for each of N series, in the input order.

    ``series``: N 1-D arrays (the histories, any lengths); ``horizon``: steps to forecast;
    ``season``: the season length m (12 monthly, 4 quarterly, 1 none); ``level``: the
    prediction intervals' coverage in percent; ``models``: names from :data:`MODELS`;
    ``n_jobs``: statsforecast's worker processes (-1: all cores); ``approximation``:
    AutoARIMA's approximate search, None for R's rule (m > 12 or a series longer than 150
    points; :data:`APPROXIMATE_BEYOND`), False for statsforecast's default (exact).

    Returns ``{model name: entry}``, each entry with

    ====================  ===================================================================
    key                   value
    ====================  ===================================================================
    ``point``             N arrays (horizon,): the point forecasts
    ``lower``, ``upper``  N arrays (horizon,): the ``level`` % prediction interval
    ``seconds``           wall time of the model over the panel, fallbacks included
    ``cpu_seconds``       CPU time of this process and statsforecast's workers over the same
    ``fallbacks``         how many series got the Naive forecast instead (module docstring)
    ``fallback_reasons``  {series index: why}, for those series
    ====================  ===================================================================

    Raises ImportError with the install line when statsforecast is missing."""
    values = _series(series)
    horizon = positive_int(horizon, "horizon")
    season = positive_int(season, "season")
    if not 0 < level < 100:
        raise ValueError(f"level: expected a percentage in (0, 100), got {level!r}")
    models = [models] if isinstance(models, str) else list(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models or len(set(models)) != len(models):
        raise ValueError(
            f"models: expected distinct names from {', '.join(MODELS)}; got {models!r}"
        )
    try:
        import statsforecast  # noqa: F401
    except ImportError as error:
        raise ImportError(MISSING) from error
    if approximation is None:
        approximation = season > 12 or max(len(v) for v in values) > APPROXIMATE_BEYOND
    with torch_threads():
        frame = _long_frame(values)
        return {
            name: _run_model(name, frame, values, horizon, season, level, n_jobs, approximation)
            for name in models
        }
