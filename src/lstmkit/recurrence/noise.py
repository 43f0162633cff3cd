r"""The random masks of recurrent dropout and zoneout, drawn once per direction and call.

* Recurrent dropout (Gal & Ghahramani 2016): one mask
  :math:`m \sim \mathrm{Bernoulli}(1-p)/(1-p)` of shape (N, P) per layer and direction,
  the same at every step, multiplying :math:`h_{t-1}` where it enters :math:`W_{hh}`.
  Training only; in evaluation there is no mask.
* Zoneout (Krueger et al. 2016): :math:`d_t \sim \mathrm{Bernoulli}(p)` fresh per step,
  unit and sample, 1 meaning "keep the previous value"; in evaluation the expectation
  :math:`d_t = p`.

:func:`sample_noise` draws them from torch's default generator in a fixed order
(recurrent (N, P), zoneout h (T, N, P), zoneout C (T, N, H)); ``run_stack`` calls it for
every layer and direction, forward before reverse, so every backend draws the same masks
from the same seed.
"""

from typing import NamedTuple

from torch import Tensor

from lstmkit.recurrence.config import RNNConfig


class Noise(NamedTuple):
    """The masks of one direction: None when that kind of noise is off.

    recurrent (N, P) already scaled by 1/(1-p); zoneout_h (T, N, P) and zoneout_c
    (T, N, H) hold d (1 = keep the previous state) in training, or the rate p (a float)
    in evaluation.
    """

    recurrent: Tensor | None = None
    zoneout_h: Tensor | float | None = None
    zoneout_c: Tensor | float | None = None


def sample_noise(cfg: RNNConfig, steps: int, batch: int, like: Tensor, training: bool) -> Noise:
    """The masks of one direction for a (T=steps, N=batch) input, dtype/device of ``like``."""
    if not cfg.noisy:
        return Noise()
    recurrent, zoneout = None, []
    p = cfg.recurrent_dropout
    if training and p > 0:
        recurrent = like.new_empty(batch, cfg.out_size).bernoulli_(1 - p).div_(1 - p)
    for rate, size in ((cfg.zoneout, cfg.out_size), (cfg.zoneout_cell, cfg.hidden_size)):
        if rate > 0:
            d = like.new_empty(steps, batch, size).bernoulli_(rate) if training else float(rate)
            zoneout.append(d)
        else:
            zoneout.append(None)
    return Noise(recurrent, *zoneout)
