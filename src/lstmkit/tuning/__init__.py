"""Hyper-parameter tuning of the estimators: search spaces in the unit box
(:mod:`lstmkit.tuning.space`: ``SearchSpace``, ``Int``, ``Float``, ``Categorical``,
``default_space``), WOA-BiLSTM tuning through Optuna with WOA or another sampler
(:mod:`lstmkit.tuning.tune`: ``tune``), and the comparison runner
(:mod:`lstmkit.tuning.compare`). The algorithm itself is :mod:`lstmkit.woa`."""

from lstmkit.tuning.space import Categorical, Float, Int, SearchSpace, default_space
from lstmkit.tuning.tune import TuneResult, tune

__all__ = ["Categorical", "Float", "Int", "SearchSpace", "TuneResult", "default_space", "tune"]
