"""Layers and directions: the bidirectional merge and stacking, shared by all backends.

Layer k+1 reads layer k's merged output sequence (``SPEC.md`` §4); the forward direction
runs t = 1…T and the reverse one t = T…1 with its own weights (§2). The directions are
merged at every layer: ``concat`` puts [h_t, h′_t] on the feature axis (the sources' and
torch.nn's choice); ``sum``, ``mean`` and ``mul`` combine them element-wise. Dropout
applies between layers, never after the last.
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.recurrence.config import DirectionWeights, RNNConfig
from lstmkit.recurrence.noise import sample_noise

# direction_fn(cfg, x, h0, c0, weights, mask, reverse, noise) -> (out, h_T, c_T)
DirectionFn = Callable[..., tuple[Tensor, Tensor, Tensor | None]]


def merge(outs: Sequence[Tensor], mode: str) -> Tensor:
    """Join the per-direction outputs (T, N, P) of one layer."""
    if len(outs) == 1:
        return outs[0]
    fwd, bwd = outs
    if mode == "concat":
        return torch.cat([fwd, bwd], dim=-1)
    if mode == "sum":
        return fwd + bwd
    if mode == "mean":
        return (fwd + bwd) * 0.5
    if mode == "mul":
        return fwd * bwd
    raise ValueError(f"merge_mode: expected one of concat, sum, mean, mul, got {mode!r}")


def run_stack(
    cfg: RNNConfig,
    x: Tensor,
    h0: Tensor,
    c0: Tensor | None,
    weights: Sequence[DirectionWeights],
    mask: Tensor | None,
    training: bool,
    direction_fn: DirectionFn,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run all layers and directions; x (T, N, H_in), h0 (L·D, N, P), c0 (L·D, N, H).

    ``mask`` (T, N, 1) bool marks the real steps of a variable-length batch (or None).
    The recurrent-dropout and zoneout masks of each direction are drawn here, just before
    it runs (:func:`lstmkit.recurrence.noise.sample_noise`).
    Returns (output (T, N, output_size), h_n (L·D, N, P), c_n (L·D, N, H) or None).
    """
    layer_in = x
    h_n, c_n = [], []
    dirs = cfg.num_directions
    for layer in range(cfg.num_layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            noise = sample_noise(cfg, x.shape[0], x.shape[1], x, training)
            c0_k = None if c0 is None else c0[k]
            out, h, c = direction_fn(cfg, layer_in, h0[k], c0_k, weights[k], mask, d == 1, noise)
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_in = merge(outs, cfg.merge_mode)
        if cfg.dropout > 0 and training and layer < cfg.num_layers - 1:
            layer_in = F.dropout(layer_in, cfg.dropout, training=True)
    c_stack = torch.stack(c_n) if cfg.mode == "LSTM" else None
    return layer_in, torch.stack(h_n), c_stack
