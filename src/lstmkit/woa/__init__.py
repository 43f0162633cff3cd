"""The Whale Optimization Algorithm (Mirjalili & Lewis, 2016) and its classic test functions.

:mod:`lstmkit.woa.optimizer` holds the algorithm in the paper's symbols (``WOA``, with
``minimize``/``maximize`` and an ask/tell interface, ``WOARun``);
:mod:`lstmkit.woa.benchmarks` the test functions F1–F13 and the paper's reported figures;
:mod:`lstmkit.woa.space` search spaces in the unit box (``SearchSpace``, ``Int``, ``Float``,
``Categorical``, ``default_space``); :mod:`lstmkit.woa.sampler` WOA as an Optuna sampler
(``WOASampler``), :mod:`lstmkit.woa.tune` WOA-BiLSTM tuning (``tune``),
:mod:`lstmkit.woa.compare` the comparison runner and :mod:`lstmkit.woa.weights` WOA on
the network's weights.
"""

from lstmkit.woa.optimizer import WOA, WOAResult, WOARun
from lstmkit.woa.sampler import WOASampler
from lstmkit.woa.space import Categorical, Float, Int, SearchSpace, default_space
from lstmkit.woa.tune import TuneResult, tune

__all__ = [
    "WOA",
    "Categorical",
    "Float",
    "Int",
    "SearchSpace",
    "TuneResult",
    "WOAResult",
    "WOARun",
    "WOASampler",
    "default_space",
    "tune",
]
