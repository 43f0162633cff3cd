"""Ctrl-C (SIGINT) and SIGTERM that a command cannot lose.

Python turns SIGINT into a ``KeyboardInterrupt`` raised wherever the main thread is at that
moment, and two places lose it:

- raised inside a finaliser or ``__del__`` (garbage collection runs them during any allocation,
  e.g. SQLAlchemy's cache clean-up while a tuning run talks to its storage), it is printed as
  "Exception ignored" and the program goes on as if nothing had happened;
- raised inside code run by ``exec`` on a string (``dataclasses`` builds its methods that way,
  e.g. while torch imports a module lazily), CPython notes it as "unhandled" and, although the
  command caught it and returns 130, ends the process by SIGINT at exit.

:func:`handling` (the CLI wraps every command in it) installs a handler that records the
request before raising, keeps quiet about a ``KeyboardInterrupt`` a finaliser dropped (it is
not lost any more), and on the way out forgets CPython's stale note. :func:`check`, called
where stopping is safe (before each training batch, after each tuning trial), raises again when
a request was recorded, so a lost ``KeyboardInterrupt`` delays the stop by one batch at most.
Outside :func:`handling` (a program that imports lstmkit), :func:`check` does nothing and
Python's own handler applies.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

_requested = threading.Event()


def requested() -> bool:
    """Whether a signal asked this process to stop (inside :func:`handling`)."""
    return _requested.is_set()


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a stop was requested: a safe point in a long loop."""
    if _requested.is_set():
        raise KeyboardInterrupt


_deferring = 0  # depth of deferred() blocks on the main thread (the only one signals reach)


def _on_signal(signum, frame) -> None:
    again = _requested.is_set()
    _requested.set()
    if _deferring and not again:  # the block's end raises it; a second Ctrl-C does at once
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    """Within the block, a first Ctrl-C is recorded but raised only at the block's end: for a
    short operation that must not be cut in two (a storage write whose commit has to be seen
    through to the caller, who otherwise could not tell what it created). A second signal
    raises at once. Outside :func:`handling`, Python's own handler applies."""
    global _deferring
    on_main = threading.current_thread() is threading.main_thread()
    _deferring += on_main
    try:
        yield
    finally:
        _deferring -= on_main
    check()


def _unraisable(hook):
    """``sys.unraisablehook`` that drops the ``KeyboardInterrupt`` of a recorded request."""

    def quiet(unraisable) -> None:
        if not (_requested.is_set() and unraisable.exc_type is KeyboardInterrupt):
            hook(unraisable)

    return quiet


_active = threading.Event()  # handlers installed by an enclosing handling() block


@contextlib.contextmanager
def handling(signals=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, ``signals`` record a stop request and raise ``KeyboardInterrupt``
    (SIGTERM is handled as Ctrl-C). Only the main thread can install handlers: elsewhere
    the block runs with the handlers it has. A block inside another (the entry point's
    around the CLI's) changes nothing, so it cannot forget a request the outer one recorded."""
    if threading.current_thread() is not threading.main_thread() or _active.is_set():
        yield
        return
    previous = {signum: signal.signal(signum, _on_signal) for signum in signals}
    hook, sys.unraisablehook = sys.unraisablehook, _unraisable(sys.unraisablehook)
    _requested.clear()
    _active.set()
    try:
        yield
    finally:
        _active.clear()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = hook
        if _requested.is_set():
            _forget_unhandled_interrupt()
        _requested.clear()


def _forget_unhandled_interrupt() -> None:
    """Clear CPython's note of a ``KeyboardInterrupt`` that left ``exec``'d code (it would
    end the process by SIGINT whatever exit code the command returns): every ``exec`` of a
    string resets the note before running, and this one raises nothing."""
    exec("pass")  # a constant statement, run for its side effect on the note
