"""A quick same-run speed check for ``lstmkit bench``: lstmkit.LSTM/GRU (backend "auto")
against torch.nn with the same weights, inference and a training step, interleaved rounds
in alternating order, median. The full grid, memory and every backend are in the
repository's benchmarks/engine.py."""

import statistics
import time

import torch

import lstmkit
from lstmkit.budget import check_memory


def _step(module, x: torch.Tensor, train: bool) -> None:
    if train:
        out, _ = module(x)
        out.sum().backward()
    else:
        with torch.no_grad():
            module(x)


def _case(mode: str, hidden: int, steps: int, batch: int, train: bool, rounds: int) -> dict:
    torch.manual_seed(0)
    ref = getattr(torch.nn, mode)(hidden, hidden)
    ours = getattr(lstmkit, mode)(hidden, hidden)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(steps, batch, hidden)
    models = {"torch": ref, "lstmkit": ours}
    times = {name: [] for name in models}
    for module in models.values():  # warm-up
        _step(module, x, train)
    for r in range(rounds):
        for name in list(models)[:: 1 if r % 2 == 0 else -1]:
            began = time.perf_counter()
            _step(models[name], x, train)
            times[name].append(time.perf_counter() - began)
    t_ref, t_ours = (statistics.median(times[n]) for n in ("torch", "lstmkit"))
    phase = "train" if train else "inference"
    return {
        "case": f"{mode} H={hidden} T={steps} N={batch} {phase}",
        "torch_ms": t_ref * 1e3,
        "lstmkit_ms": t_ours * 1e3,
        "speed": t_ref / t_ours,
        "backend": ours.last_backend,
    }


def quick_bench(hidden_sizes, *, steps: int = 100, batch: int = 32, rounds: int = 7) -> list:
    """One row per (mode, hidden, inference|train): times in ms, ``speed`` = torch / ours.
    Refused before anything runs when the two engines' training activations (about 12
    float32 values per step, sequence and hidden unit each) would not fit the memory budget."""
    largest = max(hidden_sizes)
    check_memory(
        2 * 12 * 4 * steps * batch * largest,
        f"a benchmark of hidden size {largest}, {steps} steps, batch {batch}",
        "two engines' activations for backward, 12 float32 values per step and unit",
    )
    return [
        _case(mode, hidden, steps, batch, train, rounds)
        for mode in ("LSTM", "GRU")
        for hidden in hidden_sizes
        for train in (False, True)
    ]
