r"""The networks behind the estimators: a recurrent encoder (the engine) and a linear head.

``output="last"`` (sequence → one vector, MathWorks' OutputMode "last", source 004): the
head reads a summary of the sequence chosen by ``pooling``, one or several joined by "+":

* ``last``: the final state of the last layer of each direction, :math:`[h_T, h'_1]` —
  the forward direction at each sequence's own last real step, the reverse one after it
  has read the whole sequence back to the first step;
* ``mean`` / ``max``: the mean / maximum of the layer output over the real steps only.

Pooling over all steps gives every step a short gradient path to the loss, which makes
long sequences (hundreds of steps) far easier to train than the final state alone.
``output="sequence"`` (sequence → one vector per step): the head reads the layer output at
every step.

Shapes: x (N, T, D) batch-first, lengths (N,) or None; output (N, K) or (N, T, K).
"""

import numpy as np
import torch
from torch import Tensor, nn

from lstmkit.nn import GRU, LSTM
from lstmkit.recurrence.lengths import all_full, real_steps

CELLS = {"lstm": LSTM, "gru": GRU}


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {', '.join(CELLS)}, got {cell!r}")
    return cell


# the cell variants an estimator can ask for (docs/variants.md), per cell
CELL_OPTIONS = {
    "lstm": (
        "layer_norm",
        "peephole",
        "recurrent_dropout",
        "zoneout",
        "zoneout_cell",
        "forget_bias",
    ),
    "gru": ("layer_norm", "recurrent_dropout", "zoneout"),
}


def check_cell_options(cell: str, options: dict | None) -> dict:
    """The cell-variant keywords for ``cell`` (e.g. ``{"layer_norm": True}``), checked now
    — names against :data:`CELL_OPTIONS`, values by the module's own constructor — so a bad
    option fails before any data is read."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"cell_options: expected a dict or None, got {type(options).__name__}")
    unknown = sorted(set(options) - set(CELL_OPTIONS[cell]))
    if unknown:
        raise ValueError(
            f"cell_options: expected keys among {', '.join(CELL_OPTIONS[cell])} for "
            f"cell={cell!r}, got {', '.join(map(repr, unknown))}"
        )
    if options:  # on the meta device: checks the values, draws no random numbers
        CELLS[cell](2, 2, device="meta", **options)
    return dict(options)


POOLINGS = ("last", "mean", "max")


def check_pooling(pooling: str) -> tuple[str, ...]:
    kinds = tuple(pooling.split("+")) if isinstance(pooling, str) else ()
    if not kinds or any(k not in POOLINGS for k in kinds) or len(set(kinds)) != len(kinds):
        raise ValueError(
            f"pooling: expected one or more of {', '.join(POOLINGS)} joined by '+', got {pooling!r}"
        )
    return kinds


def _masked_pool(out: Tensor, lengths: Tensor | None, kind: str) -> Tensor:
    """Mean or max of out (N, T, F) over each sequence's real steps."""
    if lengths is None:
        return out.mean(1) if kind == "mean" else out.amax(1)
    real = real_steps(lengths, out.shape[1]).unsqueeze(-1)
    if kind == "mean":
        return (out * real).sum(1) / lengths[:, None].to(out.dtype)
    return out.masked_fill(~real, -torch.inf).amax(1)


class RecurrentNet(nn.Module):
    """Recurrent encoder + dropout + linear head; ``extra_size`` features (e.g. known-future
    covariates) can join the encoding before the head in ``last`` mode; ``cell_options``
    are the cell variants (:func:`check_cell_options`)."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        cell: str = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        output: str = "last",
        pooling: str = "last",
        extra_size: int = 0,
        cell_options: dict | None = None,
    ) -> None:
        super().__init__()
        if output not in ("last", "sequence"):
            raise ValueError(f"output: expected 'last' or 'sequence', got {output!r}")
        self.pooling = check_pooling(pooling)
        rnn_dropout = dropout if num_layers > 1 else 0.0
        self.rnn = CELLS[check_cell(cell)](
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=rnn_dropout,
            bidirectional=bidirectional,
            **check_cell_options(cell, cell_options),
        )
        self.output = output
        self.directions = 2 if bidirectional else 1
        self.drop = nn.Dropout(dropout)
        width = self.directions * hidden_size
        pooled = width * len(self.pooling) if output == "last" else width
        self.head = nn.Linear(pooled + extra_size, output_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None, extra: Tensor | None = None):
        if all_full(lengths, x.shape[1]):  # nothing padded: plain pooling, no masks
            lengths = None
        out, state = self.rnn(x, lengths=lengths)
        if self.output == "sequence":
            return self.head(self.drop(out))
        parts = []
        for kind in self.pooling:
            if kind == "last":
                h_n = state[0] if isinstance(state, tuple) else state  # (layers*D, N, H)
                parts.extend(h_n[-self.directions :])
            else:
                parts.append(_masked_pool(out, lengths, kind))
        features = torch.cat(parts, dim=-1)
        if extra is not None:
            features = torch.cat([features, extra], dim=-1)
        return self.head(self.drop(features))


def gate_activations(net: RecurrentNet, x: Tensor) -> dict[str, dict[str, np.ndarray]]:
    """The gates of ``net``'s recurrent layers for ONE input sequence ``x`` (T, D), as
    numpy arrays (T, H) keyed like :meth:`lstmkit.LSTM.gate_activations` ("l0",
    "l0_reverse", …; LSTM gates i, f, g, c, o, h; GRU r, z, n, h)."""
    with torch.no_grad():
        gates = net.rnn.gate_activations(x[None])
    return {layer: {k: v[0].numpy() for k, v in g.items()} for layer, g in gates.items()}
