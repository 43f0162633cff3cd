r"""The native backend: PyTorch's own fused kernels (oneDNN on CPU, cuDNN on GPU).

It calls ``torch.lstm`` / ``torch.gru``, the functions behind ``torch.nn.LSTM``/``GRU``,
with our parameters in torch.nn's flat order. On a CUDA device the module keeps these
weights in one buffer laid out as cuDNN wants (``flatten_parameters``), so cuDNN copies
nothing per call. It computes only what those kernels compute exactly: not the Cho et al.
GRU (``reset_after=False``), and for a non-concat merge only one layer (merged
afterwards), because torch.nn concatenates the directions between layers.

Variable lengths on the CPU are not packed. A packed batch makes torch's CPU kernels run
step by step with a shrinking batch, 1.2-4.3x slower than the same batch unpadded
(``docs/benchmarks.md``, "Variable lengths"). Instead each layer and direction is one
unpadded kernel call on the padded batch:

* forward direction: the steps after a sequence's end come after its real steps, so they
  cannot reach them; its outputs past the length are set to zero and h_n is read at
  step ``lengths[n] - 1``;
* reverse direction: each sequence is reversed *within its own length*
  (step t reads step L_n - 1 - t; the padding stays where it is), run forward with the
  reverse weights, and its outputs are put back the same way — the same case as above.

The LSTM's cell state at a sequence's end is not among the kernel's outputs (it returns
C only after the last padded step). It is a linear recurrence in C,
:math:`C_t = f_t C_{t-1} + i_t \tilde C_t`, whose gates follow from the kernel's own
outputs: :math:`[i, f, \tilde C]_t = [\sigma, \sigma, \tanh](W_{ih} x_t + W_{hh} h_{t-1}
+ b)` for every step in one matmul. With :math:`f_t = 1, i_t\tilde C_t = 0` past the
length, :math:`C_{L} = A\,C_0 + B` where :math:`(A, B)` composes the steps' affine maps
:math:`(f_t, i_t \tilde C_t)` in a tree of :math:`\lceil\log_2 T\rceil` levels
(:func:`cell_at_end`): products and sums of the same terms in another order, as exact as
the recurrence itself, and differentiable by autograd.

On a GPU the batch is packed as before (``pack_padded_sequence``): cuDNN has its own
variable-length kernels, and the unpacked path has not been measured there.
"""

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmkit.recurrence.config import DirectionWeights, RNNConfig
from lstmkit.recurrence.lengths import step_mask
from lstmkit.recurrence.stack import merge, run_stack


def why_not(cfg: RNNConfig) -> str | None:
    """Why the native kernels cannot compute this configuration exactly, or None."""
    if cfg.variant:
        return "torch's kernels compute the plain cells only, not the cell variants"
    if cfg.mode == "GRU" and not cfg.reset_after:
        return "torch's GRU kernels apply the reset gate after the matmul (reset_after=True only)"
    if cfg.bidirectional and cfg.merge_mode != "concat" and cfg.num_layers > 1:
        return (
            f"torch's kernels concatenate the directions between layers, "
            f"merge_mode={cfg.merge_mode!r} with num_layers={cfg.num_layers} needs another merge"
        )
    return None


def run(cfg: RNNConfig, x, h0, c0, weights, lengths: Tensor | None, training: bool):
    """Run the whole network with torch's kernels; x (T, N, H_in) time-major."""
    if lengths is not None and x.device.type == "cpu":
        return _run_unpacked(cfg, x, h0, c0, weights, lengths, training)
    return run_packed(cfg, x, h0, c0, weights, lengths, training)


def run_packed(cfg: RNNConfig, x, h0, c0, weights, lengths: Tensor | None, training: bool):
    """One call of torch's kernels for the whole network, variable lengths as a packed
    batch (cuDNN's way; on the CPU, what ``run`` did before it ran them unpacked — the
    baseline of ``benchmarks/text.py``)."""
    flat = [t for w in weights for t in w if t is not None]
    common = (cfg.bias, cfg.num_layers, float(cfg.dropout), training, cfg.bidirectional)
    if lengths is None:
        args, hx, cx = (x,), h0, c0
        common = (*common, False)  # batch_first: we always pass time-major input
    else:
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        order = packed.sorted_indices
        hx, cx = h0.index_select(1, order), None if c0 is None else c0.index_select(1, order)
        args = (packed.data, packed.batch_sizes)
    if cfg.mode == "LSTM":
        out, h_n, c_n = torch.lstm(*args, (hx, cx), flat, *common)
    else:
        out, h_n = torch.gru(*args, hx, flat, *common)
        c_n = None
    if lengths is not None:
        unsort = packed.unsorted_indices
        out = PackedSequence(out, packed.batch_sizes, order, unsort)
        out, _ = pad_packed_sequence(out, total_length=x.shape[0])
        h_n = h_n.index_select(1, unsort)
        c_n = None if c_n is None else c_n.index_select(1, unsort)
    if cfg.bidirectional and cfg.merge_mode != "concat":
        out = merge(out.chunk(2, dim=-1), cfg.merge_mode)
    return out, h_n, c_n


def flip_within(lengths: Tensor, steps: int) -> Tensor:
    """Index (T, N): step t of sequence n reads step L_n - 1 - t; padding stays in place.
    Applying it twice gives the identity."""
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)
    ends = lengths.unsqueeze(0)
    return torch.where(t < ends, ends - 1 - t, t)


def _run_unpacked(cfg, x, h0, c0, weights, lengths, training):
    """Layers and directions through :func:`run_stack`, one unpadded kernel call each."""
    steps = x.shape[0]
    mask = step_mask(lengths, steps)
    flip = flip_within(lengths, steps).unsqueeze(-1)
    last = (lengths - 1).view(1, -1, 1)

    def direction(cfg, x, h0, c0, w: DirectionWeights, mask, reverse, noise):
        if reverse:
            x = x.gather(0, flip.expand_as(x))
        flat = [t for t in w[:5] if t is not None]  # w_ih, w_hh, b_ih, b_hh, w_hr
        args = (cfg.bias, 1, 0.0, training, False, False)
        if cfg.mode == "LSTM":
            y, _, _ = torch.lstm(x, (h0[None], c0[None]), flat, *args)
            c_n = cell_at_end(cfg, x, y, h0, c0, w, mask)
        else:
            y, _ = torch.gru(x, h0[None], flat, *args)
            c_n = None
        h_n = y.gather(0, last.expand(1, -1, y.shape[-1]))[0]
        y = y * mask
        if reverse:
            y = y.gather(0, flip.expand_as(y))
        return y, h_n, c_n

    return run_stack(cfg, x, h0, c0, weights, mask, training, direction)


def cell_at_end(cfg: RNNConfig, x, y, h0, c0, w: DirectionWeights, mask) -> Tensor:
    """C at each sequence's last real step, (N, H), from the inputs x (T, N, H_in), the
    kernel's outputs y (T, N, P) and the initial state (see the module docstring)."""
    rows = slice(0, 3 * cfg.hidden_size)  # i, f, g in torch's gate order
    h_prev = torch.cat([h0.unsqueeze(0), y[:-1]])
    pre = torch.matmul(x, w.w_ih[rows].T) + torch.matmul(h_prev, w.w_hh[rows].T)
    if w.b_ih is not None:
        pre = pre + (w.b_ih[rows] + w.b_hh[rows])
    i, f, g = pre.chunk(3, dim=-1)
    a = torch.where(mask, torch.sigmoid(f), 1.0)
    b = torch.where(mask, torch.sigmoid(i) * torch.tanh(g), 0.0)
    while a.shape[0] > 1:  # (a2, b2) after (a1, b1): C -> a2 (a1 C + b1) + b2
        if a.shape[0] % 2:
            a = torch.cat([a, torch.ones_like(a[:1])])
            b = torch.cat([b, torch.zeros_like(b[:1])])
        a, b = a[1::2] * a[0::2], torch.addcmul(b[1::2], a[1::2], b[0::2])
    return torch.addcmul(b[0], a[0], c0)
