"""The fused backend: one input-projection matmul per direction and our own BPTT.

The LSTM and GRU run the loops of ``lstm_variants``/``gru_variants``, which compute the
plain cells when every variant option is off (``docs/variants.md``): the compiled
whole-time-loop kernels of :mod:`lstmkit.recurrence.kernels`, or their python steps. Only
the LSTM with a projection (``proj_size``), which those loops do not have, runs
``lstm_fused``'s python steps.
"""

from lstmkit.recurrence import gru_variants, lstm_fused, lstm_variants
from lstmkit.recurrence.lengths import step_mask
from lstmkit.recurrence.stack import run_stack


def run(cfg, x, h0, c0, weights, lengths, training):
    """Run the whole network; see :func:`lstmkit.recurrence.stack.run_stack`."""
    if cfg.mode == "GRU":
        direction = gru_variants.run_direction
    elif cfg.proj_size:
        direction = lstm_fused.run_direction
    else:
        direction = lstm_variants.run_direction
    return run_stack(cfg, x, h0, c0, weights, step_mask(lengths, x.shape[0]), training, direction)
