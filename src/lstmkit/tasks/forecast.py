r"""Time-series forecasting: :class:`Forecaster` and the naive baselines in the same API.

Windows. For a forecast origin t (the first step to predict), the network reads the
``lookback`` steps before it, :math:`t-L \dots t-1`, of the (scaled) targets, the past
covariates and the known-future covariates, and predicts the targets at
:math:`t \dots t+H-1`. Targets inside a window are taken relative to the window's last
observed value :math:`y_{t-1}` ("level-relative"): the network learns the shape of the
continuation, so a trend that leaves the range of the training data does not push its
inputs out of range. Known-future covariates over the horizon join the encoding before
the head.

Honest evaluation: scalers are fitted on the training part only; the validation part is
the chronological tail (its windows never overlap the training windows' targets);
``evaluate`` reports the naive, seasonal-naive and mean baselines beside the model on the
original scale.

Strategies: ``direct`` predicts all H steps at once (one output per step and target);
``recursive`` trains a one-step model and feeds its predictions back (closed loop), which
needs no past covariates beyond the series end.
"""

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import Tensor

from lstmkit.tasks.networks import (
    RecurrentNet,
    check_cell,
    check_cell_options,
    gate_activations,
)
from lstmkit.tasks.persist import restore, save_estimator
from lstmkit.train.loop import TrainConfig, fit, seed_torch
from lstmkit.train.metrics import regression_metrics


def as_matrix(values, name: str, rows: int | None = None) -> np.ndarray:
    """A (T, K) float64 matrix from a 1-D/2-D array, a pandas object or a TimeSeriesFrame."""
    if values is None:
        return None
    if hasattr(values, "values") and hasattr(values, "columns") and not hasattr(values, "to_numpy"):
        values = values.values  # TimeSeriesFrame
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected numbers, got {type(values).__name__} ({err})") from err
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected 1 or 2 dims (T,) or (T, K), got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array))[0, 0])
        raise ValueError(
            f"{name}: expected finite values, got NaN or infinity at row {bad} "
            f"(fill missing values when reading, e.g. missing='interpolate')"
        )
    if rows is not None and array.shape[0] != rows:
        raise ValueError(f"{name}: expected {rows} rows (as the series), got {array.shape[0]}")
    return array


class _Scaler:
    """Per-column standardisation fitted on the training part."""

    def __init__(self, data: np.ndarray) -> None:
        self.mean = data.mean(axis=0)
        std = data.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)

    def __call__(self, data: np.ndarray) -> np.ndarray:
        return (data - self.mean) / self.std


class NaiveForecaster:
    """Repeat the last value."""

    def fit(self, series) -> "NaiveForecaster":
        self._last = as_matrix(series, "series")[-1]
        return self

    def predict(self, steps: int) -> np.ndarray:
        return np.repeat(self._last[None], steps, axis=0)


class SeasonalNaiveForecaster:
    """Repeat the last season: y_{T+h} = y_{T+h-m·ceil(h/m)}."""

    def __init__(self, season: int = 12) -> None:
        if season < 1:
            raise ValueError(f"season: expected an int >= 1, got {season}")
        self.season = season

    def fit(self, series) -> "SeasonalNaiveForecaster":
        data = as_matrix(series, "series")
        if data.shape[0] < self.season:
            raise ValueError(
                f"series: expected at least one season ({self.season} steps), got {data.shape[0]}"
            )
        self._last_season = data[-self.season :]
        return self

    def predict(self, steps: int) -> np.ndarray:
        return self._last_season[np.arange(steps) % self.season]


class MeanForecaster:
    """Repeat the mean of the fitted series."""

    def fit(self, series) -> "MeanForecaster":
        self._mean = as_matrix(series, "series").mean(axis=0)
        return self

    def predict(self, steps: int) -> np.ndarray:
        return np.repeat(self._mean[None], steps, axis=0)


class Forecaster:
    """A recurrent forecaster (LSTM/GRU, uni- or bidirectional over the look-back window).

    ``fit(series, *, covariates=None, future_covariates=None, validation=0.2)``; then
    ``predict(steps)`` continues from the end of the fitted series: shape ``(steps,)`` for
    one target, ``(steps, n_targets)`` otherwise.

    ``cell_options`` asks for cell variants (``docs/variants.md``), e.g.
    ``{"layer_norm": True, "zoneout": 0.1}``; the keys are checked against the cell.
    """

    def __init__(
        self,
        *,
        lookback: int = 24,
        horizon: int = 1,
        stride: int = 1,
        strategy: str = "direct",
        cell: str = "lstm",
        bidirectional: bool = False,
        num_layers: int = 1,
        hidden_size: int = 64,
        dropout: float = 0.0,
        epochs: int = 300,
        batch_size: int = 32,
        lr: float = 3e-3,
        patience: int | None = 40,
        seed: int = 0,
        progress: bool | None = None,
        checkpoint: str | None = None,
        resume: bool = False,
        cell_options: dict | None = None,
    ) -> None:
        for name, value in (("lookback", lookback), ("horizon", horizon), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if strategy not in ("direct", "recursive"):
            raise ValueError(f"strategy: expected 'direct' or 'recursive', got {strategy!r}")
        check_cell(cell)
        self.params = {
            "lookback": lookback,
            "horizon": horizon,
            "stride": stride,
            "strategy": strategy,
            "cell": cell,
            "cell_options": check_cell_options(cell, cell_options),
            "bidirectional": bidirectional,
            "num_layers": num_layers,
            "hidden_size": hidden_size,
            "dropout": dropout,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "patience": patience,
            "seed": seed,
        }
        self._train_cfg = TrainConfig.from_params(
            self.params, progress=progress, checkpoint=checkpoint, resume=resume
        )
        self.net: RecurrentNet | None = None
        self.history = None

    # -- data -----------------------------------------------------------------------------

    @property
    def _step_horizon(self) -> int:
        return 1 if self.params["strategy"] == "recursive" else self.params["horizon"]

    def _inputs(self, y_s, past_s, fut_s) -> np.ndarray:
        """All per-step input channels: scaled targets, past and future covariates."""
        parts = [y_s] + [p for p in (past_s, fut_s) if p is not None]
        return np.concatenate(parts, axis=1)

    def _windows(
        self, y_s, chan, fut_s, origins
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """For each origin t: input ``chan[t-L:t]`` with the level ``y_s[t-1]`` taken off the
        target channels (n, L, C); the level (n, K); the known-future covariates over the
        horizon, ``fut_s[t:t+H]`` flattened step-major (n, H·F), or None."""
        lookback, horizon = self.params["lookback"], self._step_horizon
        origins = np.asarray(origins)
        level = y_s[origins - 1]
        # sliding_window_view(a, w, axis=0)[s] is a[s:s+w] with the window on the last axis
        x = sliding_window_view(chan, lookback, axis=0)[origins - lookback].transpose(0, 2, 1)
        x = x.copy()
        x[:, :, : y_s.shape[1]] -= level[:, None, :]
        extra = None
        if fut_s is not None:
            ahead = sliding_window_view(fut_s, horizon, axis=0)[origins].transpose(0, 2, 1)
            extra = ahead.reshape(len(origins), -1)
        return x, level, extra

    def _dataset(self, y_s, past_s, fut_s, origins) -> dict[str, Tensor]:
        horizon = self._step_horizon
        origins = np.asarray(origins)
        x, level, extra = self._windows(y_s, self._inputs(y_s, past_s, fut_s), fut_s, origins)
        target = sliding_window_view(y_s, horizon, axis=0)[origins].transpose(0, 2, 1)
        data = {
            "x": torch.tensor(x, dtype=torch.float32),
            "y": torch.tensor(
                (target - level[:, None, :]).reshape(len(origins), -1), dtype=torch.float32
            ),
        }
        if extra is not None:
            data["extra"] = torch.tensor(extra, dtype=torch.float32)
        return data

    # -- fit / predict --------------------------------------------------------------------

    def fit(
        self, series, *, covariates=None, future_covariates=None, validation=0.2, callback=None
    ):
        """Train on ``series`` (T,) or (T, K); ``covariates`` (T, C) are known up to each
        origin, ``future_covariates`` (T, F) also over the horizon. ``validation``: the
        fraction of the end kept for early stopping (0 for none)."""
        y = as_matrix(series, "series")
        steps = y.shape[0]
        past = as_matrix(covariates, "covariates", steps)
        fut = as_matrix(future_covariates, "future_covariates", steps)
        lookback, horizon = self.params["lookback"], self._step_horizon
        if not 0 <= validation < 1:
            raise ValueError(f"validation: expected a fraction in [0, 1), got {validation!r}")
        split = steps - round(steps * validation) if validation else steps
        if split - lookback - horizon + 1 < 1:
            raise ValueError(
                f"series: expected at least lookback + horizon = {lookback + horizon} training "
                f"steps, got {split} (of {steps}; validation={validation})"
            )
        self._scalers = [_Scaler(a[:split]) if a is not None else None for a in (y, past, fut)]
        y_s, past_s, fut_s = (
            s(a) if a is not None else None
            for s, a in zip(self._scalers, (y, past, fut), strict=True)
        )
        stride = self.params["stride"]
        train_origins = range(lookback, split - horizon + 1, stride)
        val_origins = range(max(split, lookback), steps - horizon + 1)
        train = self._dataset(y_s, past_s, fut_s, train_origins)
        val = self._dataset(y_s, past_s, fut_s, val_origins) if len(val_origins) else None
        seed_torch(self.params["seed"])
        self._shapes = {
            "targets": y.shape[1],
            "channels": train["x"].shape[-1],
            "extra": 0 if fut is None else fut.shape[1] * horizon,
        }
        self.net = self._build()
        self.history = fit(self.net, _loss, train, val, self._train_cfg, callback=callback)
        self._series, self._past, self._fut = y, past, fut
        return self

    def _build(self) -> RecurrentNet:
        p, s = self.params, self._shapes
        return RecurrentNet(
            s["channels"],
            s["targets"] * self._step_horizon,
            cell=p["cell"],
            hidden_size=p["hidden_size"],
            num_layers=p["num_layers"],
            bidirectional=p["bidirectional"],
            dropout=p["dropout"],
            extra_size=s["extra"],
            cell_options=p["cell_options"],
        )

    def _check_fitted(self) -> None:
        if self.net is None:
            raise ValueError("this Forecaster is not fitted yet: call fit(series) first")

    @torch.no_grad()
    def _forecast(self, y, past, fut, steps: int, fut_ahead) -> np.ndarray:
        """Predict ``steps`` values after the end of history (y, past, fut)."""
        if past is not None and steps > self._step_horizon:
            raise ValueError(
                f"steps: with past covariates at most {self._step_horizon} steps can be "
                f"predicted (their future is unknown), got {steps}"
            )
        y_scaler, _, f_scaler = self._scalers
        y_s = y_scaler(y)
        past_s = None if past is None else self._scalers[1](past)
        fut_s = None if fut is None else f_scaler(np.concatenate([fut, fut_ahead]))
        self.net.eval()
        out = []
        while len(out) < steps:
            t = y_s.shape[0]
            chan = self._inputs(y_s, past_s, None if fut_s is None else fut_s[:t])
            x, level, extra = (
                a if a is None else a[0] for a in self._windows(y_s, chan, fut_s, [t])
            )
            pred = (
                self.net(
                    torch.tensor(x[None], dtype=torch.float32),
                    extra=None if extra is None else torch.tensor(extra[None], dtype=torch.float32),
                )
                .numpy()[0]
                .astype(np.float64)
            )
            block = pred.reshape(self._step_horizon, -1) + level
            out.extend(block)
            y_s = np.concatenate([y_s, block])
        scaled = np.stack(out[:steps])
        return scaled * y_scaler.std + y_scaler.mean

    def predict(self, steps: int | None = None, *, future_covariates=None) -> np.ndarray:
        """Forecast ``steps`` (default: the horizon) after the end of the fitted series.
        With future covariates, pass their values for those steps: (steps, F)."""
        self._check_fitted()
        steps = self.params["horizon"] if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
        ahead = self._future_ahead(future_covariates, steps)
        pred = self._forecast(self._series, self._past, self._fut, steps, ahead)
        return pred[:, 0] if pred.shape[1] == 1 else pred

    def gate_activations(self, back: int = 0) -> dict[str, dict[str, np.ndarray]]:
        """The network's gates on the input window that ends ``back`` steps before the end of
        the fitted series (0: the window ``predict()`` starts from); see
        :func:`lstmkit.tasks.networks.gate_activations`."""
        self._check_fitted()
        t = self._series.shape[0] - back
        if (
            isinstance(back, bool)
            or not isinstance(back, int)
            or not (0 <= back <= self._series.shape[0] - self.params["lookback"])
        ):
            raise ValueError(
                f"back: expected an int in [0, {self._series.shape[0] - self.params['lookback']}]"
                f" (the series has {self._series.shape[0]} steps), got {back!r}"
            )
        y_s, past_s, fut_s = (
            None if a is None else s(a[:t])
            for s, a in zip(self._scalers, (self._series, self._past, self._fut), strict=True)
        )
        chan = self._inputs(y_s, past_s, fut_s)
        x, _, _ = self._windows(y_s, chan, None, [t])
        return gate_activations(self.net, torch.tensor(x[0], dtype=torch.float32))

    def _rows_needed(self, steps: int) -> int:
        """Future-covariate rows a forecast of ``steps`` reads: whole horizon blocks."""
        block = self._step_horizon
        return -(-steps // block) * block

    def _future_ahead(self, future_covariates, steps: int):
        if self._fut is None:
            if future_covariates is not None:
                raise ValueError("future_covariates: the model was fitted without them, got some")
            return None
        need = self._rows_needed(steps)
        ahead = as_matrix(future_covariates, "future_covariates")
        got = 0 if ahead is None else ahead.shape[0]
        if got < need:
            raise ValueError(
                f"future_covariates: expected at least {need} future rows (whole horizon "
                f"blocks of {self._step_horizon} for {steps} steps), got {got}"
            )
        return ahead[:need]

    def evaluate(self, actual, *, future_covariates=None, season: int = 12) -> dict:
        """Metrics of ``predict(len(actual))`` against ``actual``, on the original scale,
        with the naive, seasonal-naive (``season``) and mean baselines beside the model."""
        self._check_fitted()
        truth = as_matrix(actual, "actual")
        steps = truth.shape[0]
        preds = {"model": self.predict(steps, future_covariates=future_covariates)}
        baselines = {
            "naive": NaiveForecaster(),
            "seasonal_naive": SeasonalNaiveForecaster(season),
            "mean": MeanForecaster(),
        }
        for name, baseline in baselines.items():
            preds[name] = baseline.fit(self._series).predict(steps)
        return {
            name: regression_metrics(truth, np.asarray(p).reshape(truth.shape))
            for name, p in preds.items()
        }

    def backtest(
        self,
        series,
        *,
        start: int,
        steps: int | None = None,
        every: int = 1,
        covariates=None,
        future_covariates=None,
    ) -> dict:
        """Rolling-origin evaluation without refitting: from each origin o = start,
        start+every, … forecast ``steps`` ahead using only series[:o]. Fit the model on
        series[:start] first, so no origin sees data it was trained on.
        Returns ``{"origins", "predictions" (n, steps, K), "metrics"}`` (metrics pooled)."""
        self._check_fitted()
        y = as_matrix(series, "series")
        past = as_matrix(covariates, "covariates", y.shape[0])
        fut = as_matrix(future_covariates, "future_covariates", y.shape[0])
        steps = self.params["horizon"] if steps is None else steps
        last = y.shape[0] - (steps if fut is None else self._rows_needed(steps))
        origins = list(range(start, last + 1, every))
        if start < self.params["lookback"] or not origins:
            raise ValueError(
                f"start: expected an origin in [{self.params['lookback']}, {last}], got {start}"
            )
        preds = []
        for o in origins:
            ahead = None if fut is None else fut[o : o + self._rows_needed(steps)]
            preds.append(
                self._forecast(
                    y[:o],
                    None if past is None else past[:o],
                    None if fut is None else fut[:o],
                    steps,
                    ahead,
                )
            )
        preds = np.stack(preds)
        truth = np.stack([y[o : o + steps] for o in origins])
        return {
            "origins": origins,
            "predictions": preds,
            "metrics": regression_metrics(truth, preds),
        }

    # -- persistence ----------------------------------------------------------------------

    def save(self, path):
        """Write safetensors weights + JSON config (with the scalers and fitted history)."""
        self._check_fitted()
        fitted = {
            "shapes": self._shapes,
            "scalers": [
                None if s is None else [s.mean.tolist(), s.std.tolist()] for s in self._scalers
            ],
            "series": self._series.tolist(),
            "past": None if self._past is None else self._past.tolist(),
            "future": None if self._fut is None else self._fut.tolist(),
        }
        return save_estimator(
            path, "Forecaster", {"params": self.params, "fitted": fitted}, self.net.state_dict()
        )

    @classmethod
    def load(cls, path) -> "Forecaster":
        return restore(cls, path, cls._restore)

    def _restore(self, fitted: dict) -> RecurrentNet:
        self._shapes = fitted["shapes"]
        self._scalers = []
        for saved in fitted["scalers"]:
            scaler = None
            if saved is not None:
                scaler = _Scaler.__new__(_Scaler)
                scaler.mean, scaler.std = np.array(saved[0]), np.array(saved[1])
            self._scalers.append(scaler)
        self._series = np.array(fitted["series"], dtype=np.float64)
        self._past = None if fitted["past"] is None else np.array(fitted["past"])
        self._fut = None if fitted["future"] is None else np.array(fitted["future"])
        return self._build()


def _loss(net: RecurrentNet, batch: dict[str, Tensor]) -> tuple[Tensor, int]:
    pred = net(batch["x"], extra=batch.get("extra"))
    return torch.nn.functional.mse_loss(pred, batch["y"]), batch["y"].numel()
