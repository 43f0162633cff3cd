r"""The public modules: drop-in replacements for ``torch.nn.LSTM`` and ``torch.nn.GRU``.

Same constructor, parameter names (``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}``, ``weight_hr_l{k}``, suffix ``_reverse``), shapes,
initialisation (:math:`\mathcal U(-1/\sqrt H, 1/\sqrt H)`, drawn in the same order, so
the same seed gives the same weights) and ``forward`` returns, so
``m.load_state_dict(torch_lstm.state_dict())`` works both ways. Gate order: i, f, g, o
(LSTM) and r, z, n (GRU). The equations are in :mod:`lstmkit.cells.lstm` and
:mod:`lstmkit.cells.gru`.

Shapes (L sequence length, N batch, D = 2 if bidirectional else 1, H_in input size,
H hidden size, P = proj_size or H, H_out = D·P for ``concat`` else P):

=============  ==============================================  =====================
tensor         batch_first=False (batch_first=True)            unbatched
=============  ==============================================  =====================
input          (L, N, H_in)  ((N, L, H_in))                    (L, H_in)
h_0, h_n       (num_layers·D, N, P)                            (num_layers·D, P)
c_0, c_n       (num_layers·D, N, H)  (LSTM only)               (num_layers·D, H)
output         (L, N, H_out)  ((N, L, H_out))                  (L, H_out)
lengths        (N,) ints in [1, L]                             not accepted
=============  ==============================================  =====================

Keyword-only extras beyond torch.nn:

* ``merge_mode``: how the two directions join at every layer — ``"concat"``
  ([h_t, h′_t], the default, as the sources and torch.nn do), ``"sum"``, ``"mean"``,
  ``"mul"``. With a non-concat merge, layer k+1 reads P features, not 2P.
* ``reset_after`` (GRU): ``True`` is PyTorch's/cuDNN's form, ``False`` Cho et al.'s.
* ``backend``: ``"auto"`` (default), ``"native"``, ``"fused"`` (our BPTT:
  ``"compiled"`` where its loops run, else ``"python-steps"``; either can be named), or
  ``"reference"``; see :mod:`lstmkit.backends`. ``m.last_backend`` says what ran last.
* the cell variants (``docs/variants.md``): ``layer_norm`` (Ba et al. 2016),
  ``peephole`` (LSTM; Gers & Schmidhuber 2000), ``recurrent_dropout`` (Gal & Ghahramani
  2016), ``zoneout`` and ``zoneout_cell`` (LSTM; Krueger et al. 2016), ``forget_bias``
  (LSTM, initial b_f; Jozefowicz et al. 2015). They run on ``reference`` and ``fused``.

Variable lengths: ``forward(input, hx, lengths=...)`` or a ``PackedSequence`` input.
Outputs past each sequence's length are zero, ``h_n``/``c_n`` are the states at each
sequence's last real step, and the reverse direction starts at that step.

Introspection: :meth:`LSTM.gate_activations` returns every gate of every step, layer and
direction.
"""

import math
import warnings

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmkit import backends
from lstmkit.checks import check_int
from lstmkit.recurrence import reference
from lstmkit.recurrence.config import MERGE_MODES, DirectionWeights, RNNConfig
from lstmkit.recurrence.lengths import all_full, check_lengths, step_mask
from lstmkit.recurrence.stack import run_stack

_VARIANTS = ("layer_norm", "peephole", "recurrent_dropout", "zoneout", "zoneout_cell")
_GATE_NAMES = {"LSTM": ("i", "f", "g", "c", "o", "h"), "GRU": ("r", "z", "n", "h")}


def _check_rate(name: str, value, closed: bool = False) -> float:
    """A rate in [0, 1), or in [0, 1] when ``closed``."""
    interval = "[0, 1]" if closed else "[0, 1)"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected a float in {interval}, got {type(value).__name__}")
    if not (0 <= value <= 1 if closed else 0 <= value < 1):
        raise ValueError(f"{name}: expected a float in {interval}, got {value}")
    return value


class _RecurrentBase(nn.Module):
    """Shared parameters, checks and forward of :class:`LSTM` and :class:`GRU`."""

    _mode = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        merge_mode: str = "concat",
        reset_after: bool = True,
        backend: str = "auto",
        layer_norm: bool = False,
        peephole: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        zoneout_cell: float = 0.0,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__()
        input_size = check_int("input_size", input_size, 1)  # NumPy ints become ints
        hidden_size = check_int("hidden_size", hidden_size, 1)
        num_layers = check_int("num_layers", num_layers, 1)
        proj_size = check_int("proj_size", proj_size, 0)
        _check_rate("dropout", dropout, closed=True)
        if proj_size >= hidden_size:
            raise ValueError(
                f"proj_size: expected less than hidden_size ({hidden_size}), got {proj_size}"
            )
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"merge_mode: expected one of {', '.join(MERGE_MODES)}, got {merge_mode!r}"
            )
        _check_rate("recurrent_dropout", recurrent_dropout)
        _check_rate("zoneout", zoneout)
        _check_rate("zoneout_cell", zoneout_cell)
        if forget_bias is not None:
            if isinstance(forget_bias, bool) or not isinstance(forget_bias, int | float):
                raise TypeError(
                    f"forget_bias: expected a number or None, got {type(forget_bias).__name__}"
                )
            if not bias:
                raise ValueError("forget_bias: expected bias=True (it initialises b_f), got False")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout applies between layers: with num_layers=1 it does nothing",
                stacklevel=2,
            )
        self.cfg = RNNConfig(
            mode=self._mode,
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bias=bool(bias),
            dropout=float(dropout),
            bidirectional=bool(bidirectional),
            proj_size=proj_size,
            merge_mode=merge_mode,
            reset_after=bool(reset_after),
            layer_norm=bool(layer_norm),
            peephole=bool(peephole),
            recurrent_dropout=float(recurrent_dropout),
            zoneout=float(zoneout),
            zoneout_cell=float(zoneout_cell),
        )
        if self.cfg.variant and proj_size > 0:
            raise ValueError(
                "proj_size: expected 0 with the cell variants (layer_norm, peephole, "
                f"recurrent_dropout, zoneout), got {proj_size}"
            )
        if self.cfg.layer_norm and self._mode == "GRU" and not self.cfg.reset_after:
            raise ValueError(
                "layer_norm: expected reset_after=True for a GRU (Cho's form has no single "
                "recurrent pre-activation to normalise), got reset_after=False"
            )
        if self.cfg.layer_norm and input_size == 1:
            warnings.warn(
                "layer_norm with input_size=1: normalising a one-feature input projection "
                "keeps only the sign of x_t (docs/variants.md)",
                stacklevel=3,
            )
        self.forget_bias = None if forget_bias is None else float(forget_bias)
        self.backend = backends.check_name(backend)
        self.last_backend: str | None = None
        self.batch_first = bool(batch_first)
        factory = {"device": device, "dtype": dtype}
        cfg = self.cfg
        gates = cfg.gate_count * hidden_size
        self._weight_names: list[tuple[str, ...]] = []
        for layer in range(num_layers):
            for direction in range(cfg.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {
                    "weight_ih": (gates, cfg.layer_input_size(layer)),
                    "weight_hh": (gates, cfg.out_size),
                }
                if cfg.bias:
                    shapes |= {"bias_ih": (gates,), "bias_hh": (gates,)}
                if proj_size > 0:
                    shapes["weight_hr"] = (proj_size, hidden_size)
                for name, shape in shapes.items():
                    self.register_parameter(
                        name + suffix, nn.Parameter(torch.empty(shape, **factory))
                    )
                names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
                self._weight_names.append(tuple(n + suffix if n in shapes else "" for n in names))
        # the variants' parameters come after all of torch.nn's, so that the same seed still
        # draws torch.nn's weights (docs/variants.md)
        for k, names in enumerate(self._weight_names):
            suffix = names[0].removeprefix("weight_ih")
            shapes = {}
            if cfg.layer_norm:
                shapes |= {"ln_weight_ih": (gates,), "ln_weight_hh": (gates,)}
                if self._mode == "LSTM":
                    shapes |= {"ln_weight_c": (hidden_size,), "ln_bias_c": (hidden_size,)}
            if cfg.peephole:
                shapes["weight_ph"] = (3 * hidden_size,)
            for name, shape in shapes.items():
                self.register_parameter(name + suffix, nn.Parameter(torch.empty(shape, **factory)))
            extra = ("ln_weight_ih", "ln_weight_hh", "ln_weight_c", "ln_bias_c", "weight_ph")
            self._weight_names[k] = names + tuple(n + suffix if n in shapes else "" for n in extra)
        self.reset_parameters()
        self.flatten_parameters()  # built on a CUDA device: one buffer for cuDNN

    # torch.nn's attribute names, for code written against it
    input_size = property(lambda self: self.cfg.input_size)
    hidden_size = property(lambda self: self.cfg.hidden_size)
    num_layers = property(lambda self: self.cfg.num_layers)
    bias = property(lambda self: self.cfg.bias)
    dropout = property(lambda self: self.cfg.dropout)
    bidirectional = property(lambda self: self.cfg.bidirectional)
    proj_size = property(lambda self: self.cfg.proj_size)
    merge_mode = property(lambda self: self.cfg.merge_mode)
    mode = property(lambda self: self.cfg.mode)

    def reset_parameters(self) -> None:
        """U(-1/√H, 1/√H) for every weight and bias in torch.nn's order, then the
        peepholes; layer-norm gains 1 and shifts 0; ``forget_bias`` sets b_f."""
        bound = 1.0 / math.sqrt(self.cfg.hidden_size)
        for name, weight in self.named_parameters():
            if name.startswith("ln_weight"):
                nn.init.ones_(weight)
            elif name.startswith("ln_bias"):
                nn.init.zeros_(weight)
            else:
                nn.init.uniform_(weight, -bound, bound)
        if self.forget_bias is not None:
            hidden = self.cfg.hidden_size
            with torch.no_grad():
                for w in self.direction_weights():
                    w.b_ih[hidden : 2 * hidden] = self.forget_bias
                    w.b_hh[hidden : 2 * hidden] = 0.0

    def flatten_parameters(self) -> None:
        """On a CUDA device with cuDNN, lay the weights that ``native`` passes to cuDNN out
        in one contiguous buffer (each parameter becomes a view into it), as torch.nn does,
        so cuDNN does not copy them at every call. Elsewhere, or for a configuration that
        native cannot run (the variants, the Cho GRU), nothing: the parameters stay as they
        are. Called after ``.to()``/``.cuda()``; call it again after replacing a parameter.
        """
        if backends.why_not("native", self.cfg) is not None:
            return
        flat = [t for w in self.direction_weights() for t in w if t is not None]
        first = flat[0]
        if any(
            not t.is_cuda or t.dtype != first.dtype or not torch.backends.cudnn.is_acceptable(t)
            for t in flat
        ):
            return
        if len({t.data_ptr() for t in flat}) != len(flat):  # aliased: leave them to the copy
            return
        import torch.backends.cudnn.rnn as cudnn_rnn

        cfg = self.cfg
        per_direction = (4 if cfg.bias else 2) + (1 if cfg.proj_size > 0 else 0)
        with torch.cuda.device_of(first), torch.no_grad():
            if torch._use_cudnn_rnn_flatten_weight():
                torch._cudnn_rnn_flatten_weight(
                    flat,
                    per_direction,
                    cfg.input_size,
                    cudnn_rnn.get_cudnn_mode(cfg.mode),
                    cfg.hidden_size,
                    cfg.proj_size,
                    cfg.num_layers,
                    False,  # batch_first: native always passes time-major input
                    cfg.bidirectional,
                )

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self.flatten_parameters()
        return result

    def extra_repr(self) -> str:
        cfg = self.cfg
        merge_mode = cfg.merge_mode if cfg.bidirectional else "concat"
        options = (  # (name, value, default): torch.nn's, then ours; those not at the default show
            ("num_layers", cfg.num_layers, 1),
            ("bias", cfg.bias, True),
            ("dropout", cfg.dropout, 0.0),
            ("bidirectional", cfg.bidirectional, False),
            ("proj_size", cfg.proj_size, 0),
            ("batch_first", self.batch_first, False),
            ("merge_mode", repr(merge_mode), repr("concat")),
            *((name, getattr(cfg, name), False) for name in _VARIANTS),
            ("forget_bias", self.forget_bias, None),
            ("backend", repr(self.backend), repr("auto")),
            ("reset_after", cfg.reset_after, True),  # the Cho GRU
        )
        shown = [f"{name}={value}" for name, value, default in options if value != default]
        return ", ".join([f"{cfg.input_size}, {cfg.hidden_size}", *shown])

    def direction_weights(self) -> list[DirectionWeights]:
        """The parameters of each (layer, direction), layer-major, forward before reverse."""
        return [
            DirectionWeights(*(getattr(self, n) if n else None for n in names))
            for names in self._weight_names
        ]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        return [[t for t in w if t is not None] for w in self.direction_weights()]

    def backend_for(self, input: Tensor, needs_grad: bool | None = None, lengths=None) -> str:
        """What would run for ``input`` (and ``lengths``, as ``forward`` takes them), named
        as ``last_backend`` names it; ``needs_grad`` defaults to what ``forward`` would see
        now (grad mode on and the input or a parameter requiring grad).
        """
        x, _, _, lengths, *_ = self._prepare(input, None, lengths)  # checks the lengths too
        if needs_grad is None:
            needs_grad = self._needs_grad(x, None)
        return backends.resolve(self.backend, self.cfg, x, needs_grad, lengths is not None)

    def _needs_grad(self, x, states) -> bool:
        if not torch.is_grad_enabled():
            return False
        tensors = [x, *(s for s in states or () if s is not None)]
        return any(t.requires_grad for t in tensors) or any(
            p.requires_grad for p in self.parameters()
        )

    # -- checks ---------------------------------------------------------------------------

    def _prepare(self, input, hx, lengths):
        """Check the arguments and bring them to time-major (T, N, ·) tensors; lengths that
        pad nothing become None."""
        cfg = self.cfg
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("lengths: a PackedSequence carries its own lengths; got both")
            x, lengths = pad_packed_sequence(input)
            unbatched = False
        else:
            if not isinstance(input, Tensor):
                raise TypeError(
                    f"input: expected a Tensor or PackedSequence, got {type(input).__name__}"
                )
            if input.dim() not in (2, 3):
                layout = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
                raise ValueError(
                    f"input: expected 3 dims {layout} or 2 dims (L, H_in) unbatched, "
                    f"got {input.dim()} dims of shape {tuple(input.shape)}"
                )
            unbatched = input.dim() == 2
            if unbatched:
                if lengths is not None:
                    raise ValueError("lengths: expected None for an unbatched (2-dim) input")
                x = input.unsqueeze(1)
            else:
                x = input.transpose(0, 1) if self.batch_first else input
        weight = self.weight_ih_l0
        if not x.is_floating_point():
            raise TypeError(f"input: expected a floating-point tensor, got dtype {x.dtype}")
        if x.dtype != weight.dtype:
            raise TypeError(
                f"input: expected dtype {weight.dtype} (the module's parameters), got {x.dtype}"
            )
        if x.device != weight.device:
            raise ValueError(
                f"input: expected device {weight.device} (the module's parameters), got {x.device}"
            )
        if x.shape[-1] != cfg.input_size:
            raise ValueError(
                f"input: expected {cfg.input_size} features (input_size) on the last axis, "
                f"got {x.shape[-1]} (shape {tuple(input.shape if not packed else x.shape)})"
            )
        steps, batch = x.shape[0], x.shape[1]
        if steps == 0:
            raise ValueError("input: expected at least one time step, got sequence length 0")
        lengths = check_lengths(lengths, batch, steps, x.device)
        if all_full(lengths, steps):  # nothing is padded: the same result, no packing
            lengths = None
        h0, c0 = self._initial_state(hx, x, unbatched)
        return x, h0, c0, lengths, unbatched, packed

    def _initial_state(self, hx, x: Tensor, unbatched: bool):
        cfg = self.cfg
        batch = x.shape[1]
        n = cfg.num_layers * cfg.num_directions
        shape_h = (n, batch, cfg.out_size)
        shape_c = (n, batch, cfg.hidden_size)
        if hx is None:
            h0 = x.new_zeros(shape_h)
            return h0, (x.new_zeros(shape_c) if cfg.mode == "LSTM" else None)
        if cfg.mode == "LSTM":
            if not (isinstance(hx, tuple | list) and len(hx) == 2):
                raise TypeError(
                    f"hx: expected a tuple (h_0, c_0) for an LSTM, got {type(hx).__name__}"
                )
            pairs = (("h_0", hx[0], shape_h), ("c_0", hx[1], shape_c))
        else:
            if not isinstance(hx, Tensor):
                raise TypeError(f"hx: expected a Tensor h_0 for a GRU, got {type(hx).__name__}")
            pairs = (("h_0", hx, shape_h),)
        states = []
        for name, state, shape in pairs:
            if not isinstance(state, Tensor):
                raise TypeError(f"{name}: expected a Tensor, got {type(state).__name__}")
            expected = (shape[0], shape[2]) if unbatched else shape
            if tuple(state.shape) != expected:
                raise ValueError(
                    f"{name}: expected shape {expected} (num_layers*num_directions, "
                    f"{'' if unbatched else 'batch, '}size), got {tuple(state.shape)}"
                )
            if state.dtype != x.dtype:
                raise TypeError(
                    f"{name}: expected dtype {x.dtype} (the input's), got {state.dtype}"
                )
            if state.device != x.device:
                raise ValueError(
                    f"{name}: expected device {x.device} (the input's), got {state.device}"
                )
            states.append(state.unsqueeze(1) if unbatched else state)
        return states[0], (states[1] if cfg.mode == "LSTM" else None)

    # -- forward --------------------------------------------------------------------------

    def _run(self, input, hx, lengths):
        x, h0, c0, lengths, unbatched, packed = self._prepare(input, hx, lengths)
        needs_grad = self._needs_grad(x, (h0, c0))
        name = backends.resolve(self.backend, self.cfg, x, needs_grad, lengths is not None)
        run = backends.BACKENDS[name]
        out, h_n, c_n = run(self.cfg, x, h0, c0, self.direction_weights(), lengths, self.training)
        self.last_backend = name
        if packed:
            out = _repack(out, input)
        elif unbatched:
            out, h_n = out.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, h_n, c_n

    @torch.no_grad()
    def _step(self, input, hx):
        """(y_t, h, c) of one step; see :meth:`LSTM.step`."""
        if self.cfg.bidirectional:
            raise ValueError(
                "step: expected a unidirectional network (a reverse direction reads the "
                "sequence from its end), got bidirectional=True"
            )
        if not isinstance(input, Tensor) or input.dim() not in (1, 2):
            raise ValueError(
                "input: expected one step, (N, H_in) or (H_in,) unbatched, got "
                f"{tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__}"
            )
        seq = input.unsqueeze(1 if self.batch_first and input.dim() == 2 else 0)
        x, h0, c0, _, unbatched, _ = self._prepare(seq, hx, None)
        weights = self.direction_weights()
        out, h, c = run_stack(self.cfg, x, h0, c0, weights, None, False, reference.run_direction)
        if unbatched:
            h, c = h.squeeze(1), None if c is None else c.squeeze(1)
        return out[0, 0] if unbatched else out[0], h, c

    @torch.no_grad()
    def gate_activations(self, input, hx=None, *, lengths=None) -> dict[str, dict[str, Tensor]]:
        """Every gate's activation at every step, layer and direction: the formulas made visible.

        Returns ``{"l0": {...}, "l0_reverse": {...}, "l1": {...}, ...}`` (keys as in the
        parameter suffixes); each value maps gate names to tensors laid out like ``output``
        ((L, N, size), or (N, L, size) with ``batch_first``, (L, size) unbatched):
        LSTM ``i``, ``f``, ``g`` (= C̃), ``c`` (= C), ``o``, ``h``; GRU ``r``, ``z``, ``n``,
        ``h``. Values past a sequence's length are zero. Computed with the reference cells
        in evaluation mode (no dropout), whatever the backend.
        """
        x, h0, c0, lengths, unbatched, _ = self._prepare(input, hx, lengths)
        records: list[list] = []

        def recording(cfg, x, h0, c0, w, mask, reverse, noise):
            records.append([])
            return reference.run_direction(cfg, x, h0, c0, w, mask, reverse, noise, records[-1])

        mask = step_mask(lengths, x.shape[0])
        run_stack(self.cfg, x, h0, c0, self.direction_weights(), mask, False, recording)
        result = {}
        for names, steps in zip(self._weight_names, records, strict=True):
            key = names[0].removeprefix("weight_ih_")
            gates = {}
            for g, name in enumerate(_GATE_NAMES[self.cfg.mode]):
                seq = torch.stack([step[g] for step in steps])
                if unbatched:
                    seq = seq.squeeze(1)
                elif self.batch_first:
                    seq = seq.transpose(0, 1)
                gates[name] = seq
            result[key] = gates
        return result


def _repack(out: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack a padded time-major output in the same order as the input ``like``."""
    _, lengths = pad_packed_sequence(like)
    order = like.sorted_indices
    if order is not None:
        out, lengths = out.index_select(1, order), lengths.index_select(0, order.cpu())
    data = pack_padded_sequence(out, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


class LSTM(_RecurrentBase):
    r"""Long short-term memory, multi-layer and optionally bidirectional, from the gate formulas.

    .. math::

        i_t = \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}),\quad
        f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}),\\
        \tilde C_t = \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}),\quad
        o_t = \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}),\\
        C_t = f_t \odot C_{t-1} + i_t \odot \tilde C_t,\qquad h_t = o_t \odot \tanh(C_t)

    Arguments as ``torch.nn.LSTM`` (``input_size, hidden_size, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, proj_size=0``) plus the
    keyword-only ``merge_mode``, ``backend`` and the cell variants ``layer_norm``,
    ``peephole``, ``recurrent_dropout``, ``zoneout``, ``zoneout_cell``, ``forget_bias``
    (``docs/variants.md``); see :mod:`lstmkit.nn` for shapes.

    Returns ``output, (h_n, c_n)``; ``output`` is a ``PackedSequence`` when the input is.
    """

    _mode = "LSTM"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        merge_mode: str = "concat",
        backend: str = "auto",
        layer_norm: bool = False,
        peephole: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        zoneout_cell: float = 0.0,
        forget_bias: float | None = None,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
            merge_mode=merge_mode,
            backend=backend,
            layer_norm=layer_norm,
            peephole=peephole,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
            zoneout_cell=zoneout_cell,
            forget_bias=forget_bias,
        )

    def forward(self, input, hx=None, *, lengths=None):
        out, h_n, c_n = self._run(input, hx, lengths)
        return out, (h_n, c_n)

    def step(self, input: Tensor, hx=None):
        """One time step, for generating a sequence one value at a time: ``input`` x_t
        (N, H_in), or (H_in,) unbatched; ``hx`` = (h, C) as :meth:`forward` takes and
        returns it (None: zeros). Returns (y_t (N, P), (h, C)): what ``forward`` gives for
        that step in evaluation mode (the variants as in evaluation: zoneout at its rate,
        no recurrent dropout), whatever the module's mode, without gradients.

        Each layer applies the cell equations once (:func:`lstmkit.cells.lstm_cell`): no
        sequence to prepare and no kernel to set up — torch's LSTM kernel costs
        milliseconds per call whatever the length. Unidirectional networks only.
        """
        out, h, c = self._step(input, hx)
        return out, (h, c)


class GRU(_RecurrentBase):
    r"""Gated recurrent unit, multi-layer and optionally bidirectional, from the gate formulas.

    .. math::

        r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}),\quad
        z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}),\\
        n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})),\qquad
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    With ``reset_after=False`` the reset gate acts before the matmul, as in Cho et al.
    (2014): :math:`n_t = \tanh(W_{in} x_t + b_{in} + W_{hn}(r_t \odot h_{t-1}) + b_{hn})`.

    Arguments as ``torch.nn.GRU`` (``input_size, hidden_size, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False``) plus the keyword-only
    ``merge_mode``, ``reset_after``, ``backend`` and the cell variants ``layer_norm``,
    ``recurrent_dropout``, ``zoneout`` (``docs/variants.md``); see :mod:`lstmkit.nn` for
    shapes.

    Returns ``output, h_n``; ``output`` is a ``PackedSequence`` when the input is.
    """

    _mode = "GRU"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        merge_mode: str = "concat",
        reset_after: bool = True,
        backend: str = "auto",
        layer_norm: bool = False,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
            merge_mode=merge_mode,
            reset_after=reset_after,
            backend=backend,
            layer_norm=layer_norm,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
        )

    def forward(self, input, hx=None, *, lengths=None):
        out, h_n, _ = self._run(input, hx, lengths)
        return out, h_n

    def step(self, input: Tensor, hx=None):
        """One time step: (y_t, h) from x_t (N, H_in) or (H_in,) and h (None: zeros); as
        :meth:`LSTM.step`, with :func:`lstmkit.cells.gru_cell`."""
        out, h, _ = self._step(input, hx)
        return out, h
