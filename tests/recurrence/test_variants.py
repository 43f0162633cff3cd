"""The cell variants in the engine (docs/variants.md): fused against reference, gradcheck,
dispatch, initialisation, errors.

Oracles: the reference backend (the cell functions, autograd) for the fused kernels'
forward and hand-written backward — both run inside the same ``run_stack``, which draws
the same masks from the same seed; finite differences (gradcheck, float64) for both; and
torch.nn for the base weights under ``forget_bias``. The independent NumPy and plain-torch
implementations of the variant equations are in test_variant_oracles.py.
"""

import itertools
import os
from unittest import mock

import pytest
import torch
from helpers import TOL, assert_close, backend_name, ran_name
from torch.func import functional_call

import lstmkit
from lstmkit.recurrence import gru_variants, kernels, lstm_variants, reference
from lstmkit.recurrence.noise import Noise, sample_noise

LSTM_VARIANTS = {
    "ln": {"layer_norm": True},
    "peephole": {"peephole": True},
    "recdrop": {"recurrent_dropout": 0.3},
    "zoneout": {"zoneout": 0.3},
    "zoneout_cell": {"zoneout_cell": 0.4},
    "ln+peephole": {"layer_norm": True, "peephole": True},
    "all": {
        "layer_norm": True,
        "peephole": True,
        "recurrent_dropout": 0.3,
        "zoneout": 0.2,
        "zoneout_cell": 0.4,
    },
}
GRU_VARIANTS = {
    "ln": {"layer_norm": True},
    "recdrop": {"recurrent_dropout": 0.3},
    "zoneout": {"zoneout": 0.3},
    "recdrop+zoneout-cho": {"recurrent_dropout": 0.3, "zoneout": 0.3, "reset_after": False},
    "all": {"layer_norm": True, "recurrent_dropout": 0.3, "zoneout": 0.3},
}
CASES = [pytest.param("LSTM", kw, id=f"LSTM-{k}") for k, kw in LSTM_VARIANTS.items()] + [
    pytest.param("GRU", kw, id=f"GRU-{k}") for k, kw in GRU_VARIANTS.items()
]
T, N, IN, H = 6, 3, 4, 5


def _module(mode, kw, backend, dtype, layers=1, bidirectional=False, bias=True):
    torch.manual_seed(0)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    m = cls(IN, H, layers, bias=bias, bidirectional=bidirectional, backend=backend, **kw)
    m = m.double()
    with torch.no_grad():  # move the layer-norm gains and shifts off their trivial 1 and 0
        for name, p in m.named_parameters():
            if name.startswith("ln_"):
                p.add_(0.3 * torch.randn_like(p))
    return m.to(dtype)  # float32 modules are the float64 ones rounded


def _run(m, x, lengths, hx, seed=5):
    torch.manual_seed(seed)
    out, state = m(x, hx, lengths=lengths)
    return out, *(state if isinstance(state, tuple) else (state,))


STEPS = ["compiled", "python"]  # the fused kernels' two step implementations (conftest)


@pytest.mark.parametrize("kernel_steps", STEPS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(
    ("layers", "bidirectional", "with_lengths"),
    [(1, False, False), (1, False, True), (2, True, True), (2, True, False)],
    ids=["L1", "L1-lengths", "L2-bi-lengths", "L2-bi"],
)
@pytest.mark.parametrize(("mode", "kw"), CASES)
def test_fused_equals_reference_forward_and_every_gradient(
    mode, kw, layers, bidirectional, with_lengths, train, dtype, kernel_steps
):
    lengths = torch.tensor([T, 3, 1]) if with_lengths else None
    runs = [("reference", dtype), ("fused", dtype)]
    if dtype == torch.float32:
        runs.append(("reference", torch.float64))  # the truth the float32 runs round
    results = {}
    for backend, dt in runs:
        m = _module(mode, kw, backend, dt, layers, bidirectional).train(train)
        torch.manual_seed(1)
        x = torch.randn(T, N, IN, dtype=torch.float64).to(dt).requires_grad_()
        dirs = layers * (2 if bidirectional else 1)
        h0 = torch.randn(dirs, N, H, dtype=torch.float64).to(dt).requires_grad_()
        c0 = torch.randn(dirs, N, H, dtype=torch.float64).to(dt).requires_grad_()
        hx = (h0, c0) if mode == "LSTM" else h0
        outs = _run(m, x, lengths, hx)
        assert m.last_backend == ran_name(backend, m, x)
        torch.manual_seed(2)
        loss = sum((o * torch.randn_like(o, dtype=torch.float64).to(dt)).sum() for o in outs)
        loss.backward()
        grads = [x.grad, h0.grad] + ([c0.grad] if mode == "LSTM" else [])
        grads += [p.grad for p in m.parameters()]
        assert all(g is not None for g in grads)
        names = ["x", "h0", "c0"][: len(grads) - len(list(m.parameters()))]
        results[backend, dt] = (outs, grads, names + [n for n, _ in m.named_parameters()])
    (ref_out, ref_grads, names), (out, grads, _) = (
        results["reference", dtype],
        results["fused", dtype],
    )
    tol = TOL[dtype]
    for a, b in zip(out, ref_out, strict=True):
        assert_close(a, b, tol, "output/state")
    if dtype == torch.float64:  # the exactness check
        for name, a, b in zip(names, grads, ref_grads, strict=True):
            assert_close(a, b, tol, f"grad {name}")
        return
    # float32 gradients (float64 above is the exactness check; this one asks whether the
    # fused kernels are as accurate in float32 as autograd is): the two sum in different
    # orders and the layer norm scales rounding by 1/σ, so on these random nets both
    # backends' errors against the float64 truth range up to ~1e-4 of a gradient's size
    # (measured). Each fused gradient's relative error must stay within 10x the worst of
    # autograd's in the same case (floor 1e-5): a kernel that loses precision is off by
    # far more, a reordered sum is not.
    truth = [t.float() for t in results["reference", torch.float64][1]]

    def relative(g, t):
        return (g - t).abs().max().item() / max(t.abs().max().item(), 1e-3)

    level = max(relative(b, t) for b, t in zip(ref_grads, truth, strict=True))
    for name, a, t in zip(names, grads, truth, strict=True):
        err = relative(a, t)
        assert err <= max(10 * level, 1e-5), f"grad {name}: {err:.2e} vs autograd's {level:.2e}"


def _gradcheck(m, mode, lengths, seed=5):
    names = [n for n, _ in m.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    dirs = m.cfg.num_layers * m.cfg.num_directions
    x = torch.randn(4, 2, IN, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(dirs, 2, H, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(dirs, 2, H, dtype=torch.float64, requires_grad=True)

    def forward(x, h0, *rest):
        hx, flat = ((h0, rest[0]), rest[1:]) if mode == "LSTM" else (h0, rest)
        torch.manual_seed(seed)  # the same masks at every evaluation
        out, hidden = functional_call(
            m, dict(zip(names, flat, strict=True)), (x, hx), {"lengths": lengths}
        )
        return (out, *hidden) if mode == "LSTM" else (out, hidden)

    inputs = (x, h0, c0, *params) if mode == "LSTM" else (x, h0, *params)
    return torch.autograd.gradcheck(forward, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("backend", ["reference", "fused", "fused-python"])
@pytest.mark.parametrize(("mode", "kw"), CASES)
def test_gradcheck_float64_with_lengths(mode, kw, backend, train):
    torch.manual_seed(3)
    m = _module(mode, kw, backend_name(backend), torch.float64).train(train)
    assert _gradcheck(m, mode, torch.tensor([4, 2]))


@pytest.mark.parametrize("kernel_steps", STEPS)
@pytest.mark.parametrize(("mode", "kw"), [CASES[-8], CASES[-1]], ids=["LSTM-all", "GRU-all"])
def test_gradcheck_bidirectional_two_layers_fused(mode, kw, kernel_steps):
    torch.manual_seed(4)
    m = _module(mode, kw, "fused", torch.float64, layers=2, bidirectional=True).train()
    assert _gradcheck(m, mode, torch.tensor([3, 4]))


@pytest.mark.parametrize("kernel_steps", STEPS)
@pytest.mark.parametrize(("mode", "kw"), CASES)
def test_without_bias(mode, kw, kernel_steps):
    outs = {}
    for backend in ("reference", "fused"):
        m = _module(mode, kw, backend, torch.float64, bias=False).train()
        x = torch.randn(T, N, IN, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        out = _run(m, x.requires_grad_(), None, None)[0]
        out.square().sum().backward()
        outs[backend] = [out, x.grad, *(p.grad for p in m.parameters())]
    for a, b in zip(outs["fused"], outs["reference"], strict=True):
        assert_close(a, b, 1e-10)


# -- the noise ----------------------------------------------------------------------------


def test_recurrent_dropout_is_one_mask_per_sequence_and_off_in_eval():
    """Gal & Ghahramani: the same mask at every step; evaluation uses the plain cell."""
    torch.manual_seed(0)
    m = lstmkit.LSTM(IN, H, recurrent_dropout=0.5, backend="reference")
    plain = lstmkit.LSTM(IN, H, backend="reference")
    plain.load_state_dict(m.state_dict())
    x = torch.randn(T, N, IN)
    m.eval()
    assert_close(m(x)[0], plain(x)[0], 0.0)
    m.train()
    seen = []
    original = reference.run_direction

    def spy(cfg, x, h0, c0, w, mask, reverse, noise=None, record=None):
        seen.append(noise)
        return original(cfg, x, h0, c0, w, mask, reverse, noise, record)

    with mock.patch.object(reference, "run_direction", spy):
        m(x)
    mask = seen[0].recurrent
    assert mask.shape == (N, H)  # one (N, P) mask: the same at every step
    assert set(mask.unique().tolist()) <= {0.0, 2.0}  # Bernoulli(1-p) / (1-p)


def test_zoneout_masks_and_evaluation_expectation():
    """Zoneout training: fresh Bernoulli(p) per step; evaluation: h = p h_prev + (1-p) h̃."""
    cfg = lstmkit.LSTM(IN, H, zoneout=0.25, zoneout_cell=0.5).cfg
    torch.manual_seed(0)
    like = torch.empty(())
    noise = sample_noise(cfg, 400, 50, like, training=True)
    assert noise.recurrent is None
    assert noise.zoneout_h.shape == (400, 50, H) and noise.zoneout_c.shape == (400, 50, H)
    # 100k draws each: the means are within 5 standard errors of p
    assert abs(noise.zoneout_h.mean().item() - 0.25) < 5 * (0.25 * 0.75 / 1e5) ** 0.5
    assert abs(noise.zoneout_c.mean().item() - 0.5) < 5 * (0.25 / 1e5) ** 0.5
    assert not torch.equal(noise.zoneout_h[0], noise.zoneout_h[1])  # fresh per step
    assert sample_noise(cfg, 4, 2, like, training=False) == Noise(None, 0.25, 0.5)


@pytest.mark.parametrize("kernel_steps", STEPS)
def test_zoneout_one_step_by_hand(kernel_steps):
    """One step from h0, c0 with eval zoneout p: the mix of the plain cell's step and the
    previous state, weights copied into a plain lstmkit.LSTM (itself checked against
    torch.nn in test_parity)."""
    torch.manual_seed(0)
    m = lstmkit.LSTM(IN, H, zoneout=0.3, zoneout_cell=0.6).double().eval()
    plain = lstmkit.LSTM(IN, H).double()
    plain.load_state_dict(m.state_dict())
    x = torch.randn(1, N, IN, dtype=torch.float64)
    h0, c0 = torch.randn(1, N, H, dtype=torch.float64), torch.randn(1, N, H, dtype=torch.float64)
    _, (h_plain, c_plain) = plain(x, (h0, c0))
    for backend in ("reference", "fused"):
        m.backend = backend
        _, (h, c) = m(x, (h0, c0))
        assert_close(h, 0.3 * h0 + 0.7 * h_plain, 1e-12, backend)
        assert_close(c, 0.6 * c0 + 0.4 * c_plain, 1e-12, backend)


def test_same_seed_same_masks_on_both_backends_and_different_seeds_differ():
    x = torch.randn(T, N, IN)
    outs = {}
    for backend, seed in (("reference", 5), ("fused", 5), ("fused", 6)):
        m = _module("LSTM", {"recurrent_dropout": 0.5, "zoneout": 0.5}, backend, torch.float32)
        outs[backend, seed] = _run(m.train(), x, None, None, seed)[0]
    assert_close(outs["fused", 5], outs["reference", 5], 1e-5)
    assert (outs["fused", 6] - outs["fused", 5]).abs().max() > 1e-2


# -- dispatch -------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "kw"), CASES)
def test_auto_runs_the_fused_variant_kernel_and_native_refuses(mode, kw):
    m = _module(mode, kw, "auto", torch.float32)
    kernels = {"LSTM": lstm_variants.LSTMVariantDirection, "GRU": gru_variants.GRUVariantDirection}
    node = kernels[mode]
    x = torch.randn(T, N, IN)
    with mock.patch.object(node, "apply", wraps=node.apply) as spy:
        m(x)[0].sum().backward()
    assert m.last_backend == "compiled" and spy.call_count == 1
    with torch.no_grad():
        m(x)
    assert m.last_backend == "compiled"
    m.backend = "native"
    with pytest.raises(ValueError, match=r"cannot run this configuration: .*cell variants"):
        m(x)


def test_gate_activations_with_variants_match_the_output():
    m = _module("LSTM", LSTM_VARIANTS["all"], "fused", torch.float64, 2, True).eval()
    x = torch.randn(T, N, IN, dtype=torch.float64)
    gates = m.gate_activations(x)
    out = m(x)[0]
    assert_close(torch.cat([gates["l1"]["h"], gates["l1_reverse"]["h"]], -1), out, 1e-12)


# -- initialisation and parameters -------------------------------------------------------


def test_parameters_names_shapes_and_initial_values():
    torch.manual_seed(0)
    m = lstmkit.LSTM(IN, H, 2, bidirectional=True, layer_norm=True, peephole=True)
    torch.manual_seed(0)
    base = torch.nn.LSTM(IN, H, 2, bidirectional=True)
    params = dict(m.named_parameters())
    for name, p in base.named_parameters():  # the same seed draws torch.nn's weights
        assert torch.equal(params.pop(name), p), name
    for sfx in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        assert torch.equal(params.pop("ln_weight_ih" + sfx), torch.ones(4 * H))
        assert torch.equal(params.pop("ln_weight_hh" + sfx), torch.ones(4 * H))
        assert torch.equal(params.pop("ln_weight_c" + sfx), torch.ones(H))
        assert torch.equal(params.pop("ln_bias_c" + sfx), torch.zeros(H))
        ph = params.pop("weight_ph" + sfx)
        assert ph.shape == (3 * H,) and ph.abs().max() <= H**-0.5 and ph.std() > 0
    assert params == {}
    gru = lstmkit.GRU(IN, H, layer_norm=True)
    assert {n: tuple(p.shape) for n, p in gru.named_parameters() if n.startswith("ln")} == {
        "ln_weight_ih_l0": (3 * H,),
        "ln_weight_hh_l0": (3 * H,),
    }


def test_forget_bias_sets_b_f_and_keeps_torch_nn_weights_otherwise():
    torch.manual_seed(0)
    m = lstmkit.LSTM(IN, H, 2, forget_bias=1.0)
    torch.manual_seed(0)
    base = torch.nn.LSTM(IN, H, 2)
    for name, p in base.named_parameters():
        q = getattr(m, name)
        if name.startswith("bias"):
            value = 1.0 if name.startswith("bias_ih") else 0.0
            assert torch.equal(q[H : 2 * H], torch.full((H,), value)), name
            assert torch.equal(q[:H], p[:H]) and torch.equal(q[2 * H :], p[2 * H :]), name
        else:
            assert torch.equal(q, p), name
    with torch.no_grad():
        m.bias_ih_l0.zero_()
    m.reset_parameters()
    assert torch.equal(m.bias_ih_l0[H : 2 * H], torch.ones(H))
    assert m.backend_for(torch.randn(T, N, IN), needs_grad=True) == "native"  # init only
    assert "forget_bias=1.0" in repr(m)


def test_save_and_load_state_dict_round_trip():
    m = _module("LSTM", LSTM_VARIANTS["all"], "fused", torch.float32).eval()
    other = lstmkit.LSTM(IN, H, **LSTM_VARIANTS["all"]).eval()
    other.load_state_dict(m.state_dict())
    x = torch.randn(T, N, IN)
    assert_close(other(x)[0], m(x)[0], 0.0)


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "error", "match"),
    [
        (lambda: lstmkit.LSTM(2, 4, proj_size=2, peephole=True), ValueError, "proj_size: .*0"),
        (lambda: lstmkit.GRU(2, 4, layer_norm=True, reset_after=False), ValueError, "reset_af"),
        (lambda: lstmkit.LSTM(2, 4, zoneout=1.0), ValueError, r"zoneout: .*\[0, 1\), got 1.0"),
        (lambda: lstmkit.LSTM(2, 4, zoneout_cell=-0.1), ValueError, "zoneout_cell: "),
        (lambda: lstmkit.GRU(2, 4, recurrent_dropout=1), ValueError, "recurrent_dropout: "),
        (lambda: lstmkit.LSTM(2, 4, recurrent_dropout="0.1"), TypeError, "got str"),
        (lambda: lstmkit.LSTM(2, 4, forget_bias=True), TypeError, "forget_bias: .*bool"),
        (lambda: lstmkit.LSTM(2, 4, bias=False, forget_bias=1.0), ValueError, "bias=True"),
        (lambda: lstmkit.GRU(2, 4, peephole=True), TypeError, "peephole"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_option_product_builds_and_runs():
    """Every combination of the LSTM options constructs and runs on both backends."""
    for ln, ph, rd, zo in itertools.product((False, True), repeat=4):
        kw = {"layer_norm": ln, "peephole": ph, "recurrent_dropout": 0.2 * rd, "zoneout": 0.2 * zo}
        for backend in ("reference", "fused"):
            m = _module("LSTM", kw, backend, torch.float64).train()
            out = _run(m, torch.randn(T, N, IN, dtype=torch.float64), None, None)[0]
            assert out.shape == (T, N, H) and torch.isfinite(out).all()


def test_layer_norm_on_one_input_feature_warns():
    """LN of a rank-one projection keeps only the sign of x_t (docs/variants.md)."""
    with pytest.warns(UserWarning, match="keeps only the sign"):
        lstmkit.GRU(1, 4, layer_norm=True)
    x = torch.tensor([[[0.5], [3.0], [-0.5]]])  # one step, three sequences
    torch.manual_seed(0)
    with pytest.warns(UserWarning):
        m = lstmkit.LSTM(1, 4, layer_norm=True)
    gates = m.gate_activations(x)["l0"]["i"][0]
    # from zero states the gates see only LN(x W_ih^T): 0.5 and 3.0 look the same, -0.5 not
    assert torch.allclose(gates[0], gates[1], atol=1e-4)
    assert (gates[0] - gates[2]).abs().max() > 1e-2


# -- the two step implementations of the fused kernels (lstmkit.recurrence.kernels) -----


def _grads_of_sum(mode, kw, steps):
    """out.sum() + h_n.sum(): autograd hands the kernels expanded (stride 0) gradients."""
    with kernels.use(steps):
        m = _module(mode, kw, "fused", torch.float64, 2, True).train()
        x = torch.randn(T, N, IN, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        x.requires_grad_()
        outs = _run(m, x, torch.tensor([T, 2, 4]), None)
        sum(o.sum() for o in outs).backward()
        return [x.grad, *(p.grad for p in m.parameters())]


@pytest.mark.parametrize(("mode", "kw"), [CASES[-8], CASES[-1]], ids=["LSTM-all", "GRU-all"])
def test_compiled_steps_equal_python_steps_under_expanded_gradients(mode, kw):
    for a, b in zip(
        _grads_of_sum(mode, kw, "compiled"), _grads_of_sum(mode, kw, "python"), strict=True
    ):
        assert_close(a, b, 1e-10, "gradient")


@pytest.mark.parametrize(("mode", "kw"), [CASES[0], CASES[-5]], ids=["LSTM-ln", "GRU-ln"])
def test_the_compiled_kernels_are_what_runs(mode, kw):
    """A spy on torch.ops.lstmkit: the compiled steps run one loop per direction, forward
    and backward; the python steps run none."""
    with kernels.use("compiled"):
        ops = kernels.ops()
        assert ops is not None and kernels.implementation() == "compiled"
    m = _module(mode, kw, "fused", torch.float32, bidirectional=True).train()
    x = torch.randn(T, N, IN)
    name = mode.lower()
    calls = {}
    for steps in ("compiled", "python"):
        forward = mock.MagicMock(wraps=getattr(ops, name + "_forward"))
        backward = mock.MagicMock(wraps=getattr(ops, name + "_backward"))
        spied = _Ops(**{name + "_forward": forward, name + "_backward": backward})
        with kernels.use(steps), mock.patch.object(kernels, "_build", return_value=(spied, None)):
            m(x)[0].sum().backward()
        calls[steps] = (forward.call_count, backward.call_count)
    assert calls["compiled"] == (2, 2)  # one loop per direction, each way
    assert calls["python"] == (0, 0)


class _Ops:
    """A stand-in for torch.ops.lstmkit holding the spied kernels."""

    def __init__(self, **kernels_by_name):
        self.__dict__.update(kernels_by_name)


def test_a_failed_build_warns_once_and_runs_the_python_steps(monkeypatch):
    monkeypatch.setattr(kernels, "_build", lambda: (None, "OSError: no compiler here"))
    kernels._warn_once.cache_clear()
    m = _module("LSTM", {"layer_norm": True}, "fused", torch.float64)
    x = torch.randn(T, N, IN, dtype=torch.float64)
    with kernels.use("auto"):
        with pytest.warns(RuntimeWarning, match="could not be built .*no compiler here"):
            got = m(x)[0]
        assert kernels.implementation() == "python"
    with kernels.use("python"):
        assert_close(got, m(x)[0], 0.0, "python steps")
    with kernels.use("compiled"), pytest.raises(RuntimeError, match="no compiler here"):
        m(x)
    kernels._warn_once.cache_clear()


def test_the_step_choice_is_checked(monkeypatch):
    monkeypatch.setenv("LSTMKIT_KERNELS", "fast")
    with pytest.raises(ValueError, match=r"LSTMKIT_KERNELS: expected one of auto, compiled, "
                       r"python, got 'fast'"):  # fmt: skip
        kernels.choice()
    monkeypatch.setenv("LSTMKIT_KERNELS", "python")
    assert kernels.implementation() == "python"
    with pytest.raises(ValueError, match=r"kernels\.use: expected one of"):
        with kernels.use("C++"):
            pass


def test_other_dtypes_run_the_python_steps():
    """The compiled loops are float32/float64 CPU kernels; a bfloat16 module runs the
    python steps (torch calls) and gives the reference backend's result, to bfloat16's
    precision."""
    x = torch.randn(T, N, IN).bfloat16()
    assert kernels.implementation(x) == "python"
    assert kernels.implementation(x.double()) == kernels.implementation()
    outs = {}
    for backend in ("reference", "fused"):
        m = _module("LSTM", LSTM_VARIANTS["all"], backend, torch.float32).bfloat16().eval()
        outs[backend] = m(x)[0].float()
    assert_close(outs["fused"], outs["reference"], 0.05, "bfloat16 output")


def test_the_kernel_source_ships_with_the_package():
    """A wheel must carry variant_loops.cpp: the loops are built from it on first use."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["lstmkit.recurrence.kernels"]
    assert kernels.SOURCE.is_file()
    assert any(fnmatch.fnmatch(kernels.SOURCE.name, p) for p in patterns), patterns
    assert "ninja" in " ".join(config["project"]["dependencies"])


def test_a_failed_build_is_recorded_and_not_retried(monkeypatch, tmp_path):
    """The compiler's first error becomes the reason; later processes read it from the
    cache instead of building again, until the record is deleted."""
    from torch.utils import cpp_extension

    monkeypatch.setenv("LSTMKIT_CACHE", str(tmp_path))
    calls = []

    def failing(*args, **kwargs):
        calls.append(args[0])
        raise RuntimeError(
            "Error building extension 'x'\nFAILED: x.o\nx.cpp:3:1: error: boom\n"
            "ninja: build stopped: subcommand failed."
        )

    monkeypatch.setattr(cpp_extension, "load", failing)
    lib, reason = kernels._build_once()
    assert lib is None and reason == "RuntimeError: x.cpp:3:1: error: boom"
    record = next(tmp_path.glob("kernels/*/build-failed.txt"))
    lib, again = kernels._build_once()
    assert lib is None and again.startswith(reason) and "delete it to retry" in again
    assert len(calls) == 1
    record.unlink()
    kernels._build_once()
    assert len(calls) == 2


def test_a_stale_build_lock_is_removed_and_a_live_one_waited_for(tmp_path):
    import os
    import threading
    import time

    lock, library = tmp_path / "lock", tmp_path / "lib.so"
    lock.touch()
    old = time.time() - kernels.STALE_LOCK_SECONDS - 5
    os.utime(lock, (old, old))
    kernels._clear_stale_lock(lock, library)  # left by a killed build: removed
    assert not lock.exists()
    lock.touch()  # a build in progress elsewhere: finishes after 0.3 s
    threading.Timer(0.3, lock.unlink).start()
    start = time.perf_counter()
    kernels._clear_stale_lock(lock, library)
    assert not lock.exists() and time.perf_counter() - start >= 0.25


@pytest.mark.parametrize(
    ("mode", "kw"),
    [
        pytest.param("LSTM", {}, id="LSTM-plain"),
        pytest.param("LSTM", {"proj_size": 3}, id="LSTM-proj"),
        CASES[-8],
        CASES[-1],
        CASES[-2],
    ],
)
def test_batch_blocks_on_two_threads_equal_the_reference(mode, kw):
    """With two threads the compiled loops cut a batch into blocks of rows, each block's
    whole time loop on its own thread (kernels' on_blocks: 37 rows, two blocks). Every
    output, state and gradient equals the reference backend's, float64, bidirectional,
    two layers, unequal lengths, training masks."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        n = 37
        lengths = torch.randint(1, T + 1, (n,), generator=torch.Generator().manual_seed(3))
        results = []
        for backend in ("reference", "fused"):
            m = _module(mode, kw, backend, torch.float64, 2, True).train()
            torch.manual_seed(1)
            x = torch.randn(T, n, IN, dtype=torch.float64, requires_grad=True)
            h0 = torch.randn(4, n, kw.get("proj_size", H), dtype=torch.float64, requires_grad=True)
            c0 = torch.randn(4, n, H, dtype=torch.float64, requires_grad=True)
            with kernels.use("compiled"):
                outs = _run(m, x, lengths, (h0, c0) if mode == "LSTM" else h0)
                assert m.last_backend == ran_name(backend, m, x)
                torch.manual_seed(2)
                sum((o * torch.randn_like(o)).sum() for o in outs).backward()
            starts = [h0.grad] + ([c0.grad] if mode == "LSTM" else [])
            results.append([*outs, x.grad, *starts, *(p.grad for p in m.parameters())])
        for a, b in zip(*results, strict=True):
            assert_close(b, a, 1e-10, "output, state or gradient")
    finally:
        torch.set_num_threads(before)


FALLBACK_SCRIPT = """
import torch, lstmkit
torch.manual_seed(0)
x = torch.randn(7, 4, 3, dtype=torch.float64, requires_grad=True)
lengths = torch.tensor([7, 3, 5, 1])
for mode, extra in (("LSTM", {"proj_size": 2}), ("GRU", {})):
    ours = getattr(lstmkit, mode)(3, 5, 2, bidirectional=True, backend="compiled", **extra)
    ours = ours.double()
    ref = getattr(torch.nn, mode)(3, 5, 2, bidirectional=True, **extra).double()
    ref.load_state_dict(ours.state_dict())
    got, _ = ours(x, lengths=lengths)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    want, _ = torch.nn.utils.rnn.pad_packed_sequence(ref(packed)[0], total_length=7)
    dx_got, = torch.autograd.grad(got.sum(), x)
    dx_want, = torch.autograd.grad(want.sum(), x)
    print(float((got - want).abs().max()), float((dx_got - dx_want).abs().max()), ours.last_backend)
"""


def test_the_products_fallback_through_aten_equals_torch_nn(tmp_path):
    """LSTMKIT_PRODUCTS=aten: the compiled loops' per-step products through ATen's mm
    instead of BLAS's sgemm_/dgemm_ (where torch's library exports none) — a fresh process,
    as the choice is made once; against torch.nn (float64, lengths, two bidirectional
    layers; the LSTM with a projection, then the GRU)."""
    import subprocess
    import sys

    env = {**os.environ, "LSTMKIT_PRODUCTS": "aten", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", FALLBACK_SCRIPT], env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:  # the LSTM's, then the GRU's
        out_err, grad_err, ran = line.split()
        assert ran == "compiled"
        assert float(out_err) <= TOL[torch.float64] and float(grad_err) <= TOL[torch.float64]
