"""The memory budget checked before a network is built (lstmkit.budget, issue 14).

Oracles: the parameters torch.nn's LSTM/GRU and our built networks actually hold (the
budget's boundary must fall at 16 bytes × that count), and the clock and the process's
peak memory for the absurd sizes a user once typed.
"""

import subprocess
import sys
import time

import pytest
import torch

from lstmkit.budget import BYTES_PER_PARAMETER, memory_budget, recurrent_parameters
from lstmkit.tasks.networks import RecurrentNet
from lstmkit.tasks.text import _CharNet

CONFIGS = [(1, 8, 1, False), (3, 5, 3, True), (7, 4, 2, False), (2, 16, 2, True)]


@pytest.mark.parametrize(("cell", "module"), [("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)])
@pytest.mark.parametrize(("inputs", "hidden", "layers", "bidirectional"), CONFIGS)
def test_parameter_count_is_torch_nns(cell, module, inputs, hidden, layers, bidirectional):
    net = module(inputs, hidden, num_layers=layers, bidirectional=bidirectional)
    expected = sum(p.numel() for p in net.parameters())
    assert recurrent_parameters(cell, inputs, hidden, layers, 2 if bidirectional else 1) == expected


def _numel(net) -> int:
    return sum(p.numel() for p in net.parameters())


BUILDERS = {
    "forecast-like": lambda: RecurrentNet(1, 12, hidden_size=9, num_layers=2),
    "classifier": lambda: RecurrentNet(
        3, 4, cell="gru", hidden_size=6, bidirectional=True, pooling="last+mean+max"
    ),
    "tagger": lambda: RecurrentNet(2, 5, hidden_size=7, bidirectional=True, output="sequence"),
    "with extra": lambda: RecurrentNet(4, 3, hidden_size=5, extra_size=6),
    "LSTM-FCN": lambda: RecurrentNet(
        2, 3, hidden_size=4, bidirectional=True, conv_filters=(5, 6, 7), conv_stride=2
    ),
    "poet": lambda: _CharNet(50, 8, 12, 2, "lstm", 0.0, {}),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_the_budget_boundary_is_sixteen_bytes_per_real_parameter(monkeypatch, name):
    n = _numel(BUILDERS[name]())
    monkeypatch.setenv("LSTMKIT_MEMORY_BUDGET", str(BYTES_PER_PARAMETER * n))
    BUILDERS[name]()  # exactly at the budget: built
    monkeypatch.setenv("LSTMKIT_MEMORY_BUDGET", str(BYTES_PER_PARAMETER * n - 1))
    with pytest.raises(ValueError, match=rf"about .* \({n:,} parameters × 16 bytes"):
        BUILDERS[name]()


@pytest.mark.parametrize(
    ("text", "size"),
    [("8GB", 8 * 10**9), ("8 GiB", 8 * 2**30), ("512mib", 512 * 2**20), ("1000", 1000),
     ("1.5GB", 15 * 10**8)],
)  # fmt: skip
def test_budget_from_the_environment(monkeypatch, text, size):
    monkeypatch.setenv("LSTMKIT_MEMORY_BUDGET", text)
    assert memory_budget() == size


def test_a_bad_budget_names_the_variable(monkeypatch):
    monkeypatch.setenv("LSTMKIT_MEMORY_BUDGET", "lots")
    with pytest.raises(ValueError, match=r"LSTMKIT_MEMORY_BUDGET: expected a size .* got 'lots'"):
        RecurrentNet(1, 1)


@pytest.mark.parametrize(
    "kwargs", [{"hidden_size": 20000}, {"num_layers": 100000}, {"num_layers": 2**31 - 1}]
)
def test_absurd_sizes_fail_at_once_without_allocating(monkeypatch, kwargs):
    monkeypatch.delenv("LSTMKIT_MEMORY_BUDGET", raising=False)
    began = time.perf_counter()
    with pytest.raises(ValueError, match=r"over the memory budget of 4.0 GiB"):
        RecurrentNet(1, 1, **kwargs)
    assert time.perf_counter() - began < 0.5


@pytest.mark.parametrize("option", [["--hidden-size", "20000"], ["--layers", "100000"]])
def test_cli_refuses_an_absurd_network_with_exit_2_in_seconds(tmp_path, option):
    program = (
        "import resource, sys\n"
        "from lstmkit.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.exit(code)\n"
    )
    command = ["forecast", "--data", "airline", *option, "--epochs", "1", "--out", "r"]
    began = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", program, *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert time.monotonic() - began < 60  # the interpreter and torch start included
    peak_mib = int(run.stdout.split()[-1]) / 1024  # ru_maxrss: KiB on Linux
    assert peak_mib < 2048
    line = run.stderr.strip()
    assert len(line.splitlines()) == 1 and "over the memory budget" in line


def test_a_network_on_the_meta_device_is_not_checked(monkeypatch):
    """A saved model's config is checked against its weights on ``meta`` (no storage): the
    weights' shapes, not the budget, decide there (tests/tasks/test_saved_configs.py)."""
    monkeypatch.setenv("LSTMKIT_MEMORY_BUDGET", "1")
    with torch.device("meta"):
        net = RecurrentNet(1, 1, hidden_size=20000)
    assert net.rnn.weight_hh_l0.shape == (80000, 20000) and net.rnn.weight_hh_l0.is_meta
