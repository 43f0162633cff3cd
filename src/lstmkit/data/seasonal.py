r"""Classical multiplicative seasonal decomposition, with the seasonality test that gates it.

The step the M4 competition's statistical benchmarks (and the Theta method) take before
forecasting seasonal data, used by the global forecaster to hand its network
deseasonalised series (:mod:`lstmkit.tasks.global_forecast`):

* **Test** (90 % one-sided, Makridakis et al. 2020, the M4 benchmarks): with
  :math:`r_k` the sample autocorrelation at lag :math:`k` of :math:`n` points, the
  series is called seasonal with period :math:`m` when

  .. math:: |r_m| > 1.645 \sqrt{\frac{1 + 2 \sum_{k=1}^{m-1} r_k^2}{n}},

  and only when :math:`m > 1`, :math:`n \ge 3m` and every value is positive (the
  decomposition is multiplicative).
* **Indices.** The centred moving average of order :math:`m` (a :math:`2 \times m`
  average when :math:`m` is even) estimates the trend-cycle :math:`T_t`; the ratios
  :math:`y_t / T_t` averaged over the points of each phase :math:`p = t \bmod m` give
  :math:`\tilde S_p`, normalised to mean 1: :math:`S_p = \tilde S_p / \frac1m\sum_q \tilde S_q`.
* **Use.** The forecaster divides :math:`y_t` by :math:`S_{t \bmod m}` (:math:`t` counted
  from the series' first point) and multiplies its forecasts of :math:`t > n` back by the
  same indices. Positive factors keep quantiles quantiles.
"""

import numpy as np

TEST_CRITICAL = 1.645  # one-sided 90 %


def autocorrelation(values: np.ndarray, lags: int) -> np.ndarray:
    """Sample autocorrelations r_1 … r_lags (the biased estimator, as R's ``acf``)."""
    centred = values - values.mean()
    denominator = float(centred @ centred)
    if denominator == 0:
        return np.zeros(lags)
    return np.array([centred[k:] @ centred[:-k] / denominator for k in range(1, lags + 1)])


def is_seasonal(values: np.ndarray, season: int) -> bool:
    """The module's 90 % autocorrelation test (False when season < 2 or n < 3·season)."""
    n = len(values)
    if season < 2 or n < 3 * season:
        return False
    r = autocorrelation(np.asarray(values, dtype=np.float64), season)
    limit = TEST_CRITICAL * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / n)
    return bool(abs(r[-1]) > limit)


def seasonal_indices(values: np.ndarray, season: int) -> np.ndarray:
    """The indices S_0 … S_{m-1} (mean 1) of the module docstring, phase p = t mod m with
    t counted from the first point. Expects at least 2·season points, all positive."""
    values = np.asarray(values, dtype=np.float64)
    m, n = season, len(values)
    if m < 2 or n < 2 * m or not (values > 0).all():
        raise ValueError(
            f"values: expected at least {2 * m} positive points for season {m}, got {n} "
            f"(smallest {values.min() if n else 'none'})"
        )
    weights = np.ones(m + 1 if m % 2 == 0 else m)
    if m % 2 == 0:
        weights[[0, -1]] = 0.5
    weights /= m
    trend = np.convolve(values, weights, mode="valid")  # T_t for t = half … n-1-half
    half = len(weights) // 2
    t = np.arange(half, half + len(trend))
    ratios = values[t] / trend
    raw = np.bincount(t % m, weights=ratios, minlength=m) / np.bincount(t % m, minlength=m)
    return raw / raw.mean()


def deseasonalising_factors(values: np.ndarray, season: int) -> np.ndarray:
    """S (season,) when :func:`is_seasonal` says so and every value is positive, else
    ones: what a series is divided by, phase by phase."""
    values = np.asarray(values, dtype=np.float64)
    if (values > 0).all() and is_seasonal(values, season):
        return seasonal_indices(values, season)
    return np.ones(max(season, 1))


def at_phases(factors: np.ndarray, start: int, count: int) -> np.ndarray:
    """The factors of the ``count`` points from time ``start`` on: S_{t mod m}."""
    return factors[np.arange(start, start + count) % len(factors)]
