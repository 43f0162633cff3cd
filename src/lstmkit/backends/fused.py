"""The fused backend: one input-projection matmul per direction and our own BPTT.

The LSTM (with or without a projection) and the GRU run the loops of
``lstm_variants``/``gru_variants``, which compute the plain cells when every variant
option is off (``docs/variants.md``), in one of two step implementations that compute
the same numbers: the compiled whole-time-loop kernels of
:mod:`lstmkit.recurrence.kernels` (``compiled``) or torch calls step by step
(``python-steps``).
"""

from functools import partial

from lstmkit.recurrence import gru_variants, lstm_variants
from lstmkit.recurrence.lengths import step_mask
from lstmkit.recurrence.stack import run_stack


def run(cfg, x, h0, c0, weights, lengths, training, steps: str | None = None):
    """Run the whole network (see :func:`lstmkit.recurrence.stack.run_stack`) with the step
    implementation ``steps``: "compiled", "python", or None for ``LSTMKIT_KERNELS``'s."""
    engine = gru_variants if cfg.mode == "GRU" else lstm_variants
    direction = partial(engine.run_direction, steps=steps)
    return run_stack(cfg, x, h0, c0, weights, step_mask(lengths, x.shape[0]), training, direction)


run_compiled = partial(run, steps="compiled")
run_python_steps = partial(run, steps="python")
