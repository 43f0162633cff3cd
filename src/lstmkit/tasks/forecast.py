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

Panels (a list or dict of series, or a long DataFrame; :mod:`lstmkit.data.panel`) train
one global network on the windows of every series, with per-series scaling, masked short
windows and quantile forecasts (:mod:`lstmkit.tasks.global_forecast`); so does one series
when ``quantiles`` or ``n_models`` ask for what only that path gives.
"""

from dataclasses import replace

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import Tensor

from lstmkit.checks import is_int
from lstmkit.data.frame import check_magnitude
from lstmkit.data.panel import (
    Panel,
    as_panel,
    future_rows,
    is_panel,
    panel_from_json,
    panel_to_json,
    season_of,
    static_matrix,
)
from lstmkit.data.scaling import Scaler, normalised, standardise_static
from lstmkit.data.windows import series_windows
from lstmkit.messages import shown
from lstmkit.tasks.global_forecast import (
    DEFAULT_QUANTILES,
    PANEL_BATCH,
    PANEL_HIDDEN,
    check_past_steps,
    check_quantiles,
    fit_panel,
    forecast_panel,
    level_index,
    panel_lookback,
    window_input,
)
from lstmkit.tasks.networks import RecurrentNet, check_cell, check_cell_options, gate_activations
from lstmkit.tasks.persist import saved_count, saved_numbers
from lstmkit.tasks.protocol import Estimator, constructor_params
from lstmkit.train.forecast_metrics import panel_metrics
from lstmkit.train.loop import TrainConfig, fit, interrupted, seed_torch
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
    check_magnitude(array, lambda at: f"{name}, row {at[0]}")
    if rows is not None and array.shape[0] != rows:
        raise ValueError(f"{name}: expected {rows} rows (as the series), got {array.shape[0]}")
    return array


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


class Forecaster(Estimator):
    """A recurrent forecaster (LSTM/GRU, uni- or bidirectional over the look-back window).

    ``fit(series, *, covariates=None, future_covariates=None, validation=0.2)``; then
    ``predict(steps)`` continues from the end of the fitted series: shape ``(steps,)`` for
    one target, ``(steps, n_targets)`` otherwise.

    ``cell_options`` asks for cell variants (``docs/variants.md``), e.g.
    ``{"layer_norm": True, "zoneout": 0.1}``; the keys are checked against the cell.

    Panels: ``fit([s1, s2, …])`` (or a dict, or a long DataFrame with ``id``/``time``/
    ``value`` columns) trains one network over all series (module docstring of
    :mod:`lstmkit.tasks.global_forecast`); ``predict()`` then gives one forecast per series,
    in the input's form, and ``predict(quantiles=(0.1, 0.5, 0.9))`` a trailing quantile
    axis. ``quantiles`` (default (0.1, 0.5, 0.9) for a panel) are the levels trained with
    the pinball loss; ``n_models`` networks from seeds ``seed…seed+n−1`` are combined by
    the median, each reading ``lookback`` steps, or its own with ``lookback=(L_1, L_2,
    …)`` (taken in turn). ``season`` (when None: from a pandas frequency; else 1 for a panel and 12
    for one series, the earlier default) is used by ``evaluate``'s seasonal baselines and
    MASE, and by a panel fit, which deseasonalises the series that are seasonal unless
    ``deseasonalize=False`` (:mod:`lstmkit.data.seasonal`). ``hidden_size`` None: 64, or
    for a panel 128 when it gives at least 65,536 training windows
    (:func:`~lstmkit.tasks.global_forecast.panel_hidden`). ``batch_size`` and ``lr``
    None: 32 and 3e-3 for one series, 256 and 1e-2 for a panel, whose budget is set by
    the number of windows (``epochs`` only caps it; no early stopping: ``patience`` is not
    used).
    """

    _kind = "Forecaster"
    _fit_call = "fit(series)"

    def __init__(
        self,
        *,
        lookback: int | tuple[int, ...] | None = None,
        horizon: int = 1,
        stride: int = 1,
        strategy: str = "direct",
        cell: str = "lstm",
        bidirectional: bool = False,
        num_layers: int = 1,
        hidden_size: int | None = None,
        dropout: float = 0.0,
        epochs: int = 300,
        batch_size: int | None = None,
        lr: float | None = None,
        patience: int | None = 40,
        seed: int = 0,
        progress: bool | None = None,
        checkpoint: str | None = None,
        resume: bool = False,
        cell_options: dict | None = None,
        season: int | None = None,
        quantiles: tuple[float, ...] | None = None,
        n_models: int = 1,
        deseasonalize: bool = True,
    ) -> None:
        if isinstance(lookback, list | tuple):  # one per network of an ensemble, in turn
            if not 1 <= len(lookback) <= n_models:
                raise ValueError(
                    f"lookback: expected an int, or 1 to n_models = {n_models} ints (one per "
                    f"network), got {lookback!r}"
                )
            lookback = tuple(lookback)
        given = lookback if isinstance(lookback, tuple) else (24 if lookback is None else lookback,)
        for name, value in (
            *(("lookback", v) for v in given),
            ("horizon", horizon),
            ("stride", stride),
            ("n_models", n_models),
            ("season", 1 if season is None else season),
            ("hidden_size", 64 if hidden_size is None else hidden_size),
        ):
            if not is_int(value) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if strategy not in ("direct", "recursive"):
            raise ValueError(f"strategy: expected 'direct' or 'recursive', got {strategy!r}")
        check_cell(cell)
        if quantiles is not None:
            quantiles = check_quantiles(quantiles)
        self.params = constructor_params(
            Forecaster.__init__, locals(), cell_options=check_cell_options(cell, cell_options)
        )
        self._options = {"progress": progress, "checkpoint": checkpoint, "resume": resume}
        self._train_cfg = TrainConfig.from_params(
            self.params | {"batch_size": batch_size or 32, "lr": lr or 3e-3}, **self._options
        )
        self.net_: RecurrentNet | None = None
        self.history_ = None
        self.panel_: Panel | None = None  # the fitted panel (global path), else None
        self._fitted_lookbacks: list[int] | None = None  # those of the fitted networks
        self._channel_scaler: Scaler | None = None  # a panel's per-step covariates

    # -- data -----------------------------------------------------------------------------

    @property
    def lookback_(self) -> int:
        """The look-back L in use (the first network's of an ensemble; :attr:`lookbacks_`)."""
        return self.lookbacks_[0]

    @property
    def lookbacks_(self) -> list[int]:
        """The look-back of each network (``n_models`` of them; see :meth:`_lookbacks`)."""
        return self._fitted_lookbacks or self._lookbacks(panel=self.panel_ is not None)

    def _lookbacks(self, *, panel: bool) -> list[int]:
        """``lookback`` (an int for every network, or a sequence taken in turn); when None,
        24 for one series and :func:`~lstmkit.tasks.global_forecast.panel_lookback` of the
        season for a panel, for every network."""
        given, count = self.params["lookback"], self.params["n_models"]
        if isinstance(given, tuple):
            return [given[k % len(given)] for k in range(count)]
        return [(panel_lookback(self.season_) if panel else 24) if given is None else given] * count

    @property
    def _step_horizon(self) -> int:
        return 1 if self.params["strategy"] == "recursive" else self.params["horizon"]

    def _inputs(self, y_s, past_s, fut_s) -> np.ndarray:
        """All per-step input channels: scaled targets, past and future covariates."""
        parts = [y_s] + [p for p in (past_s, fut_s) if p is not None]
        return np.concatenate(parts, axis=1)

    def _dataset(self, y_s, past_s, fut_s, origins) -> dict[str, Tensor]:
        horizon = self._step_horizon
        origins = np.asarray(origins)
        chan = self._inputs(y_s, past_s, fut_s)
        x, level, extra = series_windows(y_s, chan, fut_s, origins, self.lookback_, horizon)
        target = sliding_window_view(y_s, horizon, axis=0)[origins].transpose(0, 2, 1)
        y = (target - level[:, None, :]).reshape(len(origins), -1)
        return {
            key: _float32(a) for key, a in {"x": x, "y": y, "extra": extra}.items() if a is not None
        }

    # -- fit / predict --------------------------------------------------------------------

    def fit(
        self,
        series,
        *,
        covariates=None,
        future_covariates=None,
        validation: float | None = None,
        callback=None,
        id_column: str | None = None,
        time_column: str | None = None,
        value_column: str | None = None,
        static_covariates=None,
    ):
        """Train on ``series`` (T,) or (T, K); ``covariates`` (T, C) are known up to each
        origin, ``future_covariates`` (T, F) also over the horizon. ``validation``: the
        fraction of the end kept for early stopping (default 0.2; 0 for none).

        A panel (a list/dict of series or a long DataFrame; the ``*_column`` names are
        those of a long frame) trains one global network: then ``validation`` is the share
        of series whose last horizon is held out to watch the loss and keep the best epoch
        (default 0: the budget is fixed, and holding out the most recent points of a fifth
        of the series cost M3 monthly 0.03 MASE; docs/forecasting.md).
        ``static_covariates``: numbers per series (a DataFrame indexed by id, a dict
        ``{id: numbers}``, or rows in the panel's order), standardised over the series and
        read beside the recurrent encoding (:func:`lstmkit.data.panel.static_matrix`).
        A panel's per-step ``covariates`` and ``future_covariates`` are the names of a long
        frame's columns, or a list/dict of arrays beside a list/dict panel, each as long as
        its series (:func:`lstmkit.data.panel.as_panel`)."""
        p = self.params
        self._fitted_lookbacks = None
        if is_panel(series, id_column) or p["quantiles"] is not None or p["n_models"] > 1:
            if p["strategy"] != "direct":
                raise ValueError(
                    "strategy: expected 'direct' with a panel, quantiles or n_models, "
                    f"got {p['strategy']!r}"
                )
            names = {"id_column": id_column, "time_column": time_column}
            steps = {"covariates": covariates, "future_covariates": future_covariates}
            panel = (
                as_panel(series, **names, value_column=value_column, **steps)
                if is_panel(series, id_column)
                else _single_panel(series, **steps)
            )
            static = standardise_static(static_matrix(panel, static_covariates))
            return self._fit_panel(panel, validation or 0.0, callback, static)
        if static_covariates is not None:
            raise ValueError(
                "static_covariates: expected a panel (they describe each of many series), "
                "got one series"
            )
        self.panel_ = None
        validation = 0.2 if validation is None else validation
        # one series of unknown frequency keeps the earlier default m = 12 (monthly data)
        self.season_ = p["season"] or season_of(_frequency(series)) or 12
        y = as_matrix(series, "series")
        steps = y.shape[0]
        past = as_matrix(covariates, "covariates", steps)
        fut = as_matrix(future_covariates, "future_covariates", steps)
        lookback, horizon = self.lookback_, self._step_horizon
        if not 0 <= validation < 1:
            raise ValueError(f"validation: expected a fraction in [0, 1), got {validation!r}")
        split = steps - round(steps * validation) if validation else steps
        if split - lookback - horizon + 1 < 1:
            raise ValueError(
                f"series: expected at least lookback + horizon = {lookback + horizon} training "
                f"steps, got {split} (of {steps}; validation={validation})"
            )
        self._scalers = [Scaler(a[:split]) if a is not None else None for a in (y, past, fut)]
        y_s, past_s, fut_s = self._scaled(y, past, fut)
        train_origins = range(lookback, split - horizon + 1, p["stride"])
        val_origins = range(max(split, lookback), steps - horizon + 1)
        train = self._dataset(y_s, past_s, fut_s, train_origins)
        val = self._dataset(y_s, past_s, fut_s, val_origins) if len(val_origins) else None
        seed_torch(p["seed"])
        self._shapes = {
            "targets": y.shape[1],
            "channels": train["x"].shape[-1],
            "extra": 0 if fut is None else fut.shape[1] * horizon,
        }
        self.net_ = self._build()
        self.history_ = fit(self.net_, _loss, train, val, self._train_cfg, callback=callback)
        self._series, self._past, self._fut = y, past, fut
        return self

    def _fit_panel(self, panel: Panel, validation: float, callback, static):
        p = self.params
        self.season_ = p["season"] or season_of(panel.frequency) or 1
        self.quantiles_ = p["quantiles"] or DEFAULT_QUANTILES
        past, future = (0 if a is None else a[0].shape[1] for a in (panel.covariates, panel.future))
        self._shapes = {
            "targets": 1,
            "channels": 1 + past + future,
            "extra": (0 if static is None else static.shape[1]) + future * p["horizon"],
            "quantiles": len(self.quantiles_),
            "past": past,
            "future": future,
        }
        lookbacks = self._lookbacks(panel=True)  # self.panel_ is set once fitted
        more = {"lookbacks": lookbacks, "season": self.season_, "quantiles": self.quantiles_}
        fitted = fit_panel(
            panel.values,
            p | more | {"batch_size": p["batch_size"] or PANEL_BATCH},
            self._build,
            validation=validation,
            static=static,
            channels=_raw_channels(panel),
            future_width=future,
            callback=callback,
            **self._options,
        )
        self.nets_, self.scales_ = fitted["nets"], fitted["scales"]
        self._shapes["hidden"] = fitted["hidden_size"]
        self._channel_scaler = fitted["channel_scaler"]
        self._fitted_lookbacks = lookbacks[: len(self.nets_)]  # Ctrl-C: fewer
        self.seasonal_, self.static_ = fitted["seasonal"], static
        self.histories_ = fitted["histories"]
        # the first network's history, or the one Ctrl-C cut short (the last one trained)
        last = self.histories_[-1]
        self.net_, self.history_ = self.nets_[0], last if interrupted(last) else self.histories_[0]
        self.panel_ = panel
        return self

    def _hidden_size(self) -> int:
        """The width of the fitted networks: as fitted (a panel's may come from its size),
        else ``params["hidden_size"]`` or 64."""
        return self._shapes.get("hidden") or self.params["hidden_size"] or PANEL_HIDDEN

    def _build(self, hidden_size: int | None = None) -> RecurrentNet:
        """The network: ``hidden_size`` wide, else :meth:`_hidden_size`."""
        p, s = self.params, self._shapes
        outputs = s["targets"] * self._step_horizon * s.get("quantiles", 1)
        return RecurrentNet(
            s["channels"],
            outputs,
            cell=p["cell"],
            hidden_size=hidden_size or self._hidden_size(),
            num_layers=p["num_layers"],
            bidirectional=p["bidirectional"],
            dropout=p["dropout"],
            extra_size=s["extra"],
            cell_options=p["cell_options"],
            causal_last="quantiles" in s,  # the panel path's short windows
        )

    def describe(self) -> dict:
        """As every estimator's, with the hidden size the fit chose when it was None."""
        described = super().describe()
        if self.net_ is not None and described["hidden_size"] is None:
            described["hidden_size"] = self._hidden_size()
        return described

    def _scaled(self, y, past, fut) -> list[np.ndarray | None]:
        """A series and its past and future covariates standardised as in training."""
        arrays = (y, past, fut)
        return [None if a is None else s(a) for s, a in zip(self._scalers, arrays, strict=True)]

    @torch.no_grad()
    def _forecast(self, y, past, fut, steps: int) -> np.ndarray:
        """Predict ``steps`` values after the end of history (y, past); ``fut``: the
        future covariates over the history and the whole horizon blocks ahead."""
        horizon = self._step_horizon
        check_past_steps(past is not None, steps, horizon)
        y_s, past_s, fut_s = self._scaled(y, past, fut)
        self.net_.eval()
        out = []
        while len(out) < steps:
            t = y_s.shape[0]
            chan = self._inputs(y_s, past_s, None if fut_s is None else fut_s[:t])
            x, level, extra = series_windows(y_s, chan, fut_s, [t], self.lookback_, horizon)
            pred = self.net_(_float32(x), extra=_float32(extra)).numpy()[0].astype(np.float64)
            block = pred.reshape(horizon, -1) + level[0]
            out.extend(block)
            y_s = np.concatenate([y_s, block])
        y_scaler = self._scalers[0]
        return np.stack(out[:steps]) * y_scaler.std + y_scaler.mean

    def predict(
        self, steps: int | None = None, *, future_covariates=None, quantiles=None
    ) -> np.ndarray:
        """Forecast ``steps`` (default: the horizon) after the end of the fitted series.
        With future covariates, pass their values for those steps: (steps, F).

        After a panel fit: one forecast per series in the input's form (a list, a dict, a
        long DataFrame); ``quantiles`` (levels the model was trained with) add a trailing
        quantile axis, (steps, n_quantiles) per series. Known-future covariates then come
        as the panel did: a list/dict of (steps, F) arrays, or a long frame with the id,
        time and future columns (its rows after each series' end are read); whole horizon
        blocks of them (:func:`lstmkit.data.panel.future_rows`)."""
        self._check_fitted()
        steps = self.params["horizon"] if steps is None else steps
        if not is_int(steps) or steps < 1:
            raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
        if self.panel_ is not None:
            every = self.panel_quantiles(steps, future_covariates)
            median = self.quantiles_.index(0.5)
            columns = median if quantiles is None else self._quantile_columns(quantiles)
            return _as_input_form(self.panel_, every[..., columns], quantiles)
        if quantiles is not None:
            raise ValueError(
                "quantiles: this Forecaster was fitted for point forecasts; expected none, got "
                f"{quantiles!r} (pass quantiles=(0.1, 0.5, 0.9) to the constructor)"
            )
        fut = self._future_ahead(future_covariates, steps)
        pred = self._forecast(self._series, self._past, fut, steps)
        return pred[:, 0] if pred.shape[1] == 1 else pred

    def panel_quantiles(self, steps: int | None = None, future_covariates=None) -> np.ndarray:
        """All trained quantiles of every series: (n_series, steps, Q), in input order
        (``future_covariates`` as for :meth:`predict`)."""
        self._check_fitted()
        steps = self.params["horizon"] if steps is None else steps
        channels = self._channels(_raw_channels(self.panel_))
        future = self._future_inputs(self.panel_, future_covariates, steps)
        return self._forecast_panel(
            self.panel_.values, np.arange(len(self.panel_)), steps, channels, future
        )

    def _forecast_panel(self, values, which, steps, channels, future) -> np.ndarray:
        """:func:`forecast_panel` of the histories ``values`` of the fitted series ``which``."""
        return forecast_panel(
            self.nets_,
            values,
            self.scales_[which],
            self.seasonal_[which],
            lookbacks=self.lookbacks_,
            horizon=self.params["horizon"],
            levels=self.quantiles_,
            steps=steps,
            static=None if self.static_ is None else self.static_[which],
            channels=channels,
            future=future,
        )

    def _channels(self, raw: list[np.ndarray] | None) -> list[np.ndarray] | None:
        """Per-step covariates (T_i, C + F) standardised as in training."""
        return None if raw is None else [self._channel_scaler(c) for c in raw]

    def _future_inputs(self, panel: Panel, given, steps: int) -> list[np.ndarray] | None:
        """The standardised known-future covariates of the whole horizon blocks ahead of
        ``panel``'s series (from ``given``, :func:`lstmkit.data.panel.future_rows`)."""
        width, horizon = self._shapes.get("future", 0), self.params["horizon"]
        if not width:
            if given is not None:
                raise ValueError("future_covariates: the model was fitted without them, got some")
            return None
        check_past_steps(self._shapes["past"], steps, horizon)
        return self._standardised_future(future_rows(panel, given, self._rows_needed(steps)))

    def _standardised_future(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        """Known-future covariates (rows, F) standardised as in training (the scaler's
        last F columns)."""
        width = self._shapes["future"]
        mean, std = (a[-width:] for a in (self._channel_scaler.mean, self._channel_scaler.std))
        return [(f - mean) / std for f in rows]

    def _quantile_columns(self, quantiles) -> list[int]:
        try:
            asked = [float(q) for q in quantiles]
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"quantiles: expected a sequence of levels, got {quantiles!r}"
            ) from err
        columns = [level_index(self.quantiles_, q) for q in asked]
        if None in columns:
            raise ValueError(
                f"quantiles: expected levels the model was trained with {self.quantiles_}, got "
                f"{asked[columns.index(None)]} (pass quantiles=... to the constructor)"
            )
        return columns

    def gate_activations(
        self, back: int = 0, *, series: int = 0
    ) -> dict[str, dict[str, np.ndarray]]:
        """The network's gates on the input window that ends ``back`` steps before the end of
        the fitted series (0: the window ``predict()`` starts from); see
        :func:`lstmkit.tasks.networks.gate_activations`. After a panel fit, ``series`` is
        the position of the series in the panel (the first network of an ensemble)."""
        self._check_fitted()
        if self.panel_ is not None:
            return self._panel_gates(back, series)
        if not is_int(back) or not 0 <= back <= self._series.shape[0] - self.lookback_:
            raise ValueError(
                f"back: expected an int in [0, {self._series.shape[0] - self.lookback_}]"
                f" (the series has {self._series.shape[0]} steps), got {back!r}"
            )
        t = self._series.shape[0] - back
        y_s, past_s, fut_s = self._scaled(
            *(_head(a, t) for a in (self._series, self._past, self._fut))
        )
        chan = self._inputs(y_s, past_s, fut_s)
        x, _, _ = series_windows(y_s, chan, None, [t], self.lookback_, self._step_horizon)
        return gate_activations(self.net_, _float32(x[0]))

    def _panel_gates(self, back: int, series: int) -> dict[str, dict[str, np.ndarray]]:
        count = len(self.panel_)
        if not is_int(series) or not 0 <= series < count:
            raise ValueError(f"series: expected a position in [0, {count - 1}], got {series!r}")
        values = self.panel_.values[series]
        if not is_int(back) or not 0 <= back <= len(values) - 1:
            raise ValueError(
                f"back: expected an int in [0, {len(values) - 1}] (series {series} has "
                f"{len(values)} points), got {back!r}"
            )
        seen = normalised(values, self.scales_[series], self.seasonal_[series])
        channels = self._channels(_raw_channels(self.panel_))
        seen_channels = None if channels is None else channels[series][: len(seen) - back]
        x = window_input(seen[: len(seen) - back], self.lookback_, seen_channels)
        return gate_activations(self.net_, x)

    def _rows_needed(self, steps: int) -> int:
        """Future-covariate rows a forecast of ``steps`` reads: whole horizon blocks."""
        block = self._step_horizon
        return -(-steps // block) * block

    def _future_ahead(self, future_covariates, steps: int) -> np.ndarray | None:
        """The fitted future covariates, then those given for the whole horizon blocks of
        ``steps`` ahead."""
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
        check_past_steps(self._past is not None, steps, self._step_horizon)  # before the widths
        return np.concatenate([self._fut, ahead[:need]])

    def evaluate(
        self,
        actual,
        *,
        future_covariates=None,
        season: int | None = None,
        level: int = 80,
        return_forecasts: bool = False,
    ):
        """Metrics of ``predict(len(actual))`` against ``actual``, on the original scale,
        with the naive, seasonal-naive (``season``: default the model's) and mean
        baselines beside the model, and with the ``forecast`` extra AutoETS, AutoTheta and
        AutoARIMA (each target column on its own; :mod:`lstmkit.tasks.forecast_baselines`).

        After a panel fit, ``actual`` is the panel's continuation in the same form (a
        list/dict of arrays, a long frame — which also holds the known-future covariate
        columns when the model reads some; else ``future_covariates`` as for
        :meth:`predict`), each series as long as wanted: sMAPE, MASE, the coverage and MSIS
        of the central ``level`` % interval (when the model has its quantiles) and the CRPS
        estimate, averaged over series (M4's conventions,
        :mod:`lstmkit.train.forecast_metrics`), of the model and of the same baselines (the
        statistical ones with their intervals).

        With ``return_forecasts``: (metrics, the forecasts they score) — a dict of each row's
        forecast (steps, K) for one series; after a panel fit, the quantile forecasts
        (n_series, steps, Q) in the panel's order, as :meth:`panel_quantiles` — so a caller
        that shows them does not forecast again."""
        self._check_fitted()
        season = season or self.season_
        if self.panel_ is not None:
            truth = _continuation(self.panel_, actual).values
            if future_covariates is None and self.panel_.kind == "long":
                future_covariates = actual if self._shapes.get("future") else None
            every = self.panel_quantiles(max(len(t) for t in truth), future_covariates)
            metrics = self._score_panel(self.panel_.values, truth, every, season, level)
            return (metrics, every) if return_forecasts else metrics
        truth = as_matrix(actual, "actual")
        steps = truth.shape[0]
        preds = {"model": self.predict(steps, future_covariates=future_covariates)}
        preds |= _naive_points(self._series, steps, season)
        found = _statistical(list(self._series.T), steps, season)  # each target on its own
        preds |= {name: np.stack(out["point"], axis=1) for name, out in found.items()}
        preds = {name: np.asarray(p).reshape(truth.shape) for name, p in preds.items()}
        metrics = {name: regression_metrics(truth, p) for name, p in preds.items()}
        return (metrics, preds) if return_forecasts else metrics

    def _score_panel(self, history, truth, every, season: int, level: int) -> dict:
        """Metric rows of the quantile forecasts ``every`` (n, ≥ len(truth[i]), Q) of the
        series ``history`` against ``truth``, beside the naive, seasonal-naive and mean
        forecasts and (with the forecast extra) the statistical ones."""
        cut = [len(t) for t in truth]

        def first(forecasts, column=None) -> list[np.ndarray]:  # each series' first n steps
            pairs = zip(forecasts, cut, strict=True)
            return [f[:n] if column is None else f[:n, column] for f, n in pairs]

        alpha = 1 - level / 100

        def scored(forecasts, **more) -> dict[str, float]:  # alpha is read with bounds only
            return panel_metrics(truth, forecasts, history, season, alpha=alpha, **more)

        interval = [level_index(self.quantiles_, q) for q in (alpha / 2, 1 - alpha / 2)]
        lower, upper = (None, None) if None in interval else (first(every, k) for k in interval)
        model = first(every, self.quantiles_.index(0.5))
        spread = {"lower": lower, "upper": upper, "quantiles": first(every)}
        rows = {"model": scored(model, **spread, levels=self.quantiles_)}
        naive = [_naive_points(x, n, season) for x, n in zip(history, cut, strict=True)]
        for name in naive[0]:
            rows[name] = scored([p[name][:, 0] for p in naive])
        for name, out in _statistical(history, max(cut), season, level).items():
            bounds = {"lower": first(out["lower"]), "upper": first(out["upper"])}
            rows[name] = scored(first(out["point"]), **bounds)
        return rows

    def backtest(
        self,
        series,
        *,
        start: int | None = None,
        steps: int | None = None,
        every: int = 1,
        covariates=None,
        future_covariates=None,
        level: int = 80,
    ) -> dict:
        """Rolling-origin evaluation without refitting: from each origin o = start,
        start+every, … forecast ``steps`` ahead using only series[:o]. Fit the model on
        series[:start] first, so no origin sees data it was trained on.
        Returns ``{"origins", "predictions" (n, steps, K), "metrics"}`` (metrics pooled).

        After a panel fit, ``series`` is the panel's continuation (as for ``evaluate``):
        from each origin k = start, start + every, … (``start`` default 0: the end of the
        fitted series) of each series with at least k + steps points after its end, the
        model forecasts ``steps`` ahead from the fitted part and the first k continued
        points — without refitting. Returns ``{"series", "origins", "predictions" (n,
        steps, Q), "metrics"}``: a row per (series, origin), and the metrics of
        ``evaluate`` (``level`` % intervals) over all of them, the baselines forecasting
        from the same origins. Per-step covariates of the continuation: the long frame's
        columns, or ``covariates``/``future_covariates`` beside a list/dict continuation,
        as long as it; an origin needs whole horizon blocks of known-future ones."""
        self._check_fitted()
        steps = self.params["horizon"] if steps is None else steps
        if self.panel_ is not None:
            start = 0 if start is None else start
            for name, given, key in (
                ("covariates", covariates, "past"),
                ("future_covariates", future_covariates, "future"),
            ):
                if given is not None and not self._shapes.get(key):
                    raise ValueError(f"{name}: the panel model was fitted without them, got some")
            more = _continuation(self.panel_, series, covariates, future_covariates)
            return self._backtest_panel(more, start, steps, every, level)
        if start is None:
            raise ValueError("start: expected the first origin (an int), got None")
        y = as_matrix(series, "series")
        past = as_matrix(covariates, "covariates", y.shape[0])
        fut = as_matrix(future_covariates, "future_covariates", y.shape[0])
        reach = steps if fut is None else self._rows_needed(steps)  # rows read ahead
        last = y.shape[0] - reach
        origins = list(range(start, last + 1, every))
        if start < self.lookback_ or not origins:
            raise ValueError(
                f"start: expected an origin in [{self.lookback_}, {last}], got {start}"
            )
        preds = np.stack(
            [self._forecast(y[:o], _head(past, o), _head(fut, o + reach), steps) for o in origins]
        )
        truth = np.stack([y[o : o + steps] for o in origins])
        metrics = regression_metrics(truth, preds)
        return {"origins": origins, "predictions": preds, "metrics": metrics}

    def _backtest_panel(self, more: Panel, start: int, steps: int, every: int, level: int):
        for name, value, low in (("start", start, 0), ("steps", steps, 1), ("every", every, 1)):
            if not is_int(value) or value < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
        width = self._shapes.get("future", 0)
        check_past_steps(self._shapes.get("past"), steps, self.params["horizon"])
        reach = self._rows_needed(steps) if width else steps  # rows read ahead
        fitted_channels, more_channels = _raw_channels(self.panel_), _raw_channels(more)
        rows, history, ahead, channels, future = [], [], [], [], []
        for i, (fitted, cont) in enumerate(zip(self.panel_.values, more.values, strict=True)):
            for k in range(start, len(cont) - reach + 1, every):
                rows.append((i, k))
                history.append(np.concatenate([fitted, cont[:k]]))
                ahead.append(cont[k : k + steps])
                if fitted_channels is not None:
                    channels.append(np.concatenate([fitted_channels[i], more_channels[i][:k]]))
                if width:
                    future.append(more.future[i][k : k + reach])
        if not rows:
            longest = max(len(t) for t in more.values)
            raise ValueError(
                f"series: expected a continuation of at least start + "
                f"{'whole horizons' if width else 'steps'} = {start + reach} points for some "
                f"series, got at most {longest}"
            )
        which = np.array([i for i, _ in rows])
        inputs = self._channels(channels or None)
        known = self._standardised_future(future) if width else None
        every_q = self._forecast_panel(history, which, steps, inputs, known)
        return {
            "series": [self.panel_.ids[i] for i in which],
            "origins": [k for _, k in rows],
            "predictions": every_q,
            "metrics": self._score_panel(history, ahead, every_q, self.season_, level),
        }

    # -- persistence ----------------------------------------------------------------------

    def _saved(self) -> tuple[dict, dict, dict]:
        """As every estimator's, with the scalers and fitted history."""
        if self.panel_ is not None:
            fitted = {
                "shapes": self._shapes,
                "season": self.season_,
                "quantiles": list(self.quantiles_),
                "scales": self.scales_.tolist(),
                "seasonal": self.seasonal_.tolist(),
                "static": None if self.static_ is None else self.static_.tolist(),
                "channel_scaler": None
                if self._channel_scaler is None
                else [self._channel_scaler.mean.tolist(), self._channel_scaler.std.tolist()],
                "lookbacks": self.lookbacks_,
                "panel": panel_to_json(self.panel_),
            }
            state = torch.nn.ModuleList(self.nets_).state_dict()
            params = self.params
            if len(self.nets_) < params["n_models"]:  # an ensemble Ctrl-C cut short
                params = params | {"n_models": len(self.nets_)}
                if isinstance(params["lookback"], tuple):
                    params["lookback"] = tuple(self.lookbacks_)
        else:
            fitted = {
                "season": self.season_,
                "shapes": self._shapes,
                "scalers": [
                    None if s is None else [s.mean.tolist(), s.std.tolist()] for s in self._scalers
                ],
                "series": self._series.tolist(),
                "past": None if self._past is None else self._past.tolist(),
                "future": None if self._fut is None else self._fut.tolist(),
            }
            state, params = self.net_.state_dict(), self.params
        return params, fitted, state

    @classmethod
    def load(cls, path) -> "Forecaster":
        model = super().load(path)
        if model.panel_ is not None:  # the ensemble's networks were loaded as one list
            model.nets_ = list(model.net_)
            model.net_ = model.nets_[0]
        return model

    def _restore(self, fitted: dict) -> RecurrentNet:
        self._shapes = _saved_shapes(fitted)
        if fitted.get("season") is not None:
            saved_count(fitted, "season")
        self.season_ = fitted.get("season") or self.params["season"] or 12
        if "panel" in fitted:
            self.panel_ = panel_from_json(fitted["panel"])
            self.quantiles_ = check_quantiles(fitted["quantiles"])
            self.scales_ = np.array(fitted["scales"], dtype=np.float64)
            if len(self.scales_) != len(self.panel_) or not (self.scales_ > 0).all():
                raise ValueError(
                    f"scales: expected {len(self.panel_)} positive numbers, got {self.scales_}"
                )
            # models saved before deseasonalisation existed: factors of 1
            self.seasonal_ = np.array(fitted.get("seasonal", [[1.0]] * len(self.panel_)))
            if (
                self.seasonal_.ndim != 2
                or len(self.seasonal_) != len(self.panel_)
                or not (np.isfinite(self.seasonal_) & (self.seasonal_ > 0)).all()
            ):
                raise ValueError(
                    f"seasonal: expected {len(self.panel_)} rows of positive seasonal factors, "
                    f"got an array of shape {self.seasonal_.shape}"
                )
            self.static_ = _saved_static(
                fitted.get("static"), len(self.panel_), self._shapes, self.params["horizon"]
            )
            self._channel_scaler = _saved_channels(self.panel_, self._shapes, fitted)
            self._fitted_lookbacks = _saved_lookbacks(fitted, self.params)
            return torch.nn.ModuleList(self._build() for _ in range(self.params["n_models"]))
        self._series = saved_numbers(fitted, "series", (None, self._shapes["targets"]))
        steps = len(self._series)
        if steps < self.lookback_:
            raise ValueError(
                f"series: expected at least {self.lookback_} steps (the look-back), got {steps}"
            )
        self._past, self._fut = (
            None if fitted.get(key) is None else saved_numbers(fitted, key, (steps, None))
            for key in ("past", "future")
        )
        scalers = fitted.get("scalers")
        if not isinstance(scalers, list) or len(scalers) != 3:
            raise ValueError(f"scalers: expected 3 (series, past, future), got {shown(scalers)}")
        arrays = {"series": self._series, "past": self._past, "future": self._fut}
        self._scalers = [
            _saved_scaler(saved, data, name)
            for saved, (name, data) in zip(scalers, arrays.items(), strict=True)
        ]
        return self._build()


def _naive_points(history, steps: int, season: int) -> dict[str, np.ndarray]:
    """{naive, seasonal_naive, mean: forecasts (steps, K)} after the history (T, K); the
    season at most the history's length, so a short series' seasonal naive never raises."""
    return {
        name: baseline.fit(history).predict(steps)
        for name, baseline in (
            ("naive", NaiveForecaster()),
            ("seasonal_naive", SeasonalNaiveForecaster(min(season, len(history)))),
            ("mean", MeanForecaster()),
        )
    }


def _statistical(series, steps: int, season: int, level: int = 80) -> dict[str, dict]:
    """AutoETS, AutoTheta and AutoARIMA's forecasts of each of the ``series``
    (:func:`lstmkit.tasks.forecast_baselines.statistical_forecasts`) when the forecast
    extra is installed; else {}."""
    from lstmkit.tasks import forecast_baselines  # imports statsforecast only if asked

    if not forecast_baselines.available():
        return {}
    return forecast_baselines.statistical_forecasts(series, steps, season, level=level)


def _loss(net: RecurrentNet, batch: dict[str, Tensor]) -> tuple[Tensor, int]:
    pred = net(batch["x"], extra=batch.get("extra"))
    return torch.nn.functional.mse_loss(pred, batch["y"]), batch["y"].numel()


def _float32(array: np.ndarray | None) -> Tensor | None:
    """A float32 tensor copy of ``array``; None for None."""
    return None if array is None else torch.tensor(array, dtype=torch.float32)


def _head(array: np.ndarray | None, end: int) -> np.ndarray | None:
    """The rows of ``array`` before ``end``; None for None."""
    return None if array is None else array[:end]


def _frequency(series) -> str | None:
    """The pandas frequency of a Series/DataFrame with a time index, else None."""
    return getattr(getattr(series, "index", None), "freqstr", None)


def _saved_shapes(fitted: dict) -> dict:
    """A saved model's network sizes: counts, ``extra`` may be 0."""
    shapes = fitted.get("shapes")
    if not isinstance(shapes, dict):
        raise ValueError(f"shapes: expected an object of sizes, got {shown(shapes)}")
    for key in ("targets", "channels"):
        saved_count(shapes, key)
    saved_count(shapes, "extra", low=0)
    for key in ("quantiles", "hidden"):  # "hidden": a panel's, saved since it can be chosen
        if key in shapes:
            saved_count(shapes, key)
    return shapes


def _saved_scaler(saved, data: np.ndarray | None, name: str) -> Scaler | None:
    """The standardisation of ``data`` (a saved series, past or future covariates): a mean
    and a positive standard deviation per column; none where there is no data."""
    if data is None:
        if saved is not None:
            raise ValueError(f"scalers: expected null for the absent {name}, got {shown(saved)}")
        return None
    if not isinstance(saved, list) or len(saved) != 2:
        raise ValueError(f"scalers: expected [mean, std] for the {name}, got {shown(saved)}")
    columns = (data.shape[1],)
    scaler = Scaler.__new__(Scaler)
    mean, std = f"scalers ({name} mean)", f"scalers ({name} std)"
    scaler.mean = saved_numbers({mean: saved[0]}, mean, columns)
    scaler.std = saved_numbers({std: saved[1]}, std, columns, positive=True)
    return scaler


def _saved_static(saved, count: int, shapes: dict, horizon: int) -> np.ndarray | None:
    """A saved model's standardised static covariates, checked against its shapes (the
    extra features past the known-future covariates over the horizon)."""
    width = shapes.get("extra", 0) - shapes.get("future", 0) * horizon
    if saved is None and not width:
        return None
    static = np.array(saved if saved is not None else [], dtype=np.float64)
    if static.shape != (count, width) or not np.isfinite(static).all():
        raise ValueError(
            f"static: expected {count} rows of {width} finite numbers (the model's static "
            f"covariates), got an array of shape {static.shape}"
        )
    return static


def _saved_channels(panel: Panel, shapes: dict, fitted: dict) -> Scaler | None:
    """A saved panel model's standardisation of its per-step covariates, checked against
    the saved panel's covariates and the network's input channels (models saved before
    per-step covariates: none)."""
    past, future = (saved_count(shapes, key, low=0, default=0) for key in ("past", "future"))
    widths = [0 if a is None else a[0].shape[1] for a in (panel.covariates, panel.future)]
    if [past, future] != widths or shapes["channels"] != 1 + past + future:
        raise ValueError(
            f"shapes: expected {widths[0]} past and {widths[1]} future covariate columns (the "
            f"saved panel's) and 1 + both input channels, got {past}, {future} and "
            f"{shapes['channels']}"
        )
    raw = _raw_channels(panel)
    return _saved_scaler(
        fitted.get("channel_scaler"), None if raw is None else np.concatenate(raw), "covariates"
    )


def _raw_channels(panel: Panel) -> list[np.ndarray] | None:
    """Each series' per-step covariates, past then known-future columns (T_i, C + F)."""
    parts = [a for a in (panel.covariates, panel.future) if a is not None]
    return [np.concatenate(row, axis=1) for row in zip(*parts, strict=True)] if parts else None


def _saved_lookbacks(fitted: dict, params: dict) -> list[int]:
    """A saved panel model's look-back per network; models saved before ensembles could
    vary it read one look-back, ``lookback`` or the default of their saved season."""
    count, given = params["n_models"], params["lookback"]
    saved = fitted.get("lookbacks")
    if saved is None and not isinstance(given, (list, tuple)):  # else they must be saved
        return [panel_lookback(fitted["season"]) if given is None else given] * count
    if (
        not isinstance(saved, list)
        or len(saved) != count
        or any(not is_int(v) or v < 1 for v in saved)
    ):
        raise ValueError(f"lookbacks: expected {count} ints >= 1 (one per network), got {saved!r}")
    return saved


def _single_panel(series, covariates=None, future_covariates=None) -> Panel:
    """One series (and its per-step covariates (T, C), (T, F)) as a panel of one
    (forecasts come back as for one series)."""
    y = as_matrix(series, "series")
    if y.shape[1] != 1:
        raise ValueError(
            f"series: expected one target with quantiles or n_models, got {y.shape[1]} columns"
        )
    single = as_panel(
        [y[:, 0]],
        covariates=None if covariates is None else [covariates],
        future_covariates=None if future_covariates is None else [future_covariates],
    )
    return replace(single, ids=[0], kind="single", frequency=_frequency(series))


def _future_times(end, frequency: str | None, steps: int) -> list:
    """The ``steps`` time stamps after ``end``: by the frequency for dates, +1 for ints,
    else the step numbers 1…steps."""
    import pandas as pd

    if frequency and isinstance(end, pd.Timestamp | np.datetime64):
        return list(pd.date_range(end, periods=steps + 1, freq=frequency)[1:])
    if frequency and isinstance(end, pd.Period):
        return [end + k for k in range(1, steps + 1)]
    if isinstance(end, int | np.integer):
        return [int(end) + k for k in range(1, steps + 1)]
    return list(range(1, steps + 1))


def _as_input_form(panel: Panel, out: np.ndarray, quantiles):
    """Forecasts (n_series, steps[, q]) back in the form the panel came in."""
    if panel.kind == "single":
        return out[0]
    if panel.kind == "list":
        return list(out)
    if panel.kind == "dict":
        return dict(zip(panel.ids, out, strict=True))
    import pandas as pd

    id_name, time_name, value_name = panel.columns
    steps = out.shape[1]
    frame = {
        id_name: np.repeat(np.array(panel.ids, dtype=object), steps),
        time_name: [t for end in panel.ends for t in _future_times(end, panel.frequency, steps)],
    }
    if quantiles is None:
        frame[value_name] = out.reshape(-1)
    else:
        for k, q in enumerate(quantiles):
            frame[f"{value_name}_q{float(q):g}"] = out[..., k].reshape(-1)
    return pd.DataFrame(frame)


def _continuation(panel: Panel, actual, covariates=None, future_covariates=None) -> Panel:
    """The held-out continuation of each fitted series, in the panel's order, with its
    per-step covariates (a long frame's columns the panel read, or those given)."""
    if panel.kind == "single":
        return _single_panel(actual, covariates, future_covariates)
    if panel.kind == "long" and panel.names is not None:
        covariates, future_covariates = (names or None for names in panel.names)
    keys = ("id_column", "time_column", "value_column")
    columns = dict(zip(keys, panel.columns or (), strict=False))  # a long frame's names
    got = as_panel(
        actual, **columns, min_points=1, covariates=covariates, future_covariates=future_covariates
    )
    where = {name: k for k, name in enumerate(got.ids)}
    if panel.kind == "list" and len(got) != len(panel):
        raise ValueError(f"actual: expected {len(panel)} series (as fitted), got {len(got)}")
    missing = [name for name in panel.ids if name not in where]
    if missing:
        named = ", ".join(map(repr, missing[:5]))
        raise ValueError(f"actual: expected every fitted series, got none for {named}")
    ordered = [where[name] for name in panel.ids]
    return replace(
        got,
        ids=list(panel.ids),
        values=[got.values[k] for k in ordered],
        **{
            key: None if getattr(got, key) is None else [getattr(got, key)[k] for k in ordered]
            for key in ("covariates", "future")
        },
    )
