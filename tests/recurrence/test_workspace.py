"""The cache of big step buffers (lstmkit.recurrence.workspace): a buffer is handed out
again only when nothing refers to it, and the variant kernels stay exact with it.

Oracles: the storage identity of the buffers handed out (data pointers), and the same
training step with the cache turned off (LSTMKIT_WORKSPACE_MB=0), bit for bit.
"""

import pytest
import torch
from helpers import assert_close

import lstmkit
from lstmkit.recurrence import workspace

BIG = (64, 64, 64)  # 1 MiB of float32: above workspace.MIN_BYTES


@pytest.fixture(autouse=True)
def empty_cache():
    workspace.release()
    yield
    workspace.release()


def test_a_free_buffer_is_reused_and_one_in_use_is_not():
    like = torch.empty(0)
    a = workspace.empty(like, *BIG)
    b = workspace.empty(like, *BIG)  # a is still referenced: a second buffer
    assert a.data_ptr() != b.data_ptr()
    ptr = a.data_ptr()
    del a
    c = workspace.empty(like, *BIG)
    assert c.data_ptr() == ptr  # a's memory, now that nothing refers to it
    view = c[1:3]
    del c
    d = workspace.empty(like, *BIG)  # a view keeps the storage in use
    assert d.data_ptr() not in (ptr, b.data_ptr())
    assert view.untyped_storage().data_ptr() == ptr
    assert workspace.cached_bytes() == 3 * 64**3 * 4


def test_small_buffers_other_shapes_and_dtypes_are_separate():
    like = torch.empty(0)
    small = workspace.empty(like, 4, 4)
    assert workspace.cached_bytes() == 0 and small.shape == (4, 4)
    a = workspace.empty(like, *BIG)
    ptr = a.data_ptr()
    del a
    other = workspace.empty(like, 32, 128, 64)  # same bytes, another shape
    double = workspace.empty(torch.empty(0, dtype=torch.float64), *BIG)
    assert other.data_ptr() != ptr and double.data_ptr() != ptr and double.dtype == torch.float64


def test_the_limit_and_release(monkeypatch):
    like = torch.empty(0)
    monkeypatch.setenv("LSTMKIT_WORKSPACE_MB", "2.5")  # two 1 MiB buffers fit, not three
    kept = [workspace.empty(like, *BIG) for _ in range(3)]
    assert workspace.cached_bytes() == 2 * (1 << 20)
    del kept
    workspace.empty(like, 64, 64, 128)  # 2 MiB: the free ones make room
    assert workspace.cached_bytes() == 2 * (1 << 20)
    workspace.release()
    assert workspace.cached_bytes() == 0
    monkeypatch.setenv("LSTMKIT_WORKSPACE_MB", "0")  # off
    workspace.empty(like, *BIG)
    assert workspace.cached_bytes() == 0
    errors = (("lots", "a number of MiB, got 'lots'"), ("-1", "a number >= 0, got '-1'"))
    for bad, message in errors:
        monkeypatch.setenv("LSTMKIT_WORKSPACE_MB", bad)
        with pytest.raises(ValueError, match=f"LSTMKIT_WORKSPACE_MB: expected {message}"):
            workspace.empty(like, *BIG)


def _train_step(layer_norm: bool, retain: bool = False):
    torch.manual_seed(0)
    m = lstmkit.LSTM(16, 64, num_layers=2, bidirectional=True, layer_norm=layer_norm,
                     zoneout=0.1, backend="fused")  # fmt: skip
    x = torch.randn(50, 32, 16, requires_grad=True)
    out = m(x)[0]
    loss = (out * torch.linspace(-1, 1, out.shape[-1])).sum()
    loss.backward(retain_graph=retain)
    grads = [x.grad.clone(), *(p.grad.clone() for p in m.parameters())]
    if retain:  # the saved buffers must still hold this step's values
        for p in [x, *m.parameters()]:
            p.grad = None
        loss.backward()
        again = [x.grad, *(p.grad for p in m.parameters())]
        for a, b in zip(grads, again, strict=True):
            assert_close(a, b, 0.0, "second backward through the retained graph")
    return out.detach(), grads


@pytest.mark.parametrize("layer_norm", [False, True], ids=["zoneout", "ln-zoneout"])
def test_cached_buffers_change_nothing(monkeypatch, layer_norm):
    """Three training steps with the cache on (the later ones on reused buffers, one with
    retain_graph and a second backward) equal the step with the cache off, bit for bit."""
    runs = [_train_step(layer_norm), _train_step(layer_norm, retain=True)]
    runs.append(_train_step(layer_norm))
    assert workspace.cached_bytes() > 0
    monkeypatch.setenv("LSTMKIT_WORKSPACE_MB", "0")
    workspace.release()
    want_out, want_grads = _train_step(layer_norm)
    assert workspace.cached_bytes() == 0
    for out, grads in runs:
        assert_close(out, want_out, 0.0, "output")
        for a, b in zip(grads, want_grads, strict=True):
            assert_close(a, b, 0.0, "gradient")


def test_the_layer_output_is_never_a_cached_buffer():
    """A view made inside an autograd node may not be changed in place: the output is a
    tensor of its own, so in-place use outside a graph works as on torch.nn's output."""
    for cls in (lstmkit.LSTM, lstmkit.GRU):
        m = cls(8, 64, layer_norm=True, backend="fused")
        x = torch.randn(40, 16, 8)
        out = m(x)[0]
        assert out._base is None
        with torch.no_grad():
            out = m(x)[0]
        assert out._base is None
        out.add_(1.0)


def test_inference_mode_and_fake_tensors_are_not_cached():
    """An inference tensor cannot be written outside inference mode, a fake tensor is no
    memory: neither may come back to a later ordinary call."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    m = lstmkit.LSTM(32, 128, layer_norm=True, backend="fused")
    x = torch.randn(64, 32, 32)  # (T, N, 4H) float32 buffers of 4 MiB
    with torch.inference_mode():
        m(x)
    assert workspace.cached_bytes() == 0
    with FakeTensorMode(allow_non_fake_inputs=True):
        workspace.empty(torch.empty(0), *BIG)
    assert workspace.cached_bytes() == 0
    m(x)[0].sum().backward()  # an ordinary training step after both
    assert workspace.cached_bytes() > 0


def test_the_shapes_used_longest_ago_go_first(monkeypatch):
    like = torch.empty(0)
    monkeypatch.setenv("LSTMKIT_WORKSPACE_MB", "3.5")  # three 1 MiB buffers
    for rows in (64, 32, 16):  # three shapes of 1 MiB, each freed at once
        workspace.empty(like, rows, 4096 // rows, 64)
    again = workspace.empty(like, 64, 64, 64)  # the oldest shape, used again
    ptr = again.data_ptr()
    del again
    workspace.empty(like, 8, 512, 64)  # a fourth shape: the one used longest ago goes
    shapes = {key[2] for key in workspace._cache.buffers}
    assert shapes == {(64, 64, 64), (16, 256, 64), (8, 512, 64)}
    assert workspace.empty(like, 64, 64, 64).data_ptr() == ptr
