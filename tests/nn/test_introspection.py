"""gate_activations: every gate of every step, layer and direction, checked against the math.

Oracles: the module's own forward (the recorded h of the last layer is its output, the
last c is c_n) and the SPEC identities between the recorded gates
(C_t = f ⊙ C_{t-1} + i ⊙ C̃, h = o ⊙ tanh C [then W_hr], GRU h_t = (1-z) n + z h_{t-1},
and the gate pre-activations recomputed from the weights), to 1e-12 in float64.
"""

import pytest
import torch

import lstmkit

T, N, IN, H, P = 6, 3, 4, 5, 3
TOL = 1e-12
LENGTHS = [6, 2, 4]


def _build(mode, layers, bi, **extra):
    torch.manual_seed(17)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    return cls(IN, H, num_layers=layers, bidirectional=bi, dtype=torch.float64, **extra)


def _initial(module):
    cfg = module.cfg
    n = cfg.num_layers * cfg.num_directions
    h0 = torch.randn(n, N, cfg.out_size, dtype=torch.float64)
    if cfg.mode == "GRU":
        return h0, h0, None
    c0 = torch.randn(n, N, cfg.hidden_size, dtype=torch.float64)
    return (h0, c0), h0, c0


def _keys(layers, bi):
    return [f"l{k}{s}" for k in range(layers) for s in (("", "_reverse") if bi else ("",))]


def _prev(seq, first, reverse):
    """The state before each step: h_{t-1} forward, h_{t+1} in reverse; (T, N, ·)."""
    if reverse:
        return torch.cat([seq[1:], first.unsqueeze(0)])
    return torch.cat([first.unsqueeze(0), seq[:-1]])


def _close(got, want, what):
    err = (got - want).abs().max().item()
    assert err <= TOL, f"{what}: max abs err {err:.3e}"


def _layer_inputs(module, x, gates):
    """The input of each layer: x, then the merged h of the previous layer."""
    cfg = module.cfg
    inputs = [x]
    for layer in range(cfg.num_layers - 1):
        h = [gates[f"l{layer}"]["h"]]
        if cfg.bidirectional:
            h.append(gates[f"l{layer}_reverse"]["h"])
        inputs.append(torch.cat(h, dim=-1))
    return inputs


CELLS = [
    pytest.param("LSTM", {}, id="LSTM"),
    pytest.param("LSTM", {"proj_size": P}, id="LSTM-proj"),
    pytest.param("GRU", {}, id="GRU"),
    pytest.param("GRU", {"reset_after": False}, id="GRU-reset_before"),
]


@pytest.mark.parametrize(("layers", "bi"), [(1, False), (2, True)], ids=["L1-uni", "L2-bi"])
@pytest.mark.parametrize(("mode", "extra"), CELLS)
def test_gates_satisfy_the_equations_and_match_forward(mode, extra, layers, bi):
    module = _build(mode, layers, bi, **extra)
    x = torch.randn(T, N, IN, dtype=torch.float64)
    hx, h0, c0 = _initial(module)
    gates = module.gate_activations(x, hx)
    out, hidden = module(x, hx)
    h_n, c_n = (hidden, None) if mode == "GRU" else hidden

    assert list(gates) == _keys(layers, bi)
    names = ("i", "f", "g", "c", "o", "h") if mode == "LSTM" else ("r", "z", "n", "h")
    for key in gates:
        assert tuple(gates[key]) == names

    # the last layer's recorded h is forward()'s output
    last = [gates[f"l{layers - 1}"]["h"]]
    if bi:
        last.append(gates[f"l{layers - 1}_reverse"]["h"])
    _close(torch.cat(last, dim=-1), out, "output")

    inputs = _layer_inputs(module, x, gates)
    for k, key in enumerate(gates):
        reverse = key.endswith("_reverse")
        layer = int(key[1:].split("_")[0])
        g = gates[key]
        w_ih, w_hh = getattr(module, f"weight_ih_{key}"), getattr(module, f"weight_hh_{key}")
        b_ih, b_hh = getattr(module, f"bias_ih_{key}"), getattr(module, f"bias_hh_{key}")
        xin = inputs[layer]
        h_prev = _prev(g["h"], h0[k], reverse)
        end = 0 if reverse else T - 1  # the step processed last
        _close(g["h"][end], h_n[k], f"{key} h at the last step vs h_n")
        if mode == "LSTM":
            c_prev = _prev(g["c"], c0[k], reverse)
            _close(g["c"], g["f"] * c_prev + g["i"] * g["g"], f"{key} c = f*c_prev + i*g")
            h_raw = g["o"] * torch.tanh(g["c"])
            if extra.get("proj_size"):
                h_raw = h_raw @ getattr(module, f"weight_hr_{key}").T
            _close(g["h"], h_raw, f"{key} h = o*tanh(c)")
            _close(g["c"][end], c_n[k], f"{key} c at the last step vs c_n")
            pre = xin @ w_ih.T + b_ih + h_prev @ w_hh.T + b_hh
            i, f, gg, o = pre.chunk(4, dim=-1)
            _close(g["i"], torch.sigmoid(i), f"{key} i")
            _close(g["f"], torch.sigmoid(f), f"{key} f")
            _close(g["g"], torch.tanh(gg), f"{key} g")
            _close(g["o"], torch.sigmoid(o), f"{key} o")
        else:
            _close(g["h"], (1 - g["z"]) * g["n"] + g["z"] * h_prev, f"{key} h = (1-z)n + z h")
            x_r, x_z, x_n = (xin @ w_ih.T + b_ih).chunk(3, dim=-1)
            w_r, w_z, w_n = w_hh.chunk(3)
            b_r, b_z, b_n = b_hh.chunk(3)
            _close(g["r"], torch.sigmoid(x_r + h_prev @ w_r.T + b_r), f"{key} r")
            _close(g["z"], torch.sigmoid(x_z + h_prev @ w_z.T + b_z), f"{key} z")
            if module.cfg.reset_after:
                n = torch.tanh(x_n + g["r"] * (h_prev @ w_n.T + b_n))
            else:
                n = torch.tanh(x_n + (g["r"] * h_prev) @ w_n.T + b_n)
            _close(g["n"], n, f"{key} n")


@pytest.mark.parametrize(("mode", "extra"), CELLS)
def test_values_past_lengths_are_zero_and_real_steps_match_single_runs(mode, extra):
    module = _build(mode, 2, True, **extra)
    x = torch.randn(T, N, IN, dtype=torch.float64)
    gates = module.gate_activations(x, lengths=torch.tensor(LENGTHS))
    assert list(gates) == _keys(2, True)
    for n, length in enumerate(LENGTHS):
        alone = module.gate_activations(x[:length, n : n + 1])
        for key, values in gates.items():
            for name, seq in values.items():
                assert torch.equal(seq[length:, n], torch.zeros_like(seq[length:, n])), (
                    f"{key}.{name} past length {length}"
                )
                _close(seq[:length, n : n + 1], alone[key][name], f"{key}.{name} sequence {n}")


@pytest.mark.parametrize(("mode", "extra"), CELLS)
def test_batch_first_and_unbatched_layouts(mode, extra):
    module = _build(mode, 2, True, **extra)
    module_bf = _build(mode, 2, True, batch_first=True, **extra)
    module_bf.load_state_dict(module.state_dict())
    x = torch.randn(T, N, IN, dtype=torch.float64)
    tm = module.gate_activations(x)
    bf = module_bf.gate_activations(x.transpose(0, 1))
    one = module.gate_activations(x[:, 1])
    out_bf, _ = module_bf(x.transpose(0, 1))
    _close(torch.cat([bf["l1"]["h"], bf["l1_reverse"]["h"]], dim=-1), out_bf, "bf output")
    for key in tm:
        for name in tm[key]:
            assert bf[key][name].shape[:2] == (N, T)
            assert torch.equal(bf[key][name], tm[key][name].transpose(0, 1)), f"{key}.{name}"
            assert one[key][name].dim() == 2
            _close(one[key][name], tm[key][name][:, 1], f"unbatched {key}.{name}")


@pytest.mark.parametrize("backend", ["reference", "fused", "native"])
def test_gate_activations_do_not_depend_on_backend_or_mode(backend):
    """Computed with the reference cells in eval mode whatever the backend and training flag."""
    module = _build("LSTM", 2, True, backend=backend, dropout=0.5)
    ref = _build("LSTM", 2, True, backend="reference")
    ref.load_state_dict(module.state_dict())
    x = torch.randn(T, N, IN, dtype=torch.float64)
    module.train()
    got = module.gate_activations(x)
    want = ref.eval().gate_activations(x)
    for key in want:
        for name in want[key]:
            assert torch.equal(got[key][name], want[key][name]), f"{key}.{name}"
    assert module.training  # gate_activations did not switch the module to eval


def test_gate_activations_record_no_graph():
    module = _build("GRU", 1, False)
    x = torch.randn(T, N, IN, dtype=torch.float64, requires_grad=True)
    gates = module.gate_activations(x)
    assert all(not v.requires_grad for g in gates.values() for v in g.values())
