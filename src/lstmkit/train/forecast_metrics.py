r"""Forecast accuracy as the forecasting competitions score it (M4 conventions), in numpy.

For one series with horizon values :math:`y_1 … y_h`, point forecasts :math:`f_t`, an
interval :math:`[l_t, u_t]`, quantile forecasts :math:`q_{t,j}` at levels
:math:`\tau_1 … \tau_Q` and the in-sample (training) values :math:`x_1 … x_n`,
:func:`smape` (0 … 200, as in M4), :func:`mase`, :func:`coverage` (a fraction),
:func:`msis`, :func:`pinball` and :func:`crps` (the quantile approximation of the CRPS)
each give their formula in their docstring.

The seasonal scale is the in-sample mean absolute error of the seasonal naive forecast,

.. math::

    s = \frac{1}{n - m}\sum_{t=m+1}^{n} |x_t - x_{t-m}|,

with :math:`m` the season. Where the in-sample series is too short for the season
(:math:`n \le m`) the lag falls back to :math:`m = 1`, as GluonTS's ``seasonal_error``
does. Beyond that no value is substituted, as in the M4 organisers' own code
(``ML_benchmarks.py``: ``np.mean(...) / masep``) and in ``utilsforecast.losses.mase``: a
single in-sample value leaves :math:`s` undefined and the scaled metrics are NaN; a
constant in-sample series has :math:`s = 0` and they are ``inf`` (NaN if the error is 0
too). Why not a stand-in scale such as AutoGluon's 1.0: it would turn that series' scaled
error into an unscaled one in the data's units and mix it silently into the mean over
series; a NaN or ``inf`` in the panel mean says instead that a series could not be scaled.

:func:`panel_metrics` scores a panel the M-competition way: each metric per series, then
the plain mean over series.

Departures and correspondences, for whoever compares numbers:

- ``smape`` is on the 0 … 200 scale of the M4 paper and its R code; ``utilsforecast``'s
  ``smape`` is :math:`\frac{1}{h}\sum_t |y_t - f_t| / (|y_t| + |f_t|)` (0 … 1, a factor
  200 smaller); :mod:`lstmkit.train.metrics` reports the fraction 0 … 2.
- ``msis`` with :math:`\alpha = 0.05` is M4's MSIS of 95 % intervals; the numerator is
  ``utilsforecast.losses.winkler_score`` at level :math:`100(1 - \alpha)`.
- ``crps`` is the usual quantile approximation of
  :math:`\int_0^1 2\rho_\tau(y - F^{-1}(\tau))\,d\tau`, as GluonTS's weighted quantile
  loss and ``utilsforecast.losses.mqloss`` compute it: ``crps`` = 2 × ``mqloss``, and with
  an in-sample series 2 × ``scaled_mqloss`` (the M5 uncertainty scaling).
  ``utilsforecast.losses.scaled_crps`` divides by the mean :math:`|y_t|` of the horizon
  instead (Rangapuram et al. 2021): that is ``crps`` without ``insample`` over
  ``mean(|actual|)``.
"""

import numpy as np


def _vector(values, name: str, minimum: int = 1) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if array.size < minimum:
        raise ValueError(f"{name}: expected at least {minimum} value(s), got {array.size}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite numbers, got NaN or infinity")
    return array


def _like(values, actual: np.ndarray, name: str, of: str = "actual") -> np.ndarray:
    array = _vector(values, name)
    if array.shape != actual.shape:
        raise ValueError(f"{name}: expected {actual.size} values (as {of}), got {array.size}")
    return array


def positive_int(value, name: str) -> int:
    """``value`` as an int >= 1 (not a bool), else a ValueError naming ``name``."""
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _alpha(alpha) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a number in (0, 1), got {alpha!r}")
    return float(alpha)


def _levels(levels, count: int) -> np.ndarray:
    taus = np.asarray(levels, dtype=np.float64).reshape(-1)
    if taus.size != count:
        raise ValueError(
            f"levels: expected {count} quantile levels (one a column), got {taus.size}"
        )
    if not ((taus > 0) & (taus < 1)).all():
        raise ValueError(f"levels: expected quantile levels in (0, 1), got {taus.tolist()}")
    return taus


def _quantiles(values, actual: np.ndarray, name: str = "quantile_forecasts") -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != actual.size:
        raise ValueError(f"{name}: expected shape ({actual.size}, Q), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite numbers, got NaN or infinity")
    return array


def _divide(value: float, scale: float) -> float:
    """value / scale with numpy's semantics: inf for x/0, NaN for 0/0 or a NaN scale."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(value) / np.float64(scale))


def seasonal_scale(insample, season: int) -> float:
    r"""The MASE denominator :math:`s = \frac{1}{n-m}\sum_{t>m} |x_t - x_{t-m}|` of the
    in-sample series ``insample`` (n values) at lag ``season`` (m); lag 1 when
    :math:`n \le m`; NaN for a single value (see the module docstring)."""
    x = _vector(insample, "insample")
    m = positive_int(season, "season")
    lag = m if x.size > m else 1
    if x.size <= lag:
        return float("nan")
    return float(np.mean(np.abs(x[lag:] - x[:-lag])))


def smape(actual, forecast) -> float:
    r""":math:`\frac{1}{h}\sum_t 200\,|y_t - f_t| / (|y_t| + |f_t|)`, 0 … 200 (M4);
    a point with :math:`y_t = f_t = 0` counts 0."""
    y = _vector(actual, "actual")
    f = _like(forecast, y, "forecast")
    denominator = np.abs(y) + np.abs(f)
    safe = np.where(denominator == 0, 1.0, denominator)
    return float(np.mean(np.where(denominator == 0, 0.0, 200.0 * np.abs(y - f) / safe)))


def mase(actual, forecast, insample, season: int) -> float:
    r""":math:`\frac{1}{h}\sum_t |y_t - f_t| \,/\, s`, with :math:`s` the
    :func:`seasonal_scale` of ``insample`` at lag ``season``."""
    y = _vector(actual, "actual")
    f = _like(forecast, y, "forecast")
    return _divide(np.mean(np.abs(y - f)), seasonal_scale(insample, season))


def coverage(actual, lower, upper) -> float:
    r""":math:`\frac{1}{h}\sum_t \mathbb{1}[l_t \le y_t \le u_t]`: the share of the
    actual values inside their interval, bounds included."""
    y = _vector(actual, "actual")
    lo, hi = _like(lower, y, "lower"), _like(upper, y, "upper")
    return float(np.mean((lo <= y) & (y <= hi)))


def msis(actual, lower, upper, insample, season: int, alpha: float = 0.2) -> float:
    r"""M4's mean scaled interval score of the :math:`100(1-\alpha)\,\%` interval
    :math:`[l_t, u_t]`:

    .. math::

        \frac{1}{h}\sum_t \Big[(u_t - l_t)
        + \frac{2}{\alpha}(l_t - y_t)\,\mathbb{1}[y_t < l_t]
        + \frac{2}{\alpha}(y_t - u_t)\,\mathbb{1}[y_t > u_t]\Big] \Big/ s

    with :math:`s` the :func:`seasonal_scale` (MASE's). M4 scored 95 % intervals
    (``alpha=0.05``); the default 0.2 matches 80 % intervals."""
    y = _vector(actual, "actual")
    lo, hi = _like(lower, y, "lower"), _like(upper, y, "upper")
    a = _alpha(alpha)
    score = (hi - lo) + 2 / a * (lo - y) * (y < lo) + 2 / a * (y - hi) * (y > hi)
    return _divide(np.mean(score), seasonal_scale(insample, season))


def pinball(actual, quantile_forecasts, levels) -> float:
    r"""The mean quantile (pinball) loss over points and levels,
    :math:`\frac{1}{hQ}\sum_t\sum_j \rho_{\tau_j}(y_t - q_{t,j})`,
    :math:`\rho_\tau(e) = \max(\tau e, (\tau - 1)e)`.

    ======================  ========  ==============================================
    argument                shape     meaning
    ======================  ========  ==============================================
    ``actual``              (h,)      the horizon's values
    ``quantile_forecasts``  (h, Q)    column j forecasts quantile ``levels[j]``
    ``levels``              (Q,)      quantile levels in (0, 1)
    ======================  ========  ==============================================
    """
    y = _vector(actual, "actual")
    q = _quantiles(quantile_forecasts, y)
    taus = _levels(levels, q.shape[1])
    error = y[:, None] - q  # (h, Q)
    return float(np.mean(np.maximum(taus * error, (taus - 1) * error)))


def crps(actual, quantile_forecasts, levels, insample=None, season: int = 1) -> float:
    r"""The quantile approximation of the continuous ranked probability score,
    :math:`\mathrm{CRPS} \approx \frac{2}{Q}\sum_j \frac{1}{h}\sum_t
    \rho_{\tau_j}(y_t - q_{t,j}) = 2 \cdot` :func:`pinball` (GluonTS's weighted quantile
    loss, ``2 * utilsforecast.losses.mqloss``); exact in the limit of many evenly spaced
    levels. With ``insample`` it is divided by the :func:`seasonal_scale` at lag
    ``season``, like MASE. Shapes as in :func:`pinball`."""
    value = 2.0 * pinball(actual, quantile_forecasts, levels)
    if insample is None:
        return value
    return _divide(value, seasonal_scale(insample, season))


def _series_list(values, name: str, count: int | None) -> list:
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype != object:
        raise ValueError(f"{name}: expected a list of per-series arrays, got one 1-D array")
    values = list(values)
    if count is not None and len(values) != count:
        raise ValueError(f"{name}: expected {count} series (as actuals), got {len(values)}")
    return values


def panel_metrics(
    actuals,
    forecasts,
    insamples,
    season: int,
    *,
    lower=None,
    upper=None,
    quantiles=None,
    levels=None,
    alpha: float = 0.2,
) -> dict[str, float]:
    r"""The metrics of a panel of N series, each the mean over series of the per-series
    value (the M-competition convention: every series weighs the same).

    ==============  ===================  ===============================================
    argument        each of N entries    meaning
    ==============  ===================  ===============================================
    ``actuals``     (h_i,)               series i's horizon values
    ``forecasts``   (h_i,)               its point forecasts
    ``insamples``   (n_i,)               its in-sample values (the MASE/MSIS scale)
    ``lower``       (h_i,)               lower interval bounds (with ``upper``)
    ``upper``       (h_i,)               upper interval bounds (with ``lower``)
    ``quantiles``   (h_i, Q)             quantile forecasts at ``levels`` (Q,)
    ==============  ===================  ===============================================

    Returns ``{"smape", "mase"}``, plus ``"coverage"`` and ``"msis"`` (at ``alpha``) when
    ``lower``/``upper`` are given, plus ``"crps"`` (scaled like MASE) with ``quantiles``.
    A series whose seasonal scale is undefined or 0 makes its scaled metrics NaN or
    ``inf``, and so the panel's (module docstring)."""
    actuals = [
        _vector(a, f"actuals[{i}]") for i, a in enumerate(_series_list(actuals, "actuals", None))
    ]
    n = len(actuals)
    if n == 0:
        raise ValueError("actuals: expected at least one series, got none")
    forecasts = _series_list(forecasts, "forecasts", n)
    insamples = _series_list(insamples, "insamples", n)
    season = positive_int(season, "season")
    if (lower is None) != (upper is None):
        raise ValueError("lower/upper: expected both interval bounds or neither, got one")
    if (quantiles is None) != (levels is None):
        raise ValueError("quantiles/levels: expected both or neither, got one")
    if lower is not None:
        lower, upper = _series_list(lower, "lower", n), _series_list(upper, "upper", n)
        alpha = _alpha(alpha)
    if quantiles is not None:
        quantiles = _series_list(quantiles, "quantiles", n)
    per_series = []
    for i, y in enumerate(actuals):
        f = _like(forecasts[i], y, f"forecasts[{i}]", f"actuals[{i}]")
        x = _vector(insamples[i], f"insamples[{i}]")
        row = {"smape": smape(y, f), "mase": mase(y, f, x, season)}
        if lower is not None:
            lo = _like(lower[i], y, f"lower[{i}]", f"actuals[{i}]")
            hi = _like(upper[i], y, f"upper[{i}]", f"actuals[{i}]")
            row |= {"coverage": coverage(y, lo, hi), "msis": msis(y, lo, hi, x, season, alpha)}
        if quantiles is not None:
            q = _quantiles(quantiles[i], y, f"quantiles[{i}]")
            row["crps"] = crps(y, q, levels, x, season)
        per_series.append(row)
    return {name: float(np.mean([row[name] for row in per_series])) for name in per_series[0]}
