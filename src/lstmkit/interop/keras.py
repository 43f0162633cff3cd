r"""Keras 3 LSTM/GRU weights to lstmkit (and torch.nn) and back, without importing Keras.

Keras stores a recurrent layer as ``layer.get_weights()`` = ``[kernel, recurrent_kernel,
bias]`` (``bias`` absent with ``use_bias=False``); lstmkit and ``torch.nn`` store
``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (suffix
``_reverse`` for the backward direction). The functions here move one into the other, as
Haste's ``from_native_weights`` does, on plain arrays (NumPy or anything ``np.asarray``
takes), so Keras is not needed at run time and lstmkit never imports it.

Keras's formulas (``keras/src/layers/rnn/lstm.py`` and ``gru.py``, Keras 3, with the
default ``activation="tanh"``, ``recurrent_activation="sigmoid"``), row vectors
:math:`x_t` (1, H_in) and :math:`h_{t-1}` (1, U), K the kernel, R the recurrent kernel:

.. math::

    \text{LSTM:}\quad [a_i, a_f, a_c, a_o] &= x_t K + h_{t-1} R + b,\qquad
    c_t = \sigma(a_f) \odot c_{t-1} + \sigma(a_i) \odot \tanh(a_c),\qquad
    h_t = \sigma(a_o) \odot \tanh(c_t) \\
    \text{GRU:}\quad z_t &= \sigma(x_t K_z + b_z + h_{t-1} R_z + b'_z),\qquad
    r_t = \sigma(x_t K_r + b_r + h_{t-1} R_r + b'_r) \\
    \tilde h_t &= \tanh(x_t K_h + b_h + r_t \odot (h_{t-1} R_h + b'_h))
        && \text{reset\_after=True} \\
    \tilde h_t &= \tanh(x_t K_h + b_h + (r_t \odot h_{t-1}) R_h)
        && \text{reset\_after=False} \\
    h_t &= z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t

These are lstmkit's :mod:`lstmkit.cells.lstm` and :mod:`lstmkit.cells.gru` (PyTorch's
:math:`h_t = (1 - z_t) n_t + z_t h_{t-1}` is the same update) once the weights are laid
out as below. U = H = ``units`` = ``hidden_size``.

=====================  ===============================  ===================================
                       Keras 3                          torch.nn / lstmkit
=====================  ===============================  ===================================
LSTM input weights     ``kernel`` (H_in, 4U),           ``weight_ih`` (4H, H_in), rows
                       columns i, f, c, o               i, f, g, o: ``kernel.T``
LSTM recurrent         ``recurrent_kernel`` (U, 4U)     ``weight_hh`` (4H, H):
                                                        ``recurrent_kernel.T``
LSTM bias              ``bias`` (4U,), one vector       ``bias_ih = bias``, ``bias_hh = 0``;
                                                        back: ``bias = bias_ih + bias_hh``
GRU input weights      ``kernel`` (H_in, 3U),           ``weight_ih`` (3H, H_in), rows
                       columns z, r, h                  r, z, n: blocks z and r swapped, .T
GRU recurrent          ``recurrent_kernel`` (U, 3U)     ``weight_hh`` (3H, H), as above
GRU bias,              ``bias`` (2, 3U): row 0 input,   ``bias_ih`` = row 0, ``bias_hh`` =
``reset_after=True``   row 1 recurrent, each z, r, h    row 1, each with z and r swapped
GRU bias,              ``bias`` (3U,), one vector       ``bias_ih = bias`` (z, r swapped),
``reset_after=False``                                   ``bias_hh = 0``; back: the sum
``use_bias=False``     no ``bias`` array                ``bias=False``
``Bidirectional``      ``get_weights()`` = forward      ``_l{k}`` then ``_l{k}_reverse``
                       layer's list + backward layer's
``merge_mode``         concat, sum, mul, ave            concat, sum, mul, mean
stacking               one Keras layer per layer        ``num_layers``, ``_l0``, ``_l1``, …
=====================  ===============================  ===================================

Keras has one LSTM bias and, for ``reset_after=False``, one GRU bias; torch.nn has two.
Only their sum enters the formulas (for the Cho-form GRU too: lstmkit adds ``b_hn``
after the matmul, outside :math:`r_t`, so ``b_in + b_hn`` is Keras's ``b_h``), so the
conversion is exact, but lstmkit → Keras → lstmkit returns the sum in ``bias_ih`` and
zeros in ``bias_hh``. Keras → lstmkit → Keras returns the same arrays.

States: a Keras layer with ``return_state=True`` returns ``h`` (and ``c``), (N, U), per
direction; lstmkit's ``h_n[k * D + d]`` is layer k, direction d (0 forward, 1 backward).
Keras's ``Bidirectional`` takes ``initial_state=[h_f, c_f, h_b, c_b]``. Keras is
batch-major: build the lstmkit module with ``batch_first=True`` (:func:`from_keras` does).

What does not convert (``ValueError``): activations other than tanh/sigmoid (Keras 2
defaulted to ``recurrent_activation="hard_sigmoid"``), ``Bidirectional(merge_mode=None)``,
a unidirectional ``go_backwards=True`` layer, layers of different sizes or kinds in one
stack, lstmkit's ``proj_size > 0`` and the cell variants that change the formulas
(``layer_norm``, ``peephole``, ``zoneout``). Dropout and recurrent dropout act only in
training and are not weights: they are not carried over.

Public API:

* :func:`keras_to_torch` / :func:`torch_to_keras`: one layer and direction, pure arrays.
* :func:`load_keras_weights` (module, per-layer ``get_weights()`` lists) and
  :func:`to_keras` (module → per-layer lists for ``set_weights``), for lstmkit's and
  torch.nn's LSTM/GRU.
* :func:`from_keras`: a new lstmkit module from built Keras layers (read duck-typed).
"""

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from lstmkit.interop import _rnn_config, _suffix
from lstmkit.nn import GRU, LSTM
from lstmkit.recurrence.config import RNNConfig

MODES = ("LSTM", "GRU")
#: Keras's ``Bidirectional`` merge modes and lstmkit's names for them.
MERGE_FROM_KERAS = {"concat": "concat", "sum": "sum", "mul": "mul", "ave": "mean"}
MERGE_TO_KERAS = {v: k for k, v in MERGE_FROM_KERAS.items()}
# lstmkit cell variants that change the formulas: Keras has no such layer.
_VARIANTS = ("layer_norm", "peephole", "zoneout", "zoneout_cell")


def _check_mode(mode) -> int:
    """The number of gate blocks of ``mode``, checked."""
    if mode not in MODES:
        raise ValueError(f"mode: expected 'LSTM' or 'GRU', got {mode!r}")
    return 4 if mode == "LSTM" else 3


def _array(value, name: str) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name}: expected a floating-point array, got dtype {array.dtype}")
    return array


def _check_shape(array: np.ndarray, expected: tuple, name: str, layout: str) -> None:
    if array.shape != expected:
        raise ValueError(f"{name}: expected shape {expected} {layout}, got {array.shape}")


def _swap_zr(array: np.ndarray, axis: int) -> np.ndarray:
    """Keras's GRU blocks z, r, h ↔ torch's r, z, n: swap the first two (its own inverse)."""
    first, second, third = np.split(array, 3, axis=axis)
    return np.concatenate([second, first, third], axis=axis)


def _reorder(mode: str, array: np.ndarray, axis: int) -> np.ndarray:
    return _swap_zr(array, axis) if mode == "GRU" else array


# -- one layer and direction --------------------------------------------------------------


def keras_to_torch(
    mode: str,
    weights: Sequence,
    *,
    reset_after: bool = True,
    input_size: int | None = None,
    hidden_size: int | None = None,
    name: str = "weights",
) -> dict[str, np.ndarray]:
    """One Keras layer's ``get_weights()`` → torch.nn's parameters of one direction.

    ``weights`` is ``[kernel, recurrent_kernel]`` or ``[kernel, recurrent_kernel, bias]``
    (see the module docstring for shapes); ``reset_after`` says which GRU bias layout to
    expect. ``input_size`` / ``hidden_size``, when given, are checked against the kernels
    (else they are read from them). Returns ``{"weight_ih", "weight_hh"}`` plus
    ``{"bias_ih", "bias_hh"}`` when there is a bias, as NumPy arrays of the input dtype.
    """
    gates = _check_mode(mode)
    if isinstance(weights, np.ndarray | torch.Tensor) or not isinstance(weights, Sequence):
        raise TypeError(
            f"{name}: expected a list [kernel, recurrent_kernel(, bias)] "
            f"(what layer.get_weights() returns), got {type(weights).__name__}"
        )
    if len(weights) not in (2, 3):
        raise ValueError(
            f"{name}: expected 2 arrays [kernel, recurrent_kernel] or 3 with a bias "
            f"for one {mode} direction, got {len(weights)}"
        )
    kernel = _array(weights[0], f"{name}[0] (kernel)")
    recurrent = _array(weights[1], f"{name}[1] (recurrent_kernel)")
    if recurrent.ndim != 2:
        raise ValueError(
            f"{name}[1] (recurrent_kernel): expected 2 dims (units, {gates}*units), "
            f"got shape {recurrent.shape}"
        )
    units = recurrent.shape[0] if hidden_size is None else hidden_size
    _check_shape(
        recurrent, (units, gates * units), f"{name}[1] (recurrent_kernel)", "(units, G*units)"
    )
    if kernel.ndim != 2:
        raise ValueError(
            f"{name}[0] (kernel): expected 2 dims (input_dim, {gates}*units), "
            f"got shape {kernel.shape}"
        )
    in_dim = kernel.shape[0] if input_size is None else input_size
    _check_shape(kernel, (in_dim, gates * units), f"{name}[0] (kernel)", "(input_dim, G*units)")
    params = {
        "weight_ih": np.ascontiguousarray(_reorder(mode, kernel, 1).T),
        "weight_hh": np.ascontiguousarray(_reorder(mode, recurrent, 1).T),
    }
    if len(weights) == 3:
        bias = _array(weights[2], f"{name}[2] (bias)")
        if mode == "GRU" and reset_after:
            layout = "(GRU reset_after=True: [input bias, recurrent bias])"
            _check_shape(bias, (2, 3 * units), f"{name}[2] (bias)", layout)
            params["bias_ih"] = _swap_zr(bias[0], 0)
            params["bias_hh"] = _swap_zr(bias[1], 0)
        else:
            layout = "(GRU reset_after=False: one bias)" if mode == "GRU" else "(LSTM: one bias)"
            _check_shape(bias, (gates * units,), f"{name}[2] (bias)", layout)
            params["bias_ih"] = np.ascontiguousarray(_reorder(mode, bias, 0))
            params["bias_hh"] = np.zeros_like(bias)
    return params


def torch_to_keras(
    mode: str,
    params: Mapping,
    *,
    reset_after: bool = True,
    name: str = "params",
) -> list[np.ndarray]:
    """torch.nn's parameters of one direction → the list Keras's ``layer.set_weights`` takes.

    ``params`` maps ``"weight_ih"``, ``"weight_hh"`` and, with a bias, both ``"bias_ih"``
    and ``"bias_hh"`` to arrays or tensors. Returns ``[kernel, recurrent_kernel(, bias)]``
    as NumPy arrays; the two biases are summed, except for the GRU with
    ``reset_after=True``, whose Keras bias keeps both, shape (2, 3U).
    """
    gates = _check_mode(mode)
    if not isinstance(params, Mapping):
        raise TypeError(
            f"{name}: expected a mapping with weight_ih, weight_hh(, bias_ih, bias_hh), "
            f"got {type(params).__name__}"
        )
    missing = [k for k in ("weight_ih", "weight_hh") if k not in params]
    has_bias = [k in params and params[k] is not None for k in ("bias_ih", "bias_hh")]
    if missing or has_bias[0] != has_bias[1]:
        raise ValueError(
            f"{name}: expected keys weight_ih, weight_hh and either both or neither of "
            f"bias_ih, bias_hh, got {sorted(params)}"
        )
    w_ih, w_hh = (_array(params[k], f"{name}[{k!r}]") for k in ("weight_ih", "weight_hh"))
    if w_hh.ndim != 2 or w_hh.shape[0] % gates or w_hh.shape[1] != w_hh.shape[0] // gates:
        raise ValueError(f"{name}['weight_hh']: expected shape ({gates}*H, H), got {w_hh.shape}")
    hidden = w_hh.shape[1]
    if w_ih.ndim != 2 or w_ih.shape[0] != gates * hidden:
        raise ValueError(
            f"{name}['weight_ih']: expected shape ({gates * hidden}, H_in), got {w_ih.shape}"
        )
    weights = [np.ascontiguousarray(_reorder(mode, w.T, 1)) for w in (w_ih, w_hh)]
    if has_bias[0]:
        b_ih, b_hh = (_array(params[k], f"{name}[{k!r}]") for k in ("bias_ih", "bias_hh"))
        for key, bias in (("bias_ih", b_ih), ("bias_hh", b_hh)):
            _check_shape(bias, (gates * hidden,), f"{name}[{key!r}]", "(G*H,)")
        if mode == "GRU" and reset_after:
            weights.append(np.stack([_swap_zr(b_ih, 0), _swap_zr(b_hh, 0)]))
        else:
            weights.append(np.ascontiguousarray(_reorder(mode, b_ih + b_hh, 0)))
    return weights


# -- whole modules ------------------------------------------------------------------------


def _spec(module) -> RNNConfig:
    """The configuration of ``module``, checked to have a Keras equivalent."""
    mode = getattr(module, "mode", None)
    if not isinstance(module, torch.nn.Module) or mode not in MODES:
        raise TypeError(
            "module: expected an lstmkit.LSTM/GRU or torch.nn.LSTM/GRU, "
            f"got {type(module).__name__}"
        )
    cfg = _rnn_config(module)  # torch.nn's has no variants: only proj_size can refuse it
    if cfg.proj_size:
        raise ValueError(
            f"module: an LSTM with proj_size={cfg.proj_size} has no Keras equivalent "
            "(Keras's LSTM has no projection); expected proj_size=0"
        )
    for variant in _VARIANTS:
        if value := getattr(cfg, variant):
            raise ValueError(
                f"module: {variant}={value!r} changes the cell's formulas and Keras's "
                f"{mode} has no such option; expected a plain {mode} cell"
            )
    return cfg


def load_keras_weights(module, weights: Sequence):
    """Fill ``module`` (lstmkit or torch.nn LSTM/GRU) from Keras weights; returns ``module``.

    ``weights`` has one entry per layer: that Keras layer's ``get_weights()`` list —
    ``[kernel, recurrent_kernel(, bias)]``, or for a ``Bidirectional`` layer the forward
    layer's list followed by the backward layer's (what ``Bidirectional.get_weights()``
    returns). For one layer pass ``[layer.get_weights()]``. The module must already have
    Keras's configuration (sizes, ``bias``, ``bidirectional``, ``reset_after``;
    :func:`from_keras` builds it from live layers). Every array is checked before any
    parameter is written; values are cast to the parameters' dtype and device.
    """
    spec = _spec(module)
    per_direction = 3 if spec.bias else 2
    if isinstance(weights, np.ndarray | torch.Tensor) or not isinstance(weights, Sequence):
        raise TypeError(
            f"weights: expected a list with one get_weights() list per layer, "
            f"got {type(weights).__name__}"
        )
    for layer, arrays in enumerate(weights):
        if isinstance(arrays, np.ndarray | torch.Tensor) or not isinstance(arrays, Sequence):
            raise TypeError(
                f"weights[{layer}]: expected the list of arrays of layer {layer} (what "
                f"layer.get_weights() returns; for one layer pass [layer.get_weights()]), "
                f"got {type(arrays).__name__}"
            )
    if len(weights) != spec.num_layers:
        raise ValueError(
            f"weights: expected {spec.num_layers} entries (one per layer, num_layers), "
            f"got {len(weights)}"
        )
    converted: dict[str, np.ndarray] = {}
    expected = per_direction * spec.num_directions
    for layer, arrays in enumerate(weights):
        if len(arrays) != expected:
            what = "forward + backward, " if spec.bidirectional else ""
            raise ValueError(
                f"weights[{layer}]: expected {expected} arrays ({what}"
                f"{'with' if spec.bias else 'without'} bias), got {len(arrays)}"
            )
        for direction in range(spec.num_directions):
            part = list(arrays[direction * per_direction : (direction + 1) * per_direction])
            side = ("forward", "backward")[direction] if spec.bidirectional else ""
            params = keras_to_torch(
                spec.mode,
                part,
                reset_after=spec.reset_after,
                input_size=spec.layer_input_size(layer),
                hidden_size=spec.hidden_size,
                name=f"weights[{layer}]" + (f" ({side})" if side else ""),
            )
            for key, value in params.items():
                converted[key + _suffix(layer, direction)] = value
    with torch.no_grad():
        for key, value in converted.items():
            getattr(module, key).copy_(torch.from_numpy(np.array(value)))
    return module


def to_keras(module) -> list[list[np.ndarray]]:
    """The weights of ``module`` (lstmkit or torch.nn LSTM/GRU) in Keras's layout.

    One list per layer, ready for that Keras layer's ``set_weights``: ``[kernel,
    recurrent_kernel(, bias)]``, or for a bidirectional module the forward direction's
    arrays followed by the backward's (what ``Bidirectional.set_weights`` takes). The
    Keras layers must be built with ``units=hidden_size``, ``use_bias=bias``, the same
    ``reset_after`` and, for a bidirectional module, ``merge_mode`` as in
    :data:`MERGE_TO_KERAS`.
    """
    spec = _spec(module)
    result = []
    for layer in range(spec.num_layers):
        arrays: list[np.ndarray] = []
        for direction in range(spec.num_directions):
            suffix = _suffix(layer, direction)
            names = ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if spec.bias else ())
            params = {name: getattr(module, name + suffix) for name in names}
            arrays += torch_to_keras(
                spec.mode, params, reset_after=spec.reset_after, name=f"module l{layer}"
            )
        result.append(arrays)
    return result


# -- live Keras layers, read duck-typed ---------------------------------------------------


def _activation_name(function) -> str:
    return getattr(function, "__name__", repr(function))


def _describe(layer, index: int) -> tuple[dict, list]:
    """The settings (mode, units, bias, reset_after, merge) and weights of one Keras layer."""
    where = f"layers[{index}] ({type(layer).__name__})"
    forward = getattr(layer, "forward_layer", None)
    if forward is not None:  # keras.layers.Bidirectional
        keras_merge = getattr(layer, "merge_mode", None)
        if keras_merge not in MERGE_FROM_KERAS:
            raise ValueError(
                f"{where}: merge_mode expected one of {', '.join(MERGE_FROM_KERAS)}, "
                f"got {keras_merge!r} (lstmkit merges the directions at every layer)"
            )
        backward = layer.backward_layer
        if getattr(forward, "go_backwards", False) or not getattr(backward, "go_backwards", True):
            raise ValueError(
                f"{where}: expected forward_layer.go_backwards=False and "
                "backward_layer.go_backwards=True"
            )
        rnns, merge = (forward, backward), MERGE_FROM_KERAS[keras_merge]
    else:
        if getattr(layer, "go_backwards", False):
            raise ValueError(
                f"{where}: go_backwards=True outside Bidirectional returns the outputs in "
                "reversed time order; lstmkit has no such layer (expected go_backwards=False)"
            )
        rnns, merge = (layer,), None
    infos = []
    for rnn in rnns:
        cell = getattr(rnn, "cell", None)
        cell_classes = {c.__name__ for c in type(cell).__mro__}
        mode = "LSTM" if "LSTMCell" in cell_classes else "GRU" if "GRUCell" in cell_classes else ""
        if not mode:
            raise ValueError(
                f"{where}: expected a Keras LSTM or GRU layer (cell LSTMCell or GRUCell), "
                f"got cell {type(cell).__name__}"
            )
        for attribute, want in (("activation", "tanh"), ("recurrent_activation", "sigmoid")):
            got = _activation_name(getattr(cell, attribute))
            if got != want:
                raise ValueError(
                    f"{where}: {attribute} expected {want!r} (lstmkit's {mode} cell), "
                    f"got {got!r}" + (" (Keras 2's default)" if got == "hard_sigmoid" else "")
                )
        infos.append(
            (mode, cell.units, bool(cell.use_bias), bool(getattr(cell, "reset_after", True)))
        )
    if len(set(infos)) != 1:
        raise ValueError(
            f"{where}: expected the forward and backward layers to have the same kind, "
            f"units, use_bias and reset_after, got {infos[0]} and {infos[1]}"
        )
    weights = list(layer.get_weights())
    if not weights:
        raise ValueError(f"{where}: the layer has no weights yet; build it (call it) first")
    mode, units, bias, reset_after = infos[0]
    settings = {"mode": mode, "units": units, "bias": bias, "reset_after": reset_after}
    return {**settings, "merge": merge}, weights


def from_keras(
    layers,
    *,
    batch_first: bool = True,
    dtype: torch.dtype | None = None,
    backend: str = "auto",
) -> LSTM | GRU:
    """A new lstmkit module holding the weights of built Keras LSTM/GRU layers.

    ``layers`` is one Keras ``LSTM``, ``GRU`` (or ``RNN`` over an ``LSTMCell``/``GRUCell``)
    or ``Bidirectional`` layer, or a list of them stacked in order (one per lstmkit
    layer; all the same kind, ``units``, ``use_bias``, ``reset_after`` and merge). The
    layers are read duck-typed (``cell``, ``forward_layer``, ``get_weights()``), so this
    module does not import Keras. ``dtype`` defaults to the weights' dtype; ``batch_first``
    defaults to True, Keras's layout.
    """
    if not isinstance(layers, Sequence):
        layers = [layers]
    if not layers:
        raise ValueError("layers: expected at least one Keras layer, got none")
    described = [_describe(layer, index) for index, layer in enumerate(layers)]
    first = described[0][0]
    for index, (got, _) in enumerate(described[1:], 1):
        if got != first:
            raise ValueError(
                f"layers[{index}]: expected the same kind, units, use_bias, reset_after and "
                f"merge as layers[0] (one lstmkit stack), got {got}, layers[0] {first}"
            )
    kernel = np.asarray(described[0][1][0])  # layers[0]'s, (input_dim, G*units)
    if dtype is None:
        dtype = torch.from_numpy(np.zeros(0, dtype=kernel.dtype)).dtype
    options = {
        "num_layers": len(layers),
        "bias": first["bias"],
        "batch_first": batch_first,
        "bidirectional": first["merge"] is not None,
        "dtype": dtype,
        "merge_mode": first["merge"] or "concat",
        "backend": backend,
    }
    if first["mode"] == "GRU":
        options["reset_after"] = first["reset_after"]
    module = (LSTM if first["mode"] == "LSTM" else GRU)(kernel.shape[0], first["units"], **options)
    return load_keras_weights(module, [weights for _, weights in described])
