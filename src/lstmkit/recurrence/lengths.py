"""Variable-length batches: checking ``lengths`` and turning them into step masks.

A padded batch (T, N, ·) with ``lengths[n]`` real steps in sequence n is run as if each
sequence were alone: at step t the state of sequence n is updated only where
``t < lengths[n]`` and carried unchanged otherwise, and outputs past the length are zero.
Because the carried state is untouched, the reverse direction starts at each sequence's
own last real step, not at the padding.
"""

import torch
from torch import Tensor


def check_lengths(lengths, batch: int, steps: int, device: torch.device) -> Tensor | None:
    """Return ``lengths`` as an int64 tensor of shape (N,) on ``device``, or raise ValueError."""
    if lengths is None:
        return None
    if not isinstance(lengths, Tensor):
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(
                f"lengths: expected a 1-D sequence of ints, got {type(lengths).__name__}"
            ) from err
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths: expected an integer tensor, got dtype {lengths.dtype}")
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ValueError(
            f"lengths: expected shape ({batch},) (one length per sequence), "
            f"got {tuple(lengths.shape)}"
        )
    lengths = lengths.to(device=device, dtype=torch.int64)
    if batch > 0:
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > steps:
            raise ValueError(
                f"lengths: expected every length in [1, {steps}] (the padded sequence length), "
                f"got values in [{low}, {high}]"
            )
    return lengths


def step_mask(lengths: Tensor | None, steps: int) -> Tensor | None:
    """Boolean mask (T, N, 1): True where step t is a real step of sequence n."""
    if lengths is None:
        return None
    t = torch.arange(steps, device=lengths.device).unsqueeze(1)
    return (t < lengths.unsqueeze(0)).unsqueeze(-1)


def real_steps(lengths: Tensor, steps: int) -> Tensor:
    """Boolean mask (N, T), batch-first: True where step t is a real step of sequence n."""
    return torch.arange(steps, device=lengths.device)[None] < lengths[:, None]


def all_full(lengths: Tensor | None, steps: int) -> bool:
    """True when there are no lengths or every sequence fills all ``steps``."""
    return lengths is None or bool((lengths == steps).all())
