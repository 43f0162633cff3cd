"""WOA: the update against a hand-written per-whale loop, the test functions against hand
values, convergence on sphere and Rastrigin, the ask/tell protocol, stops and errors."""

import math
import time
import warnings

import numpy as np
import pytest

from lstmkit.woa import WOA, WOAResult
from lstmkit.woa.benchmarks import (
    F6_AUTHORS_CODE,
    FUNCTIONS,
    PAPER_WOA,
    quartic,
    quartic_noise,
)
from lstmkit.woa.optimizer import Draws, _draw, _step, a2_schedule, a_schedule, parse_bounds

VARIANTS = ("paper", "reference-code")


def sphere_rows(X):
    return np.sum(X**2, axis=-1)


# ---------------------------------------------------------------- the update, by hand


def step_by_hand(X, X_best, a, draws):
    """The paper's update written whale by whale and dimension by dimension."""
    n, d = X.shape
    out = np.empty_like(X)
    for i in range(n):
        A = 2 * a * draws.r1[i] - a
        C = 2 * draws.r2[i]
        l = draws.l[i]  # noqa: E741
        for j in range(d):
            if draws.p[i] < 0.5:
                if abs(A) < 1:
                    D = abs(C * X_best[j] - X[i, j])
                    out[i, j] = X_best[j] - A * D
                else:
                    k = draws.rand_idx[i] if draws.rand_idx.ndim == 1 else draws.rand_idx[i, j]
                    D = abs(C * X[k, j] - X[i, j])
                    out[i, j] = X[k, j] - A * D
            else:
                D = abs(X_best[j] - X[i, j])
                out[i, j] = D * math.exp(1.0 * l) * math.cos(2 * math.pi * l) + X_best[j]
    return out


def test_step_matches_hand_loop_on_every_branch():
    X = np.array([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0], [-3.0, 2.0, 2.5], [4.0, -4.0, 0.0]])
    X_best = np.array([0.1, -0.2, 0.3])
    a = 1.5
    # whale 0: p < 0.5, |A| = |2·1.5·0.6 − 1.5| = 0.3 < 1   → encircling X*
    # whale 1: p < 0.5, |A| = |2·1.5·0.05 − 1.5| = 1.35 ≥ 1 → towards X_rand
    # whale 2: p ≥ 0.5                                       → spiral
    # whale 3: p < 0.5, |A| = |2·1.5·1.0 − 1.5| = 1.5       → towards X_rand
    r1 = np.array([0.6, 0.05, 0.3, 1.0])
    r2 = np.array([0.2, 0.9, 0.4, 0.7])
    p = np.array([0.1, 0.4, 0.8, 0.2])
    l = np.array([0.3, -0.7, -0.25, 0.9])  # noqa: E741
    for rand_idx in (
        np.array([2, 3, 0, 1]),
        np.array([[2, 3, 0], [3, 3, 1], [0, 0, 0], [1, 2, 3]]),
    ):
        draws = Draws(r1, r2, p, l, rand_idx)
        np.testing.assert_allclose(_step(X, X_best, a, draws), step_by_hand(X, X_best, a, draws))
    # spot check whale 0 with the equations written out: A = 0.3, C = 0.4
    want = X_best - 0.3 * np.abs(0.4 * X_best - X[0])
    np.testing.assert_allclose(_step(X, X_best, a, draws)[0], want)


def test_schedules():
    assert a_schedule(0, 500) == 2.0
    assert a_schedule(250, 500) == 1.0
    assert a_schedule(499, 500) == pytest.approx(2 / 500)
    assert a2_schedule(0, 500) == -1.0
    assert a2_schedule(250, 500) == -1.5


@pytest.mark.parametrize("variant", VARIANTS)
def test_run_replays_with_the_same_draws(variant):
    """Three generations of a run equal a replay: same generator, hand loop, clipping."""
    n, d, T, seed = 5, 3, 10, 11
    low, high = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 2.0, 5.0])
    f = lambda X: np.sum((X - 0.3) ** 2, axis=-1)  # noqa: E731

    run = WOA(n, T, seed=seed, variant=variant).start((low, high))
    rng = np.random.default_rng(seed)
    X = rng.uniform(low, high, size=(n, d))
    best_x, best_f = None, math.inf
    for t in range(3):
        got = run.ask()
        if t > 0:
            r1, r2, p = rng.random(n), rng.random(n), rng.random(n)
            if variant == "paper":
                l = rng.uniform(-1, 1, n)  # noqa: E741
                idx = rng.integers(n, size=n)
            else:
                l = (-1 - (t - 1) / T - 1) * rng.random(n) + 1  # noqa: E741
                idx = rng.integers(n, size=(n, d))
            a = 2 - 2 * (t - 1) / T
            X = np.clip(step_by_hand(X, best_x, a, Draws(r1, r2, p, l, idx)), low, high)
        np.testing.assert_allclose(got, X, rtol=0, atol=1e-12)
        fit = f(X)
        if fit.min() < best_f:
            best_x, best_f = X[np.argmin(fit)].copy(), fit.min()
        run.tell(fit)
        assert run.best_fun == best_f
        np.testing.assert_array_equal(run.best_x, best_x)


def test_draw_distributions():
    rng = np.random.default_rng(0)
    n, d, T = 4, 3, 100
    paper = [_draw(rng, n, d, 50, T, "paper") for _ in range(200)]
    ref = [_draw(rng, n, d, 50, T, "reference-code") for _ in range(200)]
    l_paper = np.concatenate([dr.l for dr in paper])
    l_ref = np.concatenate([dr.l for dr in ref])
    assert -1 <= l_paper.min() < -0.99 and 0.99 < l_paper.max() < 1  # U(-1, 1)
    assert -1.5 <= l_ref.min() < -1.49 and 0.99 < l_ref.max() <= 1  # [a2, 1], a2 = -1.5 at t = T/2
    assert paper[0].rand_idx.shape == (n,) and ref[0].rand_idx.shape == (n, d)
    for draws in (paper, ref):
        idx = np.stack([dr.rand_idx for dr in draws])
        # X_rand ranges over all n whales, the whale itself included
        assert set(np.unique(idx)) == set(range(n))
        own = np.arange(n) if idx.ndim == 2 else np.arange(n)[:, None]
        assert np.any(idx == own)
        for name in ("r1", "r2", "p"):
            u = np.concatenate([getattr(dr, name) for dr in draws])
            assert 0 <= u.min() < 0.01 and 0.99 < u.max() < 1


# ------------------------------------------------------------------ test functions


def test_functions_at_their_optimum():
    for d in (2, 30):
        for fn in (*FUNCTIONS.values(), F6_AUTHORS_CODE):
            value = fn.objective(np.random.default_rng(0))(np.full(d, fn.x_star))
            if fn.noisy:  # F7: only the noise, in [0, 1)
                assert 0 <= value - fn.f_min(d) < 1, fn.key
            else:
                assert value == pytest.approx(fn.f_min(d), abs=1e-9 * d), fn.key


def test_functions_at_a_hand_computed_point():
    x = np.array([1.0, 2.0])
    s1, s2 = math.sin(1.0), math.sin(math.sqrt(2.0))
    want = {
        "F1": 1 + 4,
        "F2": (1 + 2) + 1 * 2,
        "F3": 1**2 + 3**2,
        "F4": 2,
        "F5": 100 * (2 - 1) ** 2 + (1 - 1) ** 2,
        "F6": 1**2 + 2**2,  # floor(1.5) = 1, floor(2.5) = 2
        "F8": -(1 * s1 + 2 * s2),
        "F9": (1 - 10) + (4 - 10) + 20,
        "F10": 20 - 20 * math.exp(-0.2 * math.sqrt(2.5)),  # mean cos(2πx) = 1
        "F11": 5 / 4000 - math.cos(1.0) * math.cos(2 / math.sqrt(2)) + 1,
        # y = (1.5, 1.75): π/2 · {10 sin²(1.5π) + 0.5²(1 + 10 sin²(1.75π)) + 0.75²}
        "F12": math.pi / 2 * (10 + 0.25 * (1 + 10 * 0.5) + 0.5625),
        # 0.1 · {sin²(3π) + 0 + 1² (1 + sin²(4π))}
        "F13": 0.1,
    }
    for key, value in want.items():
        assert FUNCTIONS[key].f(x) == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert F6_AUTHORS_CODE.f(x) == pytest.approx(1.5**2 + 2.5**2)
    assert quartic(x) == 1 * 1 + 2 * 16


def test_penalty_terms_by_hand():
    # u(11, 10, 100, 4) = 100, u(-12, 10, 100, 4) = 100·2⁴; F12's core at x = (11, -12):
    # y = (4, -1.75): π/2 {10 sin²(4π) + 3²(1 + 10 sin²(-1.75π)) + 2.75²}
    x = np.array([11.0, -12.0])
    core = math.pi / 2 * (9 * (1 + 10 * 0.5) + 2.75**2)
    assert FUNCTIONS["F12"].f(x) == pytest.approx(core + 100 + 1600, rel=1e-12)
    # F13 at (6, 1): 0.1 {sin²(18π) + 5²(1 + sin²(3π)) + 0} + u(6, 5, 100, 4) = 2.5 + 100
    assert FUNCTIONS["F13"].f(np.array([6.0, 1.0])) == pytest.approx(102.5, rel=1e-12)


def test_functions_take_a_population():
    rng = np.random.default_rng(1)
    for fn in FUNCTIONS.values():
        X = rng.uniform(fn.low, fn.high, size=(6, 5))
        if fn.noisy:
            rows = [quartic_noise(x, rng=np.random.default_rng(3 + k)) for k, x in enumerate(X)]
            noise = [np.random.default_rng(3 + k).random() for k in range(6)]
            np.testing.assert_allclose(rows, quartic(X) + noise)
            continue
        np.testing.assert_allclose(fn.f(X), [fn.f(x) for x in X], rtol=1e-13)
        assert isinstance(fn.f(X[0]), float)


def test_noise_is_seeded():
    x = np.zeros(4)
    a = quartic_noise(x, rng=np.random.default_rng(7))
    b = quartic_noise(x, rng=np.random.default_rng(7))
    assert a == b == np.random.default_rng(7).random()


def test_registry_and_paper_figures():
    assert list(FUNCTIONS) == [f"F{i}" for i in range(1, 14)]
    assert set(PAPER_WOA) == set(FUNCTIONS)
    assert (FUNCTIONS["F8"].low, FUNCTIONS["F8"].high) == (-500, 500)
    assert FUNCTIONS["F8"].f_min(30) == pytest.approx(-418.9829 * 30, abs=1e-2)
    with pytest.raises(ValueError, match=r"expected a position \(d,\) or a population"):
        FUNCTIONS["F1"].f(np.zeros((2, 2, 2)))


# ---------------------------------------------------------------------- convergence


@pytest.mark.parametrize("variant", VARIANTS)
def test_sphere_converges(variant):
    res = WOA(30, 300, seed=0, variant=variant).minimize(
        FUNCTIONS["F1"].f, FUNCTIONS["F1"].bounds(10), vectorized=True
    )
    assert res.fun < 1e-20
    assert np.all(np.diff(res.history) <= 0)  # the best so far never gets worse
    assert res.fun == res.history[-1] == pytest.approx(float(np.sum(res.x**2)), rel=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rastrigin_reaches_zero(variant):
    res = WOA(30, 300, seed=1, variant=variant).minimize(
        FUNCTIONS["F9"].f, FUNCTIONS["F9"].bounds(10), vectorized=True
    )
    assert res.fun <= 1e-10


@pytest.mark.parametrize("variant", VARIANTS)
def test_counts_per_variant(variant):
    res = WOA(7, 20, seed=0, variant=variant).minimize(sphere_rows, [(-1, 1)] * 2, vectorized=True)
    n_iter = 20 if variant == "paper" else 19  # WOA.m never evaluates its last update
    assert (res.n_iter, len(res.history), res.n_evals) == (n_iter, n_iter + 1, 7 * (n_iter + 1))
    assert res.stop_reason == "max_iter"


# ---------------------------------------------------------- determinism and interfaces


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_seed_same_run_different_seed_different(variant):
    f, bounds = FUNCTIONS["F10"].f, FUNCTIONS["F10"].bounds(5)
    one = WOA(10, 30, seed=5, variant=variant).minimize(f, bounds, vectorized=True)
    opt = WOA(10, 30, seed=5, variant=variant)
    two, three = opt.minimize(f, bounds, vectorized=True), opt.minimize(f, bounds, vectorized=True)
    np.testing.assert_array_equal(one.x, two.x)
    np.testing.assert_array_equal(one.history, three.history)
    other = WOA(10, 30, seed=6, variant=variant).minimize(f, bounds, vectorized=True)
    assert not np.array_equal(one.x, other.x)


def test_generator_seed_advances_between_runs():
    opt = WOA(5, 10, seed=np.random.default_rng(0))
    a = opt.minimize(sphere_rows, [(-1, 1)] * 2, vectorized=True)
    b = opt.minimize(sphere_rows, [(-1, 1)] * 2, vectorized=True)
    assert not np.array_equal(a.x, b.x)


@pytest.mark.parametrize("variant", VARIANTS)
def test_ask_tell_equals_minimize(variant):
    f = FUNCTIONS["F5"].f
    bounds = FUNCTIONS["F5"].bounds(4)
    res = WOA(8, 25, seed=2, variant=variant).minimize(f, bounds, vectorized=True)
    run = WOA(8, 25, seed=2, variant=variant).start(bounds)
    while not run.done:
        X = run.ask()
        np.testing.assert_array_equal(run.ask(), X)  # asking twice gives the same positions
        run.tell(f(X))
    manual = run.result()
    assert isinstance(manual, WOAResult)
    np.testing.assert_array_equal(manual.x, res.x)
    np.testing.assert_array_equal(manual.history, res.history)
    assert (manual.n_evals, manual.n_iter, manual.stop_reason) == (
        res.n_evals,
        res.n_iter,
        "max_iter",
    )
    assert run.iteration == res.n_iter and run.best_fun == res.fun


@pytest.mark.parametrize("variant", VARIANTS)
def test_vectorized_equals_per_point(variant):
    fn = FUNCTIONS["F9"]
    vec = WOA(10, 40, seed=3, variant=variant).minimize(fn.f, fn.bounds(6), vectorized=True)
    one = WOA(10, 40, seed=3, variant=variant).minimize(lambda x: fn.f(x), fn.bounds(6))
    np.testing.assert_array_equal(vec.x, one.x)
    np.testing.assert_allclose(vec.history, one.history, rtol=1e-12, atol=0)
    assert vec.n_evals == one.n_evals


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_evaluated_position_is_in_the_box(variant):
    low, high = np.array([-1.0, 0.0, 2.0]), np.array([1.0, 0.5, 7.0])
    seen = []

    def spy(x):
        seen.append(x.copy())
        return -float(np.sum(x))  # pulls every whale to the upper corner, past the bounds

    WOA(6, 40, seed=4, variant=variant).minimize(spy, (low, high))
    seen = np.array(seen)
    assert len(seen) == WOA(6, 40, variant=variant).start((low, high)).n_updates * 6 + 6
    assert np.all(seen >= low) and np.all(seen <= high)
    assert np.any(seen == high)  # clipping did happen


def test_maximize():
    f = lambda X: 10 - np.sum((X - 0.5) ** 2, axis=-1)  # noqa: E731
    up = WOA(20, 60, seed=0).maximize(f, [(-5, 5)] * 3, vectorized=True)
    down = WOA(20, 60, seed=0).minimize(lambda X: -f(X), [(-5, 5)] * 3, vectorized=True)
    np.testing.assert_array_equal(up.x, down.x)
    assert up.fun == -down.fun and 9.9 < up.fun <= 10
    np.testing.assert_array_equal(up.history, -down.history)
    assert np.all(np.diff(up.history) >= 0)
    assert f"best {up.fun:.6g}" in up.message
    hit = WOA(20, 100, seed=0).maximize(f, [(-5, 5)] * 3, vectorized=True, target=9.99)
    assert hit.stop_reason == "target" and hit.fun >= 9.99 and hit.n_iter < 100
    assert "target 9.99" in hit.message
    one = WOA(20, 60, seed=0).maximize(lambda x: float(f(x)), [(-5, 5)] * 3)
    np.testing.assert_array_equal(one.x, up.x)


# -------------------------------------------------------------------- stops and failures


def test_target_stop():
    res = WOA(20, 500, seed=0).minimize(sphere_rows, [(-5, 5)] * 4, vectorized=True, target=1e-3)
    assert res.stop_reason == "target" and res.fun <= 1e-3 and res.n_iter < 500
    assert len(res.history) == res.n_iter + 1


def test_stall_stop():
    res = WOA(5, 500, seed=0).minimize(lambda x: 1.0, [(-1, 1)] * 2, stall=7)
    assert res.stop_reason == "stall" and res.n_iter == 7
    assert "7 iterations" in res.message


def test_time_budget_stop():
    def slow(X):
        time.sleep(0.005)
        return sphere_rows(X)

    start = time.perf_counter()
    res = WOA(5, 10_000, seed=0).minimize(slow, [(-1, 1)] * 2, vectorized=True, time_budget=0.1)
    assert res.stop_reason == "time_budget" and res.n_iter < 10_000
    assert time.perf_counter() - start < 5.0


def test_nan_and_raising_objective_count_as_inf_with_one_warning():
    def flaky(x):
        if x[0] > 0.5:
            raise ZeroDivisionError("boom")
        if x[0] < -0.5:
            return float("nan")
        return float(np.sum(x**2))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = WOA(10, 30, seed=0).minimize(flaky, [(-1, 1)] * 2)
    runtime = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(runtime) == 1
    text = str(runtime[0].message)
    assert f"failed at {res.n_failed} of {res.n_evals} evaluations" in text
    assert "ZeroDivisionError('boom')" in text and "returned NaN" in text
    assert res.n_failed > 0 and res.stop_reason == "max_iter" and res.n_iter == 30
    assert np.isfinite(res.fun) and -0.5 <= res.x[0] <= 0.5


def test_vectorized_objective_that_raises_counts_a_whole_generation():
    calls = []

    def fails_first(X):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("cold start")
        return sphere_rows(X)

    with pytest.warns(RuntimeWarning, match=r"failed at 6 of 66 evaluations \(6 raised"):
        res = WOA(6, 10, seed=0).minimize(fails_first, [(-1, 1)] * 2, vectorized=True)
    assert res.n_failed == 6 and np.isfinite(res.fun)


def test_tell_nan_warns_once_and_counts():
    run = WOA(4, 5, seed=0).start([(-1, 1)])
    run.ask()
    with pytest.warns(RuntimeWarning, match="2 of 4 fitness values are NaN"):
        run.tell([np.nan, 1.0, np.nan, 2.0])
    assert run.best_fun == 1.0
    run.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.tell([np.nan, 0.5, 3.0, 4.0])  # no second warning
    assert run.n_invalid == 3 and run.best_fun == 0.5


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_whales": 1}, ValueError, r"n_whales: expected an int >= 2, got 1"),
        ({"n_whales": 2.5}, TypeError, r"n_whales: expected an int >= 2, got float 2.5"),
        ({"max_iter": 0}, ValueError, r"max_iter: expected an int >= 1, got 0"),
        ({"variant": "matlab"}, ValueError, r"variant: expected one of .*'paper'.* got 'matlab'"),
        ({"seed": -1}, ValueError, r"seed: expected an int >= 0, got -1"),
    ],
)
def test_constructor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        WOA(**kwargs)


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        ([(0, 1), (2, 2)], r"bounds\[1\]: expected low < high, got low=2.0, high=2.0"),
        ([(0, 1), (3, -3)], r"bounds\[1\]: expected low < high, got low=3.0, high=-3.0"),
        ([], r"bounds: expected at least one \(low, high\) pair, got \[\]"),
        ([(0, np.inf)], r"bounds\[0\]: expected finite low and high, got \(0.0, inf\)"),
        ([(np.nan, 1)], r"bounds\[0\]: expected finite low and high, got \(nan, 1.0\)"),
        ([(0, 1, 2)], r"bounds: expected a sequence of \(low, high\) pairs .* shape \(1, 3\)"),
        ([(0, 1), (0,)], r"bounds: expected a sequence of \(low, high\) pairs"),
        ("abc", r"bounds: expected a sequence of \(low, high\) pairs"),
    ],
)
def test_bounds_errors(bounds, match):
    with pytest.raises(ValueError, match=match):
        WOA(5, 5).minimize(sphere_rows, bounds, vectorized=True)


def test_bounds_forms():
    low, high = parse_bounds([(-1, 1), (0, 5)])
    np.testing.assert_array_equal(low, [-1, 0])
    np.testing.assert_array_equal(high, [1, 5])
    low, high = parse_bounds((np.array([-1.0, 0.0]), np.array([1.0, 5.0])))  # (lows, highs)
    np.testing.assert_array_equal(low, [-1, 0])
    np.testing.assert_array_equal(high, [1, 5])
    low, high = parse_bounds(([-1, -2, -3], [1, 2, 3]))  # shape (2, 3): (lows, highs)
    np.testing.assert_array_equal(high, [1, 2, 3])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stall": 0}, ValueError, r"stall: expected an int >= 1, got 0"),
        ({"time_budget": -1}, ValueError, r"time_budget: expected seconds > 0 or None, got -1"),
        ({"target": "low"}, TypeError, r"target: expected a real number or None, got 'low'"),
        ({"target": float("nan")}, ValueError, r"target: expected a real number or None, got nan"),
    ],
)
def test_stop_option_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        WOA(5, 5).minimize(sphere_rows, [(-1, 1)], vectorized=True, **kwargs)


def test_fitness_shape_errors():
    with pytest.raises(ValueError, match=r"vectorized objective: expected fitness of shape \(5,\)"):
        WOA(5, 5).minimize(lambda X: X, [(-1, 1)] * 2, vectorized=True)
    with pytest.raises(ValueError, match=r"objective: expected one number per position, .*\(2,\)"):
        WOA(5, 5).minimize(lambda x: x, [(-1, 1)] * 2)
    with pytest.raises(TypeError, match=r"objective: expected a real number .* got None"):
        WOA(5, 5).minimize(lambda x: None, [(-1, 1)] * 2)
    run = WOA(5, 5).start([(-1, 1)])
    run.ask()
    with pytest.raises(ValueError, match=r"tell\(\): expected fitness of shape \(5,\), .* \(4,\)"):
        run.tell(np.zeros(4))


def test_protocol_order_errors():
    run = WOA(3, 1).start([(-1, 1)])
    with pytest.raises(ValueError, match=r"result\(\): expected at least one told generation"):
        run.result()
    with pytest.raises(ValueError, match=r"tell\(\): expected a pending population from ask"):
        run.tell(np.zeros(3))  # before the first ask
    run.tell(sphere_rows(run.ask()))
    with pytest.raises(ValueError, match=r"tell\(\): expected a pending population from ask"):
        run.tell(np.zeros(3))  # twice for one ask
    run.ask()
    run.tell(np.zeros(3))
    assert run.done
    with pytest.raises(ValueError, match=r"ask\(\): expected a run with updates left"):
        run.ask()
