r"""The LSTM cell: one time step of the gate equations.

With input :math:`x_t`, previous hidden state :math:`h_{t-1}` and cell state
:math:`C_{t-1}` (``SPEC.md`` §1, sources 000–003):

.. math::

    i_t &= \sigma(W_{ix} x_t + W_{ih} h_{t-1} + b_i)            && \text{input gate} \\
    f_t &= \sigma(W_{fx} x_t + W_{fh} h_{t-1} + b_f)            && \text{forget gate} \\
    \tilde C_t &= \tanh(W_{cx} x_t + W_{ch} h_{t-1} + b_c)      && \text{candidate} \\
    C_t &= f_t \odot C_{t-1} + i_t \odot \tilde C_t              && \text{cell state} \\
    o_t &= \sigma(W_{ox} x_t + W_{oh} h_{t-1} + b_o)            && \text{output gate} \\
    h_t &= o_t \odot \tanh(C_t)                                   && \text{hidden state}

Source 002 writes each gate with one matrix over the concatenation,
:math:`f_t = \sigma(W_f [h_{t-1}, x_t] + b_f)`; that matrix is ``[W_fh | W_fx]``, so
both notations are this one function. The four matrices are stacked in PyTorch's gate
order (i, f, g = :math:`\tilde C`, o): ``W_ih`` is (4H, H_in), ``W_hh`` is (4H, P), and
:math:`b = b_{ih} + b_{hh}`.

With a projection (``proj_size`` P > 0, Sak et al. 2014, as in ``torch.nn.LSTM``) the
hidden state is :math:`h_t = W_{hr}(o_t \odot \tanh C_t)`, W_hr of shape (P, H).

Shapes (N batch, H hidden, P = proj_size or H):

==========  ===========  ===========================================
name        shape        meaning
==========  ===========  ===========================================
gx          (N, 4H)      x_t W_ih^T + b_ih (+ b_hh), computed before the loop
h           (N, P)       h_{t-1}
c           (N, H)       C_{t-1}
w_hh        (4H, P)      recurrent weights, gate order i, f, g, o
b_hh        (4H,)        optional; pass None when already folded into gx
w_hr        (P, H)       optional projection
==========  ===========  ===========================================
"""

from typing import NamedTuple

import torch
from torch import Tensor


class LSTMStep(NamedTuple):
    """Everything one LSTM step computes, named as in the equations (``g`` is C̃)."""

    i: Tensor
    f: Tensor
    g: Tensor
    c: Tensor
    o: Tensor
    h: Tensor


def lstm_cell(
    gx: Tensor,
    h: Tensor,
    c: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None = None,
    w_hr: Tensor | None = None,
) -> LSTMStep:
    """One LSTM step from the precomputed input projection ``gx``; see the module docstring."""
    gates = gx + h @ w_hh.T
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    if w_hr is not None:
        h = h @ w_hr.T
    return LSTMStep(i, f, g, c, o, h)
