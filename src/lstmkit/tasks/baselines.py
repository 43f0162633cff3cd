r"""The baselines beside every sequence score: what a user would try instead of an LSTM.

Always: the majority class (classification, tagging) or the training mean (regression),
from :func:`lstmkit.train.metrics.baseline_metrics`. With the ``classify`` extra installed
(``pip install 'lstmkit[classify]'``, which brings aeon), also the strongest cheap peers
of time-series classification and regression, fitted on the same training part and
scored on the same test part:

============  ===========================================================================
row           what runs (aeon, with its defaults unless said)
============  ===========================================================================
minirocket    ``MiniRocketClassifier`` / ``MiniRocketRegressor`` (Dempster et al. 2021):
              10,000 features of fixed dilated convolutions, a ridge model on them
dtw_1nn       ``KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw")`` with a
              Sakoe–Chiba band of 10 % of the length (``window=0.1``) — the classic
              1-NN DTW benchmark; a full window costs minutes on series of 1,000 steps
============  ===========================================================================

Why aeon rather than sktime: aeon is where MiniRocket's and the elastic distances' own
authors maintain them (numba kernels, cached after the first call), and its base install
is numpy/pandas/scikit-learn/numba with no deep-learning stack.

Inputs as everywhere in :mod:`lstmkit.tasks.sequence`: N arrays (T_i, D). aeon wants
(N, D, T): series of unequal lengths are **zero-padded at the end** to the longest series
of the training and test parts together (at least 9 steps, MiniRocket's shortest kernel)
for MiniRocket, which needs equal lengths; 1-NN DTW takes them unequal as they are
(aeon's own support). Values go in as given, as a user running aeon directly would pass
them (the UCR/UEA series are already z-normalised per series).
"""

import importlib.util
import warnings

import numpy as np

from lstmkit.train.metrics import baseline_metrics, classification_metrics, regression_metrics
from lstmkit.train.threads import torch_threads

DTW_WINDOW = 0.1  # the Sakoe–Chiba band of the DTW baseline, as a fraction of the length
MIN_MINIROCKET_LENGTH = 9  # MiniRocket's shortest input: its kernels have 9 taps


def peers_available() -> bool:
    """True when aeon (the ``classify`` extra) is installed."""
    return importlib.util.find_spec("aeon") is not None


def padded(sequences: list[np.ndarray], length: int) -> np.ndarray:
    """(N, D, length) float64: each (T_i, D) sequence transposed, zeros after its end."""
    out = np.zeros((len(sequences), sequences[0].shape[1], length))
    for n, s in enumerate(sequences):
        out[n, :, : len(s)] = s.T
    return out


def _equal_length(X_train, X_test) -> tuple[np.ndarray, np.ndarray]:
    length = max(MIN_MINIROCKET_LENGTH, *(len(s) for s in X_train), *(len(s) for s in X_test))
    return padded(X_train, length), padded(X_test, length)


def _channels_first(sequences) -> list[np.ndarray] | np.ndarray:
    """aeon's collection: (N, D, T) when all lengths agree, else a list of (D, T_i)."""
    if len({len(s) for s in sequences}) == 1:
        return np.stack([s.T for s in sequences])
    return [np.ascontiguousarray(s.T) for s in sequences]


def minirocket_classifier(seed: int = 0, n_jobs: int = 1):
    from aeon.classification.convolution_based import MiniRocketClassifier

    return MiniRocketClassifier(random_state=seed, n_jobs=n_jobs)


def dtw_classifier(n_jobs: int = 1):
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    return KNeighborsTimeSeriesClassifier(
        n_neighbors=1, distance="dtw", distance_params={"window": DTW_WINDOW}, n_jobs=n_jobs
    )


def minirocket_regressor(seed: int = 0, n_jobs: int = 1):
    from aeon.regression.convolution_based import MiniRocketRegressor

    return MiniRocketRegressor(random_state=seed, n_jobs=n_jobs)


def peer_predictions(task: str, X_train, y_train, X_test, *, seed: int = 0, n_jobs: int = 1):
    """{row name: predictions on X_test} of the aeon peers for ``task`` ("classify",
    "regress"); ``{}`` for other tasks or without aeon. Labels come back as given.

    aeon's numba kernels reset the OpenMP thread count that torch reads (a process at one
    torch thread came back at two, and its later fits computed other floats): torch's
    setting is restored afterwards."""
    if not peers_available() or task not in ("classify", "regress"):
        return {}
    with torch_threads():
        return _peer_predictions(task, X_train, y_train, X_test, seed, n_jobs)


def _peer_predictions(task: str, X_train, y_train, X_test, seed: int, n_jobs: int):
    if task == "classify":
        train, test = _equal_length(X_train, X_test)
        rocket = minirocket_classifier(seed, n_jobs).fit(train, np.asarray(y_train))
        knn = dtw_classifier(n_jobs).fit(_channels_first(X_train), np.asarray(y_train))
        with warnings.catch_warnings():  # aeon's DTW kernel casts its window's index type
            warnings.filterwarnings("ignore", message="unsafe cast from uint64 to int64")
            dtw = knn.predict(_channels_first(X_test))
        return {"minirocket": rocket.predict(test), "dtw_1nn": dtw}
    targets = np.asarray(y_train, dtype=np.float64)
    if targets.ndim != 1:  # aeon's regressors take one target per series
        return {}
    train, test = _equal_length(X_train, X_test)
    return {"minirocket": minirocket_regressor(seed, n_jobs).fit(train, targets).predict(test)}


def sequence_baselines(
    task: str, X_train, y_train, X_test, y_test, classes=None, *, peers: bool = True, seed: int = 0
) -> dict[str, dict]:
    """Baseline rows for a sequence task, each scored like the model: the majority class
    or the training mean, then (``peers`` and aeon installed) MiniRocket and 1-NN DTW for
    classification, MiniRocket for regression of one value per sequence. ``classes``: the
    sorted labels the metrics are indexed by (default: those of both parts)."""
    rows = baseline_metrics(task, y_train, y_test, classes)
    if not peers:
        return rows
    predictions = peer_predictions(task, X_train, y_train, X_test, seed=seed)
    if task == "classify":
        truth = np.asarray(y_test)
        if classes is None:
            classes = np.unique(np.concatenate([np.asarray(y_train), truth]))
        classes = np.asarray(classes)
        for name, pred in predictions.items():
            rows[name] = classification_metrics(
                np.searchsorted(classes, truth), np.searchsorted(classes, pred), list(classes)
            )
    else:
        for name, pred in predictions.items():
            rows[name] = regression_metrics(np.asarray(y_test, dtype=np.float64), pred)
    return rows
