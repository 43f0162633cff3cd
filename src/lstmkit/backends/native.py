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

The LSTM's cell state at a sequence's end is not among the kernel's outputs: it returns C
after the last padded step. So the padding is made to hold C: the padded steps of x are set
to zero and x gets one more feature, 1 on a padded step and 0 on a real one, whose column
in :math:`W_{ih}` is :math:`-K` on the input gate's rows and :math:`+K` on the forget
gate's (:data:`PAD_GATE`, K = 10⁴). On a real step the feature adds exactly 0; on a padded
one :math:`\sigma(-K + \dots) = 0` and :math:`\sigma(K + \dots) = 1` exactly in float32
and float64 (:math:`e^{-K}` underflows), so :math:`C_t = 1 \cdot C_{t-1} + 0 \cdot \tilde
C_t` carries C unchanged to the last step, and those gates pass no gradient
(:math:`\sigma' = \sigma(1-\sigma) = 0`). The kernel's final C is then C at each
sequence's end, values and gradients; the padded steps are zero for the GRU too, so no
value written in the padding (NaN included) reaches a result.

On a GPU the batch is packed as before (``pack_padded_sequence``): cuDNN has its own
variable-length kernels, and the unpacked path has not been measured there.
"""

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

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
        out, _ = pad_packed_sequence(packed._replace(data=out), total_length=x.shape[0])
        unsort = packed.unsorted_indices
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
        x = torch.where(mask, x, 0.0)
        w_ih, w_rest = w.w_ih, [t for t in w[1:5] if t is not None]  # w_hh, b_ih, b_hh, w_hr
        args = (cfg.bias, 1, 0.0, training, False, False)
        if cfg.mode == "LSTM":
            x = torch.cat([x, (~mask).to(x.dtype)], dim=-1)
            w_ih = torch.cat([w_ih, _pad_column(w_ih, cfg.hidden_size)], dim=1)
            y, _, c_n = torch.lstm(x, (h0[None], c0[None]), [w_ih, *w_rest], *args)
            c_n = c_n[0]
        else:
            y, _ = torch.gru(x, h0[None], [w_ih, *w_rest], *args)
            c_n = None
        h_n = y.gather(0, last.expand(1, -1, y.shape[-1]))[0]
        y = torch.where(mask, y, 0.0)
        if reverse:
            y = y.gather(0, flip.expand_as(y))
        return y, h_n, c_n

    return run_stack(cfg, x, h0, c0, weights, mask, training, direction)


# The padding feature's weight on the input and forget gates (see the module docstring):
# far beyond any pre-activation of weights and a state in [-1, 1], and sigmoid(-PAD_GATE)
# underflows to 0 in float32 and float64.
PAD_GATE = 1e4


def _pad_column(w_ih: Tensor, hidden: int) -> Tensor:
    """The column of W_ih for the padding feature: -K on i's rows, +K on f's, 0 else."""
    column = w_ih.new_zeros(w_ih.shape[0], 1)
    column[:hidden] = -PAD_GATE
    column[hidden : 2 * hidden] = PAD_GATE
    return column
