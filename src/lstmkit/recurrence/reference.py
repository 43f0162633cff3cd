"""One direction of a recurrence, the plain way: the cell function in a loop over time.

Autograd differentiates it; this is the oracle the fused and native backends are tested
against, and the path that records gate activations for introspection.
"""

import torch
from torch import Tensor

from lstmkit.cells import gru_cell, lstm_cell
from lstmkit.recurrence.config import DirectionWeights, RNNConfig


def project(x: Tensor, w_ih: Tensor, bias: Tensor | None) -> Tensor:
    """``x W_ih^T + bias`` for all steps in one matmul: (T, N, H_in) -> (T, N, G·H)."""
    flat = x.reshape(-1, x.shape[-1])
    gx = flat @ w_ih.T if bias is None else torch.addmm(bias, flat, w_ih.T)
    return gx.view(x.shape[0], x.shape[1], -1)


def input_projection(cfg: RNNConfig, x: Tensor, w: DirectionWeights) -> Tensor:
    """:func:`project` with the bias that folds into the input side.

    For the LSTM both biases fold in here (b = b_ih + b_hh); for the GRU only b_ih does,
    because b_hn sits inside the reset product.
    """
    if w.b_ih is None:
        return project(x, w.w_ih, None)
    return project(x, w.w_ih, w.b_ih + w.b_hh if cfg.mode == "LSTM" else w.b_ih)


def run_direction(
    cfg: RNNConfig,
    x: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    w: DirectionWeights,
    mask: Tensor | None,
    reverse: bool,
    record: list | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one direction over x (T, N, H_in) from (h0, c0); return (out (T, N, P), h_T, c_T).

    ``mask`` (T, N, 1) bool marks real steps; states are carried unchanged through padding
    and outputs there are zero. With ``record`` a list, each step's cell output (masked)
    is stored at its time index.
    """
    steps = x.shape[0]
    gx = input_projection(cfg, x, w)
    outs: list[Tensor] = [x.new_empty(0)] * steps
    if record is not None:
        record.extend([None] * steps)
    h, c = h0, c0
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        if cfg.mode == "LSTM":
            step = lstm_cell(gx[t], h, c, w.w_hh, None, w.w_hr)
        else:
            step = gru_cell(gx[t], h, w.w_hh, w.b_hh, reset_after=cfg.reset_after)
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
