"""Backends and the one place that decides which runs (dispatch).

============  ============================================================  ==============
name          what runs                                                     can run
============  ============================================================  ==============
reference     the cell functions in a Python loop; autograd does the        everything
              backward
compiled      one input matmul per direction, our BPTT, the time loop in    CPU, float32/64
              lstmkit's compiled kernels (``recurrence/kernels``)
python-steps  the same, the time loop as torch calls step by step           everything
native        ``torch.lstm``/``torch.gru`` (oneDNN on CPU, cuDNN on GPU)    see ``why_not``
fused         our BPTT: ``compiled`` where it can run, else ``python-steps`` everything
              (``LSTMKIT_KERNELS=python``: always python-steps)
auto          the fastest of the above that computes the configuration exactly (default)
============  ============================================================  ==============

Every backend takes ``(cfg, x (T, N, H_in), h0, c0, weights, lengths, training)`` and
returns ``(output, h_n, c_n)``. :func:`resolve` turns the name a module was given into what
runs — ``auto`` and ``fused`` become one of the four that do — and a module's
``last_backend`` and ``backend_for`` report that name. A backend named explicitly that
cannot run a configuration raises ``ValueError``; ``auto`` never falls back silently: its
choice is a rule written from the measurements in ``docs/benchmarks.md`` (see
:func:`auto_choice`).
"""

from torch import Tensor

from lstmkit.backends import fused, native, reference
from lstmkit.recurrence import kernels
from lstmkit.recurrence.config import RNNConfig

BACKENDS = {
    "reference": reference.run,
    "compiled": fused.run_compiled,
    "python-steps": fused.run_python_steps,
    "native": native.run,
}
BACKEND_NAMES = ("auto", "fused", *BACKENDS)
FUSED_IMPLEMENTATIONS = ("compiled", "python-steps")

# On CPU torch runs its GRU as a C++ loop of ATen ops; our fused GRU (the compiled loops of
# recurrence/kernels) beat it at every size measured up to hidden 512, training and
# inference, with and without lengths: 1.3-2.9x a training step at equal lengths, 1.5-5.7x
# against torch.nn with packing (docs/benchmarks.md, "Engine", "Variable lengths"). Above
# 512 it is mixed (0.7-1.2x at 1024): native. At equal lengths the LSTM runs native
# wherever it is exact: our compiled loops win most training steps at two threads (1.08-1.98x
# oneDNN at hidden 32-64, 1.19-1.32x at 256) but not all (0.87-0.97x at T = 30 with hidden
# 128-512), lose some at one thread (0.95-1.55x at hidden 32-64) and in inference
# (0.74-1.24x) (docs/benchmarks.md, "Row-major products, BLAS on the step's rows").
FUSED_GRU_MAX_HIDDEN_CPU = 512
# The LSTM with unequal lengths in training: the compiled loops (masked, no packing) against
# native's unpacked oneDNN calls, a bidirectional training step over 7 batch shapes (16 x 29
# to 64 x 128): at hidden 64 1.21-2.10x native at two threads (0.98x at 16 x 29) and
# 1.13-1.75x at one; at hidden 256 0.94-1.40x and 1.01-1.43x (docs/benchmarks.md, "Variable
# lengths"). Inference with lengths was not measured: native.
FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU = 256
# The LSTM with a projection: torch runs it without oneDNN, as its default C++ loop; our
# compiled loops were 2.6-2.8x faster for a training step at hidden 64 and 1.3-1.6x at 256
# (P = 32), and 1.2-1.35x in inference at hidden 64 but 0.85-0.97x at 256
# (docs/benchmarks.md, "The LSTM with a projection").
FUSED_PROJ_INFERENCE_MAX_HIDDEN_CPU = 64


def why_not(name: str, cfg: RNNConfig, x: Tensor | None = None) -> str | None:
    """Why backend ``name`` cannot compute ``cfg`` exactly (on inputs like ``x``, when
    given), or None when it can."""
    if name == "native":
        return native.why_not(cfg)
    if name == "compiled" and x is not None:
        return kernels.unsupported(x)
    return None


def auto_choice(cfg: RNNConfig, x: Tensor, needs_grad: bool, unequal: bool = False) -> str:
    """The backend ``auto`` runs for this configuration and input (a rule from measurements).
    ``x`` is time-major (T, N, H_in); ``needs_grad``: a backward follows; ``unequal``: the
    batch comes with lengths that pad some sequence.

    * fused when native cannot compute the configuration (the variants, the Cho GRU,
      non-concat stacks);
    * a GRU on CPU with hidden size <= ``FUSED_GRU_MAX_HIDDEN_CPU``: fused;
    * an LSTM with a projection on CPU: fused in training, and in inference up to hidden
      ``FUSED_PROJ_INFERENCE_MAX_HIDDEN_CPU``;
    * an LSTM with unequal lengths on CPU, in training, up to hidden
      ``FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU``: fused;
    * otherwise native (cuDNN on a GPU; oneDNN on CPU, unpacked with lengths).
    """
    if why_not("native", cfg) is not None:
        return "fused"
    if x.device.type != "cpu":
        return "native"
    if cfg.mode == "GRU" and cfg.hidden_size <= FUSED_GRU_MAX_HIDDEN_CPU:
        return "fused"
    if cfg.mode == "LSTM" and cfg.proj_size:
        if needs_grad or cfg.hidden_size <= FUSED_PROJ_INFERENCE_MAX_HIDDEN_CPU:
            return "fused"
    if cfg.mode == "LSTM" and unequal and needs_grad:
        if cfg.hidden_size <= FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU:
            return "fused"
    return "native"


def resolve(
    requested: str, cfg: RNNConfig, x: Tensor, needs_grad: bool, unequal: bool = False
) -> str:
    """What will run: ``requested`` itself, ``auto``'s choice, or for ``fused`` its step
    implementation (``compiled`` where its loops run on inputs like ``x`` and
    ``LSTMKIT_KERNELS`` allows, else ``python-steps``); ValueError when a backend named
    explicitly cannot run this configuration on inputs like ``x``. ``unequal`` as in
    :func:`auto_choice`."""
    name = auto_choice(cfg, x, needs_grad, unequal) if requested == "auto" else requested
    if name == "fused":
        return "compiled" if kernels.ops_for(x) is not None else "python-steps"
    reason = why_not(name, cfg, x)
    if reason is not None:
        raise ValueError(f"backend={requested!r} cannot run this configuration: {reason}")
    return name


def check_name(name: str) -> str:
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend: expected one of {', '.join(BACKEND_NAMES)}, got {name!r}")
    return name
