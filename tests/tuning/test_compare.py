"""The comparison runner: every contender and seed evaluated on the test part only, the
tuners given the same budget, baselines by hand, mean ± std by hand."""

import statistics

import numpy as np
import pytest

from lstmkit.tasks import Forecaster, SequenceClassifier
from lstmkit.tuning.compare import CONTENDERS, Comparison, compare


def test_forecast_comparison_rows_budget_and_baselines():
    y = np.sin(np.arange(70) / 3.0) * 5 + np.arange(70) * 0.2 + 20
    train, test = y[:-6], y[-6:]
    result = compare(
        Forecaster,
        (train,),
        (test,),
        seeds=(0, 1),
        n_whales=2,
        iterations=2,
        fixed={"horizon": 6, "epochs": 3, "lookback": 8, "hidden_size": 8},
    )
    assert list(result.runs) == [c.name for c in CONTENDERS]
    assert all(len(runs) == 2 for runs in result.runs.values())
    # the same budget for both tuners: n_whales x iterations completed trials each
    for name in ("WOA-BiLSTM", "random-BiLSTM"):
        assert [t["seed"] for t in result.tuned[name]] == [0, 1]
        assert set(result.tuned[name][0]["params"]) == {"num_layers", "lr", "dropout", "batch_size"}
    # baselines by hand on the test part
    assert result.baselines["naive"]["rmse"] == pytest.approx(
        float(np.sqrt(np.mean((test - train[-1]) ** 2)))
    )
    assert result.baselines["mean"]["mae"] == pytest.approx(
        float(np.mean(abs(test - train.mean())))
    )
    # the plain rows are the estimators' own results for those seeds
    model = Forecaster(
        horizon=6,
        epochs=3,
        lookback=8,
        hidden_size=8,
        cell="gru",
        bidirectional=False,
        seed=1,
        progress=False,
    ).fit(train)
    assert result.runs["GRU"][1]["rmse"] == pytest.approx(model.evaluate(test)["model"]["rmse"])
    summary = result.summary()
    values = [r["rmse"] for r in result.runs["LSTM"]]
    assert summary["LSTM"]["rmse"] == pytest.approx(
        (statistics.fmean(values), statistics.stdev(values))
    )
    table = result.to_markdown()
    assert table.splitlines()[0] == "| model | rmse | mae | mape | r2 | wall s |"
    assert "| seasonal_naive |" in table and "2 seeds (0, 1)" in table


def test_classification_comparison_majority_baseline():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(n), 2)) for n in rng.integers(4, 9, size=80)]
    y = np.array(["pos" if x[:, 0].sum() > 0 else "neg" for x in X])
    y[:10] = "neg"
    result = compare(
        SequenceClassifier,
        (X[:60], y[:60]),
        (X[60:], y[60:]),
        seeds=(0,),
        n_whales=2,
        iterations=1,
        contenders=CONTENDERS[2:4],
        fixed={"epochs": 2, "hidden_size": 4},
    )
    assert list(result.runs) == ["BiLSTM", "WOA-BiLSTM"]
    majority = max(set(y[:60]), key=list(y[:60]).count)
    assert result.baselines["majority"]["accuracy"] == pytest.approx(np.mean(y[60:] == majority))
    assert "accuracy" in result.to_markdown()


def test_bad_arguments():
    with pytest.raises(ValueError, match="seeds: expected at least one seed"):
        compare(Forecaster, (np.arange(50.0),), (np.arange(5.0),), seeds=())
    with pytest.raises(ValueError, match=r"test: expected \(X_test, y_test\)"):
        compare(SequenceClassifier, ([np.zeros((3, 1))], [0]), ([np.zeros((3, 1))],))
    assert Comparison("forecast", (0,)).summary() == {}
