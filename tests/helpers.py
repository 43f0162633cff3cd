"""Shared helpers for the engine tests: building modules, copying weights, comparing.

Every comparison in this suite is against an oracle (torch.nn, gradcheck, a hand
computation or an independent NumPy implementation); the helpers here only build the
inputs and measure the difference. Test modules import them (``from helpers import ...``);
fixtures stay in conftest.py.
"""

import torch

import lstmkit

BACKENDS = ("reference", "fused", "native", "auto")
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}

# The cell variants' fused kernels have two step implementations (lstmkit.recurrence.
# kernels): a test parametrized with backend "fused" runs the compiled one (an error if it
# cannot be built: this machine has a compiler), "fused-python" the python one.
FUSED_STEPS = {"fused": "compiled", "fused-python": "python"}


def backend_name(backend: str) -> str:
    """The module's backend for a test's backend parameter ("fused-python" is "fused")."""
    return "fused" if backend in FUSED_STEPS else backend


def ran_name(backend: str, module, x: torch.Tensor) -> str:
    """What a module's ``last_backend`` names after running ``backend`` (a test parameter)
    on inputs like ``x``: fused as its step implementation, "compiled" or "python-steps"."""
    from lstmkit import backends

    return backends.resolve(backend_name(backend), module.cfg, x, needs_grad=False)


def max_abs_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference; shapes and dtypes must already agree."""
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    assert a.dtype == b.dtype, f"dtype {a.dtype} != {b.dtype}"
    if a.numel() == 0:
        return 0.0
    return (a.detach() - b.detach()).abs().max().item()


def assert_close(got: torch.Tensor, want: torch.Tensor, tol: float, what: str = "") -> None:
    err = max_abs_err(got, want)
    assert err <= tol, f"{what}: max abs err {err:.3e} > {tol:.0e}"


def ours_class(mode: str):
    return lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU


def torch_class(mode: str):
    return torch.nn.LSTM if mode == "LSTM" else torch.nn.GRU


def make_ours(mode: str, input_size: int, hidden: int, *, proj_size: int = 0, **kwargs):
    """An lstmkit module; ``proj_size`` is passed only to the LSTM."""
    if mode == "LSTM" and proj_size:
        kwargs["proj_size"] = proj_size
    return ours_class(mode)(input_size, hidden, **kwargs)


def make_pair(
    mode: str,
    input_size: int,
    hidden: int,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    batch_first: bool = False,
    bias: bool = True,
    proj_size: int = 0,
    dtype=torch.float64,
    backend: str = "auto",
    seed: int = 0,
):
    """(torch.nn module, lstmkit module) with our weights copied from torch's."""
    common = {
        "num_layers": num_layers,
        "bidirectional": bidirectional,
        "batch_first": batch_first,
        "bias": bias,
        "dtype": dtype,
    }
    if mode == "LSTM":
        common["proj_size"] = proj_size
    torch.manual_seed(seed)
    ref = torch_class(mode)(input_size, hidden, **common)
    ours = ours_class(mode)(input_size, hidden, **common, backend=backend)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def initial_state(mode, num_states, batch, hidden, out_size, dtype, *, unbatched=False):
    """Random (h0, c0) for an LSTM or h0 for a GRU, with requires_grad set."""
    lead = (num_states,) if unbatched else (num_states, batch)
    h0 = torch.randn(*lead, out_size, dtype=dtype).requires_grad_()
    if mode == "GRU":
        return h0
    c0 = torch.randn(*lead, hidden, dtype=dtype).requires_grad_()
    return (h0, c0)


def state_leaves(mode, hx):
    return [hx] if mode == "GRU" else list(hx)


def outputs_of(mode, result):
    """The flat list of tensors a forward returns: [output, h_n] or [output, h_n, c_n]."""
    out, hidden = result
    if mode == "GRU":
        return [out, hidden]
    return [out, *hidden]


def forecast_rows() -> list[str]:
    """The rows of a one-series Forecaster.evaluate, in order: the model, the simple
    baselines, and the statistical ones when the forecast extra (statsforecast) is here."""
    from lstmkit.tasks import forecast_baselines

    simple = ["model", "naive", "seasonal_naive", "mean"]
    return simple + (
        list(forecast_baselines.DEFAULT_MODELS) if forecast_baselines.available() else []
    )
