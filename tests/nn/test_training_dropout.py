"""Dropout between layers (never after the last), with torch.nn's semantics.

Oracles:
* eval mode: the same weights with dropout=0 (dropout must change nothing);
* train mode, p = 1: every unit between the layers is dropped, so layer 2 reads zeros:
  the output equals layer 2 run alone on a zero sequence, and h_n/c_n of layer 1 equal
  layer 1 run alone (values and gradients);
* train mode, 0 < p < 1: with the same RNG seed, the module equals layer 1 →
  ``F.dropout(·, p, training=True)`` → layer 2 composed by hand (reference, fused), and
  torch.nn in train mode (native, which calls the same kernel).
"""

import pytest
import torch
import torch.nn.functional as F
from helpers import BACKENDS, TOL, assert_close, make_ours

T, N, IN, H, P = 5, 3, 4, 6, 3
F64 = torch.float64

CELLS = [
    pytest.param("LSTM", {}, id="LSTM"),
    pytest.param("LSTM", {"proj_size": P}, id="LSTM-proj"),
    pytest.param("GRU", {}, id="GRU"),
]


def _flat(mode, result):
    out, hidden = result
    return [out, hidden] if mode == "GRU" else [out, *hidden]


def _layer(module, layer, backend):
    """A one-layer module of the same kind holding ``module``'s layer ``layer``."""
    cfg = module.cfg
    extra = {"proj_size": cfg.proj_size} if cfg.mode == "LSTM" and cfg.proj_size else {}
    single = make_ours(
        cfg.mode,
        cfg.layer_input_size(layer),
        cfg.hidden_size,
        bidirectional=cfg.bidirectional,
        dtype=F64,
        backend=backend,
        **extra,
    )
    tag = f"_l{layer}"
    single.load_state_dict(
        {n.replace(tag, "_l0"): p for n, p in module.named_parameters() if tag in n}
    )
    return single


def _initial(module, mode):
    cfg = module.cfg
    n = cfg.num_layers * cfg.num_directions
    h0 = torch.randn(n, N, cfg.out_size, dtype=F64, requires_grad=True)
    if mode == "GRU":
        return h0, [h0]
    c0 = torch.randn(n, N, cfg.hidden_size, dtype=F64, requires_grad=True)
    return (h0, c0), [h0, c0]


def _split_hx(hx, mode, rows):
    return hx[rows] if mode == "GRU" else tuple(s[rows] for s in hx)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize(("mode", "extra"), CELLS)
def test_eval_mode_dropout_changes_nothing(mode, extra, bi, backend):
    torch.manual_seed(1)
    with_dropout = make_ours(
        mode,
        IN,
        H,
        num_layers=3,
        bidirectional=bi,
        dropout=0.5,
        dtype=F64,
        backend=backend,
        **extra,
    )
    without = make_ours(
        mode, IN, H, num_layers=3, bidirectional=bi, dtype=F64, backend=backend, **extra
    )
    without.load_state_dict(with_dropout.state_dict())
    with_dropout.eval()
    x = torch.randn(T, N, IN, dtype=F64)
    for lengths in (None, [5, 2, 4]):
        got = _flat(mode, with_dropout(x, lengths=lengths))
        want = _flat(mode, without(x, lengths=lengths))  # training mode, but p = 0
        for g, w in zip(got, want, strict=True):
            assert torch.equal(g, w)


@pytest.mark.parametrize("lengths", [None, [5, 2, 4]], ids=["full", "lengths"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize(("mode", "extra"), CELLS)
def test_dropout_one_feeds_zeros_to_the_next_layer(mode, extra, bi, backend, lengths):
    torch.manual_seed(2)
    module = make_ours(
        mode,
        IN,
        H,
        num_layers=2,
        bidirectional=bi,
        dropout=1.0,
        dtype=F64,
        backend=backend,
        **extra,
    )
    module.train()
    x = torch.randn(T, N, IN, dtype=F64, requires_grad=True)
    hx, states = _initial(module, mode)
    got = _flat(mode, module(x, hx, lengths=lengths))

    d = module.cfg.num_directions
    first, second = _layer(module, 0, backend), _layer(module, 1, backend)
    x_leaf = x.detach().clone().requires_grad_()
    leaves = [s.detach().clone().requires_grad_() for s in states]
    hx_leaf = leaves[0] if mode == "GRU" else tuple(leaves)
    r1 = _flat(mode, first(x_leaf, _split_hx(hx_leaf, mode, slice(0, d)), lengths=lengths))
    zeros = torch.zeros(T, N, module.cfg.layer_input_size(1), dtype=F64)
    r2 = _flat(mode, second(zeros, _split_hx(hx_leaf, mode, slice(d, 2 * d)), lengths=lengths))
    want = [r2[0], *(torch.cat([a, b]) for a, b in zip(r1[1:], r2[1:], strict=True))]
    for name, g, w in zip(("output", "h_n", "c_n"), got, want, strict=False):
        assert_close(g, w, TOL[F64], name)
    assert got[0].abs().max() > 0  # no dropout after the last layer

    cot = [torch.randn_like(w) for w in want]
    got_grads = torch.autograd.grad(got, [x, *states, *module.parameters()], cot)
    oracle_params = dict(first.named_parameters())
    oracle_params |= {n.replace("_l0", "_l1"): p for n, p in second.named_parameters()}
    names = [n for n, _ in module.named_parameters()]
    want_grads = torch.autograd.grad(
        want,
        [x_leaf, *leaves, *(oracle_params[n] for n in names)],
        cot,
        allow_unused=True,
    )
    for name, g, w in zip(
        ["d_input", "d_h0", "d_c0"][: 1 + len(states)] + names, got_grads, want_grads, strict=False
    ):
        assert_close(g, torch.zeros_like(g) if w is None else w, TOL[F64], name)


@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize(("mode", "extra"), CELLS)
def test_dropout_between_layers_is_f_dropout_of_the_merged_output(mode, extra, bi, backend):
    torch.manual_seed(3)
    module = make_ours(
        mode,
        IN,
        H,
        num_layers=2,
        bidirectional=bi,
        dropout=0.4,
        dtype=F64,
        backend=backend,
        **extra,
    )
    module.train()
    x = torch.randn(T, N, IN, dtype=F64)
    torch.manual_seed(99)
    got = _flat(mode, module(x))
    first, second = _layer(module, 0, backend), _layer(module, 1, backend)  # uses the RNG
    torch.manual_seed(99)
    out1, _ = first(x)
    out2, _ = second(F.dropout(out1, 0.4, training=True))
    assert_close(got[0], out2, TOL[F64], "output")
    # and the mask really dropped something (a different seed gives a different output)
    torch.manual_seed(100)
    assert (_flat(mode, module(x))[0] - got[0]).abs().max() > 1e-6


@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_native_dropout_matches_torch_nn_in_train_mode(mode, bi):
    torch.manual_seed(4)
    cls = torch.nn.LSTM if mode == "LSTM" else torch.nn.GRU
    ref = cls(IN, H, num_layers=3, bidirectional=bi, dropout=0.3, dtype=F64)
    module = make_ours(
        mode, IN, H, num_layers=3, bidirectional=bi, dropout=0.3, dtype=F64, backend="native"
    )
    module.load_state_dict(ref.state_dict())
    ref.train()
    module.train()
    x = torch.randn(T, N, IN, dtype=F64)
    torch.manual_seed(5)
    got = _flat(mode, module(x))
    torch.manual_seed(5)
    want = _flat(mode, ref(x))
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_dropout_after_the_last_layer(backend):
    """One layer with p = 1 in train mode is the plain run (and warns that it does nothing)."""
    torch.manual_seed(6)
    with pytest.warns(UserWarning, match="dropout applies between layers"):
        module = make_ours("LSTM", IN, H, dropout=1.0, dtype=F64, backend=backend)
    plain = make_ours("LSTM", IN, H, dtype=F64, backend=backend)
    plain.load_state_dict(module.state_dict())
    module.train()
    x = torch.randn(T, N, IN, dtype=F64)
    for g, w in zip(_flat("LSTM", module(x)), _flat("LSTM", plain(x)), strict=True):
        assert torch.equal(g, w)
