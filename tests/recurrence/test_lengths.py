"""Variable lengths: a padded batch behaves as if each sequence ran alone.

Oracle: the same module run on each sequence cut to its own length (batch of one, no
``lengths``), whose no-lengths path is itself checked against torch.nn in
test_parity.py. Compared: the output on the real steps, h_n and c_n, and the gradients
(of the sum of the per-sequence losses); past each length the output is exactly zero.
"""

import pytest
import torch
from helpers import BACKENDS, TOL, assert_close, backend_name, make_ours

T, N, IN, H, P = 7, 4, 3, 5, 3
LENGTHS = [7, 3, 1, 5]  # unsorted, with a full and a length-1 sequence

CELLS = [
    pytest.param("LSTM", {}, id="LSTM"),
    pytest.param("LSTM", {"proj_size": P}, id="LSTM-proj"),
    pytest.param("GRU", {}, id="GRU"),
    pytest.param("GRU", {"reset_after": False}, id="GRU-reset_before"),
]


def _native_can_run(cell, layers, merge_mode):
    """native.why_not's rule: no Cho GRU; a non-concat merge only with one layer."""
    if cell.id == "GRU-reset_before":
        return False
    return merge_mode == "concat" or layers == 1


def _cases(layer_options, merge_modes):
    for cell in CELLS:
        for layers in layer_options:
            for merge_mode in merge_modes:
                for backend in (*BACKENDS, "fused-python"):  # fused: both step twins
                    if backend == "native" and not _native_can_run(cell, layers, merge_mode):
                        continue  # test_dispatch checks that these raise
                    mode, extra = cell.values
                    case_id = f"{cell.id}-{layers}-{merge_mode}-{backend}"
                    yield pytest.param(mode, extra, layers, merge_mode, backend, id=case_id)


CONCAT_CASES = list(_cases((1, 2), ["concat"]))
MERGE_CASES = list(_cases((1, 2), ["sum", "mean", "mul"]))


def _states(module, mode, batch):
    cfg = module.cfg
    n = cfg.num_layers * cfg.num_directions
    h0 = torch.randn(n, batch, cfg.out_size, dtype=torch.float64, requires_grad=True)
    if mode == "GRU":
        return h0, [h0]
    c0 = torch.randn(n, batch, cfg.hidden_size, dtype=torch.float64, requires_grad=True)
    return (h0, c0), [h0, c0]


def _check_against_single_runs(module, mode, batch_first):
    """Run the padded batch and each sequence alone; compare values and gradients."""
    tol = TOL[torch.float64]
    lengths = torch.tensor(LENGTHS)
    shape = (N, T, IN) if batch_first else (T, N, IN)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    hx, state_leaves = _states(module, mode, N)
    params = list(module.parameters())

    out, hidden = module(x, hx, lengths=lengths)
    h_n, c_n = (hidden, None) if mode == "GRU" else hidden
    out_tm = out.transpose(0, 1) if batch_first else out  # (T, N, ·)
    d_out = torch.randn_like(out_tm)
    d_h = torch.randn_like(h_n)
    d_c = None if c_n is None else torch.randn_like(c_n)

    loss = (out_tm * d_out).sum() + (h_n * d_h).sum()
    if c_n is not None:
        loss = loss + (c_n * d_c).sum()
    grads = torch.autograd.grad(loss, [x, *state_leaves, *params])

    # Padding is exactly zero, in values and in the input gradient.
    x_tm_grad = grads[0].transpose(0, 1) if batch_first else grads[0]
    for n, length in enumerate(LENGTHS):
        assert torch.equal(out_tm[length:, n], torch.zeros_like(out_tm[length:, n]))
        assert torch.equal(x_tm_grad[length:, n], torch.zeros_like(x_tm_grad[length:, n]))

    # The oracle: each sequence alone, with its own slice of the initial state.
    single_loss = 0
    x_leaf = x.detach().clone().requires_grad_()
    state_copies = [s.detach().clone().requires_grad_() for s in state_leaves]
    for n, length in enumerate(LENGTHS):
        x_n = x_leaf[n : n + 1, :length] if batch_first else x_leaf[:length, n : n + 1]
        h0_n = state_copies[0][:, n : n + 1]
        hx_n = h0_n if mode == "GRU" else (h0_n, state_copies[1][:, n : n + 1])
        o_n, hid_n = module(x_n, hx_n)
        o_n_tm = o_n.transpose(0, 1) if batch_first else o_n
        hn_n, cn_n = (hid_n, None) if mode == "GRU" else hid_n
        assert_close(out_tm[:length, n : n + 1], o_n_tm, tol, f"output of sequence {n}")
        assert_close(h_n[:, n : n + 1], hn_n, tol, f"h_n of sequence {n}")
        single_loss = single_loss + (o_n_tm * d_out[:length, n : n + 1]).sum()
        single_loss = single_loss + (hn_n * d_h[:, n : n + 1]).sum()
        if cn_n is not None:
            assert_close(c_n[:, n : n + 1], cn_n, tol, f"c_n of sequence {n}")
            single_loss = single_loss + (cn_n * d_c[:, n : n + 1]).sum()
    want = torch.autograd.grad(single_loss, [x_leaf, *state_copies, *params])
    names = ["d_input", "d_h0", "d_c0"][: 1 + len(state_leaves)]
    names += [n for n, _ in module.named_parameters()]
    for name, g, w in zip(names, grads, want, strict=True):
        assert_close(g, w, tol, name)


@pytest.mark.parametrize("batch_first", [False, True], ids=["tm", "bf"])
@pytest.mark.parametrize("bi", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize(("mode", "extra", "layers", "merge_mode", "backend"), CONCAT_CASES)
def test_padded_batch_equals_single_sequences(
    mode, extra, layers, merge_mode, backend, bi, batch_first
):
    torch.manual_seed(3)
    module = make_ours(
        mode,
        IN,
        H,
        num_layers=layers,
        bidirectional=bi,
        merge_mode=merge_mode,
        batch_first=batch_first,
        dtype=torch.float64,
        backend=backend_name(backend),
        **extra,
    )
    _check_against_single_runs(module, mode, batch_first)


@pytest.mark.parametrize(("mode", "extra", "layers", "merge_mode", "backend"), MERGE_CASES)
def test_merge_modes_with_lengths(mode, extra, layers, merge_mode, backend):
    torch.manual_seed(4)
    module = make_ours(
        mode,
        IN,
        H,
        num_layers=layers,
        bidirectional=True,
        merge_mode=merge_mode,
        dtype=torch.float64,
        backend=backend_name(backend),
        **extra,
    )
    _check_against_single_runs(module, mode, False)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("mode", "extra"), CELLS[:3])
def test_full_lengths_equal_no_lengths(mode, extra, backend):
    """lengths all equal to T is the plain run, for values and gradients."""
    torch.manual_seed(5)
    module = make_ours(
        mode,
        IN,
        H,
        num_layers=2,
        bidirectional=True,
        dtype=torch.float64,
        backend=backend,
        **extra,
    )
    x = torch.randn(T, N, IN, dtype=torch.float64, requires_grad=True)
    out_a, hid_a = module(x, lengths=torch.full((N,), T))
    out_b, hid_b = module(x)
    flat_a = [out_a, *([hid_a] if mode == "GRU" else hid_a)]
    flat_b = [out_b, *([hid_b] if mode == "GRU" else hid_b)]
    cot = [torch.randn_like(t) for t in flat_a]
    for a, b in zip(flat_a, flat_b, strict=True):
        assert_close(a, b, TOL[torch.float64])
    params = list(module.parameters())
    grads_a = torch.autograd.grad(flat_a, [x, *params], cot)
    grads_b = torch.autograd.grad(flat_b, [x, *params], cot)
    for a, b in zip(grads_a, grads_b, strict=True):
        assert_close(a, b, TOL[torch.float64])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("mode", "extra"), CELLS[:3])
def test_lengths_as_list_and_tensor_agree(mode, extra, backend):
    torch.manual_seed(6)
    module = make_ours(
        mode, IN, H, bidirectional=True, dtype=torch.float64, backend=backend, **extra
    )
    x = torch.randn(T, N, IN, dtype=torch.float64)
    out_list, _ = module(x, lengths=LENGTHS)
    out_tensor, _ = module(x, lengths=torch.tensor(LENGTHS, dtype=torch.int32))
    assert torch.equal(out_list, out_tensor)
