"""Forecaster and baselines: real data (Airline) against seasonal-naive, hand-computed
baselines, persistence, and bad input."""

import numpy as np
import pytest
import torch
from helpers import forecast_rows

from lstmkit.data import load_airline
from lstmkit.tasks import Forecaster, MeanForecaster, NaiveForecaster, SeasonalNaiveForecaster


@pytest.fixture(scope="module")
def airline():
    return load_airline()[1]


@pytest.fixture(scope="module")
def fitted(airline):
    torch.set_num_threads(1)
    return Forecaster(horizon=24, progress=False).fit(airline[:-24])


def test_default_forecaster_beats_seasonal_naive_on_last_24_months(fitted, airline):
    report = fitted.evaluate(airline[-24:], season=12)
    assert report["model"]["rmse"] < report["seasonal_naive"]["rmse"]
    # the baselines are those of the same API, computed from the fitted series
    naive = np.tile(airline[-36:-24], 2)
    assert report["seasonal_naive"]["rmse"] == pytest.approx(
        np.sqrt(np.mean((naive - airline[-24:]) ** 2))
    )
    assert list(report) == forecast_rows()


def test_predict_continues_from_the_end_with_the_horizon_shape(fitted):
    pred = fitted.predict()
    assert pred.shape == (24,)
    assert np.all(np.isfinite(pred))
    # longer than the horizon: the first block is the direct forecast, then closed loop
    longer = fitted.predict(30)
    np.testing.assert_allclose(longer[:24], pred)


def test_save_load_round_trip_gives_identical_predictions(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = Forecaster.load(path)
    np.testing.assert_array_equal(loaded.predict(), fitted.predict())


def test_load_rejects_damaged_and_foreign_files(fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    (path / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="expected safetensors, got a damaged file"):
        Forecaster.load(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="expected JSON"):
        Forecaster.load(path)


def test_same_seed_same_forecast(airline):
    a = Forecaster(lookback=12, horizon=3, epochs=5, progress=False).fit(airline[:60])
    b = Forecaster(lookback=12, horizon=3, epochs=5, progress=False).fit(airline[:60])
    np.testing.assert_array_equal(a.predict(), b.predict())


def test_multivariate_targets_and_covariates_shapes():
    rng = np.random.default_rng(0)
    t = np.arange(80)
    targets = np.stack([np.sin(t / 4), np.cos(t / 5)], axis=1) + 0.01 * rng.normal(size=(80, 2))
    past = rng.normal(size=(80, 1))
    future = (t % 7 == 0).astype(float)[:, None]
    model = Forecaster(lookback=8, horizon=4, epochs=3, progress=False)
    model.fit(targets, covariates=past, future_covariates=future)
    pred = model.predict(future_covariates=np.zeros((4, 1)))
    assert pred.shape == (4, 2)
    with pytest.raises(ValueError, match="future_covariates: expected at least 4 future rows"):
        model.predict()
    with pytest.raises(
        ValueError, match=r"expected at least 8 future rows .* for 5 steps\), got 4"
    ):
        model.predict(5, future_covariates=np.zeros((4, 1)))
    with pytest.raises(ValueError, match="with past covariates at most 4 steps"):
        model.predict(8, future_covariates=np.zeros((12, 1)))


def test_recursive_strategy_learns_a_sine():
    t = np.arange(200)
    series = np.sin(2 * np.pi * t / 20)
    model = Forecaster(lookback=20, horizon=10, strategy="recursive", epochs=60, progress=False)
    model.fit(series[:180])
    pred = model.predict(20)
    naive = NaiveForecaster().fit(series[:180]).predict(20)[:, 0]
    rmse = np.sqrt(np.mean((pred - series[180:]) ** 2))
    assert rmse < 0.5 * np.sqrt(np.mean((naive - series[180:]) ** 2))


def test_backtest_uses_only_the_past(airline):
    model = Forecaster(lookback=12, horizon=6, epochs=3, progress=False).fit(airline[:100])
    result = model.backtest(airline, start=100, every=6)
    assert result["origins"] == [100, 106, 112, 118, 124, 130, 136]
    assert result["predictions"].shape == (7, 6, 1)
    # the forecast from origin o must not change when data after o changes
    changed = airline.copy()
    changed[101:] = 0
    again = model.backtest(changed, start=100, every=6)
    np.testing.assert_array_equal(again["predictions"][0], result["predictions"][0])


def test_baselines_by_hand():
    series = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(NaiveForecaster().fit(series).predict(2)[:, 0], [6, 6])
    np.testing.assert_array_equal(
        SeasonalNaiveForecaster(4).fit(series).predict(6)[:, 0], [3, 4, 5, 6, 3, 4]
    )
    np.testing.assert_array_equal(MeanForecaster().fit(series).predict(1)[:, 0], [3.5])


@pytest.mark.parametrize(
    ("kwargs", "series", "match"),
    [
        ({}, np.arange(10.0), "expected at least lookback \\+ horizon = 25 training steps, got 8"),
        ({}, np.array([1.0, np.nan] * 40), "expected finite values, got NaN or infinity at row 1"),
        ({}, np.zeros((5, 5, 5)), "expected 1 or 2 dims"),
    ],
)
def test_bad_input(kwargs, series, match):
    with pytest.raises(ValueError, match=match):
        Forecaster(progress=False, **kwargs).fit(series)


def test_bad_options_and_unfitted():
    with pytest.raises(ValueError, match="lookback: expected an int >= 1, got 0"):
        Forecaster(lookback=0)
    with pytest.raises(ValueError, match="strategy: expected 'direct' or 'recursive'"):
        Forecaster(strategy="magic")
    with pytest.raises(ValueError, match="not fitted yet"):
        Forecaster().predict()


def test_gate_activations_explain_the_forecast():
    """The last hidden state in the gates, through the head, is predict()'s first step."""
    y = np.sin(np.arange(80) / 4.0) * 10 + 50
    model = Forecaster(lookback=8, hidden_size=6, epochs=3, progress=False).fit(y)
    gates = model.gate_activations()
    assert set(gates) == {"l0"} and set(gates["l0"]) == {"i", "f", "g", "c", "o", "h"}
    assert gates["l0"]["i"].shape == (8, 6)
    np.testing.assert_allclose(  # h_t = o_t * tanh(C_t), from the recorded gates
        gates["l0"]["h"], gates["l0"]["o"] * np.tanh(gates["l0"]["c"]), rtol=1e-6, atol=1e-7
    )
    h_last = torch.tensor(gates["l0"]["h"][-1])
    with torch.no_grad():
        scaled = float(model.net_.head(h_last))
    scaler = model._scalers[0]
    level = (y[-1] - scaler.mean[0]) / scaler.std[0]
    expected = (scaled + level) * scaler.std[0] + scaler.mean[0]
    assert model.predict(1)[0] == pytest.approx(expected, rel=1e-5)
    assert not np.allclose(model.gate_activations(back=5)["l0"]["h"], gates["l0"]["h"])
    with pytest.raises(ValueError, match=r"back: expected an int in \[0, 72\]"):
        model.gate_activations(back=73)
    with pytest.raises(ValueError, match=r"back: expected an int in \[0, 72\].*got 'x'"):
        model.gate_activations(back="x")  # checked before it is used


def test_resume_from_checkpoint_gives_the_uninterrupted_result(tmp_path):
    """Stopped after 3 of 6 epochs (as Ctrl-C would), then resumed: the same model as 6
    epochs in one go."""
    y = np.sin(np.arange(90) / 5.0) * 10 + 40
    kw = {"lookback": 8, "hidden_size": 6, "epochs": 6, "patience": None, "progress": False}
    whole = Forecaster(**kw).fit(y).predict(3)
    ckpt = str(tmp_path / "ckpt")
    first = Forecaster(checkpoint=ckpt, **kw)
    first.fit(y, callback=lambda record: record["epoch"] == 3)
    assert len(first.history_.epochs) == 3
    resumed = Forecaster(checkpoint=ckpt, resume=True, **kw).fit(y)
    assert [e["epoch"] for e in resumed.history_.epochs] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(resumed.predict(3), whole)


def test_evaluate_returns_the_forecasts_it_scored():
    """return_forecasts=True gives (metrics, forecasts): the same metrics, the model's row
    equal to predict(steps), every row scored by regression_metrics."""
    from lstmkit.train.metrics import regression_metrics

    y = np.sin(np.arange(80) / 4.0) + np.arange(80) / 40.0
    model = Forecaster(horizon=4, lookback=8, epochs=2, hidden_size=8, progress=False)
    model.fit(y[:72])
    metrics, forecasts = model.evaluate(y[72:], return_forecasts=True)
    assert metrics == model.evaluate(y[72:])
    assert list(forecasts) == list(metrics) == forecast_rows()
    np.testing.assert_allclose(forecasts["model"][:, 0], model.predict(8))
    for name, forecast in forecasts.items():
        assert forecast.shape == (8, 1)
        assert metrics[name] == regression_metrics(y[72:, None], forecast)
