"""The engine on a CUDA device: every backend and variant, against torch.nn (cuDNN) and the CPU.

Skipped where torch sees no GPU (CI); run on a lent GPU machine with
``python -m pytest tests/backends/test_cuda.py``. Oracles: torch.nn's modules on the same device
with the same weights (cuDNN), the same lstmkit module on the CPU, and finite differences
(gradcheck, float64). ``native`` must hand cuDNN weights laid out in one buffer (as
``torch.nn.LSTM.flatten_parameters`` does), so cuDNN copies nothing per call; the check is
on the storage itself, since PyTorch's warning about it may be issued once per process.
"""

import os
import warnings

import pytest
import torch
from helpers import TOL, assert_close, make_pair, outputs_of

import lstmkit

DEVICE = torch.device(os.environ.get("LSTMKIT_TEST_DEVICE", "cuda"))
pytestmark = pytest.mark.skipif(
    DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="no CUDA device"
)
T, N, IN, H, P = 9, 4, 5, 6, 3
LENGTHS = [9, 4, 7, 1]


def _flat(m) -> list[torch.Tensor]:
    return [t for w in m.direction_weights() for t in w if t is not None]


def _assert_one_buffer(m, like) -> None:
    """Every weight native passes is a view into one storage, at the offsets where torch.nn
    (``like``, flattened by torch) lays them out for cuDNN."""
    flat = _flat(m)
    storages = {t.untyped_storage().data_ptr() for t in flat}
    assert len(storages) == 1, f"weights in {len(storages)} storages, expected 1"
    offsets = [t.storage_offset() for t in flat]
    want = [t.storage_offset() for t in like._flat_weights]
    assert offsets == want, f"weights at offsets {offsets}, torch.nn's at {want}"


def _configs():
    for mode in ("LSTM", "GRU"):
        for layers, bi in ((1, False), (2, True)):
            for proj in (0, P) if mode == "LSTM" else (0,):
                for lengths in (False, True):
                    name = f"{mode}-L{layers}-{'bi' if bi else 'uni'}-p{proj}" + (
                        "-lengths" if lengths else ""
                    )
                    yield pytest.param(mode, layers, bi, proj, lengths, id=name)


CONFIGS = list(_configs())


def _forward_backward(m, x, lengths, seed=0):
    """Outputs and gradients (input, every parameter) under a fixed random cotangent."""
    x = x.detach().clone().requires_grad_()
    if lengths is None:
        outs = outputs_of(m.mode, m(x))
    else:  # torch.nn takes a packed sequence; lstmkit the same, so both see one input
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, state = m(packed)
        padded, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])
        outs = outputs_of(m.mode, (padded, state))
    gen = torch.Generator().manual_seed(seed)
    cots = [torch.randn(o.shape, generator=gen, dtype=o.dtype).to(o.device) for o in outs]
    params = [p for _, p in sorted(m.named_parameters())]
    grads = torch.autograd.grad(outs, [x, *params], cots)
    return [o.detach() for o in outs], list(grads)


@pytest.mark.parametrize(("mode", "layers", "bi", "proj", "with_lengths"), CONFIGS)
def test_native_on_cuda_matches_cudnn_with_weights_in_one_buffer(
    mode, layers, bi, proj, with_lengths
):
    ref, ours = make_pair(
        mode, IN, H, num_layers=layers, bidirectional=bi, proj_size=proj, backend="native"
    )
    ref, ours = ref.to(DEVICE), ours.to(DEVICE)
    _assert_one_buffer(ours, like=ref)
    x = torch.randn(T, N, IN, dtype=torch.float64, device=DEVICE)
    lengths = torch.tensor(LENGTHS) if with_lengths else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got_out, got_grad = _forward_backward(ours, x, lengths)
    assert ours.last_backend == "native"
    copies = [w for w in caught if "contiguous chunk" in str(w.message)]
    assert not copies, f"cuDNN copied the weights: {copies[0].message}"
    want_out, want_grad = _forward_backward(ref, x, lengths)
    for k, (g, w) in enumerate(zip(got_out + got_grad, want_out + want_grad, strict=True)):
        assert_close(g, w, TOL[torch.float64], f"tensor {k}")


def test_weights_stay_in_one_buffer_through_load_and_optimizer_steps():
    """load_state_dict copies into the buffer, an optimizer updates it in place: after
    three Adam steps on both, lstmkit on cuDNN still equals torch.nn."""
    ref, ours = make_pair("LSTM", IN, H, num_layers=2, bidirectional=True, backend="native")
    ref, ours = ref.to(DEVICE), ours.to(DEVICE)
    built = lstmkit.LSTM(IN, H, 2, bidirectional=True, device=DEVICE, dtype=torch.float64)
    _assert_one_buffer(built, like=ref)  # built on the device: flattened by the constructor
    built.load_state_dict(ref.state_dict())
    _assert_one_buffer(built, like=ref)
    x = torch.randn(T, N, IN, dtype=torch.float64, device=DEVICE)
    for model in (ref, ours, built):
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(3):
            opt.zero_grad()
            model(x)[0].square().mean().backward()
            opt.step()
    _assert_one_buffer(ours, like=ref)
    for model in (ours, built):
        for name, p in ref.named_parameters():
            assert_close(getattr(model, name), p, 1e-9, name)


@pytest.mark.parametrize("backend", ["fused", "reference"])
@pytest.mark.parametrize(("mode", "layers", "bi", "proj", "with_lengths"), CONFIGS)
def test_fused_and_reference_on_cuda_match_cudnn(mode, layers, bi, proj, with_lengths, backend):
    ref, ours = make_pair(
        mode, IN, H, num_layers=layers, bidirectional=bi, proj_size=proj, backend=backend
    )
    ref, ours = ref.to(DEVICE), ours.to(DEVICE)
    x = torch.randn(T, N, IN, dtype=torch.float64, device=DEVICE)
    lengths = torch.tensor(LENGTHS) if with_lengths else None
    got_out, got_grad = _forward_backward(ours, x, lengths)
    assert ours.last_backend == {"fused": "python-steps"}.get(backend, backend)  # on a GPU
    want_out, want_grad = _forward_backward(ref, x, lengths)
    for k, (g, w) in enumerate(zip(got_out + got_grad, want_out + want_grad, strict=True)):
        assert_close(g, w, TOL[torch.float64], f"tensor {k}")


VARIANTS = [
    pytest.param("LSTM", {"layer_norm": True, "peephole": True}, id="LSTM-ln+peephole"),
    pytest.param("LSTM", {"zoneout": 0.2, "zoneout_cell": 0.3}, id="LSTM-zoneout"),
    pytest.param("LSTM", {"recurrent_dropout": 0.3, "forget_bias": 1.0}, id="LSTM-recdrop"),
    pytest.param("GRU", {"layer_norm": True, "zoneout": 0.2}, id="GRU-ln+zoneout"),
    pytest.param("GRU", {"recurrent_dropout": 0.3, "reset_after": False}, id="GRU-cho-recdrop"),
]


def _variant(mode, kw, backend):
    torch.manual_seed(0)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    m = cls(IN, H, 2, bidirectional=True, backend=backend, dtype=torch.float64, **kw)
    with torch.no_grad():  # layer-norm gains and shifts off their trivial 1 and 0
        for name, p in m.named_parameters():
            if name.startswith("ln_"):
                p.add_(0.3 * torch.randn_like(p))
    return m


def _run_seeded(m, x, lengths, seed=3):
    torch.manual_seed(seed)  # seeds the CPU and every CUDA generator: the same masks
    out, state = m(x, lengths=lengths)
    outs = [out, *(state if isinstance(state, tuple) else (state,))]
    params = [p for _, p in sorted(m.named_parameters())]
    grads = torch.autograd.grad(outs, [x, *params], [torch.ones_like(o) for o in outs])
    return [o.detach() for o in outs] + list(grads)


@pytest.mark.parametrize(("mode", "kw"), VARIANTS)
def test_variants_on_cuda(mode, kw):
    """Evaluation: fused on the GPU equals the reference cells on the CPU (no masks).
    Training: fused equals reference on the GPU under one seed (the same CUDA masks)."""
    x_cpu = torch.randn(T, N, IN, dtype=torch.float64, requires_grad=True)
    x = x_cpu.detach().to(DEVICE).requires_grad_()
    lengths = torch.tensor(LENGTHS)
    want = _run_seeded(_variant(mode, kw, "reference").eval(), x_cpu, lengths)
    fused = _variant(mode, kw, "fused").to(DEVICE).eval()
    got = _run_seeded(fused, x, lengths)
    assert fused.last_backend == "python-steps"  # the compiled loops are CPU kernels
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_close(g.cpu(), w, TOL[torch.float64], f"eval tensor {k}")
    reference = _variant(mode, kw, "reference").to(DEVICE).train()
    want = _run_seeded(reference, x, lengths)
    got = _run_seeded(fused.train(), x, lengths)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_close(g, w, TOL[torch.float64], f"train tensor {k}")


@pytest.mark.parametrize(("mode", "kw"), VARIANTS[:1] + VARIANTS[3:4])
def test_fused_variant_backward_on_cuda_passes_gradcheck(mode, kw):
    m = _variant(mode, kw, "fused").to(DEVICE).eval()
    x = torch.randn(5, 2, IN, dtype=torch.float64, device=DEVICE, requires_grad=True)

    def f(inp):
        out, _ = m(inp, lengths=torch.tensor([5, 3]))
        return out

    assert torch.autograd.gradcheck(f, (x,), atol=1e-7)


@pytest.mark.parametrize("train", [True, False], ids=["train", "inference"])
def test_auto_on_cuda_runs_cudnn_for_plain_cells_and_fused_for_variants(train):
    x = torch.randn(T, N, IN, device=DEVICE, requires_grad=train)
    for mode in ("LSTM", "GRU"):
        cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
        plain = cls(IN, H, bidirectional=True, device=DEVICE)
        with torch.set_grad_enabled(train):
            plain(x, lengths=torch.tensor(LENGTHS))
        assert plain.last_backend == "native", mode
        variant = cls(IN, H, layer_norm=True, device=DEVICE)
        with torch.set_grad_enabled(train):
            variant(x)
        assert variant.last_backend == "python-steps", mode
