"""lstmkit: LSTM, BiLSTM, GRU and stacked recurrent networks from their gate formulas.

The data flows one way: formulas (:mod:`lstmkit.cells`) → recurrence
(:mod:`lstmkit.recurrence`) → backends (:mod:`lstmkit.backends`) → layers
(:mod:`lstmkit.nn`).
"""

from lstmkit.nn import GRU, LSTM

__version__ = "0.1.0"
__all__ = ["GRU", "LSTM", "__version__"]
