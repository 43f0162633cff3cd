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

Variants (``docs/variants.md``), all optional keywords: peepholes ``w_ph`` (3H,) in the
order i, f, o (Gers & Schmidhuber 2000): :math:`i_t = \sigma(\cdot + p_i \odot C_{t-1})`,
:math:`f_t = \sigma(\cdot + p_f \odot C_{t-1})`, :math:`o_t = \sigma(\cdot + p_o \odot C_t)`;
layer normalisation (Ba et al. 2016) of the recurrent pre-activation with gain ``ln_hh``
(4H,) (the input side, LN(x W_ih^T) ⊙ γ_ih, is in ``gx``) and of the cell state before
its tanh, :math:`h_t = o_t \odot \tanh(\mathrm{LN}(C_t) \odot \gamma_c + \beta_c)`, with
``ln_c``, ``ln_c_bias`` (H,). Recurrent dropout and zoneout act on the states around the
cell; they live in the recurrence.
"""

from typing import NamedTuple

import torch
from torch import Tensor

from lstmkit.cells.norm import layer_norm


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
    *,
    w_ph: Tensor | None = None,
    ln_hh: Tensor | None = None,
    ln_c: Tensor | None = None,
    ln_c_bias: Tensor | None = None,
) -> LSTMStep:
    """One LSTM step from the precomputed input projection ``gx``; see the module docstring."""
    recurrent = h @ w_hh.T
    if ln_hh is not None:
        recurrent = layer_norm(recurrent, ln_hh)
    gates = gx + recurrent
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)
    if w_ph is not None:
        p_i, p_f, p_o = w_ph.chunk(3)
        i, f = i + p_i * c, f + p_f * c
    i, f, g = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g)
    c = f * c + i * g
    if w_ph is not None:
        o = o + p_o * c
    o = torch.sigmoid(o)
    h = o * torch.tanh(c if ln_c is None else layer_norm(c, ln_c, ln_c_bias))
    if w_hr is not None:
        h = h @ w_hr.T
    return LSTMStep(i, f, g, c, o, h)
