"""Parity with torch.nn.LSTM / torch.nn.GRU, forward and backward, over the option product.

Oracle: torch.nn's modules with the same weights (copied with ``load_state_dict``). The
backward is compared under random cotangents for every output (output, h_n, c_n), for
the gradients w.r.t. the input, the initial states and every parameter.
"""

import itertools

import pytest
import torch
from helpers import (
    BACKENDS,
    TOL,
    assert_close,
    backend_name,
    initial_state,
    make_pair,
    outputs_of,
    ran_name,
    state_leaves,
)
from torch.nn.utils.rnn import pack_padded_sequence

import lstmkit

T, N, IN, H, P = 7, 3, 5, 6, 4


def _configs():
    for mode, layers, bi, batch_first, bias in itertools.product(
        ("LSTM", "GRU"), (1, 2), (False, True), (False, True), (True, False)
    ):
        for proj in (0, P) if mode == "LSTM" else (0,):
            name = (
                f"{mode}-L{layers}-{'bi' if bi else 'uni'}-{'bf' if batch_first else 'tm'}"
                f"-{'bias' if bias else 'nobias'}-p{proj}"
            )
            yield pytest.param(mode, layers, bi, batch_first, bias, proj, id=name)


CONFIGS = list(_configs())


def _grads(outputs, cotangents, leaves):
    return torch.autograd.grad(outputs, leaves, cotangents)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("backend", [*BACKENDS, "fused-python"])  # fused: both step twins
@pytest.mark.parametrize(("mode", "layers", "bi", "batch_first", "bias", "proj"), CONFIGS)
def test_forward_backward_matches_torch_nn(
    mode, layers, bi, batch_first, bias, proj, backend, dtype
):
    ref, ours = make_pair(
        mode,
        IN,
        H,
        num_layers=layers,
        bidirectional=bi,
        batch_first=batch_first,
        bias=bias,
        proj_size=proj,
        dtype=dtype,
        backend=backend_name(backend),
        seed=11,
    )
    tol = TOL[dtype]
    shape = (N, T, IN) if batch_first else (T, N, IN)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    num_states = layers * (2 if bi else 1)
    hx = initial_state(mode, num_states, N, H, proj or H, dtype)
    x_ref = x.detach().clone().requires_grad_()
    hx_ref = (
        hx.detach().clone().requires_grad_()
        if mode == "GRU"
        else tuple(s.detach().clone().requires_grad_() for s in hx)
    )

    expected_backend = ours.backend_for(x)
    assert expected_backend == ran_name(backend, ours, x) or backend == "auto"
    got = outputs_of(mode, ours(x, hx))
    want = outputs_of(mode, ref(x_ref, hx_ref))
    assert ours.last_backend == expected_backend
    for name, g, w in zip(("output", "h_n", "c_n")[: len(want)], got, want, strict=True):
        assert_close(g, w, tol, name)

    cotangents = [torch.randn_like(w) for w in want]
    ours_params = dict(ours.named_parameters())
    ref_params = dict(ref.named_parameters())
    assert list(ours_params) == list(ref_params)
    got_grads = _grads(got, cotangents, [x, *state_leaves(mode, hx), *ours_params.values()])
    want_grads = _grads(
        want, cotangents, [x_ref, *state_leaves(mode, hx_ref), *ref_params.values()]
    )
    names = ["d_input", *(["d_h0"] if mode == "GRU" else ["d_h0", "d_c0"]), *ref_params]
    for name, g, w in zip(names, got_grads, want_grads, strict=True):
        assert_close(g, w, tol, name)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_saturated_gates_match_torch_nn(mode):
    """Inputs of ±1e3: pre-activations of hundreds, where e^{-z} overflows float32 and
    σ(z) = 1/(1 + e^{-z}) must come out 0 (a fast reciprocal, an estimate plus a Newton
    step, gives inf·0 = NaN there) and tanh ±1; outputs and every gradient as torch.nn's.
    H = 37: whole vectors and a tail."""
    ref, ours = make_pair(
        mode, IN, 37, bidirectional=True, backend="fused", dtype=torch.float32, seed=5
    )
    assert ours.backend_for(torch.zeros(T, N, IN)) == "compiled"
    x = (1e3 * torch.randn(T, N, IN)).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    got, want = outputs_of(mode, ours(x)), outputs_of(mode, ref(x_ref))
    for name, g, w in zip(("output", "h_n", "c_n")[: len(want)], got, want, strict=True):
        assert torch.isfinite(g).all(), name
        assert_close(g, w, TOL[torch.float32], name)
    cotangents = [torch.randn_like(w) for w in want]
    leaves = [x, *ours.parameters()]
    got_grads = _grads(got, cotangents, leaves)
    want_grads = _grads(want, cotangents, [x_ref, *ref.parameters()])
    names = ["d_input", *dict(ref.named_parameters())]
    for name, g, w in zip(names, got_grads, want_grads, strict=True):
        assert torch.isfinite(g).all(), name
        # relative to the gradient's size: a weight's is δG x, with x in the thousands
        assert_close(g, w, TOL[torch.float32] * max(1.0, float(w.abs().max())), name)


# -- parameters: names, shapes, state_dict both ways, initialisation ----------------------


def _module_kwargs():
    for mode, layers, bi, bias in itertools.product(
        ("LSTM", "GRU"), (1, 2), (False, True), (True, False)
    ):
        for proj in (0, P) if mode == "LSTM" else (0,):
            kwargs = {"num_layers": layers, "bidirectional": bi, "bias": bias}
            if proj:
                kwargs["proj_size"] = proj
            name = (
                f"{mode}-L{layers}-{'bi' if bi else 'uni'}-{'bias' if bias else 'nobias'}-p{proj}"
            )
            yield pytest.param(mode, kwargs, id=name)


MODULE_KWARGS = list(_module_kwargs())


def _classes(mode):
    if mode == "LSTM":
        return torch.nn.LSTM, lstmkit.LSTM
    return torch.nn.GRU, lstmkit.GRU


@pytest.mark.parametrize(("mode", "kwargs"), MODULE_KWARGS)
def test_parameter_names_and_shapes_equal_torch(mode, kwargs):
    torch_cls, ours_cls = _classes(mode)
    ref, ours = torch_cls(IN, H, **kwargs), ours_cls(IN, H, **kwargs)
    want = [(n, tuple(p.shape)) for n, p in ref.named_parameters()]
    got = [(n, tuple(p.shape)) for n, p in ours.named_parameters()]
    assert got == want
    assert list(ours.state_dict()) == list(ref.state_dict())


@pytest.mark.parametrize(("mode", "kwargs"), MODULE_KWARGS)
def test_same_seed_gives_torch_nn_initial_parameters(mode, kwargs):
    torch_cls, ours_cls = _classes(mode)
    torch.manual_seed(2024)
    ref = torch_cls(IN, H, **kwargs)
    torch.manual_seed(2024)
    ours = ours_cls(IN, H, **kwargs)
    for (name, p_ref), (_, p_ours) in zip(
        ref.named_parameters(), ours.named_parameters(), strict=True
    ):
        assert torch.equal(p_ours, p_ref), name


@pytest.mark.parametrize(("mode", "kwargs"), MODULE_KWARGS)
def test_state_dict_loads_both_ways(mode, kwargs):
    torch_cls, ours_cls = _classes(mode)
    x = torch.randn(T, N, IN, dtype=torch.float64)

    # torch -> ours: identical tensors and identical outputs
    torch.manual_seed(1)
    ref = torch_cls(IN, H, **kwargs, dtype=torch.float64)
    torch.manual_seed(2)
    ours = ours_cls(IN, H, **kwargs, dtype=torch.float64)
    ours.load_state_dict(ref.state_dict())
    for name, value in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[name], value), name
    assert_close(ours(x)[0], ref(x)[0], TOL[torch.float64], "torch->ours output")

    # ours -> torch
    torch.manual_seed(3)
    ours = ours_cls(IN, H, **kwargs, dtype=torch.float64)
    torch.manual_seed(4)
    ref = torch_cls(IN, H, **kwargs, dtype=torch.float64)
    ref.load_state_dict(ours.state_dict())
    for name, value in ours.state_dict().items():
        assert torch.equal(ref.state_dict()[name], value), name
    assert_close(ours(x)[0], ref(x)[0], TOL[torch.float64], "ours->torch output")


# -- PackedSequence input -------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("enforce_sorted", [False, True], ids=["unsorted", "sorted"])
@pytest.mark.parametrize(
    ("mode", "proj"), [("LSTM", 0), ("LSTM", P), ("GRU", 0)], ids=["LSTM", "LSTM-proj", "GRU"]
)
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
def test_packed_sequence_matches_torch_nn(mode, proj, bi, enforce_sorted, backend):
    dtype = torch.float64
    tol = TOL[dtype]
    layers = 2
    ref, ours = make_pair(
        mode,
        IN,
        H,
        num_layers=layers,
        bidirectional=bi,
        proj_size=proj,
        dtype=dtype,
        backend=backend,
        seed=5,
    )
    lengths = torch.tensor([7, 6, 4]) if enforce_sorted else torch.tensor([4, 7, 6])
    x = torch.randn(T, N, IN, dtype=dtype, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    hx = initial_state(mode, layers * (2 if bi else 1), N, H, proj or H, dtype)
    hx_ref = (
        hx.detach().clone().requires_grad_()
        if mode == "GRU"
        else tuple(s.detach().clone().requires_grad_() for s in hx)
    )
    packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    packed_ref = pack_padded_sequence(x_ref, lengths, enforce_sorted=enforce_sorted)

    got = outputs_of(mode, ours(packed, hx))
    want = outputs_of(mode, ref(packed_ref, hx_ref))
    out, out_ref = got[0], want[0]
    assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
    assert torch.equal(out.batch_sizes, out_ref.batch_sizes)
    if enforce_sorted:
        assert out.sorted_indices is None and out_ref.sorted_indices is None
        assert out.unsorted_indices is None and out_ref.unsorted_indices is None
    else:
        assert torch.equal(out.sorted_indices, out_ref.sorted_indices)
        assert torch.equal(out.unsorted_indices, out_ref.unsorted_indices)
    assert_close(out.data, out_ref.data, tol, "output.data")
    for name, g, w in zip(("h_n", "c_n")[: len(want) - 1], got[1:], want[1:], strict=True):
        assert_close(g, w, tol, name)

    cot = [torch.randn_like(out_ref.data), *(torch.randn_like(w) for w in want[1:])]
    leaves = [x, *state_leaves(mode, hx), *ours.parameters()]
    leaves_ref = [x_ref, *state_leaves(mode, hx_ref), *ref.parameters()]
    got_grads = _grads([out.data, *got[1:]], cot, leaves)
    want_grads = _grads([out_ref.data, *want[1:]], cot, leaves_ref)
    names = ["d_input", "d_h0", *([] if mode == "GRU" else ["d_c0"])]
    names += [n for n, _ in ref.named_parameters()]
    for name, g, w in zip(names, got_grads, want_grads, strict=True):
        assert_close(g, w, tol, name)


# -- unbatched (2-D) input ------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("mode", "proj"), [("LSTM", 0), ("LSTM", P), ("GRU", 0)], ids=["LSTM", "LSTM-proj", "GRU"]
)
@pytest.mark.parametrize(("layers", "bi"), [(1, False), (2, True)], ids=["L1-uni", "L2-bi"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("pass_hx", [False, True], ids=["no-hx", "hx"])
def test_unbatched_input_matches_torch_nn(mode, proj, layers, bi, backend, dtype, pass_hx):
    tol = TOL[dtype]
    ref, ours = make_pair(
        mode,
        IN,
        H,
        num_layers=layers,
        bidirectional=bi,
        proj_size=proj,
        dtype=dtype,
        backend=backend,
        seed=9,
    )
    x = torch.randn(T, IN, dtype=dtype, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    if pass_hx:
        hx = initial_state(mode, layers * (2 if bi else 1), 1, H, proj or H, dtype, unbatched=True)
        hx_ref = (
            hx.detach().clone().requires_grad_()
            if mode == "GRU"
            else tuple(s.detach().clone().requires_grad_() for s in hx)
        )
        state, state_ref = state_leaves(mode, hx), state_leaves(mode, hx_ref)
    else:
        hx = hx_ref = None
        state, state_ref = [], []

    got = outputs_of(mode, ours(x, hx))
    want = outputs_of(mode, ref(x_ref, hx_ref))
    for name, g, w in zip(("output", "h_n", "c_n")[: len(want)], got, want, strict=True):
        assert_close(g, w, tol, name)

    cot = [torch.randn_like(w) for w in want]
    got_grads = _grads(got, cot, [x, *state, *ours.parameters()])
    want_grads = _grads(want, cot, [x_ref, *state_ref, *ref.parameters()])
    names = ["d_input", *(["d_h0", "d_c0"][: len(state)])]
    names += [n for n, _ in ref.named_parameters()]
    for name, g, w in zip(names, got_grads, want_grads, strict=True):
        assert_close(g, w, tol, name)


@pytest.mark.parametrize("proj", [0, 1], ids=["p0", "p1"])
def test_expanded_and_single_row_states_match_torch_nn(proj):
    """Initial states whose rows repeat one row (``expand``: a row stride of 0) and a
    batch of one with a one-wide projection (a (1, 1) state, whose strides say nothing):
    the compiled loops' products must not hand such strides to BLAS as they are."""
    for batch in (1, 4):
        ref, ours = make_pair(
            "LSTM", IN, H, proj_size=proj, backend="fused", dtype=torch.float64, seed=3
        )
        width = proj or H
        h0 = torch.randn(1, 1, width, dtype=torch.float64).expand(1, batch, width)
        c0 = torch.randn(1, 1, H, dtype=torch.float64).expand(1, batch, H)
        x = torch.randn(T, batch, IN, dtype=torch.float64)
        got, want = outputs_of("LSTM", ours(x, (h0, c0))), outputs_of("LSTM", ref(x, (h0, c0)))
        for name, g, w in zip(("output", "h_n", "c_n"), got, want, strict=True):
            assert_close(g, w, TOL[torch.float64], f"{name}, batch {batch}")
