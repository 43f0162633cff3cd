"""The Whale Optimization Algorithm (Mirjalili & Lewis, 2016) and its classic test functions.

:mod:`lstmkit.woa.optimizer` holds the algorithm in the paper's symbols (``WOA``, with
``minimize``/``maximize`` and an ask/tell interface, ``WOARun``);
:mod:`lstmkit.woa.benchmarks` the test functions F1–F13 and the paper's reported figures.
"""

from lstmkit.woa.optimizer import WOA, WOAResult, WOARun

__all__ = ["WOA", "WOAResult", "WOARun"]
