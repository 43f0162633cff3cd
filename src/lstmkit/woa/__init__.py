"""The Whale Optimization Algorithm (Mirjalili & Lewis, 2016) and its classic test functions.

:mod:`lstmkit.woa.optimizer` holds the algorithm in the paper's symbols (``WOA``, with
``minimize``/``maximize`` and an ask/tell interface, ``WOARun``);
:mod:`lstmkit.woa.benchmarks` the test functions F1–F13 and the paper's reported figures;
:mod:`lstmkit.woa.sampler` WOA as an Optuna sampler (``WOASampler``) over a search space
(:mod:`lstmkit.tuning.space`); :mod:`lstmkit.woa.weights` WOA on the network's weights.
Tuning estimators with it is :mod:`lstmkit.tuning`.
"""

from lstmkit.woa.optimizer import WOA, WOAResult, WOARun
from lstmkit.woa.sampler import WOASampler

__all__ = ["WOA", "WOAResult", "WOARun", "WOASampler"]
