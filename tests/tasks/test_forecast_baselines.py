"""The statistical baselines against statsforecast run directly on the same Airline slices:
points and intervals equal, the input order kept, the Naive fallback of a series a model
cannot fit counted and explained, and the install line when the extra is missing."""

import sys

import numpy as np
import pytest

from lstmkit.data import load_airline
from lstmkit.tasks import forecast_baselines
from lstmkit.tasks.forecast_baselines import available, statistical_forecasts

pytest.importorskip(
    "statsforecast", reason="the forecast extra (statsforecast) is a dev dependency"
)
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, AutoETS, AutoTheta, Naive, SeasonalNaive

HORIZON, SEASON, LEVEL = 12, 12, 80


@pytest.fixture(scope="module")
def airline():
    """Three real series of different lengths and scales: Airline's first 4 years, the log
    of its first 5, and years 5–7 (AutoARIMA is slow on the full seasonal series)."""
    y = load_airline()[1]
    return [y[:48], np.log(y[:60]), y[48:84]]


def direct(series, models, horizon=HORIZON, level=LEVEL) -> dict:
    """statsforecast as a user calls it: {(series name, column): (horizon,) values}."""
    frame = pd.concat(
        pd.DataFrame({"unique_id": f"s{i}", "ds": np.arange(len(y)), "y": y})
        for i, y in enumerate(series)
    )
    out = StatsForecast(models=models, freq=1).forecast(df=frame, h=horizon, level=[level])
    return {
        (uid, column): group[column].to_numpy()
        for uid, group in out.groupby("unique_id")
        for column in out.columns.drop(["unique_id", "ds"])
    }


def assert_equal_to_direct(entry, want, name, indices, names=None):
    for i, uid in zip(indices, names or [f"s{i}" for i in indices], strict=True):
        for key, column in (
            ("point", name),
            ("lower", f"{name}-lo-80"),
            ("upper", f"{name}-hi-80"),
        ):
            np.testing.assert_allclose(entry[key][i], want[uid, column], rtol=0, atol=1e-8)


def test_forecasts_equal_statsforecast_run_directly(airline):
    got = statistical_forecasts(airline, HORIZON, SEASON, level=LEVEL)
    assert list(got) == ["AutoETS", "AutoTheta", "AutoARIMA"]
    m = SEASON
    want = direct(
        airline, [AutoETS(season_length=m), AutoTheta(season_length=m), AutoARIMA(season_length=m)]
    )
    for name, entry in got.items():
        assert entry["fallbacks"] == 0 and entry["fallback_reasons"] == {}
        assert all(len(entry[key]) == 3 for key in ("point", "lower", "upper"))
        assert_equal_to_direct(entry, want, name, range(3))
        assert entry["seconds"] > 0 and entry["cpu_seconds"] >= 0
        for lo, point, hi in zip(entry["lower"], entry["point"], entry["upper"], strict=True):
            assert lo.shape == (HORIZON,) and (lo < point).all() and (point < hi).all()
    # the log series forecasts logs: its point forecasts are near 5, the others near 200-400
    assert 4 < got["AutoETS"]["point"][1].mean() < 7 < got["AutoETS"]["point"][0].mean()


def test_a_one_series_forecaster_scores_them_beside_its_own(airline):
    """Forecaster.evaluate on one series (two target columns: each forecast on its own)
    has a row per statistical model, scored on statsforecast's own point forecasts."""
    from lstmkit.tasks import Forecaster
    from lstmkit.train.metrics import regression_metrics

    y = np.column_stack([airline[2][:30], np.log(airline[2][:30])])
    model = Forecaster(horizon=6, lookback=8, epochs=1, hidden_size=4, progress=False)
    model.fit(y[:24])
    metrics, forecasts = model.evaluate(y[24:], season=SEASON, return_forecasts=True)
    m = SEASON
    models = [AutoETS(season_length=m), AutoTheta(season_length=m), AutoARIMA(season_length=m)]
    want = direct([y[:24, 0], y[:24, 1]], models, horizon=6)
    for name in ("AutoETS", "AutoTheta", "AutoARIMA"):
        for k in range(2):
            np.testing.assert_allclose(forecasts[name][:, k], want[f"s{k}", name], atol=1e-8)
        assert metrics[name] == regression_metrics(y[24:], forecasts[name])


def test_autoarima_approximates_its_search_beyond_150_points(monkeypatch):
    """R's auto.arima rule: the approximate search on series longer than
    APPROXIMATE_BEYOND (150) points, the exact one otherwise; each equal to statsforecast's
    AutoARIMA with that setting. On all of Airline (144 points) the two searches pick
    different models (forecasts up to 2.6 apart), so the test tells them apart."""
    y = load_airline()[1].astype(float)
    runs = {
        approximate: direct([y], [AutoARIMA(season_length=12, approximation=approximate)], 6)
        for approximate in (True, False)
    }
    key = ("s0", "AutoARIMA")
    assert np.abs(runs[True][key] - runs[False][key]).max() > 1
    got = statistical_forecasts([y], 6, 12, models=("AutoARIMA",))["AutoARIMA"]
    assert_equal_to_direct(got, runs[False], "AutoARIMA", [0])  # 144 <= 150: exact
    monkeypatch.setattr(forecast_baselines, "APPROXIMATE_BEYOND", 143)
    got = statistical_forecasts([y], 6, 12, models=("AutoARIMA",))["AutoARIMA"]
    assert_equal_to_direct(got, runs[True], "AutoARIMA", [0])
    forced = statistical_forecasts([y], 6, 12, models=("AutoARIMA",), approximation=False)
    assert_equal_to_direct(forced["AutoARIMA"], runs[False], "AutoARIMA", [0])


def test_the_input_order_is_kept(airline):
    models = ("AutoTheta", "Naive", "SeasonalNaive")
    forward = statistical_forecasts(airline, 6, SEASON, models=models)
    backward = statistical_forecasts(airline[::-1], 6, SEASON, models=models)
    for name in models:
        for key in ("point", "lower", "upper"):
            for a, b in zip(forward[name][key], backward[name][key][::-1], strict=True):
                np.testing.assert_array_equal(a, b)
    # SeasonalNaive repeats each series' last season: the order can be read off directly
    for y, point in zip(airline, forward["SeasonalNaive"]["point"], strict=True):
        np.testing.assert_array_equal(point, y[-SEASON:][:6])


def test_a_series_too_short_for_a_model_falls_back_to_naive_and_is_reported(airline):
    short = np.array([112.0, 118.0])  # two points: AutoETS raises, SeasonalNaive gives NaN
    panel = [airline[0], short, airline[2]]
    with pytest.warns(UserWarning, match="shorter than season_length"):
        got = statistical_forecasts(panel, 6, SEASON, models=("AutoETS", "SeasonalNaive"))
    ets, seasonal = got["AutoETS"], got["SeasonalNaive"]
    assert ets["fallbacks"] == 1 and ets["fallback_reasons"] == {
        1: "NotImplementedError: tiny datasets"
    }
    assert seasonal["fallbacks"] == 1 and seasonal["fallback_reasons"] == {1: "non-finite forecast"}
    naive = direct([short], [Naive()], horizon=6)
    healthy = direct(
        [airline[0], airline[2]],
        [AutoETS(season_length=SEASON), SeasonalNaive(season_length=SEASON)],
        horizon=6,
    )
    for name, entry in got.items():
        np.testing.assert_allclose(entry["point"][1], naive["s0", "Naive"], atol=1e-8)
        np.testing.assert_allclose(entry["lower"][1], naive["s0", "Naive-lo-80"], atol=1e-8)
        np.testing.assert_allclose(entry["upper"][1], naive["s0", "Naive-hi-80"], atol=1e-8)
        assert_equal_to_direct(entry, healthy, name, [0, 2], ["s0", "s1"])
        assert all(np.isfinite(entry[key][1]).all() for key in ("point", "lower", "upper"))


def test_missing_extra_says_how_to_install_it(monkeypatch):
    assert available()
    monkeypatch.setitem(sys.modules, "statsforecast", None)  # as if not installed
    assert not available()
    with pytest.raises(ImportError, match=r'^[^\n]*pip install "lstmkit\[forecast\]"$'):
        statistical_forecasts([np.arange(10.0)], 3, 1)
    monkeypatch.setattr(forecast_baselines, "available", lambda: True)  # found, import fails
    with pytest.raises(ImportError, match=r'pip install "lstmkit\[forecast\]"'):
        statistical_forecasts([np.arange(10.0)], 3, 1)


def test_errors_say_what_was_expected():
    y = [np.arange(10.0)]
    with pytest.raises(ValueError, match="models: expected distinct names from AutoETS, "):
        statistical_forecasts(y, 3, 1, models=("ETS",))
    with pytest.raises(ValueError, match="horizon: expected a positive integer, got 0"):
        statistical_forecasts(y, 0, 1)
    with pytest.raises(ValueError, match=r"level: expected a percentage in \(0, 100\), got 150"):
        statistical_forecasts(y, 3, 1, level=150)
    with pytest.raises(ValueError, match=r"series\[1\]: expected finite numbers"):
        statistical_forecasts([y[0], np.array([1.0, np.nan])], 3, 1)
    with pytest.raises(ValueError, match="series: expected a list of 1-D arrays, got one 1-D"):
        statistical_forecasts(y[0], 3, 1)


@pytest.mark.parametrize("threads", [1, 2])
def test_torchs_thread_count_is_left_as_it_was(threads, airline):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        statistical_forecasts(airline[:1], 3, SEASON, models=("AutoETS", "AutoTheta"))
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
