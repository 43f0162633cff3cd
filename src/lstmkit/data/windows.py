r"""Forecasting windows over a panel, built batch by batch.

Series :math:`i` (already scaled, :math:`z^{(i)}`, of which the first :math:`e_i` points
may be trained on) gives one window per forecast origin :math:`t \in [1, e_i - 1]`: at
least one observed point before it and one target point after it. With look-back
:math:`L` and horizon :math:`H`, the window reads the :math:`a = \min(t, L)` points
before the origin relative to the last of them (the level :math:`\ell = z_{t-1}`),

.. math:: x_j = z_{t-a+j} - \ell \quad (j < a), \qquad
          y_k = z_{t+k} - \ell \quad (k < \min(H, e_i - t)),

so a window shorter than :math:`L` (a short series, or an origin near the start) holds
its :math:`a` real steps first, zeros after them, and ``lengths`` :math:`a`: the engine
masks the padding (the last real step's state is read). Targets past :math:`e_i` are
masked out of the loss (``mask`` 0). Per-step covariates join :math:`x_j` as further
channels, as they are (already standardised); the known-future ones over the horizon,
:math:`t \dots t+H-1`, are the window's extra features (zero past the series' end).

Only :math:`O(\text{number of series})` numbers are kept besides the values: window
:math:`k` is found by a binary search in the cumulative window counts, and each batch is
gathered when asked for (:meth:`PanelWindows.take`), so memory grows with the batch, not
with the number of windows. :class:`PanelWindows` is what :func:`lstmkit.train.loop.fit`
takes as data (``len`` and ``take(index)``), under ``torchrun`` too: each rank gathers only
its share of a batch.
"""

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import Tensor


def contexts(
    flat: np.ndarray,
    starts: np.ndarray,
    origins: np.ndarray,
    lookback: int,
    channels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For windows whose series begin at ``flat[starts]`` with origins ``origins`` (≥ 1):
    the inputs (n, L, 1 + C) — the values relative to the level, then the C per-step
    covariates ``channels[starts + ...]`` (rows aligned with ``flat``) as they are — zero
    past each window's real steps; the number of real steps a = min(t, L) (n,); the levels
    z_{t-1} (n,)."""
    real = np.minimum(origins, lookback)
    steps = np.arange(lookback)
    inside = steps[None, :] < real[:, None]
    position = starts[:, None] + origins[:, None] - real[:, None] + steps[None, :]
    position = np.where(inside, position, 0)
    level = flat[starts + origins - 1]
    x = np.where(inside, flat[position] - level[:, None], 0.0)[:, :, None]
    if channels is not None:
        x = np.concatenate([x, np.where(inside[:, :, None], channels[position], 0.0)], axis=2)
    return x, real, level


def series_windows(
    targets: np.ndarray,
    channels: np.ndarray,
    future: np.ndarray | None,
    origins,
    lookback: int,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """One series' windows (the single-series Forecaster's, every one L steps long): for
    each origin t, the inputs ``channels[t-L:t]`` with the level ``targets[t-1]`` taken off
    the K target channels, which come first (n, L, C); the level (n, K); the known-future
    covariates over the horizon, ``future[t:t+H]`` flattened step-major (n, H·F), or None."""
    origins = np.asarray(origins)
    level = targets[origins - 1]
    # sliding_window_view(a, w, axis=0)[s] is a[s:s+w] with the window on the last axis
    x = sliding_window_view(channels, lookback, axis=0)[origins - lookback].transpose(0, 2, 1)
    x = x.copy()
    x[:, :, : targets.shape[1]] -= level[:, None, :]
    extra = None
    if future is not None:
        ahead = sliding_window_view(future, horizon, axis=0)[origins].transpose(0, 2, 1)
        extra = ahead.reshape(len(origins), -1)
    return x, level, extra


def horizon_positions(
    starts: np.ndarray, origins: np.ndarray, bounds: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """For windows whose series begin at row ``starts`` with origins ``origins``: which of
    the steps t … t+H−1 lie before each series' ``bounds`` (n, H), and their rows (0
    where they do not)."""
    steps = np.arange(horizon)
    inside = origins[:, None] + steps[None, :] < bounds[:, None]
    return inside, np.where(inside, starts[:, None] + origins[:, None] + steps[None, :], 0)


class PanelWindows:
    """The windows of a panel for :func:`lstmkit.train.loop.fit`: ``len`` windows, and
    ``take(index)`` → ``{"x" (n, L, 1 + C), "lengths" (n,), "y" (n, H), "mask" (n, H)}``
    (float32; lengths int64), with ``"extra"`` (n, S + H·F) when there is any: the
    window's series' row of ``static`` (n_series, S), then the last F columns of its
    ``channels`` over the horizon. ``series`` are the scaled series, ``ends`` how many
    leading points of each may be trained on (its training part); ``channels`` (T_i, C)
    per series their per-step covariates (past ones, then the ``future_width`` known-future
    ones), which join the target as input channels. With ``weigh_series`` each window also
    carries ``"weight"`` (n,): :math:`\bar c / c_i` for a window of series :math:`i`, with
    :math:`c_i` the series' training windows and :math:`\bar c` their mean over the panel,
    so every series weighs the same in a weighted loss, however long it is (the windows'
    weights still average 1)."""

    def __init__(
        self,
        series: list[np.ndarray],
        ends: list[int],
        lookback: int,
        horizon: int,
        static: np.ndarray | None = None,
        channels: list[np.ndarray] | None = None,
        future_width: int = 0,
        weigh_series: bool = False,
    ) -> None:
        self.flat = np.concatenate([np.asarray(s, dtype=np.float64) for s in series])
        self.sizes = np.array([len(s) for s in series])
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)
        if (self.ends > self.sizes).any():
            raise ValueError("ends: expected at most each series' length")
        self.counts = np.maximum(self.ends - 1, 0)
        self.cumulative = np.cumsum(self.counts)
        self.weights = None
        if weigh_series and self.counts.any():
            mean = self.counts[self.counts > 0].mean()
            self.weights = (mean / np.maximum(self.counts, 1)).astype(np.float32)
        self.lookback, self.horizon = lookback, horizon
        self.static = None if static is None else np.asarray(static, dtype=np.float32)
        if self.static is not None and self.static.shape[0] != len(self.sizes):
            raise ValueError(f"static: expected {len(self.sizes)} rows, got {self.static.shape[0]}")
        self.channels = None
        if channels is not None:
            if [len(c) for c in channels] != self.sizes.tolist():
                raise ValueError("channels: expected as many rows as each series has points")
            self.channels = np.concatenate(channels).astype(np.float64)
        if not 0 <= future_width <= (0 if channels is None else self.channels.shape[1]):
            raise ValueError(f"future_width: expected at most the channels, got {future_width}")
        self.future_width = future_width

    def __len__(self) -> int:
        return int(self.cumulative[-1]) if len(self.cumulative) else 0

    def locate(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(series, origin) of windows ``index``."""
        series = np.searchsorted(self.cumulative, index, side="right")
        origin = 1 + index - (self.cumulative[series] - self.counts[series])
        return series, origin

    def take(self, index: Tensor) -> dict[str, Tensor]:
        return self.take_at(*self.locate(np.asarray(index, dtype=np.int64)))

    def inputs(self, series: np.ndarray, origin: np.ndarray):
        """What the network reads of windows (series, origin): x (n, L, 1 + C), the real
        steps (n,), the levels (n,) and the extra features (n, S + H·F) or None."""
        start = self.starts[series]
        x, real, level = contexts(self.flat, start, origin, self.lookback, self.channels)
        extra = [] if self.static is None else [self.static[series]]
        if self.future_width:  # over t … t+H−1, step-major, zero past the series' end
            inside, position = horizon_positions(start, origin, self.sizes[series], self.horizon)
            future = np.where(
                inside[:, :, None], self.channels[position, -self.future_width :], 0.0
            )
            extra.append(future.reshape(len(origin), -1))
        extra = np.concatenate(extra, axis=1).astype(np.float32) if extra else None
        return x.astype(np.float32), real, level, extra

    def take_at(self, series: np.ndarray, origin: np.ndarray) -> dict[str, Tensor]:
        """The windows of series ``series`` (positions) at origins ``origin``."""
        origin = np.asarray(origin, dtype=np.int64)
        x, real, level, extra = self.inputs(series, origin)
        mask, position = horizon_positions(
            self.starts[series], origin, self.ends[series], self.horizon
        )
        y = np.where(mask, self.flat[position] - level[:, None], 0.0)
        batch = {
            "x": torch.from_numpy(x),
            "lengths": torch.from_numpy(real),
            "y": torch.from_numpy(y.astype(np.float32)),
            "mask": torch.from_numpy(mask.astype(np.float32)),
        }
        if extra is not None:
            batch["extra"] = torch.from_numpy(extra)
        if self.weights is not None:
            batch["weight"] = torch.from_numpy(self.weights[series])
        return batch
