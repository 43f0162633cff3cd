"""How many intra-op threads a training run uses: a measured policy, and who overrides it.

A small recurrent network's step is a chain of small matrix products: a second thread
gains little when the machine is quiet and loses everything when another process holds a
core, because torch's threads then wait on each other at every step. Measured on a 2-core
CPU (``benchmarks/threads.py --fits``; docs/benchmarks.md, "Threads"): the default
forecaster and classifiers (18k-108k parameters) fit at most 14 % faster with 2 threads on
a quiet machine, and 3.1-4.0x slower with 2 threads than with 1 beside one busy process; a
BiLSTM of hidden size 256 (545k) fits 1.7x faster with 2 threads quiet and 2.2x slower
beside a busy process. Hence: one thread for a model of at most
:data:`SMALL_MODEL` trainable parameters, torch's threads above.

The order of precedence: a count given to :func:`threads_for` (``TrainConfig.threads``),
then ``LSTMKIT_THREADS`` (what ``lstmkit --threads N`` sets), then the user's own choice
(``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` set, or ``torch.set_num_threads`` called after
lstmkit was imported: kept as it is), then the policy. The thread count changes the last
bits of oneDNN's LSTM results, as a different machine would; it never depends on the load.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

SMALL_MODEL = 120_000  # trainable parameters: at most this many, one thread
THREADS_ENV = "LSTMKIT_THREADS"
_USER_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_AT_IMPORT = torch.get_num_threads()  # torch's default, or what was set before lstmkit


def threads_for(model: nn.Module, requested: int | None = None) -> int:
    """The intra-op thread count to train ``model`` with (precedence in the module
    docstring)."""
    chosen = _chosen(requested)
    if chosen is not None:
        return chosen
    size = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return 1 if size <= SMALL_MODEL else torch.get_num_threads()


def stepping_threads():
    """:func:`torch_threads` for generating one step at a time (``LSTM.step``): one thread
    unless the user chose a count (as for training). Every product is then one vector
    times a matrix, too small to share; beside a busy process a second thread made
    ``torch.tanh`` of 256 numbers take 8 ms instead of 2 µs (docs/benchmarks.md, "Poem
    writing")."""
    chosen = _chosen(None)
    return torch_threads(1 if chosen is None else chosen)


def _chosen(requested: int | None) -> int | None:
    """The count given, set by ``LSTMKIT_THREADS`` or chosen by the user; None: the
    policy decides."""
    if requested is not None:
        return requested
    given = os.environ.get(THREADS_ENV)
    if given:
        try:
            count = int(given)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(f"{THREADS_ENV}: expected an integer >= 1, got {given!r}")
        return count
    now = torch.get_num_threads()
    if any(os.environ.get(name) for name in _USER_ENV) or now != _AT_IMPORT:
        return now
    return None


@contextmanager
def torch_threads(count: int | None = None) -> Iterator[int]:
    """Run the block on ``count`` intra-op threads (None: the present count, guarded: a
    library that resets OpenMP's count inside, as aeon's numba kernels do, cannot leak it),
    then put torch's count back."""
    before = torch.get_num_threads()
    torch.set_num_threads(before if count is None else count)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def training_threads(model: nn.Module, requested: int | None = None):
    """:func:`torch_threads` with :func:`threads_for`'s count."""
    return torch_threads(threads_for(model, requested))
