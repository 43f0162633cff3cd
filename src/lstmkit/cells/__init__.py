"""The gate formulas of one time step, one file per cell.

A cell here is a small pure function of tensors written straight from the equations
in ``SPEC.md``. It receives the input projection of its step already computed
(``gx = x_t W_ih^T + b``, done for all steps in one matmul by the recurrence) and does
the recurrent matmul and the pointwise gate math. Every faster path in
:mod:`lstmkit.backends` is tested against these functions.
"""

from lstmkit.cells.gru import GRUStep, gru_cell
from lstmkit.cells.lstm import LSTMStep, lstm_cell

__all__ = ["GRUStep", "LSTMStep", "gru_cell", "lstm_cell"]
