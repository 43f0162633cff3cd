r"""Layer normalisation (Ba, Kiros & Hinton 2016) as the cell variants use it.

.. math::

    \mathrm{LN}(v) = \frac{v - \mu(v)}{\sqrt{\sigma^2(v) + \varepsilon}} \odot \gamma \;(+\, \beta)

over the last axis, with the biased variance and :math:`\varepsilon = 10^{-5}`, as
``torch.nn.LayerNorm``. The recurrent cells pass no shift for the gate pre-activations
(the gate biases are the shift) and a shift for the LSTM cell state.
"""

import torch.nn.functional as F
from torch import Tensor

EPS = 1e-5


def layer_norm(v: Tensor, gain: Tensor, shift: Tensor | None = None) -> Tensor:
    """LN(v) ⊙ gain (+ shift) over the last axis; v (..., K), gain and shift (K,)."""
    return F.layer_norm(v, v.shape[-1:], gain, shift, EPS)
