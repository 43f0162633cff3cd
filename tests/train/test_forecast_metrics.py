"""Forecast accuracy metrics: hand-computed values on tiny arrays, the closed-form CRPS of a
normal distribution, and utilsforecast.losses as the oracle on random panels."""

from functools import partial
from statistics import NormalDist

import numpy as np
import pytest

from lstmkit.train.forecast_metrics import (
    coverage,
    crps,
    mase,
    msis,
    panel_metrics,
    pinball,
    seasonal_scale,
    smape,
)

# seasonal scale at lag 2: |2-1|, |6-3|, |5-2| -> 7/3
INSAMPLE = np.array([1.0, 3.0, 2.0, 6.0, 5.0])
LEVELS = [0.1, 0.5, 0.9]
QUANTILES = np.array([[8.0, 10.0, 13.0], [15.0, 22.0, 24.0]])


def test_smape_by_hand():
    # 200·2/4, 0, both zero -> 0, 200·2/2
    assert smape([1, 2, 0, -1], [3, 2, 0, 1]) == pytest.approx(75.0)
    assert smape([0.0], [0.0]) == 0.0
    assert smape([5.0], [-5.0]) == pytest.approx(200.0)


def test_mase_by_hand_with_its_fallbacks():
    assert seasonal_scale(INSAMPLE, 2) == pytest.approx(7 / 3)
    assert mase([4, 8], [5, 5], INSAMPLE, 2) == pytest.approx(2 / (7 / 3))
    # 3 in-sample values, season 4: lag 1, |3-1|, |2-3| -> 1.5
    assert seasonal_scale([1, 3, 2], 4) == pytest.approx(1.5)
    assert mase([2], [5], [1, 3, 2], 4) == pytest.approx(2.0)
    assert seasonal_scale([1, 3, 2, 6], 4) == pytest.approx(7 / 3)  # n == m: lag 1 too
    # no scale at all: NaN; a zero scale: inf (NaN when the error is 0 as well)
    assert np.isnan(mase([2], [5], [1.0], 12))
    assert mase([2], [5], [3, 3, 3, 3], 1) == np.inf
    assert np.isnan(mase([3], [3], [3, 3, 3, 3], 1))


def test_coverage_and_msis_by_hand():
    # 0≤1≤2 in, 2≤2≤2 in (bounds count), 3 below 3.5 out, 4 above 3.9 out
    assert coverage([1, 2, 3, 4], [0, 2, 3.5, 0], [2, 2, 5, 3.9]) == 0.5
    # alpha 0.5 -> 2/alpha = 4: widths 2, 2, 7; penalties 0, 4·(6-5), 4·(10-9)
    value = msis([1, 5, 10], [0, 6, 2], [2, 8, 9], INSAMPLE, 2, alpha=0.5)
    assert value == pytest.approx((19 / 3) / (7 / 3))


def test_pinball_and_crps_by_hand():
    # errors y - q: [2, 0, -3] -> 0.2 + 0 + 0.3; [5, -2, -4] -> 0.5 + 1 + 0.4; mean of 6
    assert pinball([10, 20], QUANTILES, LEVELS) == pytest.approx(0.4)
    assert crps([10, 20], QUANTILES, LEVELS) == pytest.approx(0.8)
    assert crps([10, 20], QUANTILES, LEVELS, INSAMPLE, 2) == pytest.approx(0.8 / (7 / 3))


def test_crps_approaches_the_closed_form_of_a_normal():
    """CRPS(N(μ, σ²), y) = σ[z(2Φ(z) − 1) + 2φ(z) − 1/√π], z = (y − μ)/σ."""
    mu, sigma, y = 3.0, 2.0, np.array([1.0, 3.5, 8.0])
    normal = NormalDist(mu, sigma)
    levels = (np.arange(2000) + 0.5) / 2000
    q = np.tile([normal.inv_cdf(t) for t in levels], (3, 1))
    z = (y - mu) / sigma
    pdf = np.array([NormalDist().pdf(v) for v in z])
    cdf = np.array([NormalDist().cdf(v) for v in z])
    exact = sigma * (z * (2 * cdf - 1) + 2 * pdf - 1 / np.sqrt(np.pi))
    assert crps(y, q, levels) == pytest.approx(exact.mean(), rel=1e-3)


def test_errors_say_what_was_expected():
    with pytest.raises(ValueError, match=r"forecast: expected 2 values \(as actual\), got 3"):
        smape([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match=r"quantile_forecasts: expected shape \(2, Q\), got \(3,"):
        pinball([1, 2], np.zeros((3, 3)), LEVELS)
    with pytest.raises(ValueError, match="levels: expected 3 quantile levels"):
        pinball([1, 2], np.zeros((2, 3)), [0.5])
    with pytest.raises(ValueError, match=r"levels: expected quantile levels in \(0, 1\)"):
        pinball([1, 2], np.zeros((2, 3)), [0.1, 0.5, 90])
    with pytest.raises(ValueError, match="forecast: expected finite numbers"):
        mase([1.0], [np.nan], INSAMPLE, 1)
    with pytest.raises(ValueError, match="season: expected a positive integer, got 0"):
        seasonal_scale(INSAMPLE, 0)
    with pytest.raises(ValueError, match=r"alpha: expected a number in \(0, 1\), got 5"):
        msis([1], [0], [2], INSAMPLE, 1, alpha=5)
    y = [np.ones(3), np.ones(2)]
    with pytest.raises(ValueError, match=r"forecasts: expected 2 series \(as actuals\), got 1"):
        panel_metrics(y, [np.ones(3)], y, 1)
    with pytest.raises(ValueError, match=r"forecasts\[1\]: expected 2 values \(as actuals\[1\]\)"):
        panel_metrics(y, [np.ones(3), np.ones(3)], y, 1)
    with pytest.raises(ValueError, match="lower/upper: expected both interval bounds or neither"):
        panel_metrics(y, y, y, 1, lower=y)
    with pytest.raises(ValueError, match=r"quantiles\[0\]: expected shape \(3, Q\), got \(2, 3\)"):
        panel_metrics(y, y, y, 1, quantiles=[np.ones((2, 3))] * 2, levels=LEVELS)


# --- utilsforecast as the oracle --------------------------------------------------------


@pytest.fixture(scope="module")
def panel():
    """Eight random series with history lengths 20–40, horizon 6, an 80 % interval and
    five quantiles around a noisy point forecast."""
    rng = np.random.default_rng(0)
    h, levels = 6, np.array([0.1, 0.25, 0.5, 0.75, 0.9])
    out = {"insamples": [], "actuals": [], "forecasts": [], "lower": [], "upper": []}
    out["quantiles"], out["levels"] = [], levels
    for n in rng.integers(20, 41, 8):
        series = 50 + 10 * np.sin(np.arange(n + h) * 2 * np.pi / 4) + rng.normal(0, 3, n + h)
        series[rng.random(n + h) < 0.1] = 0.0  # some zeros, for sMAPE's 0/0 rule
        point = series[n:] + rng.normal(0, 4, h)
        width = rng.uniform(1, 8, h)
        out["insamples"].append(series[:n])
        out["actuals"].append(series[n:])
        out["forecasts"].append(point)
        out["lower"].append(point - width)
        out["upper"].append(point + width)
        out["quantiles"].append(point[:, None] + np.sort(rng.normal(0, 5, (h, 5)), axis=1))
    return out


def _frames(panel):
    import pandas as pd

    train, test = [], []
    for i, (x, y) in enumerate(zip(panel["insamples"], panel["actuals"], strict=True)):
        train.append(pd.DataFrame({"unique_id": i, "ds": np.arange(len(x)), "y": x}))
        columns = {
            "unique_id": i,
            "ds": len(x) + np.arange(len(y)),
            "y": y,
            "m": panel["forecasts"][i],
            "m-lo-80": panel["lower"][i],
            "m-hi-80": panel["upper"][i],
        }
        columns |= {f"q{j}": panel["quantiles"][i][:, j] for j in range(5)}
        test.append(pd.DataFrame(columns))
    return pd.concat(train, ignore_index=True), pd.concat(test, ignore_index=True)


def _per_series(frame) -> np.ndarray:
    return frame.sort_values("unique_id")["m"].to_numpy(np.float64)


def test_per_series_values_equal_utilsforecast(panel):
    losses = pytest.importorskip("utilsforecast.losses")
    train, test = _frames(panel)
    season, quantile_columns = 4, {"m": [f"q{j}" for j in range(5)]}
    want = {
        # utilsforecast's sMAPE is |y - f| / (|y| + |f|): 0 … 1, M4's is 200 times that
        "smape": 200 * _per_series(losses.smape(test, ["m"])),
        "mase": _per_series(losses.mase(test, ["m"], season, train)),
        "coverage": _per_series(losses.coverage(test, ["m"], level=80)),
        "crps": 2 * _per_series(losses.mqloss(test, quantile_columns, panel["levels"])),
        "scaled_crps": 2
        * _per_series(losses.scaled_mqloss(test, quantile_columns, panel["levels"], season, train)),
        "rangapuram": _per_series(losses.scaled_crps(test, quantile_columns, panel["levels"])),
    }
    # MSIS: the Winkler score over MASE's scale (MAE / MASE)
    scale = _per_series(losses.mae(test, ["m"])) / want["mase"]
    want["msis"] = _per_series(losses.winkler_score(test, ["m"], level=80)) / scale
    got = {name: [] for name in want}
    for i, y in enumerate(panel["actuals"]):
        f, x, q = panel["forecasts"][i], panel["insamples"][i], panel["quantiles"][i]
        lo, hi = panel["lower"][i], panel["upper"][i]
        got["smape"].append(smape(y, f))
        got["mase"].append(mase(y, f, x, season))
        got["coverage"].append(coverage(y, lo, hi))
        got["msis"].append(msis(y, lo, hi, x, season, alpha=0.2))
        got["crps"].append(crps(y, q, panel["levels"]))
        got["scaled_crps"].append(crps(y, q, panel["levels"], x, season))
        got["rangapuram"].append(crps(y, q, panel["levels"]) / np.mean(np.abs(y)))
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-10, err_msg=name)
    assert 0 < np.mean(got["coverage"]) < 1  # both sides of the intervals are exercised
    assert any((y == 0).any() for y in panel["actuals"])


def test_panel_metrics_are_means_over_series_as_utilsforecast_evaluates(panel):
    pytest.importorskip("utilsforecast")
    from utilsforecast.evaluation import evaluate
    from utilsforecast.losses import coverage as uf_coverage
    from utilsforecast.losses import mase as uf_mase
    from utilsforecast.losses import smape as uf_smape

    train, test = _frames(panel)
    rows = evaluate(
        test.drop(columns=[f"q{j}" for j in range(5)]),
        metrics=[uf_smape, partial(uf_mase, seasonality=4)],
        models=["m"],
        train_df=train,
        agg_fn="mean",
    )
    rows = dict(zip(rows["metric"], rows["m"], strict=True))
    got = panel_metrics(
        panel["actuals"],
        panel["forecasts"],
        panel["insamples"],
        4,
        lower=panel["lower"],
        upper=panel["upper"],
        quantiles=panel["quantiles"],
        levels=panel["levels"],
    )
    assert set(got) == {"smape", "mase", "coverage", "msis", "crps"}
    assert got["smape"] == pytest.approx(200 * rows["smape"], rel=1e-12)
    assert got["mase"] == pytest.approx(rows["mase"], rel=1e-12)
    want_coverage = _per_series(uf_coverage(test, ["m"], level=80)).mean()
    assert got["coverage"] == pytest.approx(want_coverage, rel=1e-12)
    per_series_crps = [
        crps(y, q, panel["levels"], x, 4)
        for y, q, x in zip(panel["actuals"], panel["quantiles"], panel["insamples"], strict=True)
    ]
    assert got["crps"] == pytest.approx(np.mean(per_series_crps), rel=1e-12)
    points_only = panel_metrics(panel["actuals"], panel["forecasts"], panel["insamples"], 4)
    assert points_only == {"smape": got["smape"], "mase": got["mase"]}


def test_short_history_uses_lag_one_as_utilsforecast_at_seasonality_one(panel):
    losses = pytest.importorskip("utilsforecast.losses")
    short = {**panel, "insamples": [x[:3] for x in panel["insamples"]]}  # 3 values, season 4
    train, test = _frames(short)
    want = _per_series(losses.mase(test, ["m"], 1, train))
    got = [
        mase(y, f, x, 4)
        for y, f, x in zip(short["actuals"], short["forecasts"], short["insamples"], strict=True)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)
