"""The native backend with variable lengths runs torch's kernels unpacked.

Oracles: torch.nn with ``pack_padded_sequence`` and the same weights (values and
gradients, float64) over a long batch whose cell state must be held through many padded
steps; the results with zero padding for padding filled with NaN or huge numbers;
the per-sequence flip against its definition; a spy on ``torch.lstm`` showing the kernel
is given the padded batch, one layer and direction per call, never a packed one.
"""

import pytest
import torch
from helpers import TOL, assert_close, make_pair
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.backends import native

F64 = torch.float64


def test_flip_within_reverses_each_sequence_inside_its_length():
    lengths = torch.tensor([3, 1, 5])
    index = native.flip_within(lengths, 5)
    want = torch.tensor([[2, 0, 4], [1, 1, 3], [0, 2, 2], [3, 3, 1], [4, 4, 0]])
    assert torch.equal(index, want)
    assert torch.equal(index.gather(0, index), torch.arange(5)[:, None].expand(5, 3))


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["f32-oneDNN", "f64"])
@pytest.mark.parametrize(("mode", "proj"), [("LSTM", 0), ("LSTM", 3), ("GRU", 0)])
def test_long_unequal_batch_matches_packed_torch_nn(mode, proj, dtype):
    torch.manual_seed(11)
    steps, batch, layers = 37, 6, 2
    ref, ours = make_pair(
        mode, 4, 5, num_layers=layers, bidirectional=True, proj_size=proj, dtype=dtype,
        backend="native", seed=3,
    )  # fmt: skip
    lengths = torch.tensor([37, 1, 20, 36, 2, 17])
    x = torch.randn(steps, batch, 4, dtype=dtype, requires_grad=True)
    out, hidden = ours(x, lengths=lengths)
    packed, hidden_ref = ref(pack_padded_sequence(x, lengths, enforce_sorted=False))
    out_ref, _ = pad_packed_sequence(packed, total_length=steps)
    got = [out, *(hidden if mode == "LSTM" else (hidden,))]
    want = [out_ref, *(hidden_ref if mode == "LSTM" else (hidden_ref,))]
    for name, g, w in zip(("output", "h_n", "c_n"), got, want, strict=False):
        assert_close(g, w, TOL[dtype], name)
    cot = [torch.randn_like(w) for w in want]
    leaves = [x, *ours.parameters()]
    got_grads = torch.autograd.grad(got, leaves, cot)
    want_grads = torch.autograd.grad(want, [x, *ref.parameters()], cot)
    for g, w in zip(got_grads, want_grads, strict=True):
        assert_close(g, w, TOL[dtype], "gradient")


def test_lengths_reach_the_kernel_unpacked(monkeypatch):
    seen = []
    kernel = torch.lstm

    def spy(*args):
        seen.append(args[0])
        return kernel(*args)

    monkeypatch.setattr(native.torch, "lstm", spy)
    _, ours = make_pair("LSTM", 4, 5, num_layers=2, bidirectional=True, backend="native")
    x = torch.randn(9, 3, 4, dtype=F64)
    ours(x, lengths=torch.tensor([9, 4, 2]))
    # one call per layer and direction, the padding feature appended to the inputs
    assert [tuple(x.shape) for x in seen] == [(9, 3, 5)] * 2 + [(9, 3, 11)] * 2


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_values_in_the_padding_reach_nothing(mode):
    """Padding filled with NaN or huge values gives the results of zero padding, and
    finite gradients (the kernel never reads it)."""
    torch.manual_seed(4)
    _, ours = make_pair(mode, 4, 5, num_layers=2, bidirectional=True, backend="native")
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(6, 3, 4, dtype=F64)
    padding = torch.arange(6)[:, None] >= lengths[None]
    results = []
    for fill in (0.0, float("nan"), 1e30):
        leaf = x.masked_fill(padding[..., None], fill).requires_grad_()
        out, hidden = ours(leaf, lengths=lengths)
        states = hidden if mode == "LSTM" else (hidden,)
        grads = torch.autograd.grad(
            [out.sum(), *(s.sum() for s in states)], [leaf, *ours.parameters()]
        )
        results.append([out, *states, *grads])
    for other in results[1:]:
        for got, want in zip(other, results[0], strict=True):
            assert torch.isfinite(got).all()
            assert_close(got, want, TOL[F64], "with a filled padding")
