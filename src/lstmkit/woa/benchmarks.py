r"""The classic test functions F1–F13 (Yao, Liu & Lin 1999; Table 2 of the WOA paper).

Every function takes one position (d,) and returns a float, or a population (n, d) and
returns (n,). With :math:`x \in \mathbb{R}^d` and :math:`i = 1…d`:

.. math::

    F_1 &= \textstyle\sum_i x_i^2                                  && [-100, 100]^d \\
    F_2 &= \textstyle\sum_i |x_i| + \prod_i |x_i|                  && [-10, 10]^d \\
    F_3 &= \textstyle\sum_i \big(\sum_{j \le i} x_j\big)^2         && [-100, 100]^d \\
    F_4 &= \max_i |x_i|                                            && [-100, 100]^d \\
    F_5 &= \textstyle\sum_{i<d} 100 (x_{i+1} - x_i^2)^2 + (x_i - 1)^2 && [-30, 30]^d \\
    F_6 &= \textstyle\sum_i \lfloor x_i + 0.5 \rfloor^2            && [-100, 100]^d \\
    F_7 &= \textstyle\sum_i i\,x_i^4 + \mathrm{random}[0, 1)       && [-1.28, 1.28]^d \\
    F_8 &= \textstyle\sum_i -x_i \sin\sqrt{|x_i|}                  && [-500, 500]^d \\
    F_9 &= \textstyle\sum_i x_i^2 - 10\cos(2\pi x_i) + 10          && [-5.12, 5.12]^d \\
    F_{10} &= -20 e^{-0.2\sqrt{\frac1d \sum_i x_i^2}}
              - e^{\frac1d \sum_i \cos 2\pi x_i} + 20 + e          && [-32, 32]^d \\
    F_{11} &= \tfrac{1}{4000}\textstyle\sum_i x_i^2
              - \prod_i \cos\frac{x_i}{\sqrt i} + 1                && [-600, 600]^d \\
    F_{12} &= \tfrac{\pi}{d}\Big\{10\sin^2(\pi y_1)
              + \textstyle\sum_{i<d} (y_i - 1)^2 [1 + 10\sin^2(\pi y_{i+1})]
              + (y_d - 1)^2\Big\} + \textstyle\sum_i u(x_i, 10, 100, 4),
              \quad y_i = 1 + \tfrac{x_i + 1}{4}                   && [-50, 50]^d \\
    F_{13} &= 0.1\Big\{\sin^2(3\pi x_1)
              + \textstyle\sum_{i<d} (x_i - 1)^2 [1 + \sin^2(3\pi x_{i+1})]
              + (x_d - 1)^2 [1 + \sin^2(2\pi x_d)]\Big\}
              + \textstyle\sum_i u(x_i, 5, 100, 4)                 && [-50, 50]^d

with the penalty :math:`u(x, a, k, m) = k (x - a)^m` for x > a, 0 for −a ≤ x ≤ a and
:math:`k(-x - a)^m` for x < −a. The minimum is 0 except F8's, :math:`-418.9828872724…\,d`
at :math:`x_i = 420.9687…` (the paper's table prints "−418.9829 × 5"; 5 is a typo for d).
F12's minimum is at :math:`x_i = -1`, F5's and F13's at 1, the others' at 0.

F6 in the authors' code: the benchmark file published with the paper
(``Get_Functions_details.m``) computes F6 as :math:`\sum_i |x_i + 0.5|^2`, without
Yao's floor. With the floor, any x in :math:`[-0.5, 0.5)^d` scores exactly 0; without it,
only x = −0.5 does, and the paper's F6 figure (3.12 ± 0.53) comes from that continuous
form. ``FUNCTIONS["F6"]`` is Yao's (the paper's Table 2) and :data:`F6_AUTHORS_CODE` the
continuous one, so the benchmark can compare like with like. F7's noise is one
:math:`U[0, 1)` draw per position (``rand`` in the authors' code), taken from the
``rng`` argument or, when none is given, from a module-level generator seeded once.

:data:`PAPER_WOA` holds the paper's WOA results (mean and standard deviation of the best
value over 30 runs; 30 whales, 500 iterations, d = 30), Table 4 of the paper. These
figures were taken from the task brief and agree with the authors' table as we recall
it; no copy of the paper was available to check them against while writing this module,
so treat them as unverified transcriptions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_DEFAULT_NOISE_RNG = np.random.default_rng(20160101)

F8_MIN_PER_DIM = -418.9828872724338  # min of -x sin(sqrt|x|) on [-500, 500], at 420.96874…
F8_ARGMIN = 420.96874369616904


def _population(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray | float]:
    """Let ``fn`` (written for a population (n, d) → (n,)) also take one position (d,)."""

    @functools.wraps(fn)
    def wrapper(x: np.ndarray, *args: object, **kwargs: object) -> np.ndarray | float:
        x = np.asarray(x, dtype=float)
        if x.ndim not in (1, 2) or x.shape[-1] == 0:
            raise ValueError(
                f"{fn.__name__}: expected a position (d,) or a population (n, d) with d >= 1, "
                f"got shape {x.shape}"
            )
        values = fn(np.atleast_2d(x), *args, **kwargs)
        return float(values[0]) if x.ndim == 1 else values

    return wrapper


def _u(X: np.ndarray, a: float, k: float, m: int) -> np.ndarray:
    """The penalty u(x, a, k, m) of F12 and F13, elementwise."""
    return np.where(X > a, k * (X - a) ** m, 0.0) + np.where(X < -a, k * (-X - a) ** m, 0.0)


@_population
def sphere(X: np.ndarray) -> np.ndarray:
    """F1: Σ x_i²."""
    return np.sum(X**2, axis=-1)


@_population
def schwefel_2_22(X: np.ndarray) -> np.ndarray:
    """F2: Σ |x_i| + Π |x_i|."""
    return np.sum(np.abs(X), axis=-1) + np.prod(np.abs(X), axis=-1)


@_population
def schwefel_1_2(X: np.ndarray) -> np.ndarray:
    """F3: Σ_i (Σ_{j≤i} x_j)²."""
    return np.sum(np.cumsum(X, axis=-1) ** 2, axis=-1)


@_population
def schwefel_2_21(X: np.ndarray) -> np.ndarray:
    """F4: max_i |x_i|."""
    return np.max(np.abs(X), axis=-1)


@_population
def rosenbrock(X: np.ndarray) -> np.ndarray:
    """F5: Σ_{i<d} 100 (x_{i+1} − x_i²)² + (x_i − 1)²."""
    head, tail = X[:, :-1], X[:, 1:]
    return np.sum(100.0 * (tail - head**2) ** 2 + (head - 1.0) ** 2, axis=-1)


@_population
def step(X: np.ndarray) -> np.ndarray:
    """F6 (Yao et al.): Σ ⌊x_i + 0.5⌋²."""
    return np.sum(np.floor(X + 0.5) ** 2, axis=-1)


@_population
def step_authors_code(X: np.ndarray) -> np.ndarray:
    """F6 as the authors' ``Get_Functions_details.m`` computes it: Σ |x_i + 0.5|²."""
    return np.sum(np.abs(X + 0.5) ** 2, axis=-1)


@_population
def quartic(X: np.ndarray) -> np.ndarray:
    """F7 without its noise: Σ i·x_i⁴."""
    i = np.arange(1, X.shape[-1] + 1)
    return np.sum(i * X**4, axis=-1)


@_population
def quartic_noise(X: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """F7: Σ i·x_i⁴ + U[0, 1), one draw per position from ``rng`` (or the module default)."""
    return quartic(X) + (_DEFAULT_NOISE_RNG if rng is None else rng).random(X.shape[0])


@_population
def schwefel_2_26(X: np.ndarray) -> np.ndarray:
    """F8: Σ −x_i sin(√|x_i|)."""
    return np.sum(-X * np.sin(np.sqrt(np.abs(X))), axis=-1)


@_population
def rastrigin(X: np.ndarray) -> np.ndarray:
    """F9: Σ x_i² − 10 cos(2π x_i) + 10."""
    return np.sum(X**2 - 10.0 * np.cos(2.0 * np.pi * X) + 10.0, axis=-1)


@_population
def ackley(X: np.ndarray) -> np.ndarray:
    """F10: −20 exp(−0.2 √(mean x²)) − exp(mean cos 2πx) + 20 + e."""
    mean_sq = np.mean(X**2, axis=-1)
    mean_cos = np.mean(np.cos(2.0 * np.pi * X), axis=-1)
    return -20.0 * np.exp(-0.2 * np.sqrt(mean_sq)) - np.exp(mean_cos) + 20.0 + np.e


@_population
def griewank(X: np.ndarray) -> np.ndarray:
    """F11: Σ x_i²/4000 − Π cos(x_i/√i) + 1."""
    i = np.arange(1, X.shape[-1] + 1)
    return np.sum(X**2, axis=-1) / 4000.0 - np.prod(np.cos(X / np.sqrt(i)), axis=-1) + 1.0


@_population
def penalized_1(X: np.ndarray) -> np.ndarray:
    """F12 (generalized penalized function 1); see the module docstring."""
    d = X.shape[-1]
    Y = 1.0 + (X + 1.0) / 4.0
    core = (
        10.0 * np.sin(np.pi * Y[:, 0]) ** 2
        + np.sum((Y[:, :-1] - 1.0) ** 2 * (1.0 + 10.0 * np.sin(np.pi * Y[:, 1:]) ** 2), axis=-1)
        + (Y[:, -1] - 1.0) ** 2
    )
    return np.pi / d * core + np.sum(_u(X, 10.0, 100.0, 4), axis=-1)


@_population
def penalized_2(X: np.ndarray) -> np.ndarray:
    """F13 (generalized penalized function 2); see the module docstring."""
    core = (
        np.sin(3.0 * np.pi * X[:, 0]) ** 2
        + np.sum((X[:, :-1] - 1.0) ** 2 * (1.0 + np.sin(3.0 * np.pi * X[:, 1:]) ** 2), axis=-1)
        + (X[:, -1] - 1.0) ** 2 * (1.0 + np.sin(2.0 * np.pi * X[:, -1]) ** 2)
    )
    return 0.1 * core + np.sum(_u(X, 5.0, 100.0, 4), axis=-1)


@dataclass(frozen=True)
class BenchmarkFunction:
    """One test function: ``f`` on the box [low, high]^d, minimum ``f_min(d)`` at
    ``x_star`` in every coordinate. ``noisy`` functions take an ``rng`` (see
    :meth:`objective`)."""

    key: str
    name: str
    f: Callable[..., np.ndarray | float]
    low: float
    high: float
    x_star: float = 0.0
    f_min_per_dim: float = 0.0  # F8 only: its minimum grows with d
    noisy: bool = False

    def f_min(self, d: int = 30) -> float:
        return self.f_min_per_dim * d

    def bounds(self, d: int = 30) -> tuple[np.ndarray, np.ndarray]:
        """(lows, highs), each of shape (d,), as ``WOA.minimize`` takes them."""
        return np.full(d, self.low), np.full(d, self.high)

    def objective(self, rng: np.random.Generator | None = None) -> Callable[..., object]:
        """``f`` with a noisy function's generator bound (``rng`` ignored otherwise)."""
        return functools.partial(self.f, rng=rng) if self.noisy else self.f


FUNCTIONS: dict[str, BenchmarkFunction] = {
    fn.key: fn
    for fn in (
        BenchmarkFunction("F1", "sphere", sphere, -100.0, 100.0),
        BenchmarkFunction("F2", "Schwefel 2.22", schwefel_2_22, -10.0, 10.0),
        BenchmarkFunction("F3", "Schwefel 1.2", schwefel_1_2, -100.0, 100.0),
        BenchmarkFunction("F4", "Schwefel 2.21", schwefel_2_21, -100.0, 100.0),
        BenchmarkFunction("F5", "Rosenbrock", rosenbrock, -30.0, 30.0, x_star=1.0),
        BenchmarkFunction("F6", "step", step, -100.0, 100.0),
        BenchmarkFunction("F7", "quartic with noise", quartic_noise, -1.28, 1.28, noisy=True),
        BenchmarkFunction(
            "F8",
            "Schwefel 2.26",
            schwefel_2_26,
            -500.0,
            500.0,
            x_star=F8_ARGMIN,
            f_min_per_dim=F8_MIN_PER_DIM,
        ),
        BenchmarkFunction("F9", "Rastrigin", rastrigin, -5.12, 5.12),
        BenchmarkFunction("F10", "Ackley", ackley, -32.0, 32.0),
        BenchmarkFunction("F11", "Griewank", griewank, -600.0, 600.0),
        BenchmarkFunction("F12", "penalized 1", penalized_1, -50.0, 50.0, x_star=-1.0),
        BenchmarkFunction("F13", "penalized 2", penalized_2, -50.0, 50.0, x_star=1.0),
    )
}

F6_AUTHORS_CODE = BenchmarkFunction(
    "F6-code", "step, authors' code (Σ|x+0.5|²)", step_authors_code, -100.0, 100.0, x_star=-0.5
)

# Mirjalili & Lewis (2016), Table 4, WOA column: (mean, std) of the best value, 30 runs.
# Unverified transcription: see the module docstring.
PAPER_WOA: dict[str, tuple[float, float]] = {
    "F1": (1.41e-30, 4.91e-30),
    "F2": (1.06e-21, 2.39e-21),
    "F3": (5.39e-07, 2.93e-06),
    "F4": (0.072581, 0.39747),
    "F5": (27.86558, 0.763626),
    "F6": (3.116266, 0.532429),
    "F7": (0.001425, 0.001149),
    "F8": (-5080.76, 695.7968),
    "F9": (0.0, 0.0),
    "F10": (7.4043, 9.897572),
    "F11": (0.000289, 0.001586),
    "F12": (0.339676, 0.214864),
    "F13": (1.889015, 0.266088),
}
