"""The baselines beside every sequence score against aeon run directly on the same split:
MiniRocket and 1-NN DTW (10 % band) for classification, MiniRocket for regression; unequal
lengths padded for MiniRocket, as they are for DTW; and the rows evaluate() adds."""

from pathlib import Path

import numpy as np
import pytest

from lstmkit.data.ts import read_ts
from lstmkit.tasks.baselines import padded, peers_available, sequence_baselines
from lstmkit.tasks.sequence import SequenceClassifier, SequenceRegressor

pytest.importorskip("aeon", reason="the classify extra (aeon) is a dev dependency")
from aeon.classification.convolution_based import MiniRocketClassifier
from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.regression.convolution_based import MiniRocketRegressor

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "timeseries"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")


def _gunpoint():
    X_train, y_train = read_ts(DATA / "GunPoint" / "GunPoint_TRAIN.ts")
    X_test, y_test = read_ts(DATA / "GunPoint" / "GunPoint_TEST.ts")
    return X_train, y_train, X_test[:60], y_test[:60]


@needs_data
def test_classification_rows_equal_aeon_run_directly():
    X_train, y_train, X_test, y_test = _gunpoint()
    rows = sequence_baselines("classify", X_train, y_train, X_test, y_test)
    assert set(rows) == {"majority", "minirocket", "dtw_1nn"}
    train = np.stack([s.T for s in X_train])  # (N, 1, 150), as a user passes it to aeon
    test = np.stack([s.T for s in X_test])
    rocket = MiniRocketClassifier(random_state=0).fit(train, y_train)
    assert rows["minirocket"]["accuracy"] == pytest.approx(np.mean(rocket.predict(test) == y_test))
    knn = KNeighborsTimeSeriesClassifier(distance="dtw", distance_params={"window": 0.1})
    knn.fit(train, y_train)
    assert rows["dtw_1nn"]["accuracy"] == pytest.approx(np.mean(knn.predict(test) == y_test))
    assert rows["minirocket"]["accuracy"] > 0.9  # GunPoint: a strong baseline indeed


def test_unequal_lengths_are_padded_for_minirocket_and_kept_for_dtw():
    rng = np.random.default_rng(0)
    lengths = rng.integers(12, 40, 30)
    X = [np.sin(np.arange(n)[:, None] * (0.2 + 0.3 * (k % 2))) for k, n in enumerate(lengths)]
    y = np.array(["slow", "fast"] * 15)
    rows = sequence_baselines("classify", X[:20], y[:20], X[20:], y[20:])
    longest = int(lengths.max())
    rocket = MiniRocketClassifier(random_state=0).fit(padded(X[:20], longest), y[:20])
    want = np.mean(rocket.predict(padded(X[20:], longest)) == y[20:])
    assert rows["minirocket"]["accuracy"] == pytest.approx(want)
    knn = KNeighborsTimeSeriesClassifier(distance="dtw", distance_params={"window": 0.1})
    knn.fit([s.T for s in X[:20]], y[:20])
    assert rows["dtw_1nn"]["accuracy"] == pytest.approx(
        np.mean(knn.predict([s.T for s in X[20:]]) == y[20:])
    )


def test_regression_rows_equal_aeon_and_the_training_mean():
    rng = np.random.default_rng(1)
    X = [rng.normal(size=(30, 2)) for _ in range(40)]
    y = np.array([s[:, 0].sum() for s in X])
    rows = sequence_baselines("regress", X[:30], y[:30], X[30:], y[30:])
    assert set(rows) == {"mean", "minirocket"}
    want = MiniRocketRegressor(random_state=0).fit(padded(X[:30], 30), y[:30])
    pred = want.predict(padded(X[30:], 30))
    assert rows["minirocket"]["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y[30:]) ** 2)))
    assert rows["mean"]["mae"] == pytest.approx(np.mean(np.abs(y[30:] - y[:30].mean())))


def test_evaluate_puts_the_baselines_beside_the_model(tmp_path):
    rng = np.random.default_rng(2)
    X = [rng.normal(size=(int(n), 1)) for n in rng.integers(10, 20, 40)]
    y = np.array(["a" if s.mean() > 0 else "b" for s in X])
    kwargs = {"hidden_size": 4, "conv_filters": (3, 4, 3), "epochs": 2, "progress": False}
    model = SequenceClassifier(**kwargs).fit(X[:30], y[:30])
    rows = model.evaluate(X[30:], y[30:])
    assert list(rows) == ["model", "majority", "minirocket", "dtw_1nn"]
    assert rows == model.evaluate(X[30:], y[30:], train=(X[:30], y[:30]))
    assert list(model.evaluate(X[30:], y[30:], baselines=False)) == ["model"]
    loaded = SequenceClassifier.load(model.save(tmp_path / "m"))  # keeps no training data
    assert list(loaded.evaluate(X[30:], y[30:])) == ["model"]
    per_step = SequenceRegressor(output="sequence", hidden_size=4, epochs=2, progress=False)
    per_step.fit(X[:30], [s[:, 0] for s in X[:30]])
    assert list(per_step.evaluate(X[30:], [s[:, 0] for s in X[30:]])) == ["model", "mean"]
    assert peers_available()


@pytest.mark.parametrize("threads", [1, 2])
def test_the_peers_leave_torchs_thread_count_as_it_was(threads):
    """aeon's numba kernels reset the OpenMP thread count torch reads; a later fit then
    computed other floats (the one-process tuning oracle of test_distributed disagreed)."""
    import torch

    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(n), 1)) for n in rng.integers(12, 20, 12)]
    y = np.arange(12) % 2
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        sequence_baselines("classify", X, y, X, y)
        assert torch.get_num_threads() == threads
        values = rng.normal(size=12)
        sequence_baselines("regress", X, values, X, values)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
