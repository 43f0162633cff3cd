"""torch.autograd.gradcheck of the reference and fused backends in float64 on tiny sizes.

Oracle: finite differences. The fused backend's backward is our hand-written BPTT, so
this is the check that it is the derivative of its forward (including the Cho GRU, which
torch.nn cannot compare against). Inputs are the input sequence, h0 (and c0) and every
parameter, fed through ``torch.func.functional_call``.
"""

import pytest
import torch
from helpers import ran_name
from torch.func import functional_call

import lstmkit

T, N, IN, H = 4, 2, 2, 3

CELLS = [
    pytest.param("LSTM", {}, id="LSTM"),
    pytest.param("LSTM", {"proj_size": 2}, id="LSTM-proj2"),
    pytest.param("GRU", {"reset_after": True}, id="GRU-reset_after"),
    pytest.param("GRU", {"reset_after": False}, id="GRU-reset_before"),
]
SHAPES = [
    pytest.param(1, False, id="L1-uni"),
    pytest.param(2, True, id="L2-bi"),
]


def _gradcheck_module(module, mode, lengths, bidirectional, layers):
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    out_size = module.cfg.out_size
    states = layers * (2 if bidirectional else 1)
    x = torch.randn(T, N, IN, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(states, N, out_size, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(states, N, H, dtype=torch.float64, requires_grad=True)

    def forward(x, h0, *rest):
        if mode == "LSTM":
            hx, flat = (h0, rest[0]), rest[1:]
        else:
            hx, flat = h0, rest
        out, hidden = functional_call(
            module, dict(zip(names, flat, strict=True)), (x, hx), {"lengths": lengths}
        )
        return (out, *hidden) if mode == "LSTM" else (out, hidden)

    inputs = (x, h0, c0, *params) if mode == "LSTM" else (x, h0, *params)
    return torch.autograd.gradcheck(forward, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize(("layers", "bidirectional"), SHAPES)
@pytest.mark.parametrize(("mode", "extra"), CELLS)
def test_gradcheck(mode, extra, layers, bidirectional, backend, with_lengths):
    torch.manual_seed(7)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    module = cls(
        IN,
        H,
        num_layers=layers,
        bidirectional=bidirectional,
        dtype=torch.float64,
        backend=backend,
        **extra,
    )
    lengths = torch.tensor([T, 2]) if with_lengths else None
    assert _gradcheck_module(module, mode, lengths, bidirectional, layers)
    assert module.last_backend == ran_name(backend, module, torch.zeros(1, dtype=torch.float64))


@pytest.mark.parametrize("merge_mode", ["sum", "mean", "mul"])
@pytest.mark.parametrize(("mode", "extra"), CELLS[::2] + CELLS[3:])
def test_gradcheck_fused_merge_modes_two_layers(mode, extra, merge_mode):
    """The merges are shared torch ops; this checks fused BPTT under their cotangents."""
    torch.manual_seed(8)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    module = cls(
        IN,
        H,
        num_layers=2,
        bidirectional=True,
        dtype=torch.float64,
        merge_mode=merge_mode,
        backend="fused",
        **extra,
    )
    assert _gradcheck_module(module, mode, torch.tensor([3, T]), True, 2)


@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize(("mode", "extra"), CELLS)
def test_gradcheck_without_bias(mode, extra, backend):
    torch.manual_seed(9)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    module = cls(
        IN,
        H,
        num_layers=2,
        bias=False,
        bidirectional=True,
        dtype=torch.float64,
        backend=backend,
        **extra,
    )
    assert _gradcheck_module(module, mode, torch.tensor([1, T]), True, 2)
