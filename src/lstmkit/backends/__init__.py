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

# On CPU torch has oneDNN kernels for the LSTM but runs its GRU as a C++ loop of ATen ops
# whose backward is slow; our fused GRU *training* step beat it at every size measured,
# 1.02-2.4x, up to hidden 512, the largest in benchmarks/engine.py's grid (figures in
# docs/benchmarks.md); above that it is unmeasured, so native. Inference stays native:
# torch's forward loop has less per-step overhead than ours.
FUSED_GRU_MAX_HIDDEN_CPU = 512
# With unequal lengths torch packs the batch, and its CPU LSTM then runs a per-step loop
# whose backward allocates and adds a full-size gradient per step: our masked fused LSTM
# training step was 1.04-2.9x faster from 48 steps on (bidirectional, hidden 64 and 256,
# batch 16-64), equal at 29 (0.92-0.99x) — docs/benchmarks.md, "Variable lengths".
FUSED_LSTM_MIN_STEPS_PADDED_CPU = 48


def why_not(name: str, cfg: RNNConfig) -> str | None:
    """Why backend ``name`` cannot compute ``cfg`` exactly, or None when it can."""
    if name == "native":
        return native.why_not(cfg)
    return None


def auto_choice(cfg: RNNConfig, x: Tensor, needs_grad: bool, padded: bool = False) -> str:
    """The backend ``auto`` runs for this configuration and input (a rule from measurements).
    ``x`` is time-major (T, N, H_in); ``padded``: lengths are given and not all T.

    * native when it computes the configuration exactly, except
    * a GRU training step on CPU with hidden size <= ``FUSED_GRU_MAX_HIDDEN_CPU``: fused;
    * an LSTM training step on CPU with unequal lengths and at least
      ``FUSED_LSTM_MIN_STEPS_PADDED_CPU`` steps: fused (native would pack);
    * fused when native cannot compute the configuration (Cho GRU, non-concat stacks).
    """
    if why_not("native", cfg) is not None:
        return "fused"
    if needs_grad and x.device.type == "cpu":
        if cfg.mode == "GRU":
            return "fused" if cfg.hidden_size <= FUSED_GRU_MAX_HIDDEN_CPU else "native"
        if padded and x.shape[0] >= FUSED_LSTM_MIN_STEPS_PADDED_CPU:
            return "fused"
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
