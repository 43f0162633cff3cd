"""A Ctrl-C that Python itself would lose (lstmkit.train.interrupts, issue 14).

Oracles: the signal actually sent to this process (os.kill), what a finaliser does with the
KeyboardInterrupt it raises (Python prints and drops it), the epochs a fit ran, and the exit
status CPython gives a process after a KeyboardInterrupt left exec'd code.
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from lstmkit.train import interrupts
from lstmkit.train.loop import TrainConfig, fit, interrupted


class _SignalsWhenCollected:
    """Sends SIGINT from ``__del__``: the handler's KeyboardInterrupt is raised inside a
    finaliser, where Python reports it to ``sys.unraisablehook`` and goes on."""

    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)


def test_a_signal_raises_and_is_remembered_until_the_block_ends():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    interrupts.check()  # nothing requested: a no-op
    with interrupts.handling():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # handled as Ctrl-C
        assert interrupts.requested()
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    assert not interrupts.requested()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_an_interrupt_a_finaliser_dropped_still_stops_the_next_check(capsys):
    hook = sys.unraisablehook
    with interrupts.handling():
        _SignalsWhenCollected()  # collected at once: the KeyboardInterrupt goes nowhere
        assert interrupts.requested()
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    assert sys.unraisablehook is hook
    assert "KeyboardInterrupt" not in capsys.readouterr().err  # not reported as an error


def test_a_request_recorded_outside_a_nested_block_is_kept_inside_it():
    """The entry point handles signals around the CLI's own block: a Ctrl-C a finaliser
    dropped while torch loaded must still stop the command."""
    with interrupts.handling():
        _SignalsWhenCollected()
        with interrupts.handling():
            with pytest.raises(KeyboardInterrupt):
                interrupts.check()
        assert interrupts.requested()
    assert not interrupts.requested()


def test_a_deferred_block_finishes_before_the_first_signal_raises():
    done = []
    with interrupts.handling():
        with pytest.raises(KeyboardInterrupt):
            with interrupts.deferred():
                signal.raise_signal(signal.SIGINT)
                done.append("the rest of the block")
        assert done == ["the rest of the block"]
    with interrupts.handling():  # a second signal does not wait
        with pytest.raises(KeyboardInterrupt):
            with interrupts.deferred():
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)
                done.append("not reached")
    assert done == ["the rest of the block"] and not interrupts.requested()


def test_a_fit_stops_one_batch_after_a_dropped_interrupt():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(64, 3), torch.randn(64, 1)
    seen = []

    def callback(record):  # after epoch 2, Ctrl-C comes inside a finaliser
        seen.append(record["epoch"])
        if len(seen) == 2:
            _SignalsWhenCollected()
        return False

    def loss(net, batch):  # (the batch's mean loss, its number of elements)
        return torch.nn.functional.mse_loss(net(batch["x"]), batch["y"]), len(batch["y"])

    config = TrainConfig(epochs=10, batch_size=16, lr=0.01, progress=False)
    with interrupts.handling():
        history = fit(model, loss, {"x": x, "y": y}, None, config, callback=callback)
    assert interrupted(history) and len(history.epochs) == 2


def _exit_status(program: str) -> int:
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(program)],
        capture_output=True,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
        timeout=60,
    )
    return run.returncode


@pytest.mark.parametrize("forget", [False, True])
def test_a_caught_interrupt_from_execd_code_ends_with_the_commands_exit_code(forget):
    """dataclasses build methods with exec: a KeyboardInterrupt raised there, even caught,
    makes CPython end the process by SIGINT (−2) unless the note is cleared."""
    status = _exit_status(
        f"""
        from lstmkit.train import interrupts
        try:
            exec("raise KeyboardInterrupt")
        except KeyboardInterrupt:
            pass
        if {forget}:
            interrupts._forget_unhandled_interrupt()
        """
    )
    assert status == (0 if forget else -signal.SIGINT)
