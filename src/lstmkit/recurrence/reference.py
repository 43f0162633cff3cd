"""One direction of a recurrence, the plain way: the cell function in a loop over time.

Autograd differentiates it; this is the oracle the fused and native backends are tested
against, and the path that records gate activations for introspection.
"""

import torch
from torch import Tensor

from lstmkit.cells import gru_cell, lstm_cell
from lstmkit.cells.norm import layer_norm
from lstmkit.recurrence.config import DirectionWeights, RNNConfig
from lstmkit.recurrence.noise import Noise


def input_projection(cfg: RNNConfig, x: Tensor, w: DirectionWeights) -> Tensor:
    """``x W_ih^T + bias`` for all steps in one matmul: (T, N, H_in) -> (T, N, G·H).

    For the LSTM both biases fold in here (b = b_ih + b_hh); for the GRU only b_ih does,
    because b_hn sits inside the reset product. With layer normalisation the projection
    is normalised first, LN(x W_ih^T) ⊙ γ_ih + bias (``docs/variants.md``).
    """
    bias = None
    if w.b_ih is not None:
        bias = w.b_ih + w.b_hh if cfg.mode == "LSTM" else w.b_ih
    flat = x.reshape(-1, x.shape[-1])
    if w.ln_ih is not None:
        return layer_norm((flat @ w.w_ih.T).view(*x.shape[:2], -1), w.ln_ih, bias)
    gx = flat @ w.w_ih.T if bias is None else torch.addmm(bias, flat, w.w_ih.T)
    return gx.view(*x.shape[:2], -1)


def zone(d: Tensor | float | None, prev: Tensor, new: Tensor) -> Tensor:
    """Zoneout: d ⊙ prev + (1 − d) ⊙ new (d = 1 keeps the previous value); new when off."""
    if d is None:
        return new
    return torch.lerp(new, prev, d) if isinstance(d, Tensor) else new + d * (prev - new)


def run_direction(
    cfg: RNNConfig,
    x: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w: DirectionWeights,
    mask: Tensor | None,
    reverse: bool,
    noise: Noise | None = None,
    record: list | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one direction over x (T, N, H_in) from (h0, c0); return (out (T, N, P), h_T, c_T).

    ``mask`` (T, N, 1) bool marks real steps; states are carried unchanged through padding
    and outputs there are zero. ``noise`` holds the recurrent-dropout and zoneout masks
    (:mod:`lstmkit.recurrence.noise`). With ``record`` a list, each step's cell output
    (masked) is stored at its time index; with zoneout, its ``h`` (and ``c``) are the
    zoned states.
    """
    noise = noise or Noise()
    steps = x.shape[0]
    gx = input_projection(cfg, x, w)
    outs: list[Tensor] = [x.new_empty(0)] * steps
    if record is not None:
        record.extend([None] * steps)
    h, c = h0, c0
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        h_in = h if noise.recurrent is None else h * noise.recurrent
        zh = noise.zoneout_h[t] if isinstance(noise.zoneout_h, Tensor) else noise.zoneout_h
        if cfg.mode == "LSTM":
            step = lstm_cell(
                gx[t], h_in, c, w.w_hh, None, w.w_hr,
                w_ph=w.w_ph, ln_hh=w.ln_hh, ln_c=w.ln_c, ln_c_bias=w.ln_c_bias,
            )  # fmt: skip
            zc = noise.zoneout_c[t] if isinstance(noise.zoneout_c, Tensor) else noise.zoneout_c
            step = step._replace(c=zone(zc, c, step.c), h=zone(zh, h, step.h))
        else:
            step = gru_cell(
                gx[t], h, w.w_hh, w.b_hh, reset_after=cfg.reset_after, ln_hh=w.ln_hh, h_in=h_in
            )
            step = step._replace(h=zone(zh, h, step.h))
        if mask is None:
            h = step.h
            c = step.c if cfg.mode == "LSTM" else None
            outs[t] = h
        else:
            m = mask[t]
            h = torch.where(m, step.h, h)
            c = torch.where(m, step.c, c) if cfg.mode == "LSTM" else None
            outs[t] = step.h * m
        if record is not None:
            record[t] = step if mask is None else type(step)(*(v * mask[t] for v in step))
    return torch.stack(outs), h, c
