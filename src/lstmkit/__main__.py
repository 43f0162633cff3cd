"""``python -m lstmkit`` (and ``torchrun -m lstmkit``): the command line."""

from lstmkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
