"""The fused backend: one input-projection matmul per direction and our own BPTT.

The LSTM and GRU run the loops of ``lstm_variants``/``gru_variants``, which compute the
plain cells when every variant option is off (``docs/variants.md``), in one of two step
implementations that compute the same numbers: the compiled whole-time-loop kernels of
:mod:`lstmkit.recurrence.kernels` (``compiled``) or torch calls step by step
(``python-steps``). Only the LSTM with a projection (``proj_size``), which the compiled
loops do not have, runs ``lstm_fused``'s python steps.
"""

from functools import partial

from lstmkit.recurrence import gru_variants, lstm_fused, lstm_variants
from lstmkit.recurrence.lengths import step_mask
from lstmkit.recurrence.stack import run_stack


def run(cfg, x, h0, c0, weights, lengths, training, steps: str | None = None):
    """Run the whole network (see :func:`lstmkit.recurrence.stack.run_stack`) with the step
    implementation ``steps``: "compiled", "python", or None for ``LSTMKIT_KERNELS``'s."""
    if cfg.mode == "GRU":
        direction = partial(gru_variants.run_direction, steps=steps)
    elif cfg.proj_size:
        direction = lstm_fused.run_direction
    else:
        direction = partial(lstm_variants.run_direction, steps=steps)
    return run_stack(cfg, x, h0, c0, weights, step_mask(lengths, x.shape[0]), training, direction)


run_compiled = partial(run, steps="compiled")
run_python_steps = partial(run, steps="python")
