r"""ONNX export of the recurrent modules and the task estimators, and ``torch.export``.

:func:`export_onnx` writes a graph of the standard ONNX operators ``LSTM`` and ``GRU``
(one node per layer, both directions in one node), built directly with
:mod:`onnx.helper` from the module's parameters, so every configuration the operators
can express exports the same way, whatever backend runs it in PyTorch. Batch size and
sequence length are dynamic axes. What the operators cannot express is refused with a
``ValueError`` that says why (:func:`why_not_onnx`).

Layout conversion (torch.nn / lstmkit → ONNX), per layer, D = 2 if bidirectional else 1:

==========  =======================================  ====================================
ONNX input  shape                                    from
==========  =======================================  ====================================
W           (D, G·H, H_in)                           ``weight_ih_l{k}[_reverse]``
R           (D, G·H, H)                              ``weight_hh_l{k}[_reverse]``
B           (D, 2·G·H) = [Wb, Rb]                    ``bias_ih``, ``bias_hh`` (absent
                                                     without bias: ONNX's default is 0)
P           (D, 3H)                                  ``weight_ph`` (peephole LSTM only)
==========  =======================================  ====================================

Gate blocks are reordered: LSTM i, f, g, o → ONNX i, o, f, c; GRU r, z, n → ONNX z, r,
h; peepholes i, f, o → ONNX ``P`` order i, o, f. The GRU's ``linear_before_reset`` is 1
for ``reset_after=True`` (torch's form, :math:`r \odot (W_{hn} h + b_{hn})`) and 0 for
Cho et al.'s form (:math:`W_{hn}(r \odot h) + b_{hn}`) — ONNX has both.

The ONNX node returns Y (L, D, N, H); the directions are merged as lstmkit merges them
(``concat``: transpose and reshape to (L, N, D·H), forward first; ``sum``, ``mean`` =
(fwd + bwd)·0.5, ``mul``) before the next layer reads them. Variable lengths are the
operator's ``sequence_lens``: outputs past a length are zero, the final states are those
of each sequence's last real step and the reverse direction starts there, as in lstmkit.

The graph is the module in evaluation mode (no dropout between layers, no recurrent
dropout), in float32.
"""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as err:  # the onnx extra is optional
    raise ImportError(
        "lstmkit.interop.onnx needs the onnx package: pip install 'lstmkit[onnx]'"
    ) from err

from lstmkit import __version__, backends
from lstmkit.interop import _rnn_config, _suffix
from lstmkit.nn import GRU, LSTM
from lstmkit.recurrence.config import RNNConfig
from lstmkit.tasks import (
    Forecaster,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    TextGenerator,
)
from lstmkit.tasks.networks import RecurrentNet
from lstmkit.tasks.sequence import EnsembleNet, quiet_floor
from lstmkit.train.atomic import write_atomically

OPSET = 17
"""The ONNX opset of the exported graphs (LSTM-14, GRU-14; ONNX Runtime ≥ 1.13)."""

# gate blocks, as indices into torch's order
_LSTM_ORDER = (0, 3, 1, 2)  # torch i, f, g, o  ->  ONNX i, o, f, c
_GRU_ORDER = (1, 0, 2)  # torch r, z, n  ->  ONNX z, r, h
_PEEPHOLE_ORDER = (0, 2, 1)  # lstmkit i, f, o  ->  ONNX P: i, o, f
_INT64_MAX = np.iinfo(np.int64).max


# -- what the module is -------------------------------------------------------------------


def why_not_onnx(module: nn.Module) -> str | None:
    """Why the standard ONNX ``LSTM``/``GRU`` operators cannot express ``module``, or None.

    Refused: projections (``proj_size > 0``: ONNX's LSTM has none), layer normalisation
    and zoneout (no operator has them). Recurrent dropout and dropout between layers are
    training-only and absent from the exported (inference) graph, so they export.
    """
    if not isinstance(module, LSTM | GRU | nn.LSTM | nn.GRU):
        return f"expected lstmkit.LSTM/GRU or torch.nn.LSTM/GRU, got {type(module).__name__}"
    cfg = _rnn_config(module)  # torch.nn's has no variants: only proj_size can refuse it
    reasons = []
    if cfg.proj_size > 0:
        reasons.append(f"proj_size={cfg.proj_size} (ONNX's LSTM has no projection)")
    if cfg.layer_norm:
        reasons.append("layer_norm=True (no ONNX operator normalises inside the recurrence)")
    if cfg.zoneout > 0 or cfg.zoneout_cell > 0:
        reasons.append(
            "zoneout (its evaluation mixes each state with the previous one; no ONNX operator does)"
        )
    return "; ".join(reasons) or None


def _spec(module: nn.Module) -> RNNConfig:
    reason = why_not_onnx(module)
    if reason is not None:
        raise ValueError(f"cannot export {type(module).__name__} to ONNX: {reason}")
    return _rnn_config(module)


def onnx_weights(module: nn.Module) -> list[dict[str, np.ndarray]]:
    """The parameters of each layer in the layout and gate order of the ONNX operators.

    Returns one dict per layer with ``W`` (D, G·H, H_in), ``R`` (D, G·H, H), and, when
    present, ``B`` (D, 2·G·H) and ``P`` (D, 3H), float32; G = 4 (ONNX i, o, f, c) for
    the LSTM, 3 (z, r, h) for the GRU.
    """
    spec = _spec(module)
    order = _LSTM_ORDER if spec.mode == "LSTM" else _GRU_ORDER
    layers = []
    for layer in range(spec.num_layers):
        found: dict[str, list[np.ndarray]] = {"W": [], "R": [], "B": [], "P": []}
        for direction in range(spec.num_directions):
            suffix = _suffix(layer, direction)
            found["W"].append(_reorder(getattr(module, "weight_ih" + suffix), order))
            found["R"].append(_reorder(getattr(module, "weight_hh" + suffix), order))
            if spec.bias:
                b = [_reorder(getattr(module, n + suffix), order) for n in ("bias_ih", "bias_hh")]
                found["B"].append(np.concatenate(b))
            if spec.peephole:
                found["P"].append(_reorder(getattr(module, "weight_ph" + suffix), _PEEPHOLE_ORDER))
        layers.append({k: np.stack(v) for k, v in found.items() if v})
    return layers


def _reorder(t: torch.Tensor, order: Sequence[int]) -> np.ndarray:
    """The equal gate blocks of ``t`` along its first axis, rearranged into ``order``."""
    array = t.detach().cpu().to(torch.float32).numpy()
    blocks = np.split(array, len(order))
    return np.ascontiguousarray(np.concatenate([blocks[i] for i in order]))


# -- building the graph -------------------------------------------------------------------


class _Graph:
    """Nodes and initializers of one ONNX graph, with fresh value names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value) -> str:
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        name = self.fresh(stem)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], outputs: int | Sequence[str] = 1, **attrs):
        """Add a node; returns its output name (or the list of names when several)."""
        if isinstance(outputs, int):
            outputs = [self.fresh(op_type.lower()) for _ in range(outputs)]
        while inputs and inputs[-1] == "":  # trailing optional inputs may be left out
            inputs = inputs[:-1]
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), **attrs))
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def input(self, name: str, shape: Sequence, elem_type: int = TensorProto.FLOAT) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def lengths(self) -> str:
        """The graph's ``lengths`` input, (batch,) int64."""
        return self.input("lengths", ["batch"], TensorProto.INT64)

    def model(self, outputs: dict[str, tuple[str, Sequence]], doc: str, metadata: dict):
        """The ModelProto; ``outputs`` maps a public name to (value, shape), float32."""
        declared = []
        for name, (value, shape) in outputs.items():
            self.op("Identity", [value], [name])
            declared.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        graph = helper.make_graph(
            self.nodes, "lstmkit", self.inputs, declared, initializer=self.initializers
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="lstmkit",
            producer_version=__version__,
            doc_string=doc,
        )
        model.ir_version = min(model.ir_version, 8)  # IR 8 is what opset 17 runtimes read
        helper.set_model_props(model, {k: str(v) for k, v in metadata.items()})
        onnx.checker.check_model(model, full_check=True)
        return model


def _steps(g: _Graph, x: str, axis: int) -> str:
    """The scalar int64 length of ``x`` along ``axis``."""
    return g.op("Gather", [g.op("Shape", [x]), g.const("axis", np.array(axis, np.int64))], axis=0)


def _step_index(g: _Graph, x: str, axis: int) -> str:
    """0, 1, …, (the length of ``x`` along ``axis``) − 1 as int64."""
    zero, one = g.const("zero", np.array(0, np.int64)), g.const("one", np.array(1, np.int64))
    return g.op("Range", [zero, _steps(g, x, axis), one])


def _unsqueeze(g: _Graph, x: str, axis: int) -> str:
    return g.op("Unsqueeze", [x, g.const("axes", [axis])])


def _swap_first_axes(g: _Graph, x: str) -> str:
    """(A, B, C) → (B, A, C): time-major ↔ batch-first."""
    return g.op("Transpose", [x], perm=[1, 0, 2])


def _concat(g: _Graph, parts: Sequence[str], axis: int) -> str:
    return parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=axis)


def _step_mask(g: _Graph, y: str, lengths: str) -> str:
    """Boolean (T, N, 1) mask of the real steps of the time-major ``y`` (T, N, F)."""
    real = g.op("Less", [_unsqueeze(g, _step_index(g, y, 0), 1), lengths])  # (T, N)
    return _unsqueeze(g, real, 2)


def _slice(g: _Graph, x: str, start: int, stop: int, axis: int = 0) -> str:
    """``x[start:stop]`` along ``axis`` ("" stays "": an absent optional input)."""
    if not x:
        return ""
    bounds = (g.const("start", [start]), g.const("end", [stop]), g.const("axes", [axis]))
    return g.op("Slice", [x, *bounds])


def _merge(g: _Graph, y: str, spec: RNNConfig) -> str:
    """ONNX's Y (T, D, N, H) as lstmkit's merged layer output (T, N, H_out)."""
    if spec.num_directions == 1:
        return g.op("Squeeze", [y, g.const("axes", [1])])
    if spec.merge_mode == "concat":  # (T, N, D, H) -> (T, N, D·H), forward first
        nd = g.op("Transpose", [y], perm=[0, 2, 1, 3])
        return g.op("Reshape", [nd, g.const("shape", [0, 0, -1])])
    fwd, bwd = (g.op("Gather", [y, g.const("dir", np.array(d, np.int64))], axis=1) for d in (0, 1))
    if spec.merge_mode == "sum":
        return g.op("Add", [fwd, bwd])
    if spec.merge_mode == "mean":
        return g.op("Mul", [g.op("Add", [fwd, bwd]), g.const("half", np.float32(0.5))])
    return g.op("Mul", [fwd, bwd])


def _recurrent(
    g: _Graph, module: nn.Module, x: str, lengths: str = "", h0: str = "", c0: str = ""
) -> tuple[str, str, str | None]:
    """The layers of ``module`` on the time-major ``x`` (T, N, H_in); ``lengths`` (N,)
    int64, ``h0``/``c0`` (layers·D, N, H) are value names or "" for none.
    Returns (output (T, N, H_out), h_n (layers·D, N, H), c_n or None)."""
    spec = _spec(module)
    dirs = spec.num_directions
    seq_lens = g.op("Cast", [lengths], to=TensorProto.INT32) if lengths else ""  # ONNX: int32
    attrs = {
        "hidden_size": spec.hidden_size,
        "direction": "bidirectional" if spec.bidirectional else "forward",
    }
    if spec.mode == "GRU":
        attrs["linear_before_reset"] = int(spec.reset_after)
    h_parts, c_parts = [], []
    for layer, w in enumerate(onnx_weights(module)):
        k = f"l{layer}"
        rows = (layer * dirs, (layer + 1) * dirs)  # this layer's rows of h_0 / c_0
        inputs = [
            x,
            g.const(f"W_{k}", w["W"]),
            g.const(f"R_{k}", w["R"]),
            g.const(f"B_{k}", w["B"]) if "B" in w else "",
            seq_lens,
            _slice(g, h0, *rows),
        ]
        if spec.mode == "LSTM":  # LSTM: c_0 and P in, Y_c out
            inputs += [_slice(g, c0, *rows), g.const(f"P_{k}", w["P"]) if "P" in w else ""]
        y, y_h, *y_c = g.op(spec.mode, inputs, 3 if spec.mode == "LSTM" else 2, **attrs)
        h_parts.append(y_h)
        c_parts += y_c
        x = _merge(g, y, spec)
    return x, _concat(g, h_parts, 0), (_concat(g, c_parts, 0) if c_parts else None)


def _linear(g: _Graph, x: str, linear: nn.Linear, stem: str) -> str:
    """x @ W^T + b over the last axis of ``x`` (any rank)."""
    weight = linear.weight.detach().cpu().to(torch.float32).numpy()
    out = g.op("MatMul", [x, g.const(f"{stem}_weight_T", np.ascontiguousarray(weight.T))])
    if linear.bias is None:
        return out
    return g.op("Add", [out, g.const(f"{stem}_bias", linear.bias.detach().cpu().numpy())])


def _real_steps(g: _Graph, x: str, lengths: str, axis: int) -> str:
    """Float mask of the real steps of the batch-first ``x`` (N, T, ·), with a unit axis
    inserted at ``axis``: (N, 1, T) for 1, (N, T, 1) for 2."""
    real = g.op("Less", [_unsqueeze(g, _step_index(g, x, 1), 0), _unsqueeze(g, lengths, 1)])
    return _unsqueeze(g, g.op("Cast", [real], to=TensorProto.FLOAT), axis)


def _float_lengths(g: _Graph, lengths: str) -> str:
    """lengths (N,) as a float (N, 1) column."""
    return g.op("Cast", [_unsqueeze(g, lengths, 1)], to=TensorProto.FLOAT)


def _stride_pads(g: _Graph, x: str, stride: int) -> tuple[str, str]:
    """The stride s as a scalar int64, and Pad's pads for the batch-first ``x`` (N, T, D):
    zeros after the last step up to a multiple of s, [begin N, T, D, end N, T, D]."""
    s = g.const("stride", np.array(stride, np.int64))
    extra = g.op("Mod", [g.op("Sub", [s, g.op("Mod", [_steps(g, x, 1), s])]), s])
    tail = _unsqueeze(g, extra, 0)
    return s, g.op("Concat", [g.const("begin", [0, 0, 0, 0]), tail, g.const("end", [0])], axis=0)


def _strided_lengths(g: _Graph, lengths: str, stride: int, s: str) -> str:
    """⌈L/s⌉ of the lengths (N,), ``s`` the stride as a scalar int64."""
    up = g.op("Add", [lengths, g.const("stride_less_one", np.array(stride - 1, np.int64))])
    return g.op("Div", [up, s])


def _patches(g: _Graph, x: str, lengths: str, stride: int, width: int) -> tuple[str, str]:
    """:func:`lstmkit.tasks.networks.patches`: the batch-first ``x`` (N, T, D) → (N,
    ⌈T/s⌉, s·D), zero past each length and in the padding to a multiple of s; lengths →
    ⌈L/s⌉."""
    if stride == 1:
        return x, lengths
    if lengths:
        x = g.op("Mul", [x, _real_steps(g, x, lengths, 2)])
    s, pads = _stride_pads(g, x, stride)
    out = g.op("Reshape", [g.op("Pad", [x, pads]), g.const("shape", [0, -1, stride * width])])
    return out, (_strided_lengths(g, lengths, stride, s) if lengths else lengths)


def _window_mean(g: _Graph, x: str, lengths: str, stride: int, width: int) -> tuple[str, str]:
    """:func:`lstmkit.tasks.networks.window_mean`: the batch-first ``x`` (N, T, D) → the
    means of windows of s steps over each sequence's real steps (N, ⌈T/s⌉, D); lengths
    → ⌈L/s⌉. Every graph of a network with a stride has a ``lengths`` input."""
    if stride == 1:
        return x, lengths
    mask = _real_steps(g, x, lengths, 2)  # (N, T, 1)
    s, pads = _stride_pads(g, x, stride)
    axes = g.const("axes", [2])
    padded = g.op("Pad", [g.op("Mul", [x, mask]), pads])
    windows = g.op("Reshape", [padded, g.const("shape", [0, -1, stride, width])])
    total = g.op("ReduceSum", [windows, axes], keepdims=0)
    real = g.op("Reshape", [g.op("Pad", [mask, pads]), g.const("shape", [0, -1, stride, 1])])
    count = g.op("ReduceSum", [real, axes], keepdims=0)
    mean = g.op("Div", [total, g.op("Max", [count, g.const("one", np.float32(1.0))])])
    return mean, _strided_lengths(g, lengths, stride, s)


def _conv_branch(g: _Graph, conv, x: str, lengths: str) -> str:
    r""":class:`lstmkit.tasks.networks.ConvBranch` on the batch-first ``x`` (N, T, C) →
    (N, F): each block a Conv whose weights carry the evaluation-mode batch norm,
    :math:`W' = W \gamma/\sqrt{\sigma^2+\epsilon}`,
    :math:`b' = (b - \mu)\gamma/\sqrt{\sigma^2+\epsilon} + \beta`, then ReLU and the
    mask; the mean over the real steps."""
    h = g.op("Transpose", [x], perm=[0, 2, 1])  # (N, C, T)
    keep = ""
    if lengths:
        keep = _real_steps(g, x, lengths, 1)  # (N, 1, T)
        h = g.op("Mul", [h, keep])
    for k, (pad, layer, norm) in enumerate(zip(conv.pads, conv.convs, conv.norms, strict=True)):
        scale = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).detach()
        weight = (layer.weight.detach() * scale[:, None, None]).cpu().numpy()
        bias = ((layer.bias.detach() - norm.running_mean) * scale + norm.bias.detach()).cpu()
        w, b = g.const(f"conv{k}_weight", weight), g.const(f"conv{k}_bias", bias.numpy())
        h = g.op("Conv", [h, w, b], pads=list(pad), dilations=list(layer.dilation))
        h = g.op("Relu", [h])
        if keep:
            h = g.op("Mul", [h, keep])
    if not lengths:
        return g.op("ReduceMean", [h], axes=[2], keepdims=0)
    total = g.op("ReduceSum", [h, g.const("axes", [2])], keepdims=0)
    return g.op("Div", [total, _float_lengths(g, lengths)])


def _recurrent_net(g: _Graph, net, x: str, lengths: str = "", extra: str = "") -> str:
    """:class:`~lstmkit.tasks.networks.RecurrentNet` on the batch-first ``x`` (N, T, D):
    patches, encoder, pooling (``last``/``mean``/``max`` over the real steps), the
    convolutional branch, the head. Returns (N, K) for ``output="last"``, (N, T, K) for
    ``"sequence"``."""
    # a per-step output has rnn_stride 1: the window means are the steps themselves
    x_rnn, lengths_rnn = _window_mean(g, x, lengths, net.rnn_stride, net.input_size)
    y, h_n, _ = _recurrent(g, net.rnn, _swap_first_axes(g, x_rnn), lengths_rnn)
    if net.output == "sequence":
        return _linear(g, _swap_first_axes(g, y), net.head, "head")
    mask = _step_mask(g, y, lengths_rnn) if lengths_rnn else None
    parts = []
    for kind in net.pooling:
        if kind == "last":  # the last layer's final states, [h_T, h'_1]: (D, N, H) -> (N, D·H)
            nd = _swap_first_axes(g, _slice(g, h_n, -net.directions, _INT64_MAX))
            parts.append(g.op("Reshape", [nd, g.const("shape", [0, -1])]))
        elif kind == "mean":
            if mask is None:
                parts.append(g.op("ReduceMean", [y], axes=[0], keepdims=0))
            else:
                masked = g.op("Mul", [y, g.op("Cast", [mask], to=TensorProto.FLOAT)])
                total = g.op("ReduceSum", [masked, g.const("axes", [0])], keepdims=0)
                parts.append(g.op("Div", [total, _float_lengths(g, lengths_rnn)]))
        else:  # max
            y_max = y
            if mask is not None:
                y_max = g.op("Where", [mask, y, g.const("minus_inf", np.float32(-np.inf))])
            parts.append(g.op("ReduceMax", [y_max], axes=[0], keepdims=0))
    if net.conv is not None:
        x_conv, lengths_conv = _patches(g, x, lengths, net.conv_stride, net.input_size)
        parts.append(_conv_branch(g, net.conv, x_conv, lengths_conv))
    if extra:
        parts.append(extra)
    return _linear(g, _concat(g, parts, -1), net.head, "head")


def _ensemble(g: _Graph, net, x: str, lengths: str, extra: str = "") -> str:
    """A network or :class:`~lstmkit.tasks.sequence.EnsembleNet`: for probabilities the
    log of the members' mean softmax, for values their mean."""
    if not isinstance(net, EnsembleNet):
        return _recurrent_net(g, net, x, lengths, extra)
    outs = [_recurrent_net(g, m, x, lengths, extra) for m in net.members]
    if net.combine == "probabilities":
        outs = [g.op("Softmax", [o], axis=-1) for o in outs]
    total = g.op("Sum", outs)
    mean = g.op("Div", [total, g.const("members", np.float32(len(outs)))])
    return g.op("Log", [mean]) if net.combine == "probabilities" else mean


# -- the graphs of a module and of each estimator -------------------------------------------


def _module_model(module: nn.Module, lengths: bool, initial_state: bool):
    spec = _spec(module)
    g = _Graph()
    axes = ("batch", "steps") if module.batch_first else ("steps", "batch")
    x = g.input("input", [*axes, module.input_size])
    lens = g.lengths() if lengths else ""
    state_shape = [spec.num_layers * spec.num_directions, "batch", spec.hidden_size]
    h0 = g.input("h_0", state_shape) if initial_state else ""
    c0 = g.input("c_0", state_shape) if initial_state and spec.mode == "LSTM" else ""
    if module.batch_first:
        x = _swap_first_axes(g, x)
    y, h_n, c_n = _recurrent(g, module, x, lens, h0, c0)
    if module.batch_first:
        y = _swap_first_axes(g, y)
    outputs = {"output": (y, [*axes, spec.output_size]), "h_n": (h_n, state_shape)}
    if c_n is not None:
        outputs["c_n"] = (c_n, state_shape)
    doc = f"lstmkit {type(module).__name__}: {module!r}"
    return g.model(outputs, doc, {"lstmkit.kind": spec.mode})


def _standardise(g: _Graph, x: str, mean, std) -> str:
    return g.op("Div", [g.op("Sub", [x, g.const("mean", mean)]), g.const("std", std)])


def _unstandardise(g: _Graph, x: str, mean, std) -> str:
    """x·σ + μ: predictions back on y's scale."""
    return g.op("Add", [g.op("Mul", [x, g.const("y_std", std)]), g.const("y_mean", mean)])


def _standardise_each(g: _Graph, x: str, lengths: str, floor) -> tuple[str, str, str]:
    """:func:`lstmkit.data.scaling.standardise_each` on the padded batch-first ``x``:
    each channel of each sequence to mean 0 and standard deviation 1 over its real steps,
    σ floored at ``floor`` (D,) (a constant channel to 0; the padding is left to the masks
    downstream). Returns (x', the means (N, 1, D), the standard deviations (N, 1, D))."""
    mask = _real_steps(g, x, lengths, 2)  # (N, T, 1)
    count = _unsqueeze(g, _float_lengths(g, lengths), 2)  # (N, 1, 1)
    axes = g.const("axes", [1])
    mean = g.op("Div", [g.op("ReduceSum", [g.op("Mul", [x, mask]), axes], keepdims=1), count])
    centred = g.op("Mul", [g.op("Sub", [x, mean]), mask])
    square = g.op("ReduceSum", [g.op("Mul", [centred, centred]), axes], keepdims=1)
    std = g.op("Sqrt", [g.op("Div", [square, count])])
    zero = g.const("zero", np.float32(0.0))
    floored = g.op("Max", [std, g.const("floor", np.asarray(floor, dtype=np.float32))])
    one = g.const("one", np.float32(1.0))
    safe = g.op("Where", [g.op("Greater", [floored, zero]), floored, one])
    return g.op("Div", [g.op("Sub", [x, mean]), safe]), mean, std


def _level_and_scale(g: _Graph, mean: str, std: str, fitted: dict) -> str:
    """:func:`lstmkit.data.scaling.level_and_scale` of the means and standard deviations
    (N, 1, D), standardised as in fit: the head's extra features (N, 2D)."""
    reference = g.const("scale_reference", fitted["scale_reference"])
    ratio = g.op("Div", [std, reference])
    log1p = g.op("Log", [g.op("Add", [ratio, g.const("one", np.float32(1.0))])])
    both = g.op("Concat", [g.op("Div", [mean, reference]), log1p], axis=2)
    flat = g.op("Reshape", [both, g.const("shape", [0, -1])])
    return _standardise(g, flat, fitted["extra_mean"], fitted["extra_std"])


def _net_model(net):
    """A RecurrentNet alone (inputs and outputs: :func:`to_onnx`'s table)."""
    g = _Graph()
    x = g.input("x", ["batch", "steps", net.input_size])
    lens = g.lengths()
    extra_size = _extra_size(net)
    extra = g.input("extra", ["batch", extra_size]) if extra_size else ""
    out = _recurrent_net(g, net, x, lens, extra)
    k = net.head.out_features
    shape = ["batch", "steps", k] if net.output == "sequence" else ["batch", k]
    meta = {"lstmkit.kind": "RecurrentNet"}
    return g.model({"output": (out, shape)}, "lstmkit RecurrentNet", meta)


def _extra_size(net) -> int:
    if net.output == "sequence":
        return 0
    pooled = net.directions * net.rnn.hidden_size * len(net.pooling)
    if net.conv is not None:
        pooled += net.conv.out_features
    return net.head.in_features - pooled


def _sequence_model(est):
    """Sequence estimators: raw x (N, T, D) padded anyhow + lengths (N,) → standardised as
    in fit → network → class logits and probabilities, or predictions on y's scale."""
    est._check_fitted()
    fitted, net = est._fitted, est.net_
    g = _Graph()
    x = g.input("x", ["batch", "steps", fitted["input_size"]])
    lens = g.lengths()
    extra = ""
    if est.params.get("normalize") == "sequence":
        floor = np.broadcast_to(quiet_floor(fitted), (fitted["input_size"],))
        x, mean, std = _standardise_each(g, x, lens, floor)
        if "scale_reference" in fitted:
            extra = _level_and_scale(g, mean, std, fitted)
    out = _ensemble(g, net, _standardise(g, x, fitted["mean"], fitted["std"]), lens, extra)
    k = fitted["output_size"]
    shape = ["batch", "steps", k] if net.output == "sequence" else ["batch", k]
    meta = {"lstmkit.kind": est._kind}
    if isinstance(est, SequenceRegressor):
        pred = _unstandardise(g, out, fitted["y_mean"], fitted["y_std"])
        outputs = {"prediction": (pred, shape)}
    else:
        probs = g.op("Softmax", [out], axis=-1)
        outputs = {"logits": (out, shape), "probabilities": (probs, shape)}
        meta["lstmkit.classes"] = json.dumps(est.classes_.tolist())
    return g.model(outputs, f"lstmkit {est._kind}", meta)


def _forecaster_model(est):
    """Forecaster: the last ``lookback`` rows of the series (and covariates) on their own
    scale → the next H rows on the series' scale (H = horizon, 1 for ``recursive``)."""
    est._check_fitted()
    if est.panel_ is not None:
        raise ValueError(
            "export: expected a Forecaster fitted on one series; a global model over a panel "
            "(quantiles, ensembles, per-series scales) has no ONNX graph yet"
        )
    g = _Graph()
    y_scaler, past_scaler, fut_scaler = est._scalers
    targets, horizon = est._shapes["targets"], est._step_horizon
    series = g.input("series", ["batch", "steps", targets])
    y_s = _standardise(g, series, y_scaler.mean, y_scaler.std)
    # level-relative: the window's last scaled target y_{t-1}, (N, 1, K)
    level = _slice(g, y_s, -1, _INT64_MAX, axis=1)
    channels = [g.op("Sub", [y_s, level])]
    if past_scaler is not None:
        past = g.input("covariates", ["batch", "steps", len(past_scaler.mean)])
        channels.append(_standardise(g, past, past_scaler.mean, past_scaler.std))
    extra = ""
    if fut_scaler is not None:  # rows t-L … t+H-1: the window, then the horizon
        fut = g.input("future_covariates", ["batch", "steps_plus_horizon", len(fut_scaler.mean)])
        fut_s = _standardise(g, fut, fut_scaler.mean, fut_scaler.std)
        steps = _unsqueeze(g, _steps(g, series, 1), 0)
        zero, end, axis = g.const("start", [0]), g.const("end", [_INT64_MAX]), g.const("axes", [1])
        channels.append(g.op("Slice", [fut_s, zero, steps, axis]))
        ahead = g.op("Slice", [fut_s, steps, end, axis])  # (N, H, F) -> step-major (N, H·F)
        extra = g.op("Reshape", [ahead, g.const("shape", [0, -1])])
    out = _recurrent_net(g, est.net_, _concat(g, channels, -1), "", extra)
    block = g.op("Add", [g.op("Reshape", [out, g.const("shape", [0, horizon, targets])]), level])
    forecast = _unstandardise(g, block, y_scaler.mean, y_scaler.std)
    meta = {
        "lstmkit.kind": "Forecaster",
        "lstmkit.lookback": est.lookback_,
        "lstmkit.horizon": horizon,
        "lstmkit.strategy": est.params["strategy"],
    }
    outputs = {"forecast": (forecast, ["batch", horizon, targets])}
    return g.model(outputs, "lstmkit Forecaster", meta)


def _text_model(est):
    """TextGenerator: token ids (N, T), lengths (N,) and the initial state → next-character
    logits (N, T, V) and the final state; the vocabulary is in the metadata."""
    est._check_fitted()
    net = est.net_
    g = _Graph()
    rnn = net.rnn
    tokens = g.input("tokens", ["batch", "steps"], TensorProto.INT64)
    lens = g.lengths()
    state_shape = [rnn.num_layers, "batch", rnn.hidden_size]
    h0 = g.input("h_0", state_shape)
    c0 = g.input("c_0", state_shape) if rnn.mode == "LSTM" else ""
    table = g.const("embedding", net.embed.weight.detach().cpu().numpy())
    x = g.op("Gather", [table, g.op("Transpose", [tokens], perm=[1, 0])], axis=0)  # (T, N, E)
    y, h_n, c_n = _recurrent(g, rnn, x, lens, h0, c0)
    logits = _linear(g, _swap_first_axes(g, y), net.head, "head")
    outputs = {
        "logits": (logits, ["batch", "steps", net.head.out_features]),
        "h_n": (h_n, state_shape),
    }
    if c_n is not None:
        outputs["c_n"] = (c_n, state_shape)
    meta = {"lstmkit.kind": "TextGenerator", "lstmkit.vocab": json.dumps(est._vocab)}
    return g.model(outputs, "lstmkit TextGenerator", meta)


def to_onnx(obj, *, lengths: bool = False, initial_state: bool = False) -> onnx.ModelProto:
    """The ONNX model of ``obj``, checked with ``onnx.checker``; :func:`export_onnx` writes it.

    ``obj`` and the graph's inputs → outputs (``batch`` and ``steps`` dynamic; float32
    unless marked; D = directions, K = outputs, H = horizon, V = vocabulary):

    ==================  ==============================================  =====================
    obj                 inputs                                          outputs
    ==================  ==============================================  =====================
    LSTM, GRU           ``input`` (steps, batch, H_in), batch first as  ``output``, ``h_n``,
    (lstmkit or         the module; ``lengths`` (batch,) int64 if       ``c_n``, as the
    torch.nn)           ``lengths``; ``h_0``, ``c_0`` if                module's ``forward``
                        ``initial_state``
    RecurrentNet        ``x`` (batch, steps, D_in), ``lengths``,        ``output`` (batch, K)
                        ``extra`` (batch, E) if its head reads extras   or (batch, steps, K)
    SequenceClassifier  ``x`` raw values (batch, steps, D_in), padded   ``logits``,
    SequenceTagger      anyhow; ``lengths`` (batch,) int64              ``probabilities``
    SequenceRegressor   as above                                        ``prediction``
    Forecaster          ``series`` (batch, lookback, K) raw;            ``forecast``
                        ``covariates`` (batch, lookback, C) and         (batch, H, K) on the
                        ``future_covariates`` (batch, lookback + H, F)  series' scale
                        if fitted with them
    TextGenerator       ``tokens`` (batch, steps) int64, ``lengths``,   ``logits``
                        ``h_0`` (``c_0``) (layers, batch, H)            (batch, steps, V),
                                                                        ``h_n`` (``c_n``)
    ==================  ==============================================  =====================

    ``lengths``/``initial_state`` add those inputs to a module's graph; an estimator's
    graph has the fixed inputs above (a ``ValueError`` otherwise). Raises ``ValueError``
    for what the operators cannot express (:func:`why_not_onnx`) and for an unfitted
    estimator, ``TypeError`` for anything else. See ``docs/onnx.md``.
    """
    if isinstance(obj, LSTM | GRU | nn.LSTM | nn.GRU):
        return _module_model(obj, bool(lengths), bool(initial_state))
    if lengths or initial_state:
        raise ValueError(
            f"lengths/initial_state: options of a module's export; a {type(obj).__name__}'s "
            f"graph has fixed inputs, got lengths={lengths!r}, initial_state={initial_state!r}"
        )
    if isinstance(obj, RecurrentNet):
        return _net_model(obj)
    if isinstance(obj, SequenceClassifier | SequenceRegressor | SequenceTagger):
        return _sequence_model(obj)
    if isinstance(obj, Forecaster):
        return _forecaster_model(obj)
    if isinstance(obj, TextGenerator):
        return _text_model(obj)
    raise TypeError(
        "expected an lstmkit.LSTM/GRU, torch.nn.LSTM/GRU, RecurrentNet or a fitted "
        f"Forecaster/SequenceClassifier/SequenceRegressor/SequenceTagger/TextGenerator, "
        f"got {type(obj).__name__}"
    )


def export_onnx(obj, path, *, lengths: bool = False, initial_state: bool = False) -> Path:
    """Write :func:`to_onnx`'s graph of ``obj`` to ``path`` and return the path.

    Written atomically (a temporary sibling, then a rename): readers see the old file or
    the new one, and a refused export leaves the old file as it was.
    """
    model = to_onnx(obj, lengths=lengths, initial_state=initial_state)
    return write_atomically(path, model.SerializeToString())


# -- torch.export -------------------------------------------------------------------------


def export_program(module: nn.Module, input: torch.Tensor, *, dynamic_steps: bool = True):
    """``torch.export.export`` of an lstmkit LSTM/GRU for inference, traced on the example
    ``input`` laid out as the module reads it ((L, N, H_in), or (N, L, H_in) with
    ``batch_first``). The batch size is always dynamic.

    ``dynamic_steps=True``: the sequence length is dynamic too. That needs the native
    backend (``torch.lstm``/``torch.gru``, which ``auto`` picks in inference wherever it
    computes the configuration exactly), exported through torch's while-loop
    decomposition of those operators (``torch.export._patches``, the one ``torch.onnx``
    uses). The reference and fused backends loop over time in Python, and tracing a
    Python loop unrolls it at the example's length: for the configurations only they run
    (Cho GRU, non-concat stacks, the cell variants) pass ``dynamic_steps=False``, and the
    program holds for the example's sequence length only (it refuses others). The
    program runs the module in evaluation mode; it is not for training (torch's while
    loop has no autograd).
    """
    if not isinstance(module, LSTM | GRU):
        raise TypeError(f"module: expected an lstmkit.LSTM or GRU, got {type(module).__name__}")
    if not isinstance(input, torch.Tensor) or input.dim() != 3:
        raise ValueError(
            "input: expected a 3-dim example tensor, "
            f"got {getattr(input, 'shape', type(input).__name__)}"
        )
    from torch.export import Dim, export
    from torch.export._patches import (
        register_gru_while_loop_decomposition,
        register_lstm_while_loop_decomposition,
    )
    from torch.fx.experimental import _config as shape_config

    batch_axis, steps_axis = (0, 1) if module.batch_first else (1, 0)
    for axis, name, dynamic in ((batch_axis, "batch", True), (steps_axis, "steps", dynamic_steps)):
        if dynamic and input.shape[axis] < 2:  # torch.export fixes sizes 0 and 1 as constants
            raise ValueError(
                f"input: expected an example with {name} >= 2 on axis {axis} (a dynamic axis), "
                f"got shape {tuple(input.shape)}"
            )
    axes = {batch_axis: Dim("batch", min=1)}
    was_training, chosen = module.training, module.backend
    module.eval()
    try:
        with torch.no_grad():
            if chosen == "auto" and backends.why_not("native", module.cfg) is None:
                # the program runs torch's operators wherever it goes: what auto would pick
                # for speed on this CPU (fused, for a GRU) is beside the point
                module.backend = "native"
            backend = module.backend_for(input, needs_grad=False)
            if not dynamic_steps:
                if backend in backends.FUSED_IMPLEMENTATIONS:
                    # the fused forward writes into buffers (out= ops), which a program can
                    # run only without autograd; the reference cells are plain ops, same values
                    module.backend = "reference"
                return export(module, (input,), dynamic_shapes=(axes,))
            if backend != "native":
                reason = backends.why_not("native", module.cfg) or f"backend={chosen!r}"
                raise ValueError(
                    "dynamic_steps=True: a dynamic sequence length needs the native backend, "
                    f"but this module runs {backend!r} ({reason}); export with "
                    "dynamic_steps=False for the example's length, or to ONNX with export_onnx"
                )
            axes[steps_axis] = Dim("steps", min=1)
            # Each direction's while loop is traced by a nested torch.compile; the
            # decomposition hands it that direction's h_0 as a view of the (layers·D, N, H)
            # state at storage offset k·N·H. With duck sizing, a symbol created for that
            # offset is unified with any other size of the same value (the GRU's 3H gate
            # rows when N = 3), which fixes N to the example's batch: torch.export then
            # refuses the dynamic batch, or not, depending on what earlier exports left in
            # the compile cache. Without duck sizing every such size gets its own symbol.
            # The input's own axes are Dims, never duck sized: only the nested trace changes.
            with (
                register_lstm_while_loop_decomposition(),
                register_gru_while_loop_decomposition(),
                shape_config.patch(use_duck_shape=False),
            ):
                return export(module, (input,), dynamic_shapes=(axes,))
    finally:
        module.backend = chosen
        module.train(was_training)
