"""The fused backend: one input-projection matmul per direction and our own BPTT."""

from lstmkit.recurrence import gru_fused, lstm_fused
from lstmkit.recurrence.lengths import step_mask
from lstmkit.recurrence.stack import run_stack


def run(cfg, x, h0, c0, weights, lengths, training):
    """Run the whole network; see :func:`lstmkit.recurrence.stack.run_stack`."""
    direction = lstm_fused.run_direction if cfg.mode == "LSTM" else gru_fused.run_direction
    return run_stack(cfg, x, h0, c0, weights, step_mask(lengths, x.shape[0]), training, direction)
