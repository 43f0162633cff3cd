"""The native backend: PyTorch's own fused kernels (oneDNN on CPU, cuDNN on GPU).

It calls ``torch.lstm`` / ``torch.gru``, the functions behind ``torch.nn.LSTM``/``GRU``,
with our parameters in torch.nn's flat order. Variable lengths go through a packed
sequence. On a CUDA device the module keeps these weights in one buffer laid out as cuDNN
wants (``flatten_parameters``), so cuDNN copies nothing per call. It computes only what
those kernels compute exactly: not the Cho et al. GRU
(``reset_after=False``), and for a non-concat merge only one layer (merged afterwards),
because torch.nn concatenates the directions between layers.
"""

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.recurrence.config import RNNConfig
from lstmkit.recurrence.stack import merge


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
    flat = [t for w in weights for t in w if t is not None]
    has_bias = cfg.bias
    steps = x.shape[0]
    if lengths is not None:
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        order = packed.sorted_indices
        hx = h0.index_select(1, order)
        cx = None if c0 is None else c0.index_select(1, order)
        args = (packed.data, packed.batch_sizes)
    else:
        hx, cx, args = h0, c0, (x,)
    common = (has_bias, cfg.num_layers, float(cfg.dropout), training, cfg.bidirectional)
    if lengths is None:
        common = (*common, False)  # batch_first: we always pass time-major input
    if cfg.mode == "LSTM":
        out, h_n, c_n = torch.lstm(*args, (hx, cx), flat, *common)
    else:
        out, h_n = torch.gru(*args, hx, flat, *common)
        c_n = None
    if lengths is not None:
        unsort = packed.unsorted_indices
        packed_out = torch.nn.utils.rnn.PackedSequence(
            out, packed.batch_sizes, packed.sorted_indices, unsort
        )
        out, _ = pad_packed_sequence(packed_out, total_length=steps)
        h_n = h_n.index_select(1, unsort)
        c_n = None if c_n is None else c_n.index_select(1, unsort)
    if cfg.bidirectional and cfg.merge_mode != "concat":
        out = merge(out.chunk(2, dim=-1), cfg.merge_mode)
    return out, h_n, c_n
