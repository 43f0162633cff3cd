r"""Search spaces for tuning: named dimensions and their encoding in the unit box.

WOA moves whales in a continuous box; hyper-parameters are integers, floats and choices.
A :class:`SearchSpace` maps a point :math:`u \in [0, 1]^d` of the unit box to parameters
and back, one coordinate per dimension, in the order the dimensions were given:

==============================  ==============================================================
dimension                       :math:`u \mapsto` value (``decode``); ``encode`` inverts it
==============================  ==============================================================
``Float(lo, hi)``               :math:`lo + u\,(hi - lo)`
``Float(lo, hi, log=True)``     :math:`\exp(\ln lo + u\,(\ln hi - \ln lo))`
``Int(lo, hi)``                 :math:`lo + \min(\lfloor u\,m \rfloor, m - 1)`, m = hi − lo + 1:
                                m equal bins, one per integer
``Int(lo, hi, log=True)``       :math:`\mathrm{round}(\exp(\ln(lo - ½) + u\,(\ln(hi + ½) -
                                \ln(lo - ½))))`: the bins have equal width in log space
``Categorical(choices)``        ``choices[min(floor(u k), k - 1)]``, k = len(choices): equal bins
==============================  ==============================================================

``encode`` puts an integer or a choice at the centre of its bin, so
``decode(encode(p)) == p`` for every valid ``p``, and ``encode(decode(u))`` lies in the same
bin as ``u``. Decoded floats are clipped to [lo, hi] (``exp∘ln`` can leave the box by an
ulp).

Dimensions are checked when they join a space, so that an error names the dimension:
``low >= high``, a log scale with ``low <= 0``, non-finite bounds, an empty or repeated
``choices`` raise :class:`ValueError`; a bound of the wrong type raises :class:`TypeError`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

CHOICE_TYPES = (type(None), bool, int, float, str)  # what an Optuna categorical can store


@dataclass(frozen=True)
class Int:
    """An integer in [low, high] (both included), on a linear or a log scale."""

    low: int
    high: int
    log: bool = False

    def check(self, name: str) -> None:
        _check_bounds(name, self, numbers.Integral, "an integer")

    def _log_edges(self) -> tuple[float, float]:
        return math.log(self.low - 0.5), math.log(self.high + 0.5)

    def decode(self, u: float) -> int:
        if self.log:
            lo, hi = self._log_edges()
            value = math.floor(math.exp(lo + u * (hi - lo)) + 0.5)
            return int(min(max(value, self.low), self.high))
        m = self.high - self.low + 1
        return int(self.low + min(math.floor(u * m), m - 1))

    def encode(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"expected an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"expected an integer in [{self.low}, {self.high}], got {value}")
        if self.log:
            lo, hi = self._log_edges()
            # the centre of value's bin [value - 1/2, value + 1/2) in log space
            centre = (math.log(value - 0.5) + math.log(value + 0.5)) / 2
            return (centre - lo) / (hi - lo)
        return (value - self.low + 0.5) / (self.high - self.low + 1)

    def distribution(self):
        return IntDistribution(int(self.low), int(self.high), log=self.log)

    def describe(self) -> dict:
        return {"type": "int", "low": int(self.low), "high": int(self.high), "log": self.log}


@dataclass(frozen=True)
class Float:
    """A real number in [low, high], on a linear or a log scale."""

    low: float
    high: float
    log: bool = False

    def check(self, name: str) -> None:
        _check_bounds(name, self, numbers.Real, "a real")

    def decode(self, u: float) -> float:
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            value = math.exp(lo + u * (hi - lo))
        else:
            value = self.low + u * (self.high - self.low)
        return float(min(max(value, self.low), self.high))

    def encode(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"expected a real number, got {value!r}")
        if not self.low <= value <= self.high:
            raise ValueError(f"expected a number in [{self.low}, {self.high}], got {value}")
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return (math.log(value) - lo) / (hi - lo)
        return (value - self.low) / (self.high - self.low)

    def distribution(self):
        return FloatDistribution(float(self.low), float(self.high), log=self.log)

    def describe(self) -> dict:
        return {"type": "float", "low": float(self.low), "high": float(self.high), "log": self.log}


@dataclass(frozen=True)
class Categorical:
    """One of ``choices`` (None, bool, int, float or str values, all different)."""

    choices: tuple

    def __post_init__(self) -> None:
        if isinstance(self.choices, str) or not hasattr(self.choices, "__iter__"):
            raise TypeError(f"choices: expected a sequence of values, got {self.choices!r}")
        object.__setattr__(self, "choices", tuple(self.choices))

    def check(self, name: str) -> None:
        if not self.choices:
            raise ValueError(f"{name}: expected at least one choice, got none")
        for choice in self.choices:
            if not isinstance(choice, CHOICE_TYPES):
                raise TypeError(
                    f"{name}: expected choices of type None, bool, int, float or str, "
                    f"got {type(choice).__name__} {choice!r}"
                )
        # True == 1 in Python: compare (type, value) so that (True, 1) counts as two choices
        keys = [(type(c), c) for c in self.choices]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{name}: expected different choices, got {list(self.choices)!r}")

    def decode(self, u: float) -> Any:
        k = len(self.choices)
        return self.choices[min(math.floor(u * k), k - 1)]

    def encode(self, value: Any) -> float:
        for index, choice in enumerate(self.choices):
            if type(choice) is type(value) and choice == value:
                return (index + 0.5) / len(self.choices)
        raise ValueError(f"expected one of {list(self.choices)!r}, got {value!r}")

    def distribution(self):
        return CategoricalDistribution(self.choices)

    def describe(self) -> dict:
        return {"type": "categorical", "choices": list(self.choices)}


Dimension = Int | Float | Categorical


def _check_bounds(name: str, dim: Int | Float, number: type, kind: str) -> None:
    """Bounds of the ``number`` type (not bool; finite when real), low < high, and
    low > 0 on a log scale; ``kind`` names the type in the error."""
    for bound in ("low", "high"):
        value = getattr(dim, bound)
        if isinstance(value, bool) or not isinstance(value, number):
            raise TypeError(f"{name}: expected {kind} {bound}, got {value!r}")
        if number is numbers.Real and not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite {bound}, got {value}")
    if dim.low >= dim.high:
        raise ValueError(f"{name}: expected low < high, got low={dim.low}, high={dim.high}")
    if dim.log and dim.low <= 0:
        raise ValueError(f"{name}: expected low > 0 on a log scale, got low={dim.low}")


class SearchSpace(Mapping):
    """Named dimensions in a fixed order; a point of :math:`[0, 1]^d` ↔ a parameter dict.

    >>> space = SearchSpace(hidden_size=Int(8, 64, log=True), cell=Categorical(["lstm", "gru"]))
    >>> space.decode([0.0, 0.99])
    {'hidden_size': 8, 'cell': 'gru'}
    >>> space.decode(space.encode({"hidden_size": 20, "cell": "lstm"}))
    {'hidden_size': 20, 'cell': 'lstm'}
    """

    def __init__(self, dimensions: Mapping[str, Dimension] | None = None, **named: Dimension):
        merged = dict(dimensions or {})
        overlap = sorted(set(merged) & set(named))
        if overlap:
            raise ValueError(f"dimensions: expected each name once, got {overlap} twice")
        merged.update(named)
        if not merged:
            raise ValueError("dimensions: expected at least one dimension, got none")
        for name, dim in merged.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"dimension names: expected non-empty strings, got {name!r}")
            if not isinstance(dim, Int | Float | Categorical):
                raise TypeError(
                    f"{name}: expected Int, Float or Categorical, got {type(dim).__name__}"
                )
            dim.check(name)
        self._dims: dict[str, Dimension] = merged

    # -- Mapping -----------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Dimension:
        return self._dims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dims)

    def __len__(self) -> int:
        return len(self._dims)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k!r}: {v!r}" for k, v in self._dims.items())
        return f"SearchSpace({{{inner}}})"

    # -- the unit-box encoding ---------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self._dims)

    @property
    def bounds(self) -> list[tuple[float, float]]:
        """The WOA box: d pairs (0, 1)."""
        return [(0.0, 1.0)] * len(self)

    def decode(self, u) -> dict[str, Any]:
        """A point u (d,) of the unit box → {name: value}; coordinates outside [0, 1] are
        clipped first."""
        point = np.asarray(u, dtype=float)
        if point.shape != (len(self),):
            raise ValueError(
                f"u: expected a point of shape ({len(self)},) for the dimensions "
                f"{self.names}, got shape {point.shape}"
            )
        if not np.isfinite(point).all():
            raise ValueError(f"u: expected finite coordinates, got {point.tolist()}")
        point = np.clip(point, 0.0, 1.0)
        return {
            name: dim.decode(float(x))
            for (name, dim), x in zip(self._dims.items(), point, strict=True)
        }

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """{name: value} → the centre of its cell in the unit box, shape (d,)."""
        missing = [n for n in self._dims if n not in params]
        extra = [n for n in params if n not in self._dims]
        if missing or extra:
            raise ValueError(
                f"params: expected exactly the names {self.names}, got missing {missing} "
                f"and unknown {extra}"
            )
        out = np.empty(len(self))
        for j, (name, dim) in enumerate(self._dims.items()):
            try:
                out[j] = dim.encode(params[name])
            except (TypeError, ValueError) as err:
                raise type(err)(f"{name}: {err}") from None
        return out

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` has exactly these names, each value valid for its dimension."""
        try:
            self.encode(params)
        except (TypeError, ValueError):
            return False
        return True

    # -- Optuna ------------------------------------------------------------------------------

    def distributions(self) -> dict:
        """{name: optuna distribution} (IntDistribution, FloatDistribution,
        CategoricalDistribution), in order."""
        return {name: dim.distribution() for name, dim in self._dims.items()}

    def suggest(self, trial) -> dict[str, Any]:
        """Ask an Optuna trial for every dimension (works with any sampler)."""
        return {name: _suggest(trial, name, dist) for name, dist in self.distributions().items()}

    def describe(self) -> list[dict]:
        """A JSON-able description, used to check that a resumed study has the same space."""
        return [{"name": name, **dim.describe()} for name, dim in self._dims.items()]


def _suggest(trial, name: str, dist) -> Any:
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_categorical(name, dist.choices)


TASKS = ("forecast", "classify", "regress", "tag")


def default_space(task: str) -> SearchSpace:
    """Small-ish ranges that train in seconds on a CPU (WOA-BiLSTM practice, ``SPEC.md`` §7).

    Every task: ``hidden_size`` 8–64 (log), ``num_layers`` 1–2, ``lr`` 1e-3–3e-2 (log),
    ``dropout`` 0–0.3, ``batch_size`` 8–64 (log), ``epochs`` 10–100, ``cell`` lstm/gru,
    ``bidirectional``. ``"forecast"`` adds ``lookback`` 4–36; ``"classify"`` and
    ``"regress"`` add ``pooling`` (last, last+max, mean+max).
    """
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    dims: dict[str, Dimension] = {
        "hidden_size": Int(8, 64, log=True),
        "num_layers": Int(1, 2),
        "lr": Float(1e-3, 3e-2, log=True),
        "dropout": Float(0.0, 0.3),
        "batch_size": Int(8, 64, log=True),
        "epochs": Int(10, 100),
    }
    if task == "forecast":
        dims["lookback"] = Int(4, 36)
    dims["cell"] = Categorical(("lstm", "gru"))
    dims["bidirectional"] = Categorical((False, True))
    if task in ("classify", "regress"):
        dims["pooling"] = Categorical(("last", "last+max", "mean+max"))
    return SearchSpace(dims)
