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
masked out of the loss (``mask`` 0).

Only :math:`O(\text{number of series})` numbers are kept besides the values: window
:math:`k` is found by a binary search in the cumulative window counts, and each batch is
gathered when asked for (:meth:`PanelWindows.take`), so memory grows with the batch, not
with the number of windows. :class:`PanelWindows` is what :func:`lstmkit.train.loop.fit`
takes as data (``len`` and ``take(index)``), under ``torchrun`` too: each rank gathers only
its share of a batch.
"""

import numpy as np
import torch
from torch import Tensor


def contexts(
    flat: np.ndarray, starts: np.ndarray, origins: np.ndarray, lookback: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For windows whose series begin at ``flat[starts]`` with origins ``origins`` (≥ 1):
    the inputs (n, L) relative to the level, zero past each window's real steps; the
    number of real steps a = min(t, L) (n,); the levels z_{t-1} (n,)."""
    real = np.minimum(origins, lookback)
    steps = np.arange(lookback)
    inside = steps[None, :] < real[:, None]
    position = starts[:, None] + origins[:, None] - real[:, None] + steps[None, :]
    level = flat[starts + origins - 1]
    values = flat[np.where(inside, position, 0)] - level[:, None]
    return np.where(inside, values, 0.0), real, level


class PanelWindows:
    """The windows of a panel for :func:`lstmkit.train.loop.fit`: ``len`` windows, and
    ``take(index)`` → ``{"x" (n, L, 1), "lengths" (n,), "y" (n, H), "mask" (n, H)}``
    (float32; lengths int64), with ``"extra"`` (n, S): the window's series' row of
    ``static`` (n_series, S) when given. ``series`` are the scaled series, ``ends`` how
    many leading points of each may be trained on (its training part)."""

    def __init__(
        self,
        series: list[np.ndarray],
        ends: list[int],
        lookback: int,
        horizon: int,
        static: np.ndarray | None = None,
    ) -> None:
        self.flat = np.concatenate([np.asarray(s, dtype=np.float64) for s in series])
        sizes = np.array([len(s) for s in series])
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)
        if (self.ends > sizes).any():
            raise ValueError("ends: expected at most each series' length")
        self.counts = np.maximum(self.ends - 1, 0)
        self.cumulative = np.cumsum(self.counts)
        self.lookback, self.horizon = lookback, horizon
        self.static = None if static is None else np.asarray(static, dtype=np.float32)
        if self.static is not None and self.static.shape[0] != len(sizes):
            raise ValueError(f"static: expected {len(sizes)} rows, got {self.static.shape[0]}")

    def __len__(self) -> int:
        return int(self.cumulative[-1]) if len(self.cumulative) else 0

    def locate(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(series, origin) of windows ``index``."""
        series = np.searchsorted(self.cumulative, index, side="right")
        origin = 1 + index - (self.cumulative[series] - self.counts[series])
        return series, origin

    def take(self, index: Tensor) -> dict[str, Tensor]:
        return self.take_at(*self.locate(np.asarray(index, dtype=np.int64)))

    def take_at(self, series: np.ndarray, origin: np.ndarray) -> dict[str, Tensor]:
        """The windows of series ``series`` (positions) at origins ``origin``."""
        origin = np.asarray(origin, dtype=np.int64)
        start = self.starts[series]
        x, real, level = contexts(self.flat, start, origin, self.lookback)
        ahead = np.arange(self.horizon)
        mask = origin[:, None] + ahead[None, :] < self.ends[series][:, None]
        position = np.where(mask, start[:, None] + origin[:, None] + ahead[None, :], 0)
        y = np.where(mask, self.flat[position] - level[:, None], 0.0)
        batch = {
            "x": torch.from_numpy(x.astype(np.float32)[:, :, None]),
            "lengths": torch.from_numpy(real),
            "y": torch.from_numpy(y.astype(np.float32)),
            "mask": torch.from_numpy(mask.astype(np.float32)),
        }
        if self.static is not None:
            batch["extra"] = torch.from_numpy(self.static[series])
        return batch
