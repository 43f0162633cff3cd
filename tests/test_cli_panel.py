"""lstmkit forecast on panels: a long CSV and a .tsf file end to end (metrics.json with every
baseline row, predictions.csv in long form tied to the saved model and to the coverage in
metrics.json, the fan chart in the report, the season from the data), and bad panels
refused with one line before any run directory exists."""

import csv
import json
import tomllib

import numpy as np
import pandas as pd
import pytest

import lstmkit.tasks.global_forecast as global_forecast
from lstmkit.cli import main
from lstmkit.data import TsfData, write_tsf
from lstmkit.tasks import Forecaster, forecast_baselines

SMALL = ("--hidden-size", 8, "--lookback", 12, "--quiet")
ROWS = {"model", "naive", "seasonal_naive", "mean"} | (
    {"AutoETS", "AutoTheta", "AutoARIMA"} if forecast_baselines.available() else set()
)


@pytest.fixture(autouse=True)
def short_budget(monkeypatch):
    monkeypatch.setattr(global_forecast, "MAX_STEPS", 30)
    monkeypatch.setattr(global_forecast, "MIN_STEPS", 30)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def seasonal(n, level, seed):
    rng = np.random.default_rng(seed)
    return np.round(level + np.sin(np.arange(n) * 2 * np.pi / 12) + rng.normal(0, 0.2, n), 3)


def long_csv(path, lengths):
    """A long CSV of monthly series s0, s1, … (rows shuffled); returns {id: (months, values)}."""
    panel = {}
    for k, n in enumerate(lengths):
        months = pd.date_range("2015-01-01", periods=n, freq="MS").strftime("%Y-%m").tolist()
        panel[f"s{k}"] = (months, seasonal(n, 10 + k, k))
    frame = pd.DataFrame(
        [
            (i, t, v)
            for i, (months, values) in panel.items()
            for t, v in zip(months, values, strict=True)
        ],
        columns=["store", "date", "sales"],
    )
    frame.sample(frac=1, random_state=0).to_csv(path, index=False)
    return panel


def read_rows(path):
    with path.open() as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_long_csv_panel_end_to_end(tmp_path, capsys):
    panel = long_csv(tmp_path / "panel.csv", [30 + 3 * k for k in range(8)])
    out = tmp_path / "run"
    code, _, err = run(
        capsys,
        *("forecast", "--data", tmp_path / "panel.csv", "--id-column", "store"),
        *("--time-column", "date", "--target", "sales", "--horizon", 4, "--out", out, *SMALL),
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == ROWS
    assert list(metrics)[:4] == ["model", "naive", "seasonal_naive", "mean"]
    assert set(metrics["model"]) == {"smape", "mase", "coverage", "msis", "crps"}
    header, rows = read_rows(out / "predictions.csv")
    assert header == ["id", "time", "actual", "predicted", "q0.1", "q0.5", "q0.9"]
    assert len(rows) == 8 * 4  # one row per series and held-out step
    for name, (months, values) in panel.items():
        mine = [r for r in rows if r["id"] == name]
        assert [r["time"] for r in mine] == months[-4:]
        assert [float(r["actual"]) for r in mine] == values[-4:].tolist()
    q = np.array([[float(r[c]) for c in ("q0.1", "q0.5", "q0.9")] for r in rows])
    assert (np.diff(q, axis=1) >= 0).all()
    np.testing.assert_array_equal(q[:, 1], [float(r["predicted"]) for r in rows])
    # the saved model is the one that forecast: its quantiles are the CSV's
    model = Forecaster.load(out / "model")
    assert model.season_ == 12  # inferred from the monthly dates
    every = model.panel_quantiles(4)
    order = [model.panel_.ids.index(r["id"]) for r in rows[::4]]
    np.testing.assert_allclose(q, every[order].reshape(-1, 3), rtol=1e-12)
    # metrics.json's coverage is that of the 80 % interval in predictions.csv, per series
    actual = np.array([float(r["actual"]) for r in rows])
    inside = ((q[:, 0] <= actual) & (actual <= q[:, 2])).reshape(8, 4).mean(1)
    assert metrics["model"]["coverage"] == pytest.approx(inside.mean())
    html = (out / "report.html").read_text()
    assert "Forecasts of the first 6 of 8 series" in html and "80 % interval" in html
    assert (out / "fan_chart.png").read_bytes().startswith(b"\x89PNG")
    # predict with the saved panel model: one row per series and step, as forecast wrote
    code, _, err = run(capsys, "predict", "--model", out, "--steps", 2, "--out", tmp_path / "p")
    assert code == 0, err
    header, ahead = read_rows(tmp_path / "p" / "predictions.csv")
    assert header == ["id", "step", "predicted", "q0.1", "q0.5", "q0.9"] and len(ahead) == 16
    np.testing.assert_allclose(
        [float(r["q0.9"]) for r in ahead[:2]], [float(r["q0.9"]) for r in rows[:2]], rtol=1e-12
    )


def test_tsf_panel_takes_horizon_and_season_from_the_file(tmp_path, capsys):
    series = [seasonal(n, 20 + n, n) for n in (26, 31, 40)]
    write_tsf(
        tmp_path / "q.tsf",
        TsfData(
            names=["a", "b", "c"],
            series=series,
            starts=[None] * 3,
            attributes={},
            frequency="quarterly",
            horizon=3,
        ),
    )
    out = tmp_path / "run"
    code, _, err = run(
        capsys, "forecast", "--data", tmp_path / "q.tsf", "--models", 2, "--out", out, *SMALL
    )
    assert code == 0, err
    config = tomllib.loads((out / "config.toml").read_text())
    assert (config["horizon"], config["season"], config["n_models"]) == (3, 4, 2)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == ROWS
    # the seasonal-naive row by hand with the quarterly season 4 (MASE scaled by it too)
    by_hand = np.mean(
        [np.abs(s[-3:] - s[-7:-4]).mean() / np.abs(s[4:-3] - s[:-7]).mean() for s in series]
    )
    assert metrics["seasonal_naive"]["mase"] == pytest.approx(by_hand)
    _, rows = read_rows(out / "predictions.csv")
    assert [(r["id"], r["time"]) for r in rows[:3]] == [("a", "23"), ("a", "24"), ("a", "25")]
    assert len(rows) == 9
    assert "Forecasts of the first 3 of 3 series" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--id-column", "store", "--test", 8),
            "series 's1': expected at least --test + 2 = 10 points (2 to train on, 8 held out), "
            "got 9",
        ),
        (("--id-column", "shop"), "--id-column: unknown column 'shop'; the file has"),
        (("--id-column", "store", "--quantiles", "0.1,0.9"), "including 0.5"),
    ],
)
def test_bad_panels_exit_2_with_one_line_and_no_run_directory(tmp_path, capsys, args, message):
    long_csv(tmp_path / "panel.csv", [30, 9, 30])
    out = tmp_path / "run"
    code, text, err = run(capsys, "forecast", "--data", tmp_path / "panel.csv", *args, "--out", out)
    assert code == 2
    assert err.startswith("lstmkit: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err + text
    assert not out.exists()


def test_one_series_with_quantiles_is_a_panel_of_one(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(
        capsys,
        *("forecast", "--data", "airline", "--horizon", 6, "--quantiles", "0.25,0.5,0.75"),
        *("--out", out, *SMALL),
    )
    assert code == 0, err
    config = tomllib.loads((out / "config.toml").read_text())
    assert config["season"] == 12  # one series: 12 unless given, as before
    header, rows = read_rows(out / "predictions.csv")
    assert header == ["id", "time", "actual", "predicted", "q0.25", "q0.5", "q0.75"]
    assert [(r["id"], r["time"]) for r in rows] == [
        ("Passengers", f"1960-{m:02d}") for m in range(7, 13)
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["model"]) == {"smape", "mase", "coverage", "msis", "crps"}  # 50 % band
    assert "50 % interval" in (out / "report.html").read_text()


def with_static(path, sizes):
    """Add a ``size`` column (one value per store) and a ``code`` column to a long CSV."""
    frame = pd.read_csv(path)
    frame["size"] = frame["store"].map(sizes)
    frame["code"] = frame["store"].str[1:].astype(int) * 10
    frame.to_csv(path, index=False)


def test_static_columns_reach_the_global_model(tmp_path, capsys):
    """Oracle: the static covariates standardised by hand over the series (mean 0, population
    std 1 per column), in the saved model's series order; and forecasts that differ from the
    same run without them (the network reads them)."""
    long_csv(tmp_path / "panel.csv", [30, 33, 36])
    sizes = {"s0": 1.0, "s1": 5.0, "s2": 2.5}
    with_static(tmp_path / "panel.csv", sizes)
    args = ("forecast", "--data", tmp_path / "panel.csv", "--id-column", "store", "--target",
            "sales", "--horizon", 4, *SMALL)  # fmt: skip
    code, _, err = run(capsys, *args, "--static-columns", "size,code", "--out", tmp_path / "s")
    assert code == 0, err
    model = Forecaster.load(tmp_path / "s" / "model")
    raw = np.array([[sizes[i], int(i[1:]) * 10] for i in model.panel_.ids])
    np.testing.assert_allclose(model.static_, (raw - raw.mean(0)) / raw.std(0), rtol=1e-12)
    code, _, err = run(capsys, *args, "--out", tmp_path / "plain")  # the column is ignored
    assert code == 0, err
    with_static_rows, plain_rows = (
        read_rows(tmp_path / name / "predictions.csv")[1] for name in ("s", "plain")
    )
    assert [r["predicted"] for r in with_static_rows] != [r["predicted"] for r in plain_rows]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--static-columns", "size"), "--static-columns: expected a long CSV with --id-column"),
        (("--id-column", "store", "--static-columns", "shop"),
         "--static-columns: unknown column 'shop'; the file has 'store', 'date', 'sales'"),
        (("--id-column", "store", "--time-column", "date", "--static-columns", "date"),
         "expected different columns, got 'store', 'date', 'sales', 'date'"),
        (("--id-column", "store", "--static-columns", "row"),
         "column 'row': expected one value per series (--static-columns), got several for "
         "series 's"),
    ],
)  # fmt: skip
def test_bad_static_columns_exit_2_before_training(tmp_path, capsys, args, message):
    long_csv(tmp_path / "panel.csv", [30, 30])
    with_static(tmp_path / "panel.csv", {"s0": 1.0, "s1": 2.0})
    frame = pd.read_csv(tmp_path / "panel.csv")
    frame.assign(row=range(len(frame))).to_csv(tmp_path / "panel.csv", index=False)
    base = ("forecast", "--data", tmp_path / "panel.csv", "--target", "sales", "--epochs", 100000)
    code, _, err = run(capsys, *base, *args, "--out", tmp_path / "run")
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()


def with_promo(path, seed=0):
    """Add a ``promo`` column (0/1 per row, adding 3 to the sales of its month) and a
    ``price`` column to a long CSV."""
    frame = pd.read_csv(path)
    rng = np.random.default_rng(seed)
    frame["promo"] = (rng.random(len(frame)) < 0.3).astype(int)
    frame["sales"] += 3 * frame["promo"]
    frame["price"] = np.round(rng.normal(5, 1, len(frame)), 2)
    frame.to_csv(path, index=False)
    return frame


def test_per_step_covariates_reach_the_global_model(tmp_path, capsys):
    """The saved model holds each series' covariate columns in its time order (oracle: the
    CSV's columns sorted by date per store), reads them (forecasts differ from the run
    without), and the test months' promotions come from the held-out rows."""
    long_csv(tmp_path / "panel.csv", [30, 33, 36])
    frame = with_promo(tmp_path / "panel.csv")
    args = ("forecast", "--data", tmp_path / "panel.csv", "--id-column", "store", "--target",
            "sales", "--horizon", 4, *SMALL)  # fmt: skip
    code, _, err = run(
        capsys, *args, "--covariates", "price", "--future-covariates", "promo",
        "--out", tmp_path / "c",
    )  # fmt: skip
    assert code == 0, err
    model = Forecaster.load(tmp_path / "c" / "model")
    assert model.panel_.names == (("price",), ("promo",))
    for name, past, future in zip(
        model.panel_.ids, model.panel_.covariates, model.panel_.future, strict=True
    ):
        rows = frame[frame["store"] == name].sort_values("date")[:-4]  # the training part
        np.testing.assert_array_equal(past[:, 0], rows["price"])
        np.testing.assert_array_equal(future[:, 0], rows["promo"])
    metrics = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert set(metrics) == ROWS
    code, _, err = run(capsys, *args, "--out", tmp_path / "plain")  # the columns are ignored
    assert code == 0, err
    with_rows, plain_rows = (
        read_rows(tmp_path / name / "predictions.csv")[1] for name in ("c", "plain")
    )
    assert [r["predicted"] for r in with_rows] != [r["predicted"] for r in plain_rows]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--future-covariates", "promo"),
         "--covariates/--future-covariates: expected a long CSV with --id-column"),
        (("--id-column", "store", "--covariates", "cost"),
         "--covariates: unknown column 'cost'; the file has"),
        (("--id-column", "store", "--future-covariates", "note"),
         "data row 3, column 'note': expected a finite number (a per-step covariate), got 'x'"),
        (("--id-column", "store", "--time-column", "date", "--covariates", "sales"),
         "expected different columns, got 'store', 'date', 'sales', 'sales'"),
    ],
)  # fmt: skip
def test_bad_covariate_columns_exit_2_before_training(tmp_path, capsys, args, message):
    long_csv(tmp_path / "panel.csv", [30, 30])
    frame = with_promo(tmp_path / "panel.csv")
    frame.assign(note=["x" if k == 2 else "1" for k in range(len(frame))]).to_csv(
        tmp_path / "panel.csv", index=False
    )
    base = ("forecast", "--data", tmp_path / "panel.csv", "--target", "sales", "--epochs", 100000)
    code, _, err = run(capsys, *base, "--quantiles", "0.1,0.5,0.9", *args, "--out", tmp_path / "r")
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and not (tmp_path / "r").exists()


def test_a_duplicate_date_is_named_by_its_text(tmp_path, capsys):
    long_csv(tmp_path / "panel.csv", [30, 30])
    with (tmp_path / "panel.csv").open("a") as f:
        f.write("s1,2015-01,3.5\n")
    args = ("--data", tmp_path / "panel.csv", "--id-column", "store", "--target", "sales")
    code, _, err = run(capsys, "forecast", *args, "--out", tmp_path / "run")
    assert code == 2, err
    assert "series 's1': expected one value per time stamp, got time '2015-01-01 00:00:00' " \
        "twice" in err  # fmt: skip
