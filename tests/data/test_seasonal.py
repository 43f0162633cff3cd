"""Classical multiplicative deseasonalisation (lstmkit.data.seasonal) against statsmodels'
acf and seasonal_decompose and hand-made series, and its use by the global Forecaster: a
panel fit with it equals the fit of the series divided by hand, forecasts multiplied back."""

import json

import numpy as np
import pytest

from lstmkit.data.seasonal import (
    at_phases,
    autocorrelation,
    deseasonalising_factors,
    is_seasonal,
    seasonal_indices,
)
from lstmkit.tasks import Forecaster

SMALL = {"hidden_size": 8, "progress": False}

pytestmark = pytest.mark.usefixtures("short_panel_budget")  # conftest.py


def seasonal_series(n, season, seed=0, noise=0.05, trend=0.02):
    rng = np.random.default_rng(seed)
    shape = 1 + 0.4 * np.sin(2 * np.pi * (np.arange(n) + seed) / season)
    return (10 + trend * np.arange(n)) * shape * np.exp(rng.normal(0, noise, n))


# -- the decomposition -------------------------------------------------------------------


def test_autocorrelation_is_statsmodels_acf():
    stattools = pytest.importorskip("statsmodels.tsa.stattools")
    x = seasonal_series(50, 12)
    want = stattools.acf(x, nlags=12, adjusted=False, fft=False)[1:]
    np.testing.assert_allclose(autocorrelation(x, 12), want, rtol=1e-12, atol=1e-14)
    assert (autocorrelation(np.full(9, 3.0), 4) == 0).all()


@pytest.mark.parametrize(("season", "n"), [(12, 61), (4, 30), (7, 45), (3, 9)])
def test_indices_are_statsmodels_multiplicative_decomposition(season, n):
    seasonal = pytest.importorskip("statsmodels.tsa.seasonal")
    x = seasonal_series(n, season, seed=season)
    want = seasonal.seasonal_decompose(x, model="multiplicative", period=season).seasonal
    np.testing.assert_allclose(at_phases(seasonal_indices(x, season), 0, n), want, rtol=1e-12)


def test_a_constant_level_times_a_pattern_gives_the_pattern_back():
    pattern = np.array([0.8, 1.3, 1.1, 0.8])  # mean 1
    x = 50 * np.tile(pattern, 5)
    np.testing.assert_allclose(seasonal_indices(x, 4), pattern, rtol=1e-13)
    # the phase is counted from the first point: a series starting at phase 2
    np.testing.assert_allclose(seasonal_indices(x[2:], 4), np.roll(pattern, -2), rtol=1e-13)
    with pytest.raises(ValueError, match="expected at least 8 positive points for season 4"):
        seasonal_indices(x[:7], 4)
    with pytest.raises(ValueError, match="positive"):
        seasonal_indices(x - 45, 4)


def test_the_test_by_hand():
    """|r_m| against 1.645·sqrt((1 + 2 Σ_{k<m} r_k²)/n), r from numpy's correlation."""
    x = seasonal_series(36, 12, noise=0.3, trend=0)
    c = x - x.mean()
    r = [c[k:] @ c[:-k] / (c @ c) for k in range(1, 13)]
    limit = 1.645 * np.sqrt((1 + 2 * sum(v * v for v in r[:11])) / 36)
    assert is_seasonal(x, 12) == (abs(r[11]) > limit)
    assert is_seasonal(seasonal_series(48, 12), 12)
    assert not is_seasonal(np.random.default_rng(3).normal(10, 1, 120), 12)
    assert not is_seasonal(seasonal_series(35, 12), 12)  # under 3 seasons
    assert not is_seasonal(seasonal_series(48, 12), 1)


def test_factors_are_ones_unless_seasonal_and_positive():
    x = seasonal_series(48, 12)
    np.testing.assert_array_equal(deseasonalising_factors(x, 12), seasonal_indices(x, 12))
    np.testing.assert_array_equal(deseasonalising_factors(x - 12, 12), np.ones(12))  # not > 0
    np.testing.assert_array_equal(deseasonalising_factors(x[:20], 12), np.ones(12))
    np.testing.assert_array_equal(deseasonalising_factors(x, 1), np.ones(1))


# -- in the global Forecaster ------------------------------------------------------------


def test_a_panel_fit_equals_the_fit_of_the_series_divided_by_hand():
    """Distinct lengths, so both fits enumerate the series in the same canonical order."""
    panel = [seasonal_series(n, 12, seed=k) for k, n in enumerate((60, 45, 20, 50))]
    factors = [deseasonalising_factors(x, 12) for x in panel]
    assert sum(not np.all(f == 1) for f in factors) == 3  # the 20-point series is not tested
    model = Forecaster(horizon=5, season=12, **SMALL).fit(panel, validation=0)
    by_hand = Forecaster(horizon=5, season=12, deseasonalize=False, **SMALL).fit(
        [x / at_phases(f, 0, len(x)) for x, f in zip(panel, factors, strict=True)], validation=0
    )
    got = model.predict(14, quantiles=(0.1, 0.5, 0.9))
    want = by_hand.predict(14, quantiles=(0.1, 0.5, 0.9))
    for g, w, x, f in zip(got, want, panel, factors, strict=True):
        np.testing.assert_allclose(g, w * at_phases(f, len(x), 14)[:, None], rtol=1e-12)
    np.testing.assert_array_equal(model.seasonal_, np.stack(factors))


def test_save_load_keeps_the_factors(tmp_path):
    panel = [seasonal_series(n, 4, seed=n) for n in (40, 33)]
    model = Forecaster(horizon=4, season=4, **SMALL).fit(panel)
    assert not np.all(model.seasonal_ == 1)
    model.save(tmp_path / "m")
    back = Forecaster.load(tmp_path / "m")
    for a, b in zip(back.predict(9), model.predict(9), strict=True):
        np.testing.assert_array_equal(a, b)
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["fitted"]["seasonal"] = [[1.0, -2.0]] * 2
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="seasonal: expected 2 rows of positive seasonal"):
        Forecaster.load(tmp_path / "m")


def test_models_saved_before_deseasonalisation_load_with_factors_of_one(tmp_path):
    panel = [seasonal_series(n, 4, seed=n) for n in (40, 33)]
    model = Forecaster(horizon=4, season=4, deseasonalize=False, **SMALL).fit(panel)
    model.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    del config["fitted"]["seasonal"], config["params"]["deseasonalize"]
    config_path.write_text(json.dumps(config))
    back = Forecaster.load(tmp_path / "m")
    for a, b in zip(back.predict(9), model.predict(9), strict=True):
        np.testing.assert_array_equal(a, b)
