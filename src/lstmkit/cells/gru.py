r"""The GRU cell: one time step, with both placements of the reset gate.

Two gates (``SPEC.md`` §3, source 002): the update gate :math:`z_t`, which merges the
LSTM's forget and input gates, and the reset gate :math:`r_t`; there is no separate
cell state.

.. math::

    r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
    z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
    n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn}))
          && \text{reset\_after=True (PyTorch, cuDNN)} \\
    n_t &= \tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \odot h_{t-1}) + b_{hn})
          && \text{reset\_after=False (Cho et al. 2014)} \\
    h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

Departure from the paper: Cho et al. write the update as
:math:`h_t = z_t h_{t-1} + (1 - z_t) \tilde h_t` with the same meaning of z; PyTorch and
Keras use this form, and so do we. With ``reset_after=False`` the bias :math:`b_{hn}`
is added after the matmul, so the parameter layout is the same for both forms
(Keras's ``reset_after=False`` has a single bias; its converter folds it into b_in).

Variants (``docs/variants.md``), optional keywords: ``ln_hh`` (3H,), the gain of the
layer-normalised recurrent pre-activation :math:`\mathrm{LN}(h_{t-1} W_{hh}^T) \odot
\gamma_{hh} + b_{hh}` (Ba et al. 2016; reset_after only — the input side is in ``gx``);
``h_in``, the state as it enters the recurrent matmuls when recurrent dropout masks it
(Gal & Ghahramani 2016) while the update still reads the un-dropped ``h``.

Shapes (N batch, H hidden): gx (N, 3H) = x_t W_ih^T + b_ih, gate order r, z, n;
h (N, H); w_hh (3H, H); b_hh (3H,) or None.
"""

from typing import NamedTuple

import torch
from torch import Tensor

from lstmkit.cells.norm import layer_norm


class GRUStep(NamedTuple):
    """Everything one GRU step computes, named as in the equations."""

    r: Tensor
    z: Tensor
    n: Tensor
    h: Tensor


def gru_cell(
    gx: Tensor,
    h: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None = None,
    *,
    reset_after: bool = True,
    ln_hh: Tensor | None = None,
    h_in: Tensor | None = None,
) -> GRUStep:
    """One GRU step from the precomputed input projection ``gx``; see the module docstring."""
    hidden = h.shape[-1]
    x_r, x_z, x_n = gx.chunk(3, dim=-1)
    h_in = h if h_in is None else h_in
    if ln_hh is not None:
        if not reset_after:
            raise ValueError("layer_norm: expected reset_after=True for a GRU, got False")
        gh = layer_norm(h_in @ w_hh.T, ln_hh)
        if b_hh is not None:
            gh = gh + b_hh
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return GRUStep(r, z, n, (1 - z) * n + z * h)
    b_r = b_z = b_n = None
    if b_hh is not None:
        b_r, b_z, b_n = b_hh.chunk(3)
    w_rz, w_n = w_hh[: 2 * hidden], w_hh[2 * hidden :]
    h_rz = h_in @ w_rz.T
    if b_hh is not None:
        h_rz = h_rz + torch.cat([b_r, b_z])
    h_r, h_z = h_rz.chunk(2, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    if reset_after:
        h_n = h_in @ w_n.T
        if b_n is not None:
            h_n = h_n + b_n
        n = torch.tanh(x_n + r * h_n)
    else:
        h_n = (r * h_in) @ w_n.T
        if b_n is not None:
            h_n = h_n + b_n
        n = torch.tanh(x_n + h_n)
    h = (1 - z) * n + z * h
    return GRUStep(r, z, n, h)
