"""lstmkit.data.windows: the single-series windows against windows cut by hand (the panel
windows are tested with the panel forecaster, tests/tasks/test_panel_forecast.py and
test_panel_covariates.py)."""

import numpy as np

from lstmkit.data.windows import series_windows


def test_series_windows_are_the_slices_less_the_level():
    rng = np.random.default_rng(0)
    targets = rng.normal(size=(20, 2))  # K = 2 targets
    past = rng.normal(size=(20, 1))
    future = rng.normal(size=(20, 3))
    channels = np.concatenate([targets, past, future], axis=1)
    lookback, horizon, origins = 4, 3, [4, 9, 17]
    x, level, extra = series_windows(targets, channels, future, origins, lookback, horizon)
    assert x.shape == (3, lookback, 6) and level.shape == (3, 2) and extra.shape == (3, 9)
    for i, t in enumerate(origins):
        want = channels[t - lookback : t].copy()
        want[:, :2] -= targets[t - 1]  # the level off the targets only
        np.testing.assert_array_equal(x[i], want)
        np.testing.assert_array_equal(level[i], targets[t - 1])
        np.testing.assert_array_equal(extra[i], future[t : t + horizon].reshape(-1))
    # the inputs are a copy: the series itself is left as it was
    assert not np.shares_memory(x, channels)
    _, _, none = series_windows(targets, targets, None, origins, lookback, horizon)
    assert none is None
