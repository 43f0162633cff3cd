r"""The Whale Optimization Algorithm (Mirjalili & Lewis, 2016) in the paper's symbols.

S. Mirjalili, A. Lewis, "The Whale Optimization Algorithm", *Advances in Engineering
Software* 95 (2016) 51–67, doi:10.1016/j.advengsoft.2016.01.008 (``SPEC.md`` §7).

A population of n whales :math:`X_i \in [lb, ub]^d` minimises f. :math:`X^*` is the best
position found so far, t = 0…T−1 the update step and T = ``max_iter``. Each update draws,
for every whale, :math:`r_1, r_2, p \sim U(0, 1)` and l, and moves it by

.. math::

    a &= 2 - \frac{2t}{T}                                        && \text{2 → 0 linearly} \\
    A &= 2a\,r_1 - a, \qquad C = 2 r_2                          && \text{(2.3), (2.4)} \\
    X(t+1) &= X^* - A \cdot D, \quad D = |C X^* - X|             && p < 0.5,\ |A| < 1
        \ \text{(2.1), (2.2): encircling prey} \\
    X(t+1) &= X_{rand} - A \cdot D, \quad D = |C X_{rand} - X|   && p < 0.5,\ |A| \ge 1
        \ \text{(2.7), (2.8): search for prey} \\
    X(t+1) &= D' e^{b l} \cos(2\pi l) + X^*, \quad D' = |X^* - X| && p \ge 0.5
        \ \text{(2.5): bubble-net spiral}

with b = 1 (Eq. 2.6 chooses between shrinking and spiral with probability 0.5). Every new
position is clipped to the box, evaluated, and :math:`X^*` is updated. The whole population
moves at once with array operations; :func:`_draw` and :func:`_step` are the two halves of
one update so that a test can replay a step with a hand-written per-whale loop.

Choices common to both variants
-------------------------------
- :math:`r_1, r_2` (hence A and C), p and l are drawn **once per whale** and broadcast over
  the d dimensions, as the authors' MATLAB code ``WOA.m`` does. The paper writes A and C
  as vectors (Eq. 2.3–2.4) yet tests :math:`|A| < 1` as a single condition; per-whale
  scalars make that test well defined. (mealpy's ``OriginalWOA`` draws them per
  dimension in some versions; that is not offered here.)
- :math:`X_{rand}` is drawn uniformly among all n whales, the whale itself included
  (``WOA.m``: ``floor(SearchAgents_no*rand()+1)``).
- The update is synchronous: every whale moves from the same evaluated generation.
  ``WOA.m`` overwrites ``Positions`` whale by whale, so its :math:`X_{rand}` can already be
  another whale's new, not yet clipped position of the same iteration; that ordering
  effect is not reproduced (it would forbid the array update).
- Out-of-box coordinates are set to the bound (clipping), exactly ``WOA.m``'s
  ``Flag4ub``/``Flag4lb`` rule. The initial population is uniform in the box.

The two variants
----------------
``variant="paper"`` follows the paper's text and pseudo-code (its Fig. 6);
``variant="reference-code"`` follows the authors' published ``WOA.m`` where they differ:

========================  ==================================  ===================================
detail                    ``"paper"``                         ``"reference-code"`` (``WOA.m``)
========================  ==================================  ===================================
l                         :math:`U(-1, 1)`                    :math:`(a_2 - 1)\,\mathrm{rand} + 1`
                                                              with :math:`a_2 = -1 - t/T` falling
                                                              from −1 to −2, so
                                                              :math:`l \in [a_2, 1]`
:math:`X_{rand}`          one random whale per whale          one random whale per whale **and
                          (a whole position vector)           dimension** (``rand_leader_index``
                                                              is drawn inside the loop over j)
generations evaluated     initial + T updates:                T passes of "clip, evaluate, then
                          n(T+1) evaluations                  update"; the last pass's update is
                                                              never evaluated, so T generations,
                                                              nT evaluations, T − 1 updates
                                                              (the last one uses a = 4/T)
exploration test          :math:`|A| < 1` encircle,           ``if abs(A)>=1`` search,
                          else search                         ``elseif abs(A)<1`` encircle — the
                                                              same partition (:math:`|A| = 1`
                                                              searches in both)
``history``               T + 1 entries                       T entries: ``WOA.m``'s
                                                              ``Convergence_curve``
========================  ==================================  ===================================

Shapes (n whales, d dimensions):

===========  ==========  ====================================================
name         shape       meaning
===========  ==========  ====================================================
X            (n, d)      the evaluated generation the update starts from
X_best       (d,)        :math:`X^*`, the best position so far
r1, r2, p    (n,)        per-whale uniforms; l (n,) per whale
rand_idx     (n,)        "paper": the random whale of each whale
rand_idx     (n, d)      "reference-code": one random whale per whale and dimension
===========  ==========  ====================================================
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from lstmkit.checks import check_int, is_number

VARIANTS = ("paper", "reference-code")
B = 1.0  # b, the constant of the logarithmic spiral (Eq. 2.5)

Objective = Callable[[np.ndarray], Any]


@dataclass(frozen=True)
class WOAResult:
    """What a run found.

    ``x`` (d,) best position; ``fun`` f(x) in the caller's sign (``maximize`` reports the
    maximum); ``history`` the best value after each evaluated generation (``history[0]``
    is the initial population's, so ``len(history) == n_iter + 1``); ``n_evals`` positions
    evaluated; ``n_iter`` position updates evaluated; ``stop_reason`` one of ``"max_iter"``,
    ``"target"``, ``"stall"``, ``"time_budget"`` (``"stopped by caller"`` for an ask/tell
    run cut short); ``n_failed`` evaluations that raised or gave NaN (counted as +inf).
    """

    x: np.ndarray
    fun: float
    history: np.ndarray
    n_evals: int
    n_iter: int
    stop_reason: str
    message: str
    n_failed: int = 0


class Draws(NamedTuple):
    """The random numbers of one update, named as in the paper (shapes in the module doc)."""

    r1: np.ndarray
    r2: np.ndarray
    p: np.ndarray
    l: np.ndarray  # noqa: E741 — the paper's symbol
    rand_idx: np.ndarray


def a_schedule(t: int, T: int) -> float:
    r""":math:`a = 2 - 2t/T`, falling linearly from 2 (t = 0) towards 0."""
    return 2.0 - 2.0 * t / T


def a2_schedule(t: int, T: int) -> float:
    r""":math:`a_2 = -1 - t/T` (``WOA.m``), falling linearly from −1 towards −2."""
    return -1.0 - t / T


def _draw(rng: np.random.Generator, n: int, d: int, t: int, T: int, variant: str) -> Draws:
    """Draw one update's random numbers, in the order r1, r2, p, l, rand_idx."""
    r1 = rng.random(n)
    r2 = rng.random(n)
    p = rng.random(n)
    if variant == "paper":
        l = rng.uniform(-1.0, 1.0, n)  # noqa: E741
        rand_idx = rng.integers(n, size=n)
    else:
        l = (a2_schedule(t, T) - 1.0) * rng.random(n) + 1.0  # noqa: E741
        rand_idx = rng.integers(n, size=(n, d))
    return Draws(r1, r2, p, l, rand_idx)


def _step(X: np.ndarray, X_best: np.ndarray, a: float, draws: Draws, b: float = B) -> np.ndarray:
    r"""One WOA update of the whole population (before clipping); see the module docstring.

    X (n, d), X_best (d,) → (n, d). ``draws.rand_idx`` of shape (n,) picks one
    :math:`X_{rand}` per whale, of shape (n, d) one per whale and dimension.
    """
    d = X.shape[1]
    A = (2.0 * a * draws.r1 - a)[:, None]  # (n, 1)  Eq. 2.3
    C = (2.0 * draws.r2)[:, None]  # (n, 1)  Eq. 2.4
    if draws.rand_idx.ndim == 1:
        X_rand = X[draws.rand_idx]  # (n, d)
    else:
        X_rand = X[draws.rand_idx, np.arange(d)]  # (n, d)
    # p < 0.5: swim towards X* (|A| < 1, Eq. 2.1-2.2) or towards X_rand (|A| >= 1, Eq. 2.7-2.8)
    X_lead = np.where(np.abs(A) < 1.0, X_best, X_rand)
    D = np.abs(C * X_lead - X)
    shrinking = X_lead - A * D
    # p >= 0.5: the spiral around X* (Eq. 2.5)
    l = draws.l[:, None]  # noqa: E741
    D_prime = np.abs(X_best - X)
    spiral = D_prime * np.exp(b * l) * np.cos(2.0 * np.pi * l) + X_best
    return np.where((draws.p < 0.5)[:, None], shrinking, spiral)


def parse_bounds(bounds: object) -> tuple[np.ndarray, np.ndarray]:
    """``bounds`` → (low, high), two float arrays of shape (d,).

    Accepted: a sequence of d (low, high) pairs, shape (d, 2); or a tuple of two arrays
    (lows, highs), shape (2, d). Shape (2, 2) is read as two pairs unless both items are
    NumPy arrays.
    """
    expected = "a sequence of (low, high) pairs or a tuple of two arrays (lows, highs)"
    pair_of_arrays = (
        isinstance(bounds, tuple | list)
        and len(bounds) == 2
        and all(isinstance(item, np.ndarray) for item in bounds)
    )
    try:
        arr = np.asarray(bounds, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"bounds: expected {expected}, got {bounds!r} ({err})") from None
    if arr.size == 0:
        raise ValueError(f"bounds: expected at least one (low, high) pair, got {bounds!r}")
    if arr.ndim == 2 and arr.shape[1] == 2 and not pair_of_arrays:
        low, high = arr[:, 0], arr[:, 1]
    elif arr.ndim == 2 and arr.shape[0] == 2:
        low, high = arr[0], arr[1]
    else:
        raise ValueError(f"bounds: expected {expected}, got an array of shape {arr.shape}")
    for j, (lo, hi) in enumerate(zip(low, high, strict=True)):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"bounds[{j}]: expected finite low and high, got ({lo}, {hi})")
        if lo >= hi:
            raise ValueError(f"bounds[{j}]: expected low < high, got low={lo}, high={hi}")
    return low.copy(), high.copy()


class WOARun:
    """One run driven from outside: ``ask()`` positions, evaluate them, ``tell(fitness)``.

    The first ``ask()`` returns the initial population (uniform in the box); every later
    one the next generation by the paper's update (:func:`_step`), clipped to the box.
    ``ask()`` twice without ``tell`` returns the same positions. The run is ``done``
    after the initial population plus ``n_updates`` generations were told.
    ``WOA.minimize`` is this loop with an objective and stopping rules.

    Attributes: ``best_x`` (d,), ``best_fun``, ``iteration`` (updates evaluated so far),
    ``n_evals``, ``history``, ``n_since_improvement``, ``n_invalid`` (NaN fitness values
    told, each counted as +inf; the first one in a run warns).

    >>> run = WOA(10, 50, seed=0).start([(-5, 5)] * 2)
    >>> while not run.done:
    ...     X = run.ask()                    # (10, 2), evaluate them anywhere
    ...     run.tell(np.sum(X**2, axis=1))   # (10,)
    >>> run.result().fun < 1e-6
    True
    """

    def __init__(
        self,
        low: np.ndarray,
        high: np.ndarray,
        n_whales: int,
        max_iter: int,
        variant: str,
        rng: np.random.Generator,
    ) -> None:
        self.low, self.high = low, high
        self.n_whales, self.max_iter, self.variant = n_whales, max_iter, variant
        self.n_updates = max_iter if variant == "paper" else max_iter - 1
        self._rng = rng
        self.iteration = self.n_evals = self.n_invalid = self.n_since_improvement = 0
        self._best_x: np.ndarray | None = None  # (d,) X*
        self.best_fun = math.inf
        self._history: list[float] = []
        self._X: np.ndarray | None = None  # (n, d) the last evaluated generation
        self._pending: np.ndarray | None = None  # (n, d) asked, not yet told

    @property
    def best_x(self) -> np.ndarray | None:
        """X*, the best position told so far (a copy; None before the first tell)."""
        return None if self._best_x is None else self._best_x.copy()

    @property
    def dim(self) -> int:
        return self.low.size

    @property
    def done(self) -> bool:
        return bool(self._history) and self.iteration >= self.n_updates

    @property
    def history(self) -> np.ndarray:
        return np.array(self._history)

    def ask(self) -> np.ndarray:
        """The (n, d) positions to evaluate next (a copy)."""
        if self._pending is not None:
            return self._pending.copy()
        if not self._history:
            self._pending = self._rng.uniform(self.low, self.high, size=(self.n_whales, self.dim))
        elif self.done:
            raise ValueError(
                f"ask(): expected a run with updates left, got a finished one "
                f"({self.iteration} of {self.n_updates} updates done)"
            )
        else:
            t = self.iteration
            draws = _draw(self._rng, self.n_whales, self.dim, t, self.max_iter, self.variant)
            X_new = _step(self._X, self._best_x, a_schedule(t, self.max_iter), draws)
            self._pending = np.clip(X_new, self.low, self.high)
        return self._pending.copy()

    def tell(self, fitness: object) -> None:
        """Report f at the positions of the last ``ask()``, shape (n,), same order."""
        if self._pending is None:
            raise ValueError("tell(): expected a pending population from ask(), got none")
        values = np.asarray(fitness, dtype=float)
        if values.shape != (self.n_whales,):
            raise ValueError(
                f"tell(): expected fitness of shape ({self.n_whales},), one value per whale, "
                f"got shape {values.shape}"
            )
        values = self._replace_nan(values)
        self._X, self._pending = self._pending, None
        if self._history:  # not the initial population
            self.iteration += 1
        self.n_evals += self.n_whales
        i = int(np.argmin(values))
        if self._best_x is None or values[i] < self.best_fun:
            self._best_x, self.best_fun = self._X[i].copy(), float(values[i])
            self.n_since_improvement = 0
        else:
            self.n_since_improvement += 1
        self._history.append(self.best_fun)

    def _replace_nan(self, values: np.ndarray) -> np.ndarray:
        nan = np.isnan(values)
        count = int(nan.sum())
        if count == 0:
            return values
        if self.n_invalid == 0:
            warnings.warn(
                f"tell(): {count} of {values.size} fitness values are NaN; counted as +inf "
                f"(warned once per run; WOARun.n_invalid keeps the count)",
                RuntimeWarning,
                stacklevel=3,
            )
        self.n_invalid += count
        return np.where(nan, math.inf, values)

    def result(self, stop_reason: str | None = None, message: str | None = None) -> WOAResult:
        """The run so far as a :class:`WOAResult` (minimisation sign)."""
        if self._best_x is None:
            raise ValueError("result(): expected at least one told generation, got none")
        reason = stop_reason or ("max_iter" if self.done else "stopped by caller")
        return WOAResult(
            x=self._best_x.copy(),
            fun=self.best_fun,
            history=self.history,
            n_evals=self.n_evals,
            n_iter=self.iteration,
            stop_reason=reason,
            message=message or f"{reason} after {self.iteration} iterations",
        )


@dataclass
class _Failures:
    """Evaluations in one ``minimize`` run that raised or returned NaN."""

    n_raised: int = 0
    n_nan: int = 0
    first_error: Exception | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        return self.n_raised + self.n_nan

    def raised(self, err: Exception, count: int = 1) -> None:
        self.n_raised += count
        if self.first_error is None:
            self.first_error = err

    def nan_to_inf(self, values: np.ndarray) -> np.ndarray:
        nan = np.isnan(values)
        self.n_nan += int(nan.sum())
        return np.where(nan, math.inf, values)

    def summary(self, n_evals: int) -> str:
        first = f", first: {self.first_error!r}" if self.first_error is not None else ""
        return (
            f"the objective failed at {self.count} of {n_evals} evaluations "
            f"({self.n_raised} raised{first}; {self.n_nan} returned NaN); "
            f"those positions were counted as +inf"
        )


def _as_number(value: object) -> float:
    """One objective value → float; a wrong type or shape is the caller's bug, not a failure."""
    if value is None:
        raise TypeError("objective: expected a real number for one position, got None")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(
            f"objective: expected a real number for one position, got {type(value).__name__}"
        ) from None
    if arr.size != 1:
        raise ValueError(
            f"objective: expected one number per position, got an array of shape {arr.shape} "
            f"(pass vectorized=True if f takes the whole (n, d) population)"
        )
    return float(arr.reshape(()))


def _evaluate_each(f: Objective, X: np.ndarray, failures: _Failures) -> np.ndarray:
    """f at every row of X, one call per position."""
    out = np.full(X.shape[0], math.inf)
    for k, x in enumerate(X):
        try:
            value = f(x)
        except Exception as err:  # the objective's own failure: counted as +inf, warned once
            failures.raised(err)
        else:
            out[k] = _as_number(value)
    return failures.nan_to_inf(out)


def _evaluate_population(f: Objective, X: np.ndarray, failures: _Failures) -> np.ndarray:
    """f(X) for the whole (n, d) population in one call, returning (n,)."""
    n = X.shape[0]
    try:
        values = f(X)
    except Exception as err:  # the objective's own failure: the generation counts as +inf
        failures.raised(err, count=n)
        return np.full(n, math.inf)
    arr = np.asarray(values, dtype=float)
    if arr.shape != (n,):
        raise ValueError(
            f"vectorized objective: expected fitness of shape ({n},), one value per row of "
            f"the ({n}, d) population, got shape {arr.shape}"
        )
    return failures.nan_to_inf(arr)


@dataclass(frozen=True)
class _Stops:
    """The optional stopping rules of ``minimize`` (``max_iter`` is always on)."""

    target: float | None = None
    stall: int | None = None
    time_budget: float | None = None

    @classmethod
    def checked(cls, target: object, stall: object, time_budget: object) -> _Stops:
        if target is not None and not (is_number(target) or isinstance(target, np.number)):
            raise TypeError(f"target: expected a real number or None, got {target!r}")
        if target is not None and math.isnan(target):
            raise ValueError("target: expected a real number or None, got nan")
        if stall is not None:
            stall = check_int("stall", stall, minimum=1)
        if time_budget is not None and not (is_number(time_budget) and time_budget > 0):
            raise ValueError(f"time_budget: expected seconds > 0 or None, got {time_budget!r}")
        return cls(None if target is None else float(target), stall, time_budget)

    def reason(self, run: WOARun, elapsed: float) -> str | None:
        if self.target is not None and run.best_fun <= self.target:
            return "target"
        if run.done:
            return "max_iter"
        if self.stall is not None and run.n_since_improvement >= self.stall:
            return "stall"
        if self.time_budget is not None and elapsed >= self.time_budget:
            return "time_budget"
        return None


def _message(reason: str, run: WOARun, stops: _Stops, sign: float, elapsed: float) -> str:
    best = sign * run.best_fun
    if reason == "target":
        return f"best value {best:.6g} reached the target {sign * stops.target:.6g}"
    if reason == "stall":
        return f"no improvement in the last {stops.stall} iterations (best {best:.6g})"
    if reason == "time_budget":
        return f"time budget of {stops.time_budget:g} s used up after {elapsed:.3g} s"
    return f"all {run.n_updates} updates of {run.variant!r} WOA done (best {best:.6g})"


class WOA:
    """The Whale Optimization Algorithm (see the module docstring for the equations).

    ``n_whales`` ≥ 2, ``max_iter`` = T ≥ 1. ``seed``: an int (or None) builds a fresh
    ``np.random.default_rng(seed)`` for every run, so the same seed repeats a run exactly;
    a ``Generator`` is used as given and advances across runs. ``variant``: ``"paper"`` or
    ``"reference-code"`` (the authors' ``WOA.m``; the differences are tabled above).

    >>> res = WOA(20, 100, seed=0).minimize(lambda x: float((x**2).sum()), [(-5, 5)] * 3)
    >>> res.fun < 1e-10
    True
    """

    def __init__(
        self,
        n_whales: int = 30,
        max_iter: int = 500,
        *,
        seed: int | np.random.Generator | None = None,
        variant: str = "paper",
    ) -> None:
        self.n_whales = check_int("n_whales", n_whales, minimum=2)
        self.max_iter = check_int("max_iter", max_iter, minimum=1)
        if variant not in VARIANTS:
            raise ValueError(f"variant: expected one of {VARIANTS}, got {variant!r}")
        if seed is not None and not isinstance(seed, np.random.Generator):
            seed = check_int("seed", seed, minimum=0)
        self.variant = variant
        self.seed = seed

    def __repr__(self) -> str:
        return (
            f"WOA(n_whales={self.n_whales}, max_iter={self.max_iter}, seed={self.seed!r}, "
            f"variant={self.variant!r})"
        )

    def start(self, bounds: object) -> WOARun:
        """A new ask/tell run in ``bounds`` (see :func:`parse_bounds`)."""
        low, high = parse_bounds(bounds)
        rng = np.random.default_rng(self.seed)  # a Generator comes back as it is
        return WOARun(low, high, self.n_whales, self.max_iter, self.variant, rng)

    def minimize(
        self,
        f: Objective,
        bounds: object,
        *,
        vectorized: bool = False,
        target: float | None = None,
        stall: int | None = None,
        time_budget: float | None = None,
    ) -> WOAResult:
        """Minimise f over the box.

        ``f`` takes one position (d,) and returns a number; with ``vectorized=True`` it
        takes the population (n, d) and returns (n,). An evaluation that raises or returns
        NaN counts as +inf and the run goes on (one ``RuntimeWarning`` per run with the
        count). Optional stops, checked after every generation: ``target`` (best ≤ target),
        ``stall`` (that many iterations without a strict improvement), ``time_budget``
        (seconds of wall time).
        """
        stops = _Stops.checked(target, stall, time_budget)
        return self._run(f, bounds, vectorized, stops, sign=1.0)

    def maximize(
        self,
        f: Objective,
        bounds: object,
        *,
        vectorized: bool = False,
        target: float | None = None,
        stall: int | None = None,
        time_budget: float | None = None,
    ) -> WOAResult:
        """Maximise f: minimise −f; ``fun``, ``history`` and ``target`` in f's own sign
        (the ``target`` stop fires when the best value is ≥ target)."""
        stops = _Stops.checked(target, stall, time_budget)
        if stops.target is not None:
            stops = replace(stops, target=-stops.target)

        def negated(x: np.ndarray) -> Any:
            value = f(x)
            return None if value is None else -np.asarray(value, dtype=float)

        res = self._run(negated, bounds, vectorized, stops, sign=-1.0)
        return replace(res, fun=-res.fun, history=-res.history)

    def _run(
        self, f: Objective, bounds: object, vectorized: bool, stops: _Stops, sign: float
    ) -> WOAResult:
        run = self.start(bounds)
        evaluate = _evaluate_population if vectorized else _evaluate_each
        failures = _Failures()
        start = time.perf_counter()
        reason = None
        while reason is None:
            run.tell(evaluate(f, run.ask(), failures))
            elapsed = time.perf_counter() - start
            reason = stops.reason(run, elapsed)
        message = _message(reason, run, stops, sign, elapsed)
        if failures.count:
            summary = failures.summary(run.n_evals)
            warnings.warn(summary, RuntimeWarning, stacklevel=3)
            message = f"{message}; {summary}"
        return replace(run.result(reason, message), n_failed=failures.count)
