"""``python -m lstmkit``, ``torchrun -m lstmkit`` and the ``lstmkit`` script: the command line."""

import sys

from lstmkit.train import interrupts  # signal and threading only: loads in milliseconds


def run() -> int:
    """Start the CLI with Ctrl-C and SIGTERM handled from the first moment: one that comes
    while torch and the rest load (seconds on a busy machine) ends like one in a command,
    with exit 130 and one line instead of a traceback."""
    with interrupts.handling():
        try:
            from lstmkit.cli import main
        except KeyboardInterrupt:
            print("lstmkit: interrupted while starting; nothing was done", file=sys.stderr)
            return 130
        return main()


if __name__ == "__main__":
    raise SystemExit(run())
