r"""Data augmentation for sequence batches in training (never in evaluation).

Two transforms from the time-series augmentation surveys (Um et al. 2017; Iwana & Uchida
2021), on standardised inputs x (N, T, D), drawn from torch's seeded generator:

* ``jitter``: :math:`x' = x + \varepsilon`, :math:`\varepsilon \sim \mathcal N(0, 0.03^2)`
  at every step and channel;
* ``scale``: :math:`x'_{n,\cdot,d} = s_{n,d}\, x_{n,\cdot,d}`, one
  :math:`s_{n,d} \sim \mathcal N(1, 0.1^2)` per sequence and channel.

Values past a sequence's length change too; every consumer masks them.
"""

import torch
from torch import Tensor

AUGMENTATIONS = ("jitter", "scale")
JITTER_STD = 0.03
SCALE_STD = 0.1


def check_augment(augment) -> tuple[str, ...]:
    """``None``, one name or a sequence of names from :data:`AUGMENTATIONS`."""
    if augment is None:
        return ()
    names = (augment,) if isinstance(augment, str) else tuple(augment)
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(
            f"augment: expected None or distinct names among {', '.join(AUGMENTATIONS)}, "
            f"got {augment!r}"
        )
    return names


def augment_batch(x: Tensor, names: tuple[str, ...]) -> Tensor:
    """``x`` (N, T, D) with the transforms ``names`` applied in order."""
    for name in names:
        if name == "jitter":
            x = x + JITTER_STD * torch.randn_like(x)
        else:
            x = x * (1 + SCALE_STD * torch.randn(x.shape[0], 1, x.shape[2], dtype=x.dtype))
    return x
