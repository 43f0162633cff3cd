"""The gate formulas against independent computations.

Oracles: (a) the SPEC equations evaluated by hand on Python floats (math.exp, math.tanh)
with small hand-chosen weights; (b) Cho et al.'s GRU written from the paper in NumPy
with separate W and U matrices; (c) source 002's concatenated-matrix notation in NumPy;
(d) bidirectional merges rebuilt from two one-directional runs.
"""

import math

import numpy as np
import pytest
import torch
from helpers import BACKENDS, assert_close

import lstmkit
from lstmkit.cells import gru_cell, lstm_cell

GOLDEN_TOL = 1e-12


def _t(values):
    """float64 straight from Python floats (a float32 detour would round the weights)."""
    return torch.tensor(values, dtype=torch.float64)


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def matvec(rows, vec):
    return [sum(w * v for w, v in zip(row, vec, strict=True)) for row in rows]


# -- (a) golden values from hand-chosen weights -------------------------------------------

# LSTM, input size 1, hidden size 2; gate blocks i, f, g, o of two rows each.
LSTM_W_IH = [[0.5], [-0.3], [-1.0], [0.8], [0.25], [-0.6], [2.0], [0.1]]
LSTM_W_HH = [
    [-0.5, 0.2],
    [0.4, -0.1],
    [1.0, 0.3],
    [-0.7, 0.5],
    [0.75, -0.25],
    [0.1, 0.9],
    [-0.25, 0.6],
    [0.3, -0.8],
]
LSTM_B_IH = [0.1, -0.2, 0.2, 0.0, -0.3, 0.15, 0.4, -0.05]
LSTM_B_HH = [0.05, 0.1, -0.1, 0.3, 0.2, -0.1, 0.0, 0.25]
XS = [1.0, -2.0, 0.5]
H0 = [0.3, -0.4]
C0 = [-0.2, 0.6]


def hand_lstm(xs, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """The SPEC §1 equations step by step on Python floats. Returns (hs, h, c, gates).

    With ``w_hr`` the hidden state is projected, h_t = W_hr (o_t ⊙ tanh C_t).
    """
    hidden = len(c)
    hs, gates = [], []
    for x in xs:
        pre = [
            a + b + bi + bh
            for a, b, bi, bh in zip(matvec(w_ih, [x]), matvec(w_hh, h), b_ih, b_hh, strict=True)
        ]
        i = [sigmoid(v) for v in pre[0:hidden]]
        f = [sigmoid(v) for v in pre[hidden : 2 * hidden]]
        g = [math.tanh(v) for v in pre[2 * hidden : 3 * hidden]]
        o = [sigmoid(v) for v in pre[3 * hidden :]]
        c = [f[k] * c[k] + i[k] * g[k] for k in range(hidden)]
        h = [o[k] * math.tanh(c[k]) for k in range(hidden)]
        if w_hr is not None:
            h = matvec(w_hr, h)
        hs.append(h)
        gates.append({"i": i, "f": f, "g": g, "o": o})
    return hs, h, c, gates


LSTM_WEIGHTS = (LSTM_W_IH, LSTM_W_HH, LSTM_B_IH, LSTM_B_HH)


def _negated(weights):
    """Another hand-checkable set: every number negated (for the reverse direction)."""

    def neg(v):
        return [neg(u) for u in v] if isinstance(v, list) else -v

    return tuple(neg(w) for w in weights)


def _set_lstm_weights(module, suffix="", weights=LSTM_WEIGHTS):
    with torch.no_grad():
        for name, value in zip(
            ("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights, strict=True
        ):
            getattr(module, f"{name}_l0{suffix}").copy_(_t(value))


def test_hand_lstm_first_step_by_hand():
    """The helper itself, first step of unit 0 spelled out with literal numbers."""
    i = sigmoid(0.5 * 1.0 + (-0.5 * 0.3 + 0.2 * -0.4) + 0.1 + 0.05)
    f = sigmoid(-1.0 * 1.0 + (1.0 * 0.3 + 0.3 * -0.4) + 0.2 - 0.1)
    g = math.tanh(0.25 * 1.0 + (0.75 * 0.3 - 0.25 * -0.4) - 0.3 + 0.2)
    o = sigmoid(2.0 * 1.0 + (-0.25 * 0.3 + 0.6 * -0.4) + 0.4 + 0.0)
    c = f * -0.2 + i * g
    h = o * math.tanh(c)
    hs, _, _, _ = hand_lstm(XS[:1], H0, C0, LSTM_W_IH, LSTM_W_HH, LSTM_B_IH, LSTM_B_HH)
    assert abs(hs[0][0] - h) <= 1e-15


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_golden_values(backend):
    module = lstmkit.LSTM(1, 2, dtype=torch.float64, backend=backend)
    _set_lstm_weights(module)
    x = _t(XS).view(3, 1, 1)
    h0 = _t(H0).view(1, 1, 2)
    c0 = _t(C0).view(1, 1, 2)
    out, (h_n, c_n) = module(x, (h0, c0))
    hs, h, c, _ = hand_lstm(XS, H0, C0, LSTM_W_IH, LSTM_W_HH, LSTM_B_IH, LSTM_B_HH)
    want = _t(hs).view(3, 1, 2)
    assert_close(out, want, GOLDEN_TOL, "output")
    assert_close(h_n, _t(h).view(1, 1, 2), GOLDEN_TOL, "h_n")
    assert_close(c_n, _t(c).view(1, 1, 2), GOLDEN_TOL, "c_n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_bilstm_golden_values(backend):
    """The reverse direction runs t = T…1 with its own weights and initial state."""
    module = lstmkit.LSTM(1, 2, bidirectional=True, dtype=torch.float64, backend=backend)
    _set_lstm_weights(module)
    _set_lstm_weights(module, "_reverse", _negated(LSTM_WEIGHTS))
    x = _t(XS).view(3, 1, 1)
    h0 = _t([H0, C0]).view(2, 1, 2)  # the reverse direction starts from (C0, H0)
    c0 = _t([C0, H0]).view(2, 1, 2)
    out, (h_n, c_n) = module(x, (h0, c0))
    fwd, h_f, c_f, _ = hand_lstm(XS, H0, C0, *LSTM_WEIGHTS)
    bwd, h_b, c_b, _ = hand_lstm(XS[::-1], C0, H0, *_negated(LSTM_WEIGHTS))
    bwd = bwd[::-1]
    want = _t([f + b for f, b in zip(fwd, bwd, strict=True)])
    assert_close(out, want.view(3, 1, 4), GOLDEN_TOL, "output")
    assert_close(h_n, _t([h_f, h_b]).view(2, 1, 2), GOLDEN_TOL, "h_n")
    assert_close(c_n, _t([c_f, c_b]).view(2, 1, 2), GOLDEN_TOL, "c_n")


def test_lstm_cell_golden_and_bias_folding():
    """lstm_cell directly: b_hh passed separately equals b_hh folded into gx."""
    x = _t([[XS[0]]])
    _, h1, c1, gates = hand_lstm(XS[:1], H0, C0, LSTM_W_IH, LSTM_W_HH, LSTM_B_IH, LSTM_B_HH)
    w_ih, w_hh = _t(LSTM_W_IH), _t(LSTM_W_HH)
    b_ih, b_hh = _t(LSTM_B_IH), _t(LSTM_B_HH)
    folded = lstm_cell(x @ w_ih.T + b_ih + b_hh, _t([H0]), _t([C0]), w_hh)
    separate = lstm_cell(x @ w_ih.T + b_ih, _t([H0]), _t([C0]), w_hh, b_hh)
    for step in (folded, separate):
        assert_close(step.h, _t([h1]), GOLDEN_TOL, "h")
        assert_close(step.c, _t([c1]), GOLDEN_TOL, "c")
        for name in "ifgo":
            assert_close(getattr(step, name), _t([gates[0][name]]), GOLDEN_TOL, name)


W_HR = [[0.7, -1.2]]
W_HH_PROJ = [[r[0]] for r in LSTM_W_HH]  # (4H, P) with P = 1


def test_lstm_cell_projection_golden():
    """With w_hr the hidden state is W_hr (o ⊙ tanh C), shape (N, P)."""
    _, h1, c1, _ = hand_lstm(
        XS[:1], [0.3], C0, LSTM_W_IH, W_HH_PROJ, LSTM_B_IH, LSTM_B_HH, w_hr=W_HR
    )
    gx = _t([[XS[0]]]) @ _t(LSTM_W_IH).T + _t(LSTM_B_IH) + _t(LSTM_B_HH)
    step = lstm_cell(gx, _t([[0.3]]), _t([C0]), _t(W_HH_PROJ), None, _t(W_HR))
    assert_close(step.h, _t([h1]), GOLDEN_TOL, "h")
    assert_close(step.c, _t([c1]), GOLDEN_TOL, "c")


@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_projection_golden_values(backend):
    module = lstmkit.LSTM(1, 2, proj_size=1, dtype=torch.float64, backend=backend)
    with torch.no_grad():
        module.weight_ih_l0.copy_(_t(LSTM_W_IH))
        module.weight_hh_l0.copy_(_t(W_HH_PROJ))
        module.bias_ih_l0.copy_(_t(LSTM_B_IH))
        module.bias_hh_l0.copy_(_t(LSTM_B_HH))
        module.weight_hr_l0.copy_(_t(W_HR))
    out, (h_n, c_n) = module(_t(XS).view(3, 1, 1), (_t([[[0.3]]]), _t(C0).view(1, 1, 2)))
    hs, h, c, _ = hand_lstm(XS, [0.3], C0, LSTM_W_IH, W_HH_PROJ, LSTM_B_IH, LSTM_B_HH, W_HR)
    assert_close(out, _t(hs).view(3, 1, 1), GOLDEN_TOL, "output")
    assert_close(h_n, _t(h).view(1, 1, 1), GOLDEN_TOL, "h_n")
    assert_close(c_n, _t(c).view(1, 1, 2), GOLDEN_TOL, "c_n")


# GRU, input size 1, hidden size 2; gate blocks r, z, n.
GRU_W_IH = [[0.5], [-0.3], [-1.0], [0.8], [0.25], [-0.6]]
GRU_W_HH = [[-0.5, 0.2], [0.4, -0.1], [1.0, 0.3], [-0.7, 0.5], [0.75, -0.25], [0.1, 0.9]]
GRU_B_IH = [0.1, -0.2, 0.2, 0.0, -0.3, 0.15]
GRU_B_HH = [0.05, 0.1, -0.1, 0.3, 0.2, -0.1]


def hand_gru(xs, h, reset_after):
    """SPEC §3 on Python floats: both placements of the reset gate. Returns (hs, h)."""
    hs = []
    for x in xs:
        gi = [a + b for a, b in zip(matvec(GRU_W_IH, [x]), GRU_B_IH, strict=True)]
        r = [
            sigmoid(gi[k] + sum(w * v for w, v in zip(GRU_W_HH[k], h, strict=True)) + GRU_B_HH[k])
            for k in range(2)
        ]
        z = [
            sigmoid(
                gi[2 + k]
                + sum(w * v for w, v in zip(GRU_W_HH[2 + k], h, strict=True))
                + GRU_B_HH[2 + k]
            )
            for k in range(2)
        ]
        if reset_after:
            hn = [
                sum(w * v for w, v in zip(GRU_W_HH[4 + k], h, strict=True)) + GRU_B_HH[4 + k]
                for k in range(2)
            ]
            n = [math.tanh(gi[4 + k] + r[k] * hn[k]) for k in range(2)]
        else:
            rh = [r[k] * h[k] for k in range(2)]
            n = [
                math.tanh(
                    gi[4 + k]
                    + sum(w * v for w, v in zip(GRU_W_HH[4 + k], rh, strict=True))
                    + GRU_B_HH[4 + k]
                )
                for k in range(2)
            ]
        h = [(1 - z[k]) * n[k] + z[k] * h[k] for k in range(2)]
        hs.append(h)
    return hs, h


# native cannot run the Cho GRU (test_dispatch checks that it raises)
GRU_FORMS_AND_BACKENDS = [
    pytest.param(reset_after, backend, id=f"{'after' if reset_after else 'before'}-{backend}")
    for reset_after in (True, False)
    for backend in BACKENDS
    if reset_after or backend != "native"
]


@pytest.mark.parametrize(("reset_after", "backend"), GRU_FORMS_AND_BACKENDS)
def test_gru_golden_values(reset_after, backend):
    module = lstmkit.GRU(1, 2, dtype=torch.float64, reset_after=reset_after, backend=backend)
    with torch.no_grad():
        module.weight_ih_l0.copy_(_t(GRU_W_IH))
        module.weight_hh_l0.copy_(_t(GRU_W_HH))
        module.bias_ih_l0.copy_(_t(GRU_B_IH))
        module.bias_hh_l0.copy_(_t(GRU_B_HH))
    out, h_n = module(_t(XS).view(3, 1, 1), _t(H0).view(1, 1, 2))
    hs, h = hand_gru(XS, H0, reset_after)
    assert_close(out, _t(hs).view(3, 1, 2), GOLDEN_TOL, "output")
    assert_close(h_n, _t(h).view(1, 1, 2), GOLDEN_TOL, "h_n")

    step = gru_cell(
        _t([[XS[0]]]) @ _t(GRU_W_IH).T + _t(GRU_B_IH),
        _t([H0]),
        _t(GRU_W_HH),
        _t(GRU_B_HH),
        reset_after=reset_after,
    )
    assert_close(step.h, _t([hs[0]]), GOLDEN_TOL, "gru_cell h")


# -- (b) Cho et al.'s GRU, straight from the paper, in NumPy -------------------------------


def _np(t):
    return t.detach().numpy()


def paper_gru_direction(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    """Cho et al. (2014) with separate matrices; x (T, N, in) NumPy, returns (out, h_T).

    r = σ(W_r x + U_r h + b_r), z = σ(W_z x + U_z h + b_z),
    h̃ = tanh(W x + U (r ⊙ h) + b), h = z ⊙ h_prev + (1 - z) ⊙ h̃.
    """
    hidden = h0.shape[-1]
    w_ir, w_iz, w_in = w_ih[:hidden], w_ih[hidden : 2 * hidden], w_ih[2 * hidden :]
    u_r, u_z, u_n = w_hh[:hidden], w_hh[hidden : 2 * hidden], w_hh[2 * hidden :]
    b_r = b_ih[:hidden] + b_hh[:hidden]
    b_z = b_ih[hidden : 2 * hidden] + b_hh[hidden : 2 * hidden]
    b_n = b_ih[2 * hidden :] + b_hh[2 * hidden :]

    def sig(v):
        return 1.0 / (1.0 + np.exp(-v))

    steps = x.shape[0]
    out = np.zeros((steps, x.shape[1], hidden))
    h = h0
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        xt = x[t]
        r = sig(xt @ w_ir.T + h @ u_r.T + b_r)
        z = sig(xt @ w_iz.T + h @ u_z.T + b_z)
        h_tilde = np.tanh(xt @ w_in.T + (r * h) @ u_n.T + b_n)
        h = z * h + (1 - z) * h_tilde
        out[t] = h
    return out, h


def paper_gru(module, x, h0):
    """Stack and both directions of the paper GRU, with ``module``'s parameters."""
    cfg = module.cfg
    layer_in = _np(x)
    h_n = []
    for layer in range(cfg.num_layers):
        outs = []
        for d in range(cfg.num_directions):
            suffix = f"_l{layer}" + ("_reverse" if d else "")
            w = [_np(getattr(module, n + suffix)) for n in ("weight_ih", "weight_hh")]
            b = [_np(getattr(module, n + suffix)) for n in ("bias_ih", "bias_hh")]
            k = layer * cfg.num_directions + d
            out, h = paper_gru_direction(layer_in, _np(h0[k]), *w, *b, reverse=bool(d))
            outs.append(out)
            h_n.append(h)
        layer_in = np.concatenate(outs, axis=-1)
    return layer_in, np.stack(h_n)


@pytest.mark.parametrize("backend", ["reference", "fused", "auto"])
@pytest.mark.parametrize(("layers", "bi"), [(1, False), (1, True), (2, True)], ids=str)
def test_cho_gru_matches_paper(backend, layers, bi):
    torch.manual_seed(21)
    module = lstmkit.GRU(
        3,
        4,
        num_layers=layers,
        bidirectional=bi,
        dtype=torch.float64,
        reset_after=False,
        backend=backend,
    )
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    h0 = torch.randn(layers * (2 if bi else 1), 2, 4, dtype=torch.float64)
    out, h_n = module(x, h0)
    want_out, want_h = paper_gru(module, x, h0)
    assert module.last_backend in ("reference", "compiled")
    assert_close(out, torch.from_numpy(want_out), GOLDEN_TOL, "output")
    assert_close(h_n, torch.from_numpy(want_h), GOLDEN_TOL, "h_n")


def test_cho_gru_differs_from_reset_after():
    """The two forms really are different functions (else (b) would prove nothing)."""
    torch.manual_seed(22)
    a = lstmkit.GRU(3, 4, dtype=torch.float64, reset_after=False)
    b = lstmkit.GRU(3, 4, dtype=torch.float64, reset_after=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    h0 = torch.randn(1, 2, 4, dtype=torch.float64)
    assert (a(x, h0)[0] - b(x, h0)[0]).abs().max().item() > 1e-3


@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
def test_cho_gru_fused_gradients_match_reference(bi):
    """The fused BPTT of the Cho GRU against autograd through the reference cells."""
    torch.manual_seed(23)
    ref = lstmkit.GRU(
        3,
        4,
        num_layers=2,
        bidirectional=bi,
        dtype=torch.float64,
        reset_after=False,
        backend="reference",
    )
    fused = lstmkit.GRU(
        3,
        4,
        num_layers=2,
        bidirectional=bi,
        dtype=torch.float64,
        reset_after=False,
        backend="fused",
    )
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2 * (2 if bi else 1), 2, 4, dtype=torch.float64, requires_grad=True)
    out_r, h_r = ref(x, h0)
    out_f, h_f = fused(x, h0)
    assert_close(out_f, out_r, 1e-12, "output")
    assert_close(h_f, h_r, 1e-12, "h_n")
    cot = [torch.randn_like(out_r), torch.randn_like(h_r)]
    g_r = torch.autograd.grad([out_r, h_r], [x, h0, *ref.parameters()], cot)
    g_f = torch.autograd.grad([out_f, h_f], [x, h0, *fused.parameters()], cot)
    names = ["d_input", "d_h0", *(n for n, _ in ref.named_parameters())]
    for name, a, b in zip(names, g_f, g_r, strict=True):
        assert_close(a, b, 1e-10, name)


# -- (c) source 002's notation: one matrix per gate over [h_{t-1}, x_t] ---------------------


def concat_notation_lstm(module, suffix, x, h0, c0, reverse):
    """f_t = σ(W_f·[h_{t-1}, x_t] + b_f) with W_f = [W_hf | W_if], b_f = b_if + b_hf."""
    w_ih, w_hh = (
        _np(getattr(module, "weight_ih" + suffix)),
        _np(getattr(module, "weight_hh" + suffix)),
    )
    b = _np(getattr(module, "bias_ih" + suffix)) + _np(getattr(module, "bias_hh" + suffix))
    hidden = w_hh.shape[1]
    mats = {}
    for k, name in enumerate("ifgo"):
        rows = slice(k * hidden, (k + 1) * hidden)
        mats[name] = (np.concatenate([w_hh[rows], w_ih[rows]], axis=1), b[rows])

    def sig(v):
        return 1.0 / (1.0 + np.exp(-v))

    steps = x.shape[0]
    rec = {g: np.zeros((steps, x.shape[1], hidden)) for g in "ifgcoh"}
    h, c = h0, c0
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        hx = np.concatenate([h, x[t]], axis=1)  # [h_{t-1}, x_t]
        gate = {n: hx @ w.T + bias for n, (w, bias) in mats.items()}
        i, f, o = sig(gate["i"]), sig(gate["f"]), sig(gate["o"])
        g = np.tanh(gate["g"])
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, value in zip("ifgcoh", (i, f, g, c, o, h), strict=True):
            rec[name][t] = value
    return rec


@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_concatenated_notation_equals_gate_activations(bi, backend):
    torch.manual_seed(31)
    module = lstmkit.LSTM(3, 4, bidirectional=bi, dtype=torch.float64, backend=backend)
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    d = 2 if bi else 1
    h0 = torch.randn(d, 2, 4, dtype=torch.float64)
    c0 = torch.randn(d, 2, 4, dtype=torch.float64)
    gates = module.gate_activations(x, (h0, c0))
    out, _ = module(x, (h0, c0))
    assert sorted(gates) == (["l0", "l0_reverse"] if bi else ["l0"])
    for k, key in enumerate(sorted(gates)):
        want = concat_notation_lstm(
            module, "_" + key, _np(x), _np(h0[k]), _np(c0[k]), reverse=key.endswith("reverse")
        )
        for name in "ifgcoh":
            assert_close(
                gates[key][name], torch.from_numpy(want[name]), GOLDEN_TOL, f"{key}.{name}"
            )
        # and the module's forward output is the notation's h
        half = out[..., k * 4 : (k + 1) * 4]
        assert_close(half, torch.from_numpy(want["h"]), GOLDEN_TOL, f"forward {key}")


# -- (d) bidirectional merge modes from one-directional runs --------------------------------


def one_direction(module, layer, reverse, backend):
    """A one-layer, one-direction module holding ``module``'s weights of (layer, direction)."""
    cfg = module.cfg
    cls = lstmkit.LSTM if cfg.mode == "LSTM" else lstmkit.GRU
    extra = {"proj_size": cfg.proj_size} if cfg.mode == "LSTM" else {"reset_after": cfg.reset_after}
    single = cls(
        cfg.layer_input_size(layer),
        cfg.hidden_size,
        bias=cfg.bias,
        dtype=torch.float64,
        backend=backend,
        **extra,
    )
    suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    state = {n: p for n, p in module.named_parameters() if n.endswith(suffix)}
    single.load_state_dict({n.replace(suffix, "_l0"): p for n, p in state.items()})
    return single


def manual_bidirectional(module, x, backend):
    """Run every layer as two one-directional modules (reverse = flip, run, flip back)."""
    cfg = module.cfg
    layer_in, h_n = x, []
    for layer in range(cfg.num_layers):
        out_f, hid_f = one_direction(module, layer, False, backend)(layer_in)
        out_b, hid_b = one_direction(module, layer, True, backend)(layer_in.flip(0))
        out_b = out_b.flip(0)
        h_f = hid_f if cfg.mode == "GRU" else hid_f[0]
        h_b = hid_b if cfg.mode == "GRU" else hid_b[0]
        h_n += [h_f, h_b]
        layer_in = {
            "concat": torch.cat([out_f, out_b], dim=-1),
            "sum": out_f + out_b,
            "mean": (out_f + out_b) / 2,
            "mul": out_f * out_b,
        }[cfg.merge_mode]
    return layer_in, torch.cat(h_n)


MERGE_CELLS = [
    pytest.param("LSTM", {}, id="LSTM"),
    pytest.param("LSTM", {"proj_size": 2}, id="LSTM-proj"),
    pytest.param("GRU", {}, id="GRU"),
    pytest.param("GRU", {"reset_after": False}, id="GRU-reset_before"),
]


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mean", "mul"])
@pytest.mark.parametrize(
    ("mode", "extra", "backend"),
    [
        pytest.param(*cell.values, backend, id=f"{cell.id}-{backend}")
        for cell in MERGE_CELLS
        for backend in BACKENDS
        if not (backend == "native" and cell.id == "GRU-reset_before")  # raises, see dispatch
    ],
)
def test_merge_modes_one_layer_from_unidirectional_runs(mode, extra, backend, merge_mode):
    torch.manual_seed(41)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    module = cls(
        3,
        4,
        bidirectional=True,
        merge_mode=merge_mode,
        dtype=torch.float64,
        backend=backend,
        **extra,
    )
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, hidden = module(x)
    h_n = hidden if mode == "GRU" else hidden[0]
    want_out, want_h = manual_bidirectional(module, x, backend)
    assert_close(out, want_out, 1e-12, "output")
    assert_close(h_n, want_h, 1e-12, "h_n")


@pytest.mark.parametrize("backend", ["reference", "fused", "auto"])
@pytest.mark.parametrize("merge_mode", ["sum", "mean", "mul"])
@pytest.mark.parametrize(("mode", "extra"), MERGE_CELLS)
def test_two_layer_non_concat_merge_reads_p_features(mode, extra, merge_mode, backend):
    torch.manual_seed(42)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    module = cls(
        3,
        4,
        num_layers=2,
        bidirectional=True,
        merge_mode=merge_mode,
        dtype=torch.float64,
        backend=backend,
        **extra,
    )
    gates = 4 if mode == "LSTM" else 3
    out_size = extra.get("proj_size") or 4
    assert module.weight_ih_l1.shape == (gates * 4, out_size)
    assert module.weight_ih_l1_reverse.shape == (gates * 4, out_size)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    out, hidden = module(x)
    h_n = hidden if mode == "GRU" else hidden[0]
    want_out, want_h = manual_bidirectional(module, x, "reference")
    assert out.shape == (6, 2, out_size)
    assert_close(out, want_out, 1e-12, "output")
    assert_close(h_n, want_h, 1e-12, "h_n")
