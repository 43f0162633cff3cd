"""Running a cell over time: one direction, the bidirectional merge, stacking, lengths.

The hand-written back-propagation through time lives here, next to the forward it
inverts: ``lstm_variants`` (with the projection) and ``gru_variants`` for the plain cells
and the variants, their compiled loops in ``kernels``, and what their loops share in
``steps``; ``docs/bptt.md`` derives it.
"""

from lstmkit.recurrence.config import MERGE_MODES, DirectionWeights, RNNConfig

__all__ = ["MERGE_MODES", "DirectionWeights", "RNNConfig"]
