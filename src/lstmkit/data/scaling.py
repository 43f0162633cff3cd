r"""Scaling: what the networks read instead of the raw values.

- :class:`Scaler`: per-column standardisation fitted on a training part (single-series
  forecasting; targets and covariates).
- :func:`standardise_each`: every sequence on its own (the UCR archive's z-normalisation),
  and :func:`level_and_scale`, what it takes away given back as features.
- :func:`series_scale` and :func:`normalised`: a panel's series divided by their own scale
  and seasonal factors (the global forecaster); :func:`standardise_static` its static
  covariates.
"""

import math

import numpy as np

from lstmkit.data.seasonal import at_phases
from lstmkit.train.forecast_metrics import seasonal_scale


class Scaler:
    """Per-column standardisation fitted on the training part."""

    def __init__(self, data: np.ndarray) -> None:
        self.mean = data.mean(axis=0)
        std = data.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        return (data - self.mean) / self.std


QUIET = 0.01  # a sequence quieter than this share of the typical spread: scaled by it


def standardise_each(
    sequences: list[np.ndarray], floor: np.ndarray | float = 0.0
) -> list[np.ndarray]:
    r"""Every sequence to zero mean and unit variance per channel over its own steps (a
    constant channel becomes zeros): the z-normalisation of the UCR archive,
    :math:`\tilde x_t = (x_t - \mu_n) / \max(\sigma_n, \phi)`. ``floor`` :math:`\phi`
    (per channel; the classifier's is :data:`QUIET` × the median training σ) keeps a
    sequence far quieter than the typical one — an appliance switched off, sensor noise —
    from being blown up to unit variance like a signal; on a z-normalised archive
    (:math:`\sigma_n = \tilde\sigma`) it changes nothing."""
    out = []
    for s in sequences:
        std = np.maximum(s.std(axis=0), floor)
        out.append((s - s.mean(axis=0)) / np.where(std > 0, std, 1.0))
    return out


def level_and_scale(sequences: list[np.ndarray], reference: np.ndarray) -> np.ndarray:
    r"""(N, 2D): each sequence's per-channel mean and spread relative to ``reference``
    :math:`\tilde\sigma` (the median training σ per channel), :math:`\mu_{n,d}/\tilde\sigma_d`
    and :math:`\log(1 + \sigma_{n,d}/\tilde\sigma_d)` — what :func:`standardise_each` takes
    away, given back to the head as features, so that amplitude still counts (PLAID's
    appliances differ in current as much as in waveform). Both are dimensionless, so a
    spread below :data:`FEATURE_NOISE` over the training set is rounding, not signal
    (z-normalised archives such as ItalyPowerDemand): such a feature is centred, not scaled."""
    mean = np.stack([s.mean(axis=0) for s in sequences])
    std = np.stack([s.std(axis=0) for s in sequences])
    return np.concatenate([mean / reference, np.log1p(std / reference)], axis=1)


FEATURE_NOISE = 1e-4  # a level/scale feature's spread below this is rounding


def series_scale(values: np.ndarray, season: int = 1) -> float:
    r"""The in-sample scale :math:`s_i` of one series' training part: the mean absolute
    seasonal difference :math:`\frac{1}{n-m}\sum_{t=m}^{n-1}|y_t-y_{t-m}|` (MASE's
    denominator with the season :math:`m`), else the mean absolute first difference (a
    series of at most :math:`m` points, or one that repeats its season exactly), else the
    standard deviation, else :math:`|\bar y|`, else 1 (a constant zero series)."""
    lags = (season, 1) if len(values) > 1 else ()  # MASE's own denominator, then lag 1
    for scale in (
        *(seasonal_scale(values, lag) for lag in lags),
        values.std(),
        abs(values.mean()),
    ):
        if scale > 0 and math.isfinite(scale):
            return float(scale)
    return 1.0


def normalised(values: np.ndarray, scale: float, factors: np.ndarray) -> np.ndarray:
    """What the networks read of a series: :math:`y_t / S_{t \\bmod m} / s_i`, deseasonalised
    by its factors (:mod:`lstmkit.data.seasonal`) and divided by its scale."""
    return values / at_phases(factors, 0, len(values)) / scale


def standardise_static(static: np.ndarray | None) -> np.ndarray | None:
    """Static covariates (n_series, S) centred and divided by their standard deviation
    over the series, column by column (a constant column: centred only)."""
    return None if static is None else Scaler(static)(static)
