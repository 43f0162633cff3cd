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

LSTM-FCN, for ``last`` mode (the recipe of the sequence estimators, measured on the
UCR/UEA panel in ``docs/classification.md``):

* ``conv_filters``: a fully convolutional branch beside the recurrent one (Karim et al.
  2017, after the FCN of Wang et al. 2017; :class:`ConvBranch`); its pooled features
  join the recurrent summary before the head, and, as in the paper, 80 % dropout acts on
  the recurrent summary in training (:data:`RNN_DROPOUT`), so that the recurrent branch,
  which fits a small training set first, does not starve the convolutions of gradient;
* ``rnn_stride`` s: the recurrent encoder reads window means of s steps,
  :math:`\bar x_j = \frac{1}{|W_j|}\sum_{t \in W_j} x_t` with
  :math:`W_j = \{js, …, js+s-1\} \cap [0, L)`, so a sequence of L steps becomes
  :math:`\lceil L/s \rceil` steps (windows never mix a sequence's end with padding):
  the local level, the same whatever the phase of faster oscillations;
* ``conv_stride`` s: the convolutional branch reads patches of s steps as s·D channels
  (:func:`patches`), which keeps every value (oscillations faster than s steps too).

Shapes: x (N, T, D) batch-first, lengths (N,) or None; output (N, K) or (N, T, K).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.budget import check_training_memory, recurrent_parameters
from lstmkit.checks import is_int
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


def window_mean(x: Tensor, lengths: Tensor | None, stride: int) -> tuple[Tensor, Tensor | None]:
    """x (N, T, D) averaged over windows of ``stride`` steps → (N, ⌈T/s⌉, D), and the new
    lengths ⌈L/s⌉ (None when nothing is padded). A window's mean is over its real steps
    only, so the last window of a sequence ignores the padding after it. A stride past T
    is T (one window either way; nothing is padded out to the stride)."""
    stride = min(stride, x.shape[1])
    if stride == 1:
        return x, lengths
    n, steps, d = x.shape
    windows = math.ceil(steps / stride)
    if lengths is None and steps % stride == 0:
        return x.reshape(n, windows, stride, d).mean(2), None
    real = lengths if lengths is not None else torch.full((n,), steps, device=x.device)
    mask = F.pad(real_steps(real, steps), (0, windows * stride - steps))
    mask = mask.reshape(n, windows, stride, 1).to(x.dtype)
    total = F.pad(x, (0, 0, 0, windows * stride - steps)).reshape(n, windows, stride, d) * mask
    mean = total.sum(2) / mask.sum(2).clamp(min=1)
    new = torch.div(real + stride - 1, stride, rounding_mode="floor")
    return mean, (None if all_full(new, windows) else new)


RNN_DROPOUT = 0.8  # on the recurrent summary beside a convolutional branch (LSTM-FCN)


def patches(x: Tensor, lengths: Tensor | None, stride: int) -> tuple[Tensor, Tensor | None]:
    """x (N, T, D) cut into patches of ``stride`` steps → (N, ⌈T/s⌉, s·D), and the new
    lengths ⌈L/s⌉ (None when nothing is padded). Steps past a sequence's length are zero
    in its last patch, whatever the padding held."""
    if stride == 1:
        return x, lengths
    n, steps, d = x.shape
    windows = math.ceil(steps / stride)
    if lengths is not None:
        x = x * real_steps(lengths, steps).unsqueeze(-1).to(x.dtype)
    out = F.pad(x, (0, 0, 0, windows * stride - steps)).reshape(n, windows, stride * d)
    if lengths is None:
        return out, None
    new = torch.div(lengths + stride - 1, stride, rounding_mode="floor")
    return out, (None if all_full(new, windows) else new)


def _batch_norm(norm: nn.BatchNorm1d, h: Tensor, keep: Tensor | None) -> Tensor:
    """``norm`` on h (N, F, T) whose statistics in training are those of the real steps
    only (``keep`` (N, 1, T), None when every step is real: then ``norm`` itself), so
    that padding does not shift them; the running statistics are updated the same way
    (momentum, the unbiased variance), and evaluation uses them as BatchNorm1d does."""
    if keep is None or not norm.training:
        return norm(h)
    count = keep.sum() * 1.0
    mean = (h * keep).sum((0, 2)) / count
    centred = (h - mean[None, :, None]) * keep
    var = (centred * centred).sum((0, 2)) / count
    with torch.no_grad():
        momentum = norm.momentum
        norm.running_mean.mul_(1 - momentum).add_(momentum * mean)
        unbiased = var * count / (count - 1).clamp(min=1)
        norm.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        norm.num_batches_tracked.add_(1)
    scale = norm.weight / torch.sqrt(var + norm.eps)
    return (h - mean[None, :, None]) * scale[None, :, None] + norm.bias[None, :, None]


CONV_KERNELS = (8, 5, 3)  # FCN's kernel sizes (Wang et al. 2017)
CONV_DILATIONS = (1, 2, 4)  # ours (see ConvBranch)


def conv_parameters(input_size: int, filters) -> int:
    """The parameters of :class:`ConvBranch`: per block, a k-wide convolution from the
    previous width, its bias, and batch normalisation's scale and shift."""
    total, width = 0, input_size
    for f, k in zip(filters, CONV_KERNELS, strict=False):
        total += f * (width * k + 3)
        width = f
    return total


class ConvBranch(nn.Module):
    r"""The fully convolutional branch of LSTM-FCN (Karim et al. 2017): blocks of

    .. math:: h^{(k)} = \mathrm{ReLU}(\mathrm{BN}(W^{(k)} \ast_{d_k} h^{(k-1)} + b^{(k)}))

    (a 1-D convolution of kernel size :math:`k` and dilation :math:`d_k`, "same" padding
    with zeros, batch normalisation, ReLU; FCN, Wang et al. 2017), then the mean of the
    last block over each sequence's real steps (global average pooling). Departures from
    the paper: dilations (1, 2, 4), which widen the receptive field from
    :math:`1 + \sum_k (k-1) = 14` to :math:`1 + \sum_k d_k (k-1) = 24` steps at the same
    cost (measured in ``docs/classification.md``), and masking:
    after every block the steps past a sequence's length are set to zero, so in
    evaluation each sequence's features are those it would get alone.

    Shapes: x (N, T, D), lengths (N,) or None → (N, filters[-1]).
    """

    def __init__(self, input_size: int, filters: tuple[int, ...]) -> None:
        super().__init__()
        if len(filters) != len(CONV_KERNELS):
            raise ValueError(
                f"conv_filters: expected as many entries as conv_kernels {CONV_KERNELS} "
                f"and dilations {CONV_DILATIONS}, got {tuple(filters)}"
            )
        if any(not is_int(v) or v < 1 for v in filters):
            raise ValueError(f"conv_filters: expected positive ints, got {tuple(filters)}")
        self.pads = []
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        width = input_size
        for f, k, d in zip(filters, CONV_KERNELS, CONV_DILATIONS, strict=True):
            span = d * (k - 1)  # "same": the output at t reads x[t - left : t + span - left]
            self.pads.append((span // 2, span - span // 2))
            self.convs.append(nn.Conv1d(width, f, k, dilation=d))
            self.norms.append(nn.BatchNorm1d(f))
            width = f
        self.out_features = width

    def forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        h = x.transpose(1, 2)  # (N, D, T)
        keep = None if lengths is None else real_steps(lengths, x.shape[1])[:, None]
        if keep is not None:  # whatever the padding holds, the convolutions read zeros there
            h = h * keep
        for pad, conv, norm in zip(self.pads, self.convs, self.norms, strict=True):
            h = torch.relu(_batch_norm(norm, conv(F.pad(h, pad)), keep))  # (N, F_k, T)
            if keep is not None:
                h = h * keep
        if lengths is None:
            return h.mean(2)
        return h.sum(2) / lengths[:, None].to(h.dtype)


class RecurrentNet(nn.Module):
    """Recurrent encoder + dropout + linear head; ``extra_size`` features (e.g. known-future
    covariates) can join the encoding before the head in ``last`` mode; ``cell_options``
    are the cell variants (:func:`check_cell_options`); ``rnn_stride``, ``conv_filters``
    and ``conv_stride``: see the module's docstring. ``causal_last``: with one direction and
    ``pooling="last"``, sequences shorter than the batch are read at their last real step
    of an unmasked run instead of through masking — the same numbers (a step never reads
    later ones), on the engine's fastest unpadded path."""

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
        rnn_stride: int = 1,
        conv_filters: tuple[int, ...] = (),
        conv_stride: int = 1,
        causal_last: bool = False,
    ) -> None:
        super().__init__()
        if output not in ("last", "sequence"):
            raise ValueError(f"output: expected 'last' or 'sequence', got {output!r}")
        if output == "sequence" and (rnn_stride != 1 or conv_filters):
            raise ValueError(
                "output='sequence' reads every step: expected rnn_stride=1 and no "
                f"conv_filters, got rnn_stride={rnn_stride}, conv_filters={tuple(conv_filters)}"
            )
        self.input_size = input_size
        self.rnn_stride, self.conv_stride = rnn_stride, conv_stride
        # LSTM-FCN drops 80 % of the recurrent summary beside the convolutional branch
        self.rnn_drop = nn.Dropout(RNN_DROPOUT if conv_filters else 0.0)
        conv_in = input_size * conv_stride
        self.pooling = check_pooling(pooling)
        directions = 2 if bidirectional else 1
        width = directions * hidden_size
        pooled = width * len(self.pooling) if output == "last" else width
        conv_features = conv_filters[-1] if conv_filters else 0
        check_training_memory(
            recurrent_parameters(cell, input_size, hidden_size, num_layers, directions)
            + conv_parameters(conv_in, conv_filters)
            + (pooled + conv_features + extra_size + 1) * output_size,
            f"hidden_size={hidden_size}, num_layers={num_layers}"
            + (f", conv_filters={tuple(conv_filters)}" if conv_filters else ""),
        )
        self.conv = ConvBranch(conv_in, tuple(conv_filters)) if conv_filters else None
        self.rnn = CELLS[check_cell(cell)](
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            **check_cell_options(cell, cell_options),
        )
        self.output = output
        self.directions = directions
        self.causal_last = (  # only where it is exact (see forward)
            causal_last
            and not bidirectional
            and output == "last"
            and self.pooling == ("last",)
            and rnn_stride == 1
            and not conv_filters
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(pooled + conv_features + extra_size, output_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None, extra: Tensor | None = None):
        if all_full(lengths, x.shape[1]):  # nothing padded: plain pooling, no masks
            lengths = None
        if self.output == "sequence":
            return self.head(self.drop(self.rnn(x, lengths=lengths)[0]))
        if self.causal_last and lengths is not None:
            # one direction: the output at step t reads steps ≤ t only, so the output at each
            # sequence's last real step, from a run over the padded batch, is the masked run's
            # final state — without packing (torch's packed kernels are 2× slower at T≈24)
            out = self.rnn(x)[0]
            last = out[torch.arange(x.shape[0]), lengths.to(torch.long) - 1]
            features = last if extra is None else torch.cat([last, extra], dim=-1)
            return self.head(self.drop(features))
        x_rnn, lengths_rnn = window_mean(x, lengths, self.rnn_stride)
        out, state = self.rnn(x_rnn, lengths=lengths_rnn)
        parts = []
        for kind in self.pooling:
            if kind == "last":
                h_n = state[0] if isinstance(state, tuple) else state  # (layers*D, N, H)
                parts.extend(h_n[-self.directions :])
            else:
                parts.append(_masked_pool(out, lengths_rnn, kind))
        if self.conv is not None:
            parts = [self.rnn_drop(torch.cat(parts, dim=-1))]
            parts.append(self.conv(*patches(x, lengths, self.conv_stride)))
        features = torch.cat(parts, dim=-1)
        if extra is not None:
            features = torch.cat([features, extra], dim=-1)
        return self.head(self.drop(features))


def gate_activations(net: RecurrentNet, x: Tensor) -> dict[str, dict[str, np.ndarray]]:
    """The gates of ``net``'s recurrent layers for ONE input sequence ``x`` (T, D), as
    numpy arrays (T, H) keyed like :meth:`lstmkit.LSTM.gate_activations` ("l0",
    "l0_reverse", …; LSTM gates i, f, g, c, o, h; GRU r, z, n, h). With an ``rnn_stride``
    s the encoder reads window means, so there are ⌈T/s⌉ rows."""
    with torch.no_grad():
        gates = net.rnn.gate_activations(window_mean(x[None], None, net.rnn_stride)[0])
    return {layer: {k: v[0].numpy() for k, v in g.items()} for layer, g in gates.items()}
