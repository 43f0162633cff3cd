r"""One global forecasting network over a panel of series, with quantile forecasts.

The recipe of neural forecasters trained across many series (ES-RNN, Smyl 2020;
N-BEATS; Nixtla's neuralforecast), written for :class:`lstmkit.tasks.forecast.Forecaster`:

* **Scale.** Series :math:`i` is divided by its in-sample scale
  :math:`s_i = \frac{1}{e_i-m}\sum_{t=m}^{e_i-1} |y_t - y_{t-m}|` over its training part,
  with the season :math:`m` (1 without one): the denominator of MASE, taken of the
  deseasonalised values (below; the indices average 1); where that is 0 or undefined (a
  series of at most :math:`m` points), the mean absolute first difference, then the
  standard deviation, :math:`|\bar y|`, and 1. Series of any magnitude share one network,
  and the loss weighs every series as MASE does, by its own seasonal naive error
  (:mod:`lstmkit.data.scaling`).
* **Seasons.** With ``deseasonalize`` (the default) and a season :math:`m > 1`, a series
  whose training part passes the 90 % autocorrelation test at lag :math:`m` and is
  positive is divided by its classical multiplicative seasonal indices
  :math:`S_{t \bmod m}` before it is scaled, and the forecasts multiplied back
  (:mod:`lstmkit.data.seasonal`; the M4 benchmarks' and the Theta method's first step):
  the network then sees one phase-free shape, and need not learn each series' calendar
  from a 24-step window. Measured on M3 and Tourism in ``docs/forecasting.md``.
* **Windows.** Inputs are taken relative to the window's last value and short windows are
  masked through the engine's ``lengths`` (:mod:`lstmkit.data.windows`): a series of 2
  points still gets a forecast. Every origin of every series is a training window, and
  each window of series :math:`i` weighs :math:`\bar c / c_i` in the loss (:math:`c_i`
  its windows, :math:`\bar c` their mean): every series weighs the same, as in the mean
  over series that MASE and sMAPE take (neuralforecast and N-BEATS sample series
  uniformly for the same reason), instead of a long series outweighing a short one.
* **Static covariates** (optional): numbers per series :math:`c_i` (a store's size, a
  product's category code), standardised over the series, join the recurrent encoding
  before the head: :math:`\hat y = W [h_a; c_i] + b`, the same vector for every window
  of series :math:`i`.
* **Per-step covariates** (optional): past covariates :math:`u_t` (known up to each
  origin) and known-future ones :math:`v_t` (known over the horizon too), standardised
  column by column over the training parts of all series, join the target as input
  channels, :math:`[x_j; u_{t-a+j}; v_{t-a+j}]`; the known-future ones over the horizon,
  :math:`v_t \dots v_{t+H-1}`, also join the encoding before the head,
  :math:`\hat y = W [h_a; c_i; v_t; \dots; v_{t+H-1}] + b`. Past covariates' future is
  unknown, so with them at most H steps are forecast.
* **Quantiles.** The head gives :math:`H \times Q` numbers, :math:`\hat y_{k,q}`, trained
  with the pinball (quantile) loss averaged over the real targets

  .. math:: \rho_q(u) = \max(q u, (q - 1) u), \qquad u = y_k - \hat y_{k,q},

  whose minimiser is the :math:`q`-quantile of the conditional distribution (Koenker &
  Bassett 1978). The point forecast is the median (:math:`q = 0.5`, which also minimises
  the absolute error that MASE and sMAPE measure). At prediction the :math:`Q` values of each
  step are sorted (monotone rearrangement, Chernozhukov et al. 2010): quantiles never cross,
  and a quantile set that did not cross is unchanged.
* **Capacity.** Unless ``hidden_size`` is given, wider networks for bigger panels, which
  carry more to learn (:func:`panel_hidden`).
* **Budget.** About 20 passes over the windows with the one-cycle schedule (peak rate
  :data:`PANEL_LR`), within 300–2,000 optimizer steps (:func:`panel_epochs`): small panels
  are not trained into over-fitting, big ones stop at a bounded cost (M3 monthly's 143k
  windows get 4 passes).
* **Validation.** The last horizon of a share of the series (those long enough) is held
  out of training and its loss recorded each epoch, and the best epoch's weights kept;
  when no series is long enough, a warning says so and ``history`` records it.
* **Ensembles.** ``n_models`` networks from seeds s, s+1, … combined by the median of each
  quantile (then sorted). Each network may read its own look-back :math:`L_k` (N-BEATS'
  ensembles vary it from 2H to 7H): member k trains on, and forecasts from, windows of
  :math:`L_k` steps (``Forecaster(lookback=(L_1, …), n_models=…)``; by default every
  network reads the same L — varying it is measured in docs/forecasting.md).
* **Order.** Windows are enumerated in an order fixed by the series' contents, not by
  their position in the input: a panel fit is invariant to the order of its series.
"""

import hashlib
import math
import warnings

import numpy as np
import torch
from torch import Tensor

from lstmkit.data.scaling import Scaler, normalised, series_scale
from lstmkit.data.seasonal import at_phases, deseasonalising_factors
from lstmkit.data.windows import PanelWindows, contexts
from lstmkit.messages import shown
from lstmkit.tasks.networks import RecurrentNet
from lstmkit.train.loop import TrainConfig, fit, interrupted, seed_torch

DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
MAX_QUANTILES = 99  # every percentile: a head of 99 outputs per step
PANEL_BATCH = 256
PANEL_LR = 1e-2
# the budget of a panel fit (panel_epochs) and the width of its networks (panel_hidden)
PANEL_EPOCHS = 20
MIN_STEPS, MAX_STEPS = 300, 2000
PANEL_HIDDEN, BIG_PANEL_HIDDEN, BIG_PANEL_WINDOWS = 64, 128, 65_536


def check_quantiles(quantiles) -> tuple[float, ...]:
    """Distinct levels in (0, 1), sorted, including the median 0.5 (the point forecast);
    at most :data:`MAX_QUANTILES` of them."""
    try:
        levels = tuple(sorted(float(q) for q in quantiles))
    except (TypeError, ValueError) as err:
        raise ValueError(f"quantiles: expected numbers in (0, 1), got {shown(quantiles)}") from err
    if len(levels) > MAX_QUANTILES:
        raise ValueError(f"quantiles: expected at most {MAX_QUANTILES} levels, got {len(levels)}")
    if (
        not levels
        or any(not 0 < q < 1 for q in levels)
        or len(set(levels)) != len(levels)
        or 0.5 not in levels
    ):
        raise ValueError(
            f"quantiles: expected distinct levels in (0, 1) including 0.5 (the point "
            f"forecast), got {shown(quantiles)}"
        )
    return levels


def level_index(levels, q: float) -> int | None:
    """The position of quantile level ``q`` among ``levels`` (to 1e-9), or None."""
    near = np.flatnonzero(np.isclose(levels, q, rtol=0, atol=1e-9))
    return int(near[0]) if near.size else None


def panel_lookback(season: int) -> int:
    """The default look-back of a panel: four seasons, at least 24 and at most 96 steps
    (24 for yearly and quarterly data, 48 for monthly; measured in docs/forecasting.md)."""
    return max(24, min(4 * season, 96))


def panel_hidden(windows: int) -> int:
    """The default hidden size of a panel's networks, by how many windows they train on:
    :data:`PANEL_HIDDEN`, or :data:`BIG_PANEL_HIDDEN` from :data:`BIG_PANEL_WINDOWS` on
    (the monthly M3 and Tourism panels, 100k–140k windows, gained 0.03 MASE from it; the
    yearly ones, 10k–14k, lost 0.14; the quarterly ones, 30k–39k, moved within the seeds'
    noise: docs/forecasting.md)."""
    return BIG_PANEL_HIDDEN if windows >= BIG_PANEL_WINDOWS else PANEL_HIDDEN


def canonical_order(
    values: list[np.ndarray],
    static: np.ndarray | None = None,
    channels: list[np.ndarray] | None = None,
) -> list[int]:
    """Positions of the series sorted by their contents (length, then a digest of the
    values, the static covariates and the per-step covariates)."""
    rows = [b""] * len(values) if static is None else [r.tobytes() for r in static]
    if channels is not None:
        rows = [r + np.ascontiguousarray(c).tobytes() for r, c in zip(rows, channels, strict=True)]
    keys = [
        (len(v), hashlib.sha256(v.tobytes() + r).hexdigest())
        for v, r in zip(values, rows, strict=True)
    ]
    return sorted(range(len(values)), key=keys.__getitem__)


WINDOW_SCALE = True


def window_forward(net, x: Tensor, lengths: Tensor, extra: Tensor | None = None) -> Tensor:
    r"""The network on a window whose target channel is divided by its own spread, its
    output multiplied back: :math:`\sigma_w \, f(x / \sigma_w)` with :math:`\sigma_w` the
    standard deviation of the window's real target steps (1 when it has fewer than 2, or
    they are constant); covariate channels are read as they are. The network then sees
    windows of unit spread whatever the series' volatility did lately, and the loss stays
    in the series' scale."""
    if not WINDOW_SCALE:
        return net(x, lengths, extra)
    x, spread = _unit_spread(x, lengths)
    return net(x, lengths, extra) * spread[:, :, 0]


def _unit_spread(x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Windows x (n, L, 1 + C) with the target channel divided by its spread σ_w over the
    window's real steps, and σ_w (n, 1, 1) (see window_forward); the covariate channels as
    they are."""
    target = x[:, :, :1]
    real = (torch.arange(x.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
    count = lengths.to(x.dtype)[:, None, None]
    mean = (target * real).sum(1, keepdim=True) / count
    spread = (((target - mean) * real) ** 2).sum(1, keepdim=True).div(count).sqrt()
    spread = torch.where((count > 1) & (spread > 1e-3), spread, torch.ones_like(spread))
    return torch.cat([target / spread, x[:, :, 1:]], dim=2), spread


def window_input(scaled: np.ndarray, lookback: int, channels: np.ndarray | None = None) -> Tensor:
    """The input (a, 1 + C) the network reads to forecast after the scaled series
    ``scaled`` (with its standardised per-step covariates ``channels`` (T, C)): its last
    a = min(len, L) points relative to the last one, divided by the window's spread as
    :func:`window_forward` does (for gate inspection)."""
    origin = np.array([len(scaled)])
    x, real, _ = contexts(scaled, np.array([0]), origin, lookback, channels)
    x = torch.from_numpy(x.astype(np.float32))
    if WINDOW_SCALE:
        x, _ = _unit_spread(x, torch.from_numpy(real))
    return x[0, : int(real[0])]


class PinballLoss:
    """loss_fn for :func:`lstmkit.train.loop.fit`: the mean pinball loss over the real
    targets (``mask``) and the quantile levels, each window's terms multiplied by its
    ``weight`` when the batch has one (:class:`~lstmkit.data.windows.PanelWindows`)."""

    def __init__(self, levels: tuple[float, ...]) -> None:
        self.levels = torch.tensor(levels, dtype=torch.float32)

    def __call__(self, net, batch: dict[str, Tensor]) -> tuple[Tensor, int]:
        y, mask = batch["y"], batch["mask"]
        pred = window_forward(net, batch["x"], batch["lengths"], batch.get("extra"))
        pred = pred.view(*y.shape, len(self.levels))
        u = y.unsqueeze(-1) - pred
        loss = torch.maximum(self.levels * u, (self.levels - 1) * u) * mask.unsqueeze(-1)
        if "weight" in batch:
            loss = loss * batch["weight"].view(-1, 1, 1)
        count = int(mask.sum()) * len(self.levels)
        return loss.sum() / max(count, 1), count


def _validation_split(lengths: np.ndarray, order: list[int], share: float, horizon: int):
    """The series (positions) whose last ``horizon`` points are held out: a share of those
    with at least ``horizon + 2`` points, taken evenly along the canonical order."""
    eligible = [i for i in order if lengths[i] >= horizon + 2]
    wanted = max(1, round(len(order) * share))
    if not share or not eligible:
        return []
    picks = np.linspace(0, len(eligible) - 1, min(wanted, len(eligible))).round().astype(int)
    return sorted({eligible[p] for p in picks})


def panel_epochs(windows: int, batch: int, cap: int) -> int:
    """Epochs of a panel fit: :data:`PANEL_EPOCHS`, or as many as make :data:`MIN_STEPS` …
    :data:`MAX_STEPS` optimizer steps, at most ``cap``."""
    per_epoch = math.ceil(windows / batch)
    steps = min(max(PANEL_EPOCHS * per_epoch, MIN_STEPS), MAX_STEPS)
    return max(1, min(cap, round(steps / per_epoch)))


def fit_panel(
    values: list[np.ndarray],
    params: dict,
    build,
    *,
    validation: float,
    static: np.ndarray | None = None,
    channels: list[np.ndarray] | None = None,
    future_width: int = 0,
    progress=None,
    checkpoint=None,
    resume=False,
    callback=None,
) -> dict:
    """Train ``n_models`` networks (``build(hidden_size)`` makes one; ``params["hidden_size"]``,
    or :func:`panel_hidden` of the windows when None) on the panel ``values``, network
    k on windows of ``params["lookbacks"][k]`` steps. ``static`` (n_series, S):
    standardised static covariates, read beside the encoding; ``channels`` (T_i, C): each
    series' per-step covariates, the last ``future_width`` of them known over the horizon.
    Returns ``{"nets", "hidden_size", "scales", "seasonal", "channel_scaler", "histories"}``
    (``channel_scaler`` standardises ``channels``, or None)."""
    horizon, lookbacks = params["horizon"], params["lookbacks"]
    levels = check_quantiles(params["quantiles"])
    if not 0 <= validation < 1:
        raise ValueError(f"validation: expected a fraction in [0, 1), got {validation!r}")
    order = canonical_order(values, static, channels)
    rows = None if static is None else static[order]
    lengths = np.array([len(v) for v in values])
    held = set(_validation_split(lengths, order, validation, horizon))
    ends = [lengths[i] - horizon if i in held else lengths[i] for i in order]
    training = list(zip(order, ends, strict=True))  # (series, the end of its training part)
    season = params["season"] if params["deseasonalize"] else 1
    factors = np.stack([deseasonalising_factors(values[i][:end], season) for i, end in training])
    adjusted = [
        values[i] / at_phases(f, 0, lengths[i]) for i, f in zip(order, factors, strict=True)
    ]
    scales = np.array(
        [series_scale(a[:end], params["season"]) for a, end in zip(adjusted, ends, strict=True)]
    )
    scaled = [a / s for a, s in zip(adjusted, scales, strict=True)]
    kept = [k for k, i in enumerate(order) if i in held]
    scaler, inputs = None, None
    if channels is not None:  # standardised over the training parts of every series
        scaler = Scaler(np.concatenate([channels[i][:end] for i, end in training]))
        inputs = [scaler(channels[i]) for i in order]

    def windows(lookback: int):  # (training windows, validation windows or None)
        more = {"static": rows, "channels": inputs, "future_width": future_width}
        train = PanelWindows(scaled, ends, lookback, horizon, weigh_series=True, **more)
        if not held:
            return train, None
        whole = PanelWindows(scaled, lengths[order].tolist(), lookback, horizon, **more)
        return train, whole.take_at(np.array(kept), lengths[order][kept] - horizon)

    if not held and validation:
        warnings.warn(
            f"validation: no series has the horizon + 2 = {horizon + 2} points needed to hold "
            "out its last horizon; trained without validation",
            RuntimeWarning,
            stacklevel=4,  # the caller of Forecaster.fit
        )
    batch = params["batch_size"]
    nets, histories = [], []
    for k, lookback in enumerate(lookbacks):
        train, val = windows(lookback)
        seed = params["seed"] + k
        cfg = TrainConfig(
            epochs=panel_epochs(len(train), batch, params["epochs"]),
            batch_size=batch,
            lr=params["lr"] or PANEL_LR,
            patience=None,
            schedule="onecycle",
            seed=seed,
            progress=progress,
            checkpoint=None if checkpoint is None else f"{checkpoint}/model-{k}",
            resume=resume,
        )
        seed_torch(seed)
        hidden = params["hidden_size"] or panel_hidden(len(train))
        net = build(hidden)
        history = fit(net, PinballLoss(levels), train, val, cfg, callback=callback)
        if val is None and validation:
            history.stop_reason += "; no validation: no series long enough to hold out"
        nets.append(net)
        histories.append(history)
        if interrupted(history):  # Ctrl-C: the networks trained so far, no more
            break
    inverse = np.argsort(order)  # the position of each series in the canonical order
    return {
        "nets": nets,
        "hidden_size": hidden,
        "scales": scales[inverse],
        "seasonal": factors[inverse],
        "channel_scaler": scaler,
        "histories": histories,
    }


@torch.no_grad()
def forecast_panel(
    nets: list[RecurrentNet],
    values: list[np.ndarray],
    scales: np.ndarray,
    seasonal: np.ndarray,
    *,
    lookbacks: list[int],
    horizon: int,
    levels: tuple[float, ...],
    steps: int,
    static: np.ndarray | None = None,
    channels: list[np.ndarray] | None = None,
    future: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Quantile forecasts (n_series, steps, Q) on the original scale: each network's
    quantiles (network k reading the last ``lookbacks[k]`` steps), their median over the
    networks, sorted along Q. Past one horizon the median is appended to the
    (deseasonalised, scaled) series and the next block forecast from it. ``seasonal``
    (n_series, m) are the factors of :func:`fit_panel`; ``channels`` (T_i, C) the
    standardised per-step covariates of each series, the last F of them known-future, and
    ``future`` (≥ ⌈steps/H⌉·H, F) those F over the steps ahead. Past covariates (C > F)
    allow at most H steps."""
    median = levels.index(0.5)
    history = [normalised(v, s, f) for v, s, f in zip(values, scales, seasonal, strict=True)]
    width = 0 if future is None else future[0].shape[1]
    check_past_steps(channels is not None and channels[0].shape[1] > width, steps, horizon)
    blocks = []
    for done in range(0, steps, horizon):
        extra = [] if static is None else [static]
        if width:
            extra.append(np.stack([f[done : done + horizon].reshape(-1) for f in future]))
        extra = np.concatenate(extra, axis=1) if extra else None
        inputs = {L: _last_windows(history, L, channels, extra) for L in set(lookbacks)}
        pairs = zip(nets, lookbacks, strict=True)
        members = [_one_block(net, inputs[L], horizon, levels) for net, L in pairs]
        block = np.sort(np.median(members, 0), axis=-1)  # (n, H, Q)
        blocks.append(block)
        history = [np.concatenate([h, b[:, median]]) for h, b in zip(history, block, strict=True)]
        if width and done + horizon < steps:  # only known-future channels (checked above)
            rows = [f[done : done + horizon] for f in future]
            channels = [np.concatenate([c, r]) for c, r in zip(channels, rows, strict=True)]
    out = np.concatenate(blocks, axis=1)[:, :steps] * scales[:, None, None]
    ahead = np.stack([at_phases(f, len(v), steps) for v, f in zip(values, seasonal, strict=True)])
    return out * ahead[:, :, None]


def check_past_steps(past: bool, steps: int, horizon: int) -> None:
    """With ``past`` covariates, whose future is unknown, at most one horizon of steps."""
    if past and steps > horizon:
        raise ValueError(
            f"steps: with past covariates at most {horizon} steps can be predicted (their "
            f"future is unknown), got {steps}"
        )


def _last_windows(history, lookback, channels, extra) -> list[tuple]:
    """The window at the end of each scaled series, in chunks of about 1,024 series:
    (inputs (n, L, 1 + C), lengths (n,), levels (n,), extra features (n, E) or None) as
    the networks read them; ``extra`` (n_series, E) the static covariates and known-future
    ones over the horizon."""
    sizes = np.array([len(h) for h in history])
    windows = PanelWindows(history, sizes, lookback, 1, channels=channels)
    inputs = []
    for chunk in np.array_split(np.arange(len(history)), max(1, len(history) // 1024)):
        x, real, level, _ = windows.inputs(chunk, sizes[chunk])  # no static, no future
        more = None if extra is None else torch.from_numpy(extra[chunk].astype(np.float32))
        inputs.append((torch.from_numpy(x), torch.from_numpy(real), level, more))
    return inputs


def _one_block(net, inputs, horizon, levels) -> np.ndarray:
    """One network's (n, H, Q) forecast from the windows of :func:`_last_windows`."""
    net.eval()
    out = []
    for x, real, level, extra in inputs:
        pred = window_forward(net, x, real, extra).numpy()
        pred = pred.reshape(len(level), horizon, len(levels)).astype(np.float64)
        out.append(pred + level[:, None, None])
    return np.concatenate(out)
