r"""How much memory training a network will take, checked before it is built (issue 14).

An estimator builds its network from options (``hidden_size``, ``num_layers``, …) or from a
saved config; an absurd size (``--hidden-size 20000``, ``--layers 100000``) used to allocate
gigabytes or run for minutes before failing. :func:`check_training_memory` counts the
parameters from the shapes alone and refuses, in microseconds, a network whose training state
would not fit the memory budget.

The estimate. A recurrent layer with G gate blocks (LSTM 4, GRU 3), hidden size H and
input width :math:`I_l` (:math:`I_0` the input size, :math:`I_l = D·H` above, D directions)
has, per direction, :math:`G H (I_l + H) + 2 G H` parameters (:math:`W_{ih}, W_{hh}` and the
two biases as in torch.nn); the heads and embeddings add their matrices. Training in float32
keeps four copies of each parameter — the weights, their gradients and Adam's two moment
estimates — so the estimate is :math:`16·n_\text{params}` bytes. Activations (which grow with
batch size × sequence length) and the cell variants' few extra vectors are left out: the
estimate is a lower bound of the dominant term, not a promise.

The budget: ``LSTMKIT_MEMORY_BUDGET`` (bytes, or a number with KB, MB, GB, KiB, MiB, GiB),
4 GiB by default — a 1-layer LSTM on one input feature fits it up to H ≈ 8,000.
"""

from __future__ import annotations

import os
import re

DEFAULT_BUDGET = 4 * 2**30
BYTES_PER_PARAMETER = 16  # float32 weights, gradients, Adam's m and v
_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)?\s*", re.IGNORECASE)


def memory_budget() -> int:
    """The budget in bytes: ``LSTMKIT_MEMORY_BUDGET`` or :data:`DEFAULT_BUDGET`."""
    text = os.environ.get("LSTMKIT_MEMORY_BUDGET")
    if text is None or not text.strip():
        return DEFAULT_BUDGET
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"LSTMKIT_MEMORY_BUDGET: expected a size such as 8GB or 17179869184, got {text[:40]!r}"
        )
    return int(float(match[1]) * _UNITS[(match[2] or "").upper()])


def recurrent_parameters(
    cell: str, input_size: int, hidden_size: int, num_layers: int, directions: int
) -> int:
    """The parameters of a stacked (bi)directional LSTM/GRU, per the module docstring."""
    per_width = directions * (4 if cell == "lstm" else 3) * hidden_size  # D·G·H
    first = per_width * (input_size + hidden_size + 2)
    return first + (num_layers - 1) * per_width * (directions * hidden_size + hidden_size + 2)


def check_training_memory(parameters: int, what: str) -> None:
    """Raise ValueError if training ``parameters`` float32 parameters with Adam would need more
    than the budget; ``what`` names the options that made them (for the message). Networks
    built on the ``meta`` device (shapes only: how a saved model is checked against its
    weights before loading) allocate nothing and are not checked."""
    import torch  # here: the readers use the budget without loading torch

    if torch.get_default_device().type == "meta":
        return
    detail = f"{parameters:,} parameters × {BYTES_PER_PARAMETER} bytes: weights, gradients, "
    detail += "Adam's moments"
    check_memory(BYTES_PER_PARAMETER * parameters, f"{what}: training this network", detail)


def check_memory(need: int, what: str, detail: str) -> None:
    """Raise ValueError if ``need`` bytes (``what`` needs them; ``detail``: how they were
    counted) exceed the budget."""
    budget = memory_budget()
    if need > budget:
        raise ValueError(
            f"{what} needs about {_size(need)} ({detail}), over the memory budget of "
            f"{_size(budget)}; set LSTMKIT_MEMORY_BUDGET to allow it"
        )


def _size(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GiB"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n:,} bytes"
