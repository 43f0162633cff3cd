"""Per-step covariates of a panel: windows against windows cut by hand, every input form
and its errors, a known-future and a past covariate that the network must learn (errors
measured against the same fit without them), order invariance, predict/evaluate/backtest
reading the covariates ahead, save/load."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import lstmkit.tasks.global_forecast as global_forecast
from lstmkit.data.panel import as_panel, future_rows
from lstmkit.data.windows import PanelWindows
from lstmkit.tasks import Forecaster

SMALL = {"hidden_size": 8, "progress": False}

pytestmark = pytest.mark.usefixtures("short_panel_budget")  # conftest.py


def promo_panel(n=40, steps=30, horizon=4, seed=0):
    """Series y_t = μ_i + 5 promo_t + N(0, 0.5²), promo_t ~ Bernoulli(0.3) known ahead:
    (training series, their promos, the next ``horizon`` values, the promos then)."""
    rng = np.random.default_rng(seed)
    promo = (rng.random((n, steps + horizon)) < 0.3).astype(float)
    y = 20 + rng.normal(0, 3, (n, 1)) + 5 * promo + rng.normal(0, 0.5, promo.shape)
    return list(y[:, :steps]), list(promo[:, :steps]), y[:, steps:], list(promo[:, steps:])


def long_frame(series, promos, start=0):
    return pd.DataFrame(
        [
            {"id": f"s{i}", "time": start + t, "value": v, "promo": p}
            for i, (s, q) in enumerate(zip(series, promos, strict=True))
            for t, (v, p) in enumerate(zip(s, q, strict=True))
        ]
    )


# -- windows and input forms -----------------------------------------------------------


def test_windows_carry_the_covariates_cut_by_hand():
    """x: the target relative to its level, then the covariates as they are; extra: the
    static row, then the known-future column over the horizon, zero past the series."""
    series = [np.arange(6.0) ** 2, np.array([3.0, 5.0, 4.0])]
    channels = [np.arange(12.0).reshape(6, 2), -np.arange(6.0).reshape(3, 2)]
    static = np.array([[7.0], [8.0]])
    lookback, horizon = 3, 2
    windows = PanelWindows(
        series, [5, 3], lookback, horizon, static=static, channels=channels, future_width=1
    )
    got = windows.take(torch.arange(len(windows)))
    k = 0
    for z, c, row, end in zip(series, channels, static, [5, 3], strict=True):
        for t in range(1, end):
            a = min(t, lookback)
            want_x = np.column_stack([z[t - a : t] - z[t - 1], c[t - a : t]])
            np.testing.assert_allclose(got["x"][k, :a].numpy(), want_x)
            assert not got["x"][k, a:].any()
            ahead = [c[t + j, 1] if t + j < len(z) else 0.0 for j in range(horizon)]
            np.testing.assert_allclose(got["extra"][k].numpy(), [row[0], *ahead])
            k += 1
    assert k == len(windows)
    with pytest.raises(ValueError, match="channels: expected as many rows"):
        PanelWindows(series, [5, 3], 3, 2, channels=[channels[0], channels[1][:2]])


def test_covariates_come_in_every_form_in_the_panels_order():
    a, b = np.arange(4.0), np.arange(3.0) + 10
    ca, cb = np.c_[a, 2 * a], np.c_[b, -b]
    for panel in (
        as_panel([a, b], covariates=[ca, cb]),
        as_panel({"x": a, "y": b}, covariates={"y": cb, "x": ca}),
        as_panel(
            pd.DataFrame(
                {
                    "id": ["y", "x", "x", "y", "x", "y", "x"],
                    "time": [2, 3, 0, 0, 1, 1, 2],
                    "value": [12.0, 3, 0, 10, 1, 11, 2],
                    "u": [12.0, 3, 0, 10, 1, 11, 2],
                    "v": [-12.0, 6, 0, -10, 2, -11, 4],
                }
            ),
            covariates=["u", "v"],
        ),
    ):
        got = dict(zip(panel.ids, panel.covariates, strict=True))
        first, second = got.values()
        np.testing.assert_array_equal(first, ca if panel.kind != "long" else cb)
        np.testing.assert_array_equal(second, cb if panel.kind != "long" else ca)
        assert panel.future is None
    one = as_panel([a], future_covariates=[a])  # 1-D: one column
    assert one.future[0].shape == (4, 1) and one.covariates is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"covariates": [np.ones(4), np.ones(2)]}, "covariates of series 1: expected 3 rows"),
        ({"covariates": [np.ones(4)]}, "covariates: expected a list or dict of 2 arrays"),
        ({"covariates": [np.ones(4), [1, np.nan, 2]]}, "series 1: expected finite values"),
        ({"covariates": [np.ones((4, 2)), np.ones(3)]}, "expected 2 columns as the first"),
        ({"future_covariates": [np.ones(4), ["a", "b", "c"]]}, "series 1: expected numbers"),
    ],
)
def test_bad_covariates_are_named_with_their_series(kwargs, message):
    with pytest.raises(ValueError, match=message):
        as_panel([np.arange(4.0), np.arange(3.0)], **kwargs)


def test_bad_covariate_columns_are_named():
    frame = long_frame([np.arange(3.0)], [np.ones(3)])
    for given, message in (
        ("price", "covariates: unknown column 'price'"),
        ("value", "covariates: the id, time or target column 'value'"),
    ):
        with pytest.raises(ValueError, match=message):
            as_panel(frame, covariates=given)
    with pytest.raises(ValueError, match="covariates of series 's0': expected finite"):
        as_panel(frame.assign(promo=[1.0, None, 0.0]), covariates="promo")
    with pytest.raises(ValueError, match="expected a value for every series, missing 1"):
        as_panel({0: [1.0, 2.0], 1: [3.0, 4.0]}, future_covariates={0: [1.0, 2.0]})


# -- what the network learns from them ------------------------------------------------


def test_a_known_future_covariate_is_learned(monkeypatch):
    """A promotion adds 5 to the value of its step: without the covariate a 4-step forecast
    cannot know where they fall (measured here: mean absolute error 1.78); with it the
    error comes down to about the noise (0.50, the noise alone gives 0.40)."""
    monkeypatch.setattr(global_forecast, "MIN_STEPS", 300)
    monkeypatch.setattr(global_forecast, "MAX_STEPS", 300)
    train, promos, test, ahead = promo_panel()
    options = {"horizon": 4, "lookback": 12, "hidden_size": 16, "progress": False}
    without = np.stack(Forecaster(**options).fit(train).predict())
    model = Forecaster(**options).fit(train, future_covariates=promos)
    with_them = np.stack(model.predict(future_covariates=ahead))
    assert np.abs(with_them - test).mean() < 0.5 * np.abs(without - test).mean()
    # read from the steps ahead: the promotions of another series make it worse
    shuffled = np.stack(model.predict(future_covariates=ahead[1:] + ahead[:1]))
    assert np.abs(shuffled - test).mean() > 2 * np.abs(with_them - test).mean()


def test_a_past_covariate_that_leads_the_target_is_learned(monkeypatch):
    """y_t = 10 + 3 x_{t-1} + N(0, 0.2²) with x white noise: the next value is in the last
    step of the covariate, not of the target (measured: error 2.47 without, 0.49 with)."""
    monkeypatch.setattr(global_forecast, "MIN_STEPS", 300)
    monkeypatch.setattr(global_forecast, "MAX_STEPS", 300)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (40, 31))
    y = 10 + 3 * np.c_[np.zeros(40), x[:, :-1]] + rng.normal(0, 0.2, (40, 31))
    options = {"horizon": 1, "lookback": 12, "hidden_size": 16, "progress": False}
    train = list(y[:, :30])
    without = np.stack(Forecaster(**options).fit(train).predict())[:, 0]
    model = Forecaster(**options).fit(train, covariates=list(x[:, :30]))
    with_them = np.stack(model.predict())[:, 0]
    assert np.abs(with_them - y[:, 30]).mean() < 0.5 * np.abs(without - y[:, 30]).mean()
    with pytest.raises(ValueError, match="with past covariates at most 1 steps"):
        model.predict(2)


def test_fit_with_covariates_is_invariant_to_the_order_of_the_series():
    train, promos, _, ahead = promo_panel(n=4)
    train[1] = train[0]  # the same values, told apart by their covariates only
    model = Forecaster(horizon=4, **SMALL).fit(train, future_covariates=promos)
    want = model.predict(future_covariates=ahead)
    order = [2, 0, 3, 1]
    back = Forecaster(horizon=4, **SMALL).fit(
        [train[i] for i in order], future_covariates=[promos[i] for i in order]
    )
    got = back.predict(future_covariates=[ahead[i] for i in order])
    for k, i in enumerate(order):
        np.testing.assert_array_equal(got[k], want[i])


# -- reading them ahead: predict, evaluate, backtest, save/load ------------------------


def test_future_covariates_are_asked_for_by_name_and_size():
    train, promos, _, ahead = promo_panel(n=3)
    model = Forecaster(horizon=4, **SMALL).fit(train, future_covariates=promos)
    with pytest.raises(ValueError, match="future_covariates: expected the values of the 4"):
        model.predict()
    with pytest.raises(ValueError, match="series 0: expected at least 8 rows of 1 columns"):
        model.predict(5, future_covariates=ahead)  # two horizon blocks
    eight = [np.r_[a, a] for a in ahead]
    assert np.stack(model.predict(5, future_covariates=eight)).shape == (3, 5)
    np.testing.assert_array_equal(  # the first block reads only the first 4 rows
        np.stack(model.predict(future_covariates=eight)),
        np.stack(model.predict(future_covariates=ahead)),
    )
    plain = Forecaster(horizon=4, **SMALL).fit(train)
    with pytest.raises(ValueError, match="fitted without them"):
        plain.predict(future_covariates=ahead)
    with pytest.raises(ValueError, match="fitted without them"):
        plain.backtest([a[:1] for a in ahead], covariates=[a[:1] for a in ahead])


def test_a_long_frame_reads_its_covariate_columns_everywhere(tmp_path):
    train, promos, test, ahead = promo_panel(n=3)
    frame = long_frame(train, promos)
    future = long_frame(list(test), ahead, start=30)  # the continuation, promo column too
    model = Forecaster(horizon=4, **SMALL).fit(frame, future_covariates="promo")
    got = model.predict(future_covariates=future.drop(columns="value"))
    assert list(got.columns) == ["id", "time", "value"]
    assert got["time"].tolist() == [30, 31, 32, 33] * 3
    # the same numbers as the list form (the same canonical order, the same windows)
    listed = Forecaster(horizon=4, **SMALL).fit(train, future_covariates=promos)
    want = np.stack(listed.predict(future_covariates=ahead))
    np.testing.assert_allclose(got["value"].to_numpy().reshape(3, 4), want, rtol=1e-6)
    # evaluate reads the promotions from the continuation's own column
    _, every = model.evaluate(future, return_forecasts=True)
    np.testing.assert_allclose(every[..., 1], want, rtol=1e-6)
    # and the whole history passed as the future frame: only the rows after each end count
    both = pd.concat([frame, future]).drop(columns="value")
    np.testing.assert_array_equal(model.predict(future_covariates=both)["value"], got["value"])
    model.save(tmp_path / "m")
    back = Forecaster.load(tmp_path / "m")
    np.testing.assert_array_equal(
        back.predict(future_covariates=future)["value"],
        model.predict(future_covariates=future)["value"],
    )
    with pytest.raises(ValueError, match="future_covariates: expected a column 'promo'"):
        model.predict(future_covariates=future.drop(columns="promo"))


def test_backtest_with_covariates_forecasts_from_each_origin():
    """Each row is predict() of the fitted model on the history grown by k continued points
    (their promotions too), reading the promotions of the next horizon."""
    import dataclasses

    train, promos, test, ahead = promo_panel(n=3, horizon=6)
    model = Forecaster(horizon=2, **SMALL).fit(train, future_covariates=promos)
    got = model.backtest(list(test), future_covariates=ahead, every=2)
    assert got["series"] == [0] * 3 + [1] * 3 + [2] * 3
    assert got["origins"] == [0, 2, 4] * 3  # 6 continued points, whole horizons of 2
    for row, (i, k) in enumerate(zip(got["series"], got["origins"], strict=True)):
        alone = Forecaster(horizon=2, **SMALL)
        alone.__dict__.update(model.__dict__)
        alone.panel_ = dataclasses.replace(
            model.panel_,
            ids=[i],
            values=[np.r_[train[i], test[i][:k]]],
            future=[np.r_[promos[i], ahead[i][:k]][:, None]],
        )
        alone.scales_, alone.seasonal_ = model.scales_[[i]], model.seasonal_[[i]]
        want = alone.predict(quantiles=(0.1, 0.5, 0.9), future_covariates=[ahead[i][k : k + 2]])
        np.testing.assert_allclose(got["predictions"][row], want[0], rtol=1e-6)
    with pytest.raises(ValueError, match="at least start \\+ whole horizons = 8 points"):
        model.backtest(list(test), future_covariates=ahead, start=6)


def test_save_load_keeps_past_and_future_covariates(tmp_path):
    train, promos, _, ahead = promo_panel(n=3)
    past = [np.c_[p, np.arange(len(p))] for p in promos]
    model = Forecaster(horizon=4, **SMALL).fit(train, covariates=past, future_covariates=promos)
    model.save(tmp_path / "m")
    back = Forecaster.load(tmp_path / "m")
    for a, b in zip(
        back.predict(future_covariates=ahead), model.predict(future_covariates=ahead), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert back.nets_[0].input_size == 4  # the target, 2 past and 1 known-future covariate
    assert back.gate_activations(series=1)  # a window of all four channels goes in
    path = tmp_path / "m" / "config.json"
    config = json.loads(path.read_text())
    config["fitted"]["shapes"]["past"] = 1
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="shapes: expected 2 past and 1 future covariate"):
        Forecaster.load(tmp_path / "m")


def test_one_series_with_quantiles_takes_covariates_as_arrays():
    train, promos, test, ahead = promo_panel(n=1)
    model = Forecaster(horizon=4, quantiles=(0.1, 0.5, 0.9), **SMALL)
    model.fit(train[0], future_covariates=promos[0])
    q = model.predict(quantiles=(0.1, 0.5, 0.9), future_covariates=ahead[0])
    assert q.shape == (4, 3) and (np.diff(q, axis=1) >= 0).all()
    metrics = model.evaluate(test[0], future_covariates=ahead[0])
    assert np.isfinite(metrics["model"]["mase"])
    assert future_rows(model.panel_, ahead[0], 4)[0].shape == (4, 1)
