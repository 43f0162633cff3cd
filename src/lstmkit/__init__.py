"""lstmkit: LSTM, BiLSTM, GRU and stacked recurrent networks from their gate formulas.

The data flows one way: formulas (:mod:`lstmkit.cells`) → recurrence
(:mod:`lstmkit.recurrence`) → backends (:mod:`lstmkit.backends`) → layers
(:mod:`lstmkit.nn`).

``lstmkit.LSTM`` and ``lstmkit.GRU`` load :mod:`lstmkit.nn` (and torch) when first used, so
that the command line can handle Ctrl-C before the heavy imports begin.
"""

__version__ = "0.1.0"
__all__ = ["GRU", "LSTM", "__version__"]


def __getattr__(name: str):
    if name in ("GRU", "LSTM"):
        from lstmkit import nn

        return getattr(nn, name)
    raise AttributeError(f"module 'lstmkit' has no attribute {name!r}")
