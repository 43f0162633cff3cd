"""Running a cell over time: one direction, the bidirectional merge, stacking, lengths.

The hand-written back-propagation through time (``lstm_fused``, ``gru_fused``) lives
here, next to the forward it inverts; ``docs/bptt.md`` derives it.
"""

from lstmkit.recurrence.config import MERGE_MODES, DirectionWeights, RNNConfig

__all__ = ["MERGE_MODES", "DirectionWeights", "RNNConfig"]
