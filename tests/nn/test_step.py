"""``LSTM.step`` / ``GRU.step``: one step at a time gives what ``forward`` gives.

Oracle: the same module's ``forward`` over the whole sequence in evaluation mode (itself
checked against torch.nn in test_parity.py); stepping x_1 … x_T from the same initial state
must reproduce every output y_t and the final state, for every cell, variant and layout.
"""

import pytest
import torch
from helpers import TOL, assert_close

import lstmkit

F64 = torch.float64
T, N, IN, H = 6, 3, 4, 5

CASES = [
    pytest.param("LSTM", {}, id="LSTM"),
    pytest.param("LSTM", {"proj_size": 3}, id="LSTM-proj"),
    pytest.param("LSTM", {"peephole": True, "layer_norm": True, "zoneout": 0.2}, id="LSTM-var"),
    pytest.param("LSTM", {"recurrent_dropout": 0.3, "zoneout_cell": 0.1}, id="LSTM-noise"),
    pytest.param("GRU", {}, id="GRU"),
    pytest.param("GRU", {"reset_after": False}, id="GRU-Cho"),
    pytest.param("GRU", {"layer_norm": True, "zoneout": 0.2}, id="GRU-var"),
]


def _state(mode, module, batch):
    cfg = module.cfg
    shape = (cfg.num_layers, batch) if batch else (cfg.num_layers,)
    h = torch.randn(*shape, cfg.out_size, dtype=F64)
    if mode == "GRU":
        return h
    return h, torch.randn(*shape, cfg.hidden_size, dtype=F64)


@pytest.mark.parametrize("layout", ["time-major", "batch-first", "unbatched"])
@pytest.mark.parametrize(("mode", "extra"), CASES)
def test_stepping_reproduces_forward(mode, extra, layout):
    torch.manual_seed(0)
    cls = getattr(lstmkit, mode)
    module = cls(IN, H, num_layers=2, dropout=0.5, batch_first=layout == "batch-first",
                 dtype=F64, **extra)  # fmt: skip
    module.train()  # step runs in evaluation mode whatever the module's
    batch = None if layout == "unbatched" else N
    x = torch.randn(*((T,) if batch is None else (N, T) if module.batch_first else (T, N)), IN,
                    dtype=F64)  # fmt: skip
    hx = _state(mode, module, batch)
    module.eval()
    with torch.no_grad():
        want_out, want_state = module(x, hx)
    module.train()
    state, outs = hx, []
    for t in range(T):
        x_t = x[:, t] if module.batch_first else x[t]
        y, state = module.step(x_t, state)
        outs.append(y)
    got_out = torch.stack(outs, dim=1 if module.batch_first else 0)
    assert module.training
    assert not got_out.requires_grad
    assert_close(got_out, want_out, TOL[F64], "outputs")
    pairs = zip(state, want_state, strict=True) if mode == "LSTM" else [(state, want_state)]
    for got, want in pairs:
        assert_close(got, want, TOL[F64], "state")


def test_step_from_no_state_starts_at_zeros():
    torch.manual_seed(1)
    module = lstmkit.LSTM(IN, H, dtype=F64)
    x = torch.randn(N, IN, dtype=F64)
    y, (h, c) = module.step(x)
    want, (h_want, c_want) = module(x[None])
    assert_close(y, want[0], TOL[F64], "y")
    assert_close(h, h_want, TOL[F64], "h")
    assert_close(c, c_want, TOL[F64], "c")


def test_step_refuses_bidirectional_and_sequences():
    module = lstmkit.GRU(IN, H, bidirectional=True)
    with pytest.raises(ValueError, match="step: expected a unidirectional network"):
        module.step(torch.randn(N, IN))
    uni = lstmkit.GRU(IN, H)
    with pytest.raises(ValueError, match=r"input: expected one step, \(N, H_in\)"):
        uni.step(torch.randn(T, N, IN))
    with pytest.raises(ValueError, match="expected 4 features"):
        uni.step(torch.randn(N, IN + 1))
