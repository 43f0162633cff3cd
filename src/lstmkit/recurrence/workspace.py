"""Big step buffers kept from one call to the next, as a caching allocator does.

The fused variant kernels write every step into (T, N, ·) buffers: the saved gates and
states of the forward, the gradients of the backward. Each training step asks for the
same few shapes again. Fresh memory of that size comes from ``mmap`` and every one of its
pages faults on first touch; on the machines measured in ``docs/benchmarks.md`` that was
a fifth of a layer-normalised LSTM's training step. :func:`empty` hands out a buffer of
the same shape from the last calls instead, once nothing refers to it any more.

A buffer is free when its storage has no user but this cache: autograd's saved tensors
and any view of it count, so a buffer in use is never handed out twice (``retain_graph``
included). What a caller receives is always a view; the layer output, which a caller may
change in place, is never taken from here. Nothing made under inference mode or a
dispatch mode (fake tensors, tracing) is cached. When the limit is reached, the free
buffers of the shapes used longest ago go first. Only buffers of at least
``MIN_BYTES`` are cached (smaller ones come cheaply from ``malloc``), per thread, up to
``LSTMKIT_WORKSPACE_MB`` MiB (default 1024; 0 turns the cache off); :func:`release`
drops them.
"""

import math
import os
import threading

import torch
from torch import Tensor

MIN_BYTES = 1 << 18  # 256 KiB


class _Cache(threading.local):
    def __init__(self):
        self.buffers: dict[tuple, list[Tensor]] = {}


_cache = _Cache()


def limit_bytes() -> int:
    """The cache's size limit from ``LSTMKIT_WORKSPACE_MB`` (MiB), in bytes."""
    text = os.environ.get("LSTMKIT_WORKSPACE_MB", "1024")
    try:
        mib = float(text)
    except ValueError:
        raise ValueError(f"LSTMKIT_WORKSPACE_MB: expected a number of MiB, got {text!r}") from None
    if mib < 0:
        raise ValueError(f"LSTMKIT_WORKSPACE_MB: expected a number >= 0, got {text!r}")
    return int(mib * (1 << 20))


def _free(buf: Tensor) -> bool:
    # one reference is the cache's own tensor, one the storage object made to ask
    return torch._C._storage_Use_Count(buf.untyped_storage()._cdata) == 2


def _cacheable(like: Tensor, nbytes: int) -> bool:
    """Plain CPU tensors of MIN_BYTES and more, made outside inference mode (an inference
    tensor may not be written outside it later) and outside any dispatch mode (a fake or
    traced tensor is no buffer)."""
    return (
        nbytes >= MIN_BYTES
        and type(like) is Tensor
        and like.device.type == "cpu"
        and not torch.is_inference_mode_enabled()
        and torch._C._len_torch_dispatch_stack() == 0
    )


def empty(like: Tensor, *shape: int) -> Tensor:
    """An uninitialised tensor of ``shape`` with ``like``'s dtype and device; a cached
    buffer of that shape when one is free."""
    nbytes = math.prod(shape) * like.element_size()
    if not _cacheable(like, nbytes):
        return like.new_empty(shape)
    key = (like.dtype, like.device, shape)
    cached = _cache.buffers.pop(key, [])
    _cache.buffers[key] = cached  # the most recently used shape goes last
    for buf in cached:
        if _free(buf):
            return buf.view(shape)  # a view, so the buffer counts as used while it lives
    buf = like.new_empty(shape)
    limit = limit_bytes()
    if nbytes <= limit:
        _make_room(nbytes, limit)  # may forget this shape's empty list: set it again
        _cache.buffers.setdefault(key, cached).append(buf)
    elif not cached:
        _cache.buffers.pop(key, None)
    return buf.view(shape)


def _make_room(nbytes: int, limit: int) -> None:
    """Forget free buffers, those of the shapes used longest ago first, until ``nbytes``
    more fit under the limit; then, if that is not enough, buffers in use too (their
    users keep them; the cache lets go)."""
    total = cached_bytes()
    for want_free in (True, False):
        for bufs in _cache.buffers.values():
            kept = []
            for buf in bufs:
                if total + nbytes > limit and _free(buf) == want_free:
                    total -= buf.numel() * buf.element_size()
                else:
                    kept.append(buf)
            bufs[:] = kept
        if total + nbytes <= limit:
            break
    for key in [key for key, bufs in _cache.buffers.items() if not bufs]:
        del _cache.buffers[key]


def cached_bytes() -> int:
    """The bytes this thread's cache holds (in use or free)."""
    return sum(b.numel() * b.element_size() for bufs in _cache.buffers.values() for b in bufs)


def release() -> None:
    """Drop this thread's cached buffers (those in use stay with their users)."""
    _cache.buffers.clear()
