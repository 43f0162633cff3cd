"""The fused backend: one input-projection matmul per direction and our own BPTT.

The plain cells run the tuned kernels of ``lstm_fused``/``gru_fused``; the cell variants
(``docs/variants.md``) run ``lstm_variants``/``gru_variants``.
"""

from lstmkit.recurrence import gru_fused, gru_variants, lstm_fused, lstm_variants
from lstmkit.recurrence.lengths import step_mask
from lstmkit.recurrence.stack import run_stack


def run(cfg, x, h0, c0, weights, lengths, training):
    """Run the whole network; see :func:`lstmkit.recurrence.stack.run_stack`."""
    if cfg.mode == "LSTM":
        direction = lstm_variants.run_direction if cfg.variant else lstm_fused.run_direction
    else:
        direction = gru_variants.run_direction if cfg.variant else gru_fused.run_direction
    return run_stack(cfg, x, h0, c0, weights, step_mask(lengths, x.shape[0]), training, direction)
