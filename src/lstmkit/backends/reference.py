"""The reference backend: the cell functions in a Python loop, autograd for the backward."""

from lstmkit.recurrence import reference
from lstmkit.recurrence.lengths import step_mask
from lstmkit.recurrence.stack import run_stack


def run(cfg, x, h0, c0, weights, lengths, training):
    """Run the whole network; see :func:`lstmkit.recurrence.stack.run_stack`."""
    mask = step_mask(lengths, x.shape[0])
    return run_stack(cfg, x, h0, c0, weights, mask, training, reference.run_direction)
