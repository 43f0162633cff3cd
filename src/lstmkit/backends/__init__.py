"""Backends and the one place that decides which runs (dispatch).

=========  ===============================================================  ==============
name       what runs                                                        can run
=========  ===============================================================  ==============
reference  the cell functions in a Python loop; autograd does the backward  everything
fused      one input matmul per direction, our BPTT (``torch.autograd``)   everything
native     ``torch.lstm``/``torch.gru`` (oneDNN on CPU, cuDNN on GPU)      see ``why_not``
auto       the fastest of the above that computes the configuration exactly (default)
=========  ===============================================================  ==============

Every backend takes ``(cfg, x (T, N, H_in), h0, c0, weights, lengths, training)`` and
returns ``(output, h_n, c_n)``. A backend named explicitly that cannot run a
configuration raises ``ValueError``; ``auto`` never falls back silently: its choice is a
rule written from the measurements in ``docs/benchmarks.md`` (see :func:`auto_choice`).
"""

from torch import Tensor

from lstmkit.backends import fused, native, reference
from lstmkit.recurrence.config import RNNConfig

BACKENDS = {"reference": reference.run, "fused": fused.run, "native": native.run}
BACKEND_NAMES = ("auto", *BACKENDS)

# On CPU torch runs its GRU as a C++ loop of ATen ops; our fused GRU (the compiled loops of
# recurrence/kernels) beat it at every size measured up to hidden 512, training and
# inference, with and without lengths: 1.3-3.6x a training step at equal lengths, 1.5-5.7x
# against torch.nn with packing (docs/benchmarks.md, "Engine", "Variable lengths"). Above
# 512 it is mixed (0.7-1.2x at 1024): native.
FUSED_GRU_MAX_HIDDEN_CPU = 512
# An LSTM on CPU with unequal lengths: our masked compiled loops were faster than torch's
# kernels on the unpacked batch up to hidden 128 for a training step (1.0-1.6x, 2.5-4.4x
# over torch.nn with packing) and up to 256 in inference (1.0-2.2x); above, native
# (unpacked, lstmkit.backends.native). At equal lengths oneDNN's LSTM is the faster one.
FUSED_LSTM_MAX_HIDDEN_PADDED_CPU = 128
FUSED_LSTM_MAX_HIDDEN_PADDED_CPU_INFERENCE = 256


def why_not(name: str, cfg: RNNConfig) -> str | None:
    """Why backend ``name`` cannot compute ``cfg`` exactly, or None when it can."""
    if name == "native":
        return native.why_not(cfg)
    return None


def auto_choice(cfg: RNNConfig, x: Tensor, needs_grad: bool, padded: bool = False) -> str:
    """The backend ``auto`` runs for this configuration and input (a rule from measurements).
    ``x`` is time-major (T, N, H_in); ``padded``: lengths are given and not all T.

    * fused when native cannot compute the configuration (the variants, the Cho GRU,
      non-concat stacks);
    * on a GPU: native (cuDNN);
    * on CPU, a GRU with hidden size <= ``FUSED_GRU_MAX_HIDDEN_CPU``: fused;
    * on CPU, an LSTM with unequal lengths and hidden size <=
      ``FUSED_LSTM_MAX_HIDDEN_PADDED_CPU`` (a training step) or
      ``FUSED_LSTM_MAX_HIDDEN_PADDED_CPU_INFERENCE`` (no gradients): fused;
    * otherwise native.
    """
    if why_not("native", cfg) is not None:
        return "fused"
    if x.device.type != "cpu":
        return "native"
    hidden = cfg.hidden_size
    if cfg.mode == "GRU":
        return "fused" if hidden <= FUSED_GRU_MAX_HIDDEN_CPU else "native"
    if padded:
        limit = FUSED_LSTM_MAX_HIDDEN_PADDED_CPU
        if not needs_grad:
            limit = FUSED_LSTM_MAX_HIDDEN_PADDED_CPU_INFERENCE
        return "fused" if hidden <= limit else "native"
    return "native"


def resolve(
    requested: str, cfg: RNNConfig, x: Tensor, needs_grad: bool, padded: bool = False
) -> str:
    """The backend that will run: ``requested`` itself, or ``auto``'s choice."""
    if requested == "auto":
        return auto_choice(cfg, x, needs_grad, padded)
    reason = why_not(requested, cfg)
    if reason is not None:
        raise ValueError(f"backend={requested!r} cannot run this configuration: {reason}")
    return requested


def check_name(name: str) -> str:
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend: expected one of {', '.join(BACKEND_NAMES)}, got {name!r}")
    return name
