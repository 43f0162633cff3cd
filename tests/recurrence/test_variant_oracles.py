r"""The cell variants (``docs/variants.md``) against computations written apart from lstmkit.

Oracles, in float64, for both the ``reference`` and the ``fused`` backend:

(a) NumPy: the LSTM and GRU variant equations of ``docs/variants.md`` step by step —
    :math:`\mathrm{LN}` with the biased variance and :math:`\varepsilon = 10^{-5}`, the
    peepholes :math:`p_i, p_f` on :math:`C_{t-1}` and :math:`p_o` on :math:`\tilde C_t`,
    the recurrent-dropout mask on :math:`h_{t-1}` where it enters :math:`W_{hh}` only,
    zoneout as :math:`d \odot \mathrm{prev} + (1-d) \odot \mathrm{new}` (:math:`d = p` in
    evaluation). The reverse direction runs over the time-reversed input (and masks) with
    its own weights; layers read the concatenated directions; a variable-length batch is
    compared with each sequence run alone, cut to its length. The oracle imports nothing
    of lstmkit's cells or recurrence; the only thing taken from lstmkit is the masks, drawn
    with ``lstmkit.recurrence.noise.sample_noise`` under the same seed as the module's own
    draw (the draw order is part of the contract: per layer, forward before reverse).
(b) The loop a user writes today in torch (``F.layer_norm``, matmuls, sigmoid, tanh) and
    autograd: its gradients with respect to the input, the initial states and every
    parameter are the oracle of the ``fused`` backward (and of the ``reference`` one).
(c) ``torch.nn.functional.layer_norm`` for the normalisation itself, ``torch.nn.LSTM``
    for the initial weights under ``forget_bias`` and for recurrent dropout in evaluation.

Module parameters are overwritten with random values first (layer-norm gains near 1,
shifts and peepholes away from their initial 1/0), so a swapped or ignored parameter
shows.
"""

import math
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_close, backend_name, ran_name

import lstmkit
from lstmkit.recurrence.noise import sample_noise

T, N, IN, H = 6, 3, 4, 5
TOL = 1e-10
EPS = 1e-5
BACKENDS = ("reference", "fused", "fused-python")  # fused: both step implementations
LENGTHS = [6, 2, 4]  # unsorted, with a full sequence

# module name prefix -> the oracle's key
PARAM_KEYS = {
    "weight_ih": "w_ih",
    "weight_hh": "w_hh",
    "bias_ih": "b_ih",
    "bias_hh": "b_hh",
    "ln_weight_ih": "ln_ih",
    "ln_weight_hh": "ln_hh",
    "ln_weight_c": "ln_c",
    "ln_bias_c": "ln_c_bias",
    "weight_ph": "w_ph",
}

LSTM_VARIANTS = {
    "ln": {"layer_norm": True},
    "ln-nobias": {"layer_norm": True, "bias": False},
    "peephole": {"peephole": True},
    "ln-peephole": {"layer_norm": True, "peephole": True},
    "rdrop": {"recurrent_dropout": 0.4},
    "zoneout": {"zoneout": 0.3},
    "zoneout_cell": {"zoneout_cell": 0.4},
    "all": {
        "layer_norm": True,
        "peephole": True,
        "recurrent_dropout": 0.3,
        "zoneout": 0.25,
        "zoneout_cell": 0.4,
    },
}
GRU_VARIANTS = {
    "ln": {"layer_norm": True},
    "rdrop": {"recurrent_dropout": 0.4},
    "rdrop-reset_before": {"recurrent_dropout": 0.4, "reset_after": False},
    "zoneout": {"zoneout": 0.3},
    "zoneout-reset_before": {"zoneout": 0.3, "reset_after": False},
    "ln-nobias": {"layer_norm": True, "bias": False},
    "all": {"layer_norm": True, "recurrent_dropout": 0.3, "zoneout": 0.25},
}
CASES = [pytest.param("LSTM", opts, id=f"LSTM-{name}") for name, opts in LSTM_VARIANTS.items()] + [
    pytest.param("GRU", opts, id=f"GRU-{name}") for name, opts in GRU_VARIANTS.items()
]
PHASES = [pytest.param(True, id="train"), pytest.param(False, id="eval")]


# -- (a) the NumPy oracle -----------------------------------------------------------------


def np_ln(v: np.ndarray) -> np.ndarray:
    """LN over the last axis: biased variance, eps 1e-5, no affine part."""
    mu = v.mean(-1, keepdims=True)
    var = ((v - mu) ** 2).mean(-1, keepdims=True)
    return (v - mu) / np.sqrt(var + EPS)


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def zone(d, t):
    """The zoneout keep-rate of step t: a mask row (training), the rate p (evaluation), 0."""
    if d is None:
        return 0.0
    return d if isinstance(d, float) else d[t]


def np_lstm(x, h, c, w, noise):
    """One forward LSTM direction over x (T, N, H_in); returns (out, h_T, c_T)."""
    rec, d_h, d_c = noise
    hidden = c.shape[-1]
    b = 0.0 if w["b_ih"] is None else w["b_ih"] + w["b_hh"]
    out = []
    for t in range(x.shape[0]):
        h_bar = h if rec is None else h * rec
        a_x, a_h = x[t] @ w["w_ih"].T, h_bar @ w["w_hh"].T
        if "ln_ih" in w:
            pre = np_ln(a_x) * w["ln_ih"] + np_ln(a_h) * w["ln_hh"] + b
        else:
            pre = a_x + a_h + b
        pi, pf, po = (0.0, 0.0, 0.0)
        if "w_ph" in w:
            pi, pf, po = (w["w_ph"][k * hidden : (k + 1) * hidden] for k in range(3))
        i_hat, f_hat, g_hat, o_hat = (pre[:, k * hidden : (k + 1) * hidden] for k in range(4))
        i = sigmoid(i_hat + pi * c)
        f = sigmoid(f_hat + pf * c)
        c_tilde = f * c + i * np.tanh(g_hat)
        o = sigmoid(o_hat + po * c_tilde)
        if "ln_c" in w:
            h_tilde = o * np.tanh(np_ln(c_tilde) * w["ln_c"] + w["ln_c_bias"])
        else:
            h_tilde = o * np.tanh(c_tilde)
        dc, dh = zone(d_c, t), zone(d_h, t)
        c = dc * c + (1 - dc) * c_tilde
        h = dh * h + (1 - dh) * h_tilde
        out.append(h)
    return np.stack(out), h, c


def np_gru(x, h, c, w, noise, reset_after):
    """One forward GRU direction over x (T, N, H_in); returns (out, h_T, None)."""
    rec, d_h, _ = noise
    hidden = h.shape[-1]
    b_ih = 0.0 if w["b_ih"] is None else w["b_ih"]
    b_hh = np.zeros(3 * hidden) if w["b_hh"] is None else w["b_hh"]
    out = []
    for t in range(x.shape[0]):
        h_bar = h if rec is None else h * rec
        a_x = x[t] @ w["w_ih"].T
        g_x = (np_ln(a_x) * w["ln_ih"] if "ln_ih" in w else a_x) + b_ih
        if reset_after:
            a_h = h_bar @ w["w_hh"].T
            g_h = (np_ln(a_h) * w["ln_hh"] if "ln_hh" in w else a_h) + b_hh
        else:  # Cho et al.: r and z from the affine map, n from W_hn (r ⊙ h̄)
            g_h = h_bar @ w["w_hh"][: 2 * hidden].T + b_hh[: 2 * hidden]
        r = sigmoid(g_x[:, :hidden] + g_h[:, :hidden])
        z = sigmoid(g_x[:, hidden : 2 * hidden] + g_h[:, hidden : 2 * hidden])
        if reset_after:
            n = np.tanh(g_x[:, 2 * hidden :] + r * g_h[:, 2 * hidden :])
        else:
            n = np.tanh(
                g_x[:, 2 * hidden :] + (r * h_bar) @ w["w_hh"][2 * hidden :].T + b_hh[2 * hidden :]
            )
        h_tilde = (1 - z) * n + z * h
        dh = zone(d_h, t)
        h = dh * h + (1 - dh) * h_tilde
        out.append(h)
    return np.stack(out), h, None


# -- (b) the user loop in torch ops (autograd differentiates it) ----------------------------


def torch_lstm(x, h, c, w, noise):
    """The same LSTM direction as a user writes it with torch ops."""
    rec, d_h, d_c = noise
    hidden = c.shape[-1]
    out = []
    for t in range(x.shape[0]):
        h_bar = h if rec is None else h * rec
        if "ln_ih" in w:
            pre = F.layer_norm(x[t] @ w["w_ih"].T, (4 * hidden,), w["ln_ih"], w["b_ih"], EPS)
            pre = pre + F.layer_norm(h_bar @ w["w_hh"].T, (4 * hidden,), w["ln_hh"], w["b_hh"], EPS)
        else:
            pre = F.linear(x[t], w["w_ih"], w["b_ih"]) + F.linear(h_bar, w["w_hh"], w["b_hh"])
        i_hat, f_hat, g_hat, o_hat = pre.chunk(4, dim=1)
        if "w_ph" in w:
            p_i, p_f, p_o = w["w_ph"].chunk(3)
            i_hat, f_hat = i_hat + p_i * c, f_hat + p_f * c
        c_tilde = torch.sigmoid(f_hat) * c + torch.sigmoid(i_hat) * torch.tanh(g_hat)
        if "w_ph" in w:
            o_hat = o_hat + p_o * c_tilde
        if "ln_c" in w:
            cell_out = F.layer_norm(c_tilde, (hidden,), w["ln_c"], w["ln_c_bias"], EPS)
        else:
            cell_out = c_tilde
        h_tilde = torch.sigmoid(o_hat) * torch.tanh(cell_out)
        dc, dh = zone(d_c, t), zone(d_h, t)
        c = dc * c + (1 - dc) * c_tilde
        h = dh * h + (1 - dh) * h_tilde
        out.append(h)
    return torch.stack(out), h, c


def torch_gru(x, h, c, w, noise, reset_after):
    """The same GRU direction as a user writes it with torch ops."""
    rec, d_h, _ = noise
    hidden = h.shape[-1]
    out = []
    for t in range(x.shape[0]):
        h_bar = h if rec is None else h * rec
        if "ln_ih" in w:
            g_x = F.layer_norm(x[t] @ w["w_ih"].T, (3 * hidden,), w["ln_ih"], w["b_ih"], EPS)
            g_h = F.layer_norm(h_bar @ w["w_hh"].T, (3 * hidden,), w["ln_hh"], w["b_hh"], EPS)
        elif reset_after:
            g_x, g_h = F.linear(x[t], w["w_ih"], w["b_ih"]), F.linear(h_bar, w["w_hh"], w["b_hh"])
        else:
            w_rz, w_n = w["w_hh"].split([2 * hidden, hidden])
            b_rz, b_n = (None, None) if w["b_hh"] is None else w["b_hh"].split([2 * hidden, hidden])
            g_x, g_h = F.linear(x[t], w["w_ih"], w["b_ih"]), F.linear(h_bar, w_rz, b_rz)
        x_r, x_z, x_n = g_x.chunk(3, dim=1)
        r = torch.sigmoid(x_r + g_h[:, :hidden])
        z = torch.sigmoid(x_z + g_h[:, hidden : 2 * hidden])
        if reset_after:
            n = torch.tanh(x_n + r * g_h[:, 2 * hidden :])
        else:
            n = torch.tanh(x_n + F.linear(r * h_bar, w_n, b_n))
        h_tilde = (1 - z) * n + z * h
        dh = zone(d_h, t)
        h = dh * h + (1 - dh) * h_tilde
        out.append(h)
    return torch.stack(out), h, None


# -- stacking, directions, lengths: one driver for both oracles ---------------------------


def _cat(parts, axis):
    if isinstance(parts[0], torch.Tensor):
        return torch.cat(parts, dim=axis)
    return np.concatenate(parts, axis=axis)


def _stack(parts):
    return torch.stack(parts) if isinstance(parts[0], torch.Tensor) else np.stack(parts)


def _flip(v):
    """Reverse the time axis (axis 0) of an array, a tensor or a zoneout mask."""
    if v is None or isinstance(v, float):
        return v
    return v.flip(0) if isinstance(v, torch.Tensor) else v[::-1]


def oracle_stack(direction, x, h0, c0, weights, noises, layers, dirs):
    """Layers and directions; weights/noises per (layer, direction), layer-major.

    The reverse direction is the forward one run on the time-reversed input and masks,
    its output flipped back; layer k+1 reads [forward, reverse] concatenated.
    """
    layer_in, h_n, c_n = x, [], []
    for layer in range(layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            c_k = None if c0 is None else c0[k]
            if d == 0:
                out, h, c = direction(layer_in, h0[k], c_k, weights[k], noises[k])
            else:
                rec, d_h, d_c = noises[k]
                flipped = (rec, _flip(d_h), _flip(d_c))
                out, h, c = direction(_flip(layer_in), h0[k], c_k, weights[k], flipped)
                out = _flip(out)
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_in = _cat(outs, -1)
    return layer_in, _stack(h_n), (None if c0 is None else _stack(c_n))


def _cut_noise(noise, n, length):
    """The masks of sequence n, cut to its length."""
    rec, d_h, d_c = noise

    def cut(d):
        return d if d is None or isinstance(d, float) else d[:length, n : n + 1]

    return (None if rec is None else rec[n : n + 1], cut(d_h), cut(d_c))


def oracle_lengths(direction, x, h0, c0, weights, noises, layers, dirs, lengths):
    """Each sequence alone, cut to its length; outputs zero-padded back to T."""
    outs, h_n, c_n = [], [], []
    for n, length in enumerate(lengths):
        cut = [_cut_noise(nz, n, length) for nz in noises]
        c_seq = None if c0 is None else c0[:, n : n + 1]
        out, h, c = oracle_stack(
            direction, x[:length, n : n + 1], h0[:, n : n + 1], c_seq, weights, cut, layers, dirs
        )
        pad = out[:1] * 0  # (1, 1, F) zeros of the right kind
        outs.append(_cat([out, *([pad] * (x.shape[0] - length))], 0))
        h_n.append(h)
        c_n.append(c)
    return _cat(outs, 1), _cat(h_n, 1), (None if c0 is None else _cat(c_n, 1))


# -- modules, masks, parameters -----------------------------------------------------------


def make_module(mode, opts, backend, *, layers=1, bidirectional=False, seed=0):
    """An lstmkit module in float64 with every parameter set to random values."""
    torch.manual_seed(seed)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    module = cls(
        IN,
        H,
        num_layers=layers,
        bidirectional=bidirectional,
        dtype=torch.float64,
        backend=backend_name(backend),
        **opts,
    )
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            if name.startswith("ln_weight"):
                p.copy_(1 + 0.3 * noise)  # gains near their initial 1
            else:
                p.copy_(0.4 * noise)
    return module


def by_direction(cfg, params: dict) -> list[dict]:
    """The oracle's weight dicts per (layer, direction), layer-major, from parameter names."""
    result = []
    for layer in range(cfg.num_layers):
        for d in range(cfg.num_directions):
            suffix = f"_l{layer}" + ("_reverse" if d == 1 else "")
            w = {"b_ih": None, "b_hh": None}
            w |= {k: params[p + suffix] for p, k in PARAM_KEYS.items() if p + suffix in params}
            result.append(w)
    return result


def draw_noises(module, x, training, seed):
    """The masks the module draws under ``seed``: sample_noise per layer, forward first."""
    cfg = module.cfg
    torch.manual_seed(seed)
    noises = []
    for _ in range(cfg.num_layers * cfg.num_directions):
        noise = sample_noise(cfg, x.shape[0], x.shape[1], x, training)
        for mask in noise:
            if isinstance(mask, torch.Tensor):  # a test with a constant mask could not fail
                values = set(torch.unique(mask).tolist())
                assert len(values) == 2, f"degenerate mask with values {values}"
        noises.append(tuple(noise))
    return noises


def _to_numpy(v):
    return v.detach().numpy().copy() if isinstance(v, torch.Tensor) else v


def direction_fn(module, oracle: str):
    """The oracle's one-direction function (x, h, c, w, noise) -> (out, h_T, c_T)."""
    cfg = module.cfg
    lstm, gru = (np_lstm, np_gru) if oracle == "numpy" else (torch_lstm, torch_gru)
    return lstm if cfg.mode == "LSTM" else partial(gru, reset_after=cfg.reset_after)


def inputs(module, steps=T, seed=3):
    cfg = module.cfg
    gen = torch.Generator().manual_seed(seed)
    states = cfg.num_layers * cfg.num_directions
    x = torch.randn(steps, N, IN, generator=gen, dtype=torch.float64)
    h0 = torch.randn(states, N, H, generator=gen, dtype=torch.float64)
    c0 = torch.randn(states, N, H, generator=gen, dtype=torch.float64)
    return x, h0, (c0 if cfg.mode == "LSTM" else None)


def run_module(module, x, h0, c0, training, seed, lengths=None):
    """The module's (output, h_n, c_n) with its masks drawn under ``seed``."""
    module.train(training)
    hx = h0 if c0 is None else (h0, c0)
    torch.manual_seed(seed)
    out, hidden = module(x, hx, lengths=lengths)
    assert module.last_backend == ran_name(module.backend, module, x)  # the one under test ran
    if module.cfg.mode == "GRU":
        return out, hidden, None
    return out, *hidden


def check_forward(module, training, *, seed=5, lengths=None):
    """Module output, h_n, c_n == the NumPy oracle's, with the module's own masks."""
    cfg = module.cfg
    x, h0, c0 = inputs(module)
    noises = [tuple(_to_numpy(m) for m in nz) for nz in draw_noises(module, x, training, seed)]
    got = run_module(module, x, h0, c0, training, seed, lengths)
    args = (
        direction_fn(module, "numpy"),
        x.numpy(),
        h0.numpy(),
        None if c0 is None else c0.numpy(),
        by_direction(cfg, {n: _to_numpy(p) for n, p in module.named_parameters()}),
        noises,
        cfg.num_layers,
        cfg.num_directions,
    )
    want = oracle_stack(*args) if lengths is None else oracle_lengths(*args, lengths)
    for name, g, w in zip(("output", "h_n", "c_n"), got, want, strict=True):
        if w is None:
            assert g is None
            continue
        assert_close(g, torch.from_numpy(np.ascontiguousarray(w)), TOL, name)


def check_gradients(module, training, *, seed=5, lengths=None):
    """Gradients (input, states, every parameter) == those of the torch user loop."""
    cfg = module.cfg
    x, h0, c0 = inputs(module)
    noises = draw_noises(module, x, training, seed)
    names = [n for n, _ in module.named_parameters()]
    states = [s for s in (h0, c0) if s is not None]
    leaves = [t.clone().requires_grad_() for t in (x, *states)]
    x_in, h_in, *c_in = leaves
    got = run_module(module, x_in, h_in, c_in[0] if c_in else None, training, seed, lengths)
    got = [g for g in got if g is not None]
    cotangents = [torch.randn_like(g) for g in got]
    got_grads = torch.autograd.grad(got, [*leaves, *module.parameters()], cotangents)

    # the oracle: its own leaf copies of the parameters, the user loop, autograd
    params = {n: p.detach().clone().requires_grad_() for n, p in module.named_parameters()}
    o_leaves = [t.clone().requires_grad_() for t in (x, *states)]
    args = (
        direction_fn(module, "torch"),
        o_leaves[0],
        o_leaves[1],
        o_leaves[2] if c0 is not None else None,
        by_direction(cfg, params),
        noises,
        cfg.num_layers,
        cfg.num_directions,
    )
    want = oracle_stack(*args) if lengths is None else oracle_lengths(*args, lengths)
    want = [w for w in want if w is not None]
    for name, g, w in zip(("output", "h_n", "c_n"), got, want, strict=False):
        assert_close(g, w, TOL, f"forward {name} vs the user loop")
    want_grads = torch.autograd.grad(want, [*o_leaves, *params.values()], cotangents)
    labels = ["x", "h0", "c0"][: len(leaves)] + names
    for label, g, w in zip(labels, got_grads, want_grads, strict=True):
        assert_close(g, w, TOL, f"d{label}")


# -- the tests ----------------------------------------------------------------------------


def test_np_ln_is_torch_layer_norm():
    """The oracle's LN is F.layer_norm's (eps 1e-5, biased variance), on an offset vector."""
    gen = torch.Generator().manual_seed(0)
    v = 50 + 0.01 * torch.randn(4, 12, generator=gen, dtype=torch.float64)  # eps matters here
    want = F.layer_norm(v, (12,), eps=1e-5)
    assert_close(torch.from_numpy(np_ln(v.numpy())), want, TOL, "np_ln")
    # and the oracle is sensitive to both: the unbiased variance or eps 0 would differ
    unbiased = (v - v.mean(-1, keepdim=True)) / torch.sqrt(v.var(-1, keepdim=True) + 1e-5)
    assert (unbiased - want).abs().max() > 1e-3
    assert (F.layer_norm(v, (12,), eps=0.0) - want).abs().max() > 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_norm_lstm_step_is_functional_layer_norm(backend):
    """One LN-LSTM step from h0 = 0, c0 = 0 written with F.layer_norm directly.

    With h0 = 0 the recurrent LN sees a zero vector (LN(0) = 0): the step is
    o ⊙ tanh(LN(i ⊙ g) γ_c + β_c) with [i, f, g, o] = σ/tanh(LN(x W_ih^T) γ_ih + b).
    """
    m = make_module("LSTM", {"layer_norm": True}, backend).eval()
    x = torch.randn(1, N, IN, dtype=torch.float64)
    out, (h_n, c_n) = m(x)
    w = by_direction(m.cfg, {n: p.detach() for n, p in m.named_parameters()})[0]
    pre = F.layer_norm(x[0] @ w["w_ih"].T, (4 * H,), w["ln_ih"], None, 1e-5) + w["b_ih"]
    pre = pre + w["b_hh"]
    i, _, g, o = pre.chunk(4, dim=1)  # f multiplies c0 = 0
    c = torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, (H,), w["ln_c"], w["ln_c_bias"], 1e-5))
    assert_close(out[0], h, TOL, "h_1")
    assert_close(h_n[0], h, TOL, "h_n")
    assert_close(c_n[0], c, TOL, "c_1")


@pytest.mark.parametrize("training", PHASES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("mode", "opts"), CASES)
def test_forward_matches_numpy(mode, opts, backend, training):
    check_forward(make_module(mode, opts, backend), training)


@pytest.mark.parametrize("training", PHASES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("mode", "opts"), CASES)
def test_gradients_match_user_loop(mode, opts, backend, training):
    check_gradients(make_module(mode, opts, backend), training)


STACKS = [
    pytest.param("LSTM", LSTM_VARIANTS["all"], id="LSTM-all"),
    pytest.param("GRU", GRU_VARIANTS["all"], id="GRU-all"),
    pytest.param(
        "GRU",
        {"recurrent_dropout": 0.3, "zoneout": 0.2, "reset_after": False},
        id="GRU-noise-reset_before",
    ),
]


@pytest.mark.parametrize("training", PHASES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("mode", "opts"), STACKS)
def test_two_layers_bidirectional(mode, opts, backend, training):
    m = make_module(mode, opts, backend, layers=2, bidirectional=True)
    check_forward(m, training)
    check_gradients(m, training)


@pytest.mark.parametrize("training", PHASES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("mode", "opts"), STACKS)
def test_lengths_match_single_sequences(mode, opts, backend, training):
    """Padding: outputs past each length are zero, the state is the last real step's."""
    m = make_module(mode, opts, backend, layers=2, bidirectional=True)
    lengths = torch.tensor(LENGTHS)
    check_forward(m, training, lengths=lengths)
    check_gradients(m, training, lengths=lengths)
    x, h0, c0 = inputs(m)
    out = run_module(m, x, h0, c0, training, 5, lengths)[0]
    for n, length in enumerate(LENGTHS):
        assert torch.count_nonzero(out[length:, n]).item() == 0, f"padding of sequence {n}"


@pytest.mark.parametrize("p", [0.3, 0.6])
@pytest.mark.parametrize("backend", BACKENDS)
def test_recurrent_dropout_in_evaluation_is_torch_nn(backend, p):
    """In evaluation m = 1: the module is torch.nn.LSTM / GRU with the same weights."""
    for mode in ("LSTM", "GRU"):
        m = make_module(mode, {"recurrent_dropout": p}, backend).eval()
        ref = getattr(torch.nn, mode)(IN, H, dtype=torch.float64)
        ref.load_state_dict(m.state_dict())
        x, h0, c0 = inputs(m)
        got = run_module(m, x, h0, c0, False, 0)
        want_out, want_hidden = ref(x, h0 if c0 is None else (h0, c0))
        assert_close(got[0], want_out, TOL, f"{mode} output")
        want_h = want_hidden if mode == "GRU" else want_hidden[0]
        assert_close(got[1], want_h, TOL, f"{mode} h_n")


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_masks_change_with_the_seed(backend):
    """The noise is drawn per call: two seeds, two outputs; one seed, one output."""
    m = make_module("LSTM", {"recurrent_dropout": 0.3, "zoneout": 0.2}, backend)
    x, h0, c0 = inputs(m)
    a = run_module(m, x, h0, c0, True, 1)[0]
    b = run_module(m, x, h0, c0, True, 1)[0]
    c = run_module(m, x, h0, c0, True, 2)[0]
    assert torch.equal(a, b)
    assert (a - c).abs().max().item() > 1e-3


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize(
    "extra", [{}, {"layer_norm": True, "peephole": True}], ids=["plain", "ln-ph"]
)
def test_forget_bias_initialisation(extra, layers):
    """b_f = b: bias_ih's forget block is b, bias_hh's is 0; the rest is torch.nn.LSTM's.

    The variant parameters are drawn after all torch.nn parameters, so the torch.nn ones
    still equal ``torch.nn.LSTM``'s under the same seed; the LN gains start at 1, the cell
    shift at 0, the peepholes are the next U(-1/√H, 1/√H) draws of the generator.
    """
    bound = 1 / math.sqrt(H)
    torch.manual_seed(4)
    ref = torch.nn.LSTM(IN, H, num_layers=layers, bidirectional=True)
    ph_want = [torch.empty(3 * H).uniform_(-bound, bound) for _ in range(2 * layers)]
    torch.manual_seed(4)
    m = lstmkit.LSTM(IN, H, num_layers=layers, bidirectional=True, forget_bias=1.5, **extra)
    ours = dict(m.named_parameters())
    for name, want in ref.named_parameters():
        got = ours[name].detach()
        if name.startswith("bias_"):
            forget = torch.full((H,), 1.5 if name.startswith("bias_ih") else 0.0)
            assert torch.equal(got[H : 2 * H], forget), name
            got, want = torch.cat([got[:H], got[2 * H :]]), torch.cat([want[:H], want[2 * H :]])
        assert torch.equal(got, want.detach()), name
    extra_names = sorted(set(ours) - {n for n, _ in ref.named_parameters()})
    if not extra:
        assert extra_names == []
        return
    k = 0
    for layer in range(layers):
        for suffix in (f"_l{layer}", f"_l{layer}_reverse"):
            assert torch.equal(ours["ln_weight_ih" + suffix].detach(), torch.ones(4 * H))
            assert torch.equal(ours["ln_weight_hh" + suffix].detach(), torch.ones(4 * H))
            assert torch.equal(ours["ln_weight_c" + suffix].detach(), torch.ones(H))
            assert torch.equal(ours["ln_bias_c" + suffix].detach(), torch.zeros(H))
            assert torch.equal(ours["weight_ph" + suffix].detach(), ph_want[k]), suffix
            k += 1
    assert len(extra_names) == 5 * 2 * layers, extra_names
    # reset_parameters() applies forget_bias again
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(7.0)
    m.reset_parameters()
    for name in ("bias_ih_l0", "bias_hh_l0", "bias_ih_l0_reverse"):
        want = 1.5 if name.startswith("bias_ih") else 0.0
        assert torch.equal(ours[name].detach()[H : 2 * H], torch.full((H,), want)), name
