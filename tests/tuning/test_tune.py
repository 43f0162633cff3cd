"""WOA-BiLSTM tuning: the unit-box encoding, the Optuna sampler against our own seeded WOA run
(the oracle: the same positions generation by generation), failures, waiting, stale slots,
several worker processes on one storage, a SIGKILL and resume, and real tiny tunings."""

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmkit.data import load_airline, load_dataset
from lstmkit.tasks import Forecaster, SequenceClassifier
from lstmkit.tuning.space import Categorical, Float, Int, SearchSpace, default_space
from lstmkit.tuning.tune import resolve_storage, tune
from lstmkit.woa import WOA
from lstmkit.woa.sampler import EXPIRED, LEASE, SLOT, SURPLUS, TOLD, WOASampler

optuna.logging.set_verbosity(optuna.logging.ERROR)

SPACE = SearchSpace(x=Float(-5.0, 5.0), y=Float(-5.0, 5.0), z=Float(-2.0, 8.0))


def sphere(params) -> float:
    return float(sum(v**2 for v in params.values()))


def oracle(fitness, n, T, seed, space=SPACE, variant="paper") -> list[np.ndarray]:
    """Our WOA's generations by ask/tell on f(decode(u)) — what the sampler must reproduce."""
    run = WOA(n, T, seed=seed, variant=variant).start(space.bounds)
    generations = []
    while not run.done:
        X = run.ask()
        generations.append(X)
        run.tell([fitness(space.decode(u)) for u in X])
    return generations


def members(study) -> dict[tuple[int, int], optuna.trial.FrozenTrial]:
    """The trial counted for each (generation, whale), read from the raw system attributes:
    every slot holder except FAILs that Optuna's tell did not report (dead workers)."""
    out = {}
    for t in study.get_trials(deepcopy=False):
        slot = t.system_attrs.get(SLOT)
        if slot is None or (
            t.state == optuna.trial.TrialState.FAIL and t.system_attrs.get(TOLD) != "FAIL"
        ):
            continue
        key = (slot["generation"], slot["whale"])
        assert key not in out, f"slot {key} evaluated twice: trials {out[key].number}, {t.number}"
        out[key] = t
    return out


def study_generations(study, n) -> list[np.ndarray]:
    held = members(study)
    count = max(g for g, _ in held) + 1
    assert sorted(held) == [(g, i) for g in range(count) for i in range(n)], "generation gaps"
    return [
        np.array([held[(g, i)].system_attrs[SLOT]["position"] for i in range(n)])
        for g in range(count)
    ]


def assert_same_run(study, want: list[np.ndarray], n: int) -> None:
    got = study_generations(study, n)
    assert len(got) == len(want)
    for g, (a, b) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=f"generation {g}")
    for t in members(study).values():
        assert t.params == pytest.approx(SPACE.decode(t.system_attrs[SLOT]["position"]))


def woa_study(n=5, T=4, seed=1, direction="minimize", storage=None, **kwargs):
    sampler = WOASampler(SPACE, n_whales=n, iterations=T, seed=seed, **kwargs)
    study = optuna.create_study(sampler=sampler, direction=direction, storage=storage)
    return study, sampler


# ---------------------------------------------------------------- the search space


dims = st.one_of(
    st.builds(
        lambda lo, w, log: Int(lo, lo + w, log=log),
        st.integers(1, 50),
        st.integers(1, 200),
        st.booleans(),
    ),
    st.builds(
        lambda lo, w, log: Float(lo, lo + w, log=log),
        st.floats(1e-4, 10),
        st.floats(1e-3, 1e3),
        st.booleans(),
    ),
    st.builds(
        Categorical,
        st.lists(
            st.one_of(st.integers(), st.text(max_size=3)),
            min_size=1,
            max_size=6,
            unique_by=lambda v: (type(v), v),
        ),
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(dims, min_size=1, max_size=5), st.data())
def test_space_round_trips(dimensions, data):
    space = SearchSpace({f"p{j}": d for j, d in enumerate(dimensions)})
    u = np.array(data.draw(st.lists(st.floats(0, 1), min_size=len(space), max_size=len(space))))
    params = space.decode(u)
    assert space.contains(params)
    again = space.decode(space.encode(params))
    for name, dim in space.items():
        if isinstance(dim, Float):
            assert again[name] == pytest.approx(params[name], rel=1e-9, abs=1e-12)
        else:  # integers and choices come back exactly: encode is the centre of their bin
            assert again[name] == params[name] and type(again[name]) is type(params[name])


def test_space_bins_are_equal_and_cover_every_value():
    space = SearchSpace(n=Int(1, 4), c=Categorical(["a", "b", "c"]), k=Int(1, 100, log=True))
    grid = np.linspace(0, 1, 1201)
    ns = [space.decode([u, 0.5, 0.5])["n"] for u in grid]
    assert [ns.count(v) for v in (1, 2, 3, 4)] == [300, 300, 300, 301]  # u = 1 is in the last
    cs = {space.decode([0.5, u, 0.5])["c"] for u in grid}
    assert cs == {"a", "b", "c"}
    ks = {space.decode([0.5, 0.5, u])["k"] for u in np.linspace(0, 1, 20001)}
    assert ks == set(range(1, 101))
    assert space.decode([0, 0, 0]) == {"n": 1, "c": "a", "k": 1}
    assert space.decode([1, 1, 1]) == {"n": 4, "c": "c", "k": 100}
    assert space.decode([-3, 7, 0.5])["n"] == 1  # outside the box: clipped


@pytest.mark.parametrize(
    ("dim", "error", "words"),
    [
        (Int(8, 8), ValueError, "hidden_size: expected low < high, got low=8, high=8"),
        (Float(0.5, 0.1), ValueError, "hidden_size: expected low < high, got low=0.5"),
        (Float(0.0, 1.0, log=True), ValueError, "hidden_size: expected low > 0 on a log scale"),
        (Int(0, 5, log=True), ValueError, "expected low > 0 on a log scale, got low=0"),
        (Categorical([]), ValueError, "hidden_size: expected at least one choice, got none"),
        (Categorical([1, 1]), ValueError, "hidden_size: expected different choices"),
        (Int(1.5, 4), TypeError, "hidden_size: expected an integer low, got 1.5"),
        (Float(0, math.inf), ValueError, "hidden_size: expected a finite high, got inf"),
        (Categorical([[1]]), TypeError, "expected choices of type None, bool, int, float or str"),
    ],
)
def test_space_errors_name_the_dimension(dim, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(".", r"\.")):
        SearchSpace(hidden_size=dim)


def test_space_encode_decode_errors():
    space = SearchSpace(a=Int(1, 3), b=Categorical([True, False]))
    with pytest.raises(ValueError, match=r"u: expected a point of shape \(2,\).*got shape \(3,\)"):
        space.decode([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"missing \['b'\] and unknown \['c'\]"):
        space.encode({"a": 1, "c": 2})
    with pytest.raises(ValueError, match=r"a: expected an integer in \[1, 3\], got 7"):
        space.encode({"a": 7, "b": True})
    with pytest.raises(ValueError, match=r"b: expected one of \[True, False\], got 1"):
        space.encode({"a": 1, "b": 1})  # 1 == True, but it is not the choice True
    assert not space.contains({"a": 1, "b": "yes"})


def test_space_to_optuna_and_default_spaces():
    space = default_space("forecast")
    dists = space.distributions()
    assert dists["lr"] == optuna.distributions.FloatDistribution(1e-3, 3e-2, log=True)
    assert dists["cell"] == optuna.distributions.CategoricalDistribution(("lstm", "gru"))
    assert "lookback" in space and "pooling" not in space
    assert "pooling" in default_space("classify") and "pooling" in default_space("regress")
    assert "pooling" not in default_space("tag") and "lookback" not in default_space("tag")
    with pytest.raises(ValueError, match=r"task: expected one of .*got 'cluster'"):
        default_space("cluster")


# ---------------------------------------------------------------- the sampler vs our WOA


@pytest.mark.parametrize("variant", ["paper", "reference-code"])
def test_sampler_reproduces_our_woa_generation_by_generation(variant):
    n, T = 6, 5
    study, sampler = woa_study(n, T, seed=7, variant=variant)
    study.optimize(lambda t: sphere(SPACE.suggest(t)), n_trials=sampler.n_evaluations)
    want = oracle(sphere, n, T, seed=7, variant=variant)
    assert len(want) == sampler.n_generations
    assert_same_run(study, want, n)
    res = WOA(n, T, seed=7, variant=variant).minimize(
        lambda u: sphere(SPACE.decode(u)), SPACE.bounds
    )
    assert study.best_value == res.fun
    state = sampler.state(study)
    assert state.finished and state.history == pytest.approx(res.history.tolist())


def test_sampler_is_deterministic_with_a_seed():
    def params_of(seed):
        study, sampler = woa_study(4, 3, seed=seed)
        study.optimize(lambda t: sphere(SPACE.suggest(t)), n_trials=sampler.n_evaluations)
        return [t.params for t in study.trials]

    assert params_of(11) == params_of(11)
    assert params_of(11) != params_of(12)


def test_failed_and_pruned_trials_count_as_inf_and_the_search_goes_on():
    def fitness(p):  # what the oracle sees: the objective's failures are +inf
        if p["x"] > 2.5 or p["y"] > 3.5 or p["z"] > 6.0:
            return math.inf
        return sphere(p)

    def objective(trial):
        p = SPACE.suggest(trial)
        if p["x"] > 2.5:
            raise ValueError("diverged")
        if p["y"] > 3.5:
            return float("nan")
        if p["z"] > 6.0:
            trial.report(0.0, 1)  # Optuna would store 0.0 as the pruned trial's value
            raise optuna.TrialPruned()
        return sphere(p)

    n, T = 6, 5
    study, sampler = woa_study(n, T, seed=3)
    study.optimize(objective, n_trials=sampler.n_evaluations, catch=(ValueError,))
    states = {t.state.name for t in study.trials}
    assert states == {"COMPLETE", "FAIL", "PRUNED"}
    assert len(study.trials) == sampler.n_evaluations  # every failure used its slot
    assert_same_run(study, oracle(fitness, n, T, seed=3), n)


def test_maximize_study_negates_the_value():
    n, T = 5, 4
    study, sampler = woa_study(n, T, seed=5, direction="maximize")
    study.optimize(lambda t: 10.0 - sphere(SPACE.suggest(t)), n_trials=sampler.n_evaluations)
    assert_same_run(study, oracle(sphere, n, T, seed=5), n)  # max 10 - f == min f


def test_threads_wait_for_the_generation_instead_of_sampling_at_random():
    n, T = 4, 3
    study, sampler = woa_study(n, T, seed=2, poll_interval=0.005)

    def objective(trial):
        p = SPACE.suggest(trial)
        time.sleep(0.01 * (1 + trial.number % 3))  # uneven: some threads must wait
        return sphere(p)

    def stop(study, _):
        if sampler.state(study).all_claimed:
            study.stop()

    study.optimize(objective, n_jobs=3, callbacks=[stop])
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == sampler.n_evaluations
    # a thread that asked just before the last slot went to another one found no slot left
    done = {t.number for t in complete}
    assert all(t.system_attrs.get(SURPLUS) for t in study.trials if t.number not in done)
    assert_same_run(study, oracle(sphere, n, T, seed=2), n)


def test_a_stale_slot_is_reclaimed_and_evaluated_again():
    n, T = 4, 2
    study, sampler = woa_study(n, T, seed=4, lease_interval=0.5, lease_grace=2.0)
    dead = study.ask()
    SPACE.suggest(dead)  # claims a slot of generation 0 ...
    sampler._end_lease(dead._trial_id)  # ... and its worker "dies": no more renewals
    study._storage.set_trial_system_attr(dead._trial_id, LEASE, time.time() - 1.0)
    study.optimize(lambda t: sphere(SPACE.suggest(t)), n_trials=sampler.n_evaluations)
    frozen = study.trials[dead.number]
    assert frozen.state == optuna.trial.TrialState.FAIL and EXPIRED in frozen.system_attrs
    assert TOLD not in frozen.system_attrs
    assert_same_run(study, oracle(sphere, n, T, seed=4), n)
    assert len(study.trials) == sampler.n_evaluations + 1


def test_surplus_trials_are_pruned_and_stop_the_study():
    study, sampler = woa_study(3, 2, seed=0)
    study.optimize(lambda t: sphere(SPACE.suggest(t)), n_trials=sampler.n_evaluations + 5)
    extra = study.trials[sampler.n_evaluations :]
    assert len(extra) == 1  # study.stop() after the first surplus trial
    assert extra[0].state == optuna.trial.TrialState.PRUNED and extra[0].system_attrs[SURPLUS]


def test_other_settings_on_the_same_study_raise():
    study, _ = woa_study(3, 2, seed=0)
    study.optimize(lambda t: sphere(SPACE.suggest(t)), n_trials=2)
    other = WOASampler(SPACE, n_whales=4, iterations=2, seed=0)
    with pytest.raises(ValueError, match=r"n_whales: expected 3, got 4"):
        other.state(study)
    loaded = optuna.load_study(
        study_name=study.study_name,
        storage=study._storage,
        sampler=WOASampler(SPACE, n_whales=3, iterations=2),
    )
    assert loaded.sampler.state(loaded).generation == 0  # seed=None adopts the stored seed


# ---------------------------------------------------------------- worker processes


WORKER = """
import os, sys, time
import optuna
from lstmkit.woa.sampler import WOASampler
from lstmkit.tuning.space import Float, SearchSpace
from lstmkit.tuning.tune import resolve_storage

SPACE = SearchSpace(x=Float(-5.0, 5.0), y=Float(-5.0, 5.0), z=Float(-2.0, 8.0))  # as above
optuna.logging.set_verbosity(optuna.logging.ERROR)
path, n, T, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
sampler = WOASampler(SPACE, n_whales=n, iterations=T, seed=9, lease_interval=0.5,
                     lease_grace=3.0, poll_interval=0.02)
study = optuna.create_study(study_name="s", storage=resolve_storage(path), sampler=sampler,
                            load_if_exists=True)

def objective(trial):
    p = SPACE.suggest(trial)
    trial.set_user_attr("pid", os.getpid())
    time.sleep(pause)
    return sum(v**2 for v in p.values())

def stop(study, _):
    if sampler.state(study).all_claimed:
        study.stop()

if len(sys.argv) > 5:  # a start line: say ready, wait for the file to appear
    open(f"{sys.argv[5]}.ready-{os.getpid()}", "w").close()
    while not os.path.exists(sys.argv[5]):
        time.sleep(0.02)
if not sampler.state(study).all_claimed:
    study.optimize(objective, callbacks=[stop])
"""


def start_worker(path, n, T, pause, start_line=None):
    cmd = ["nice", "-n", "19", sys.executable, "-c", WORKER, str(path), str(n), str(T), str(pause)]
    cmd += [] if start_line is None else [str(start_line)]
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=60):
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err


def load(path):
    return optuna.load_study(study_name="s", storage=resolve_storage(path))


def test_two_worker_processes_share_one_journal_without_evaluating_a_slot_twice(tmp_path):
    n, T = 4, 3
    path = tmp_path / "two.log"
    go = tmp_path / "go"  # both start together: on a busy machine one could start late
    procs = [start_worker(path, n, T, 0.05, go) for _ in range(2)]  # and find nothing left
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.ready-*"))) < 2:
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.02)
    go.touch()
    for proc in procs:
        finish(proc)
    study = load(path)
    assert_same_run(study, oracle(sphere, n, T, seed=9), n)  # also: no slot twice, no gaps
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == n * (T + 1)
    assert len({t.user_attrs["pid"] for t in complete}) == 2  # both workers did work


def test_sigkill_mid_run_then_resume_repeats_no_finished_trial(tmp_path):
    n, T = 3, 4
    path = tmp_path / "killed.db"
    storage = resolve_storage(path)
    optuna.create_study(study_name="s", storage=storage)  # the worker loads it
    proc = start_worker(path, n, T, 0.15)
    deadline = time.monotonic() + 60
    while True:  # wait for >= 5 finished trials and one running, then kill
        assert time.monotonic() < deadline and proc.poll() is None, "worker ended too early"
        time.sleep(0.05)
        trials = optuna.load_study(study_name="s", storage=storage).get_trials(deepcopy=False)
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        running = [t for t in trials if t.state.name == "RUNNING" and t.system_attrs.get(SLOT)]
        if len(done) >= 5 and running:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.communicate()
    before = load(path).get_trials()
    finished = {t.number: (t.params, t.value) for t in before if t.state.is_finished()}
    killed = [t.number for t in before if t.state.name == "RUNNING"]
    assert killed

    finish(start_worker(path, n, T, 0.01))  # resume on the same storage

    study = load(path)
    after = {t.number: t for t in study.get_trials()}
    for number, (params, value) in finished.items():  # kept, not repeated
        assert (after[number].params, after[number].value) == (params, value)
    for number in killed:  # its slot was failed as stale and evaluated again
        assert after[number].state.name == "FAIL" and EXPIRED in after[number].system_attrs
    counted = members(study)
    assert len(counted) == n * (T + 1)
    assert all(t.state.name == "COMPLETE" for t in counted.values())
    assert not set(killed) & {t.number for t in counted.values()}
    assert_same_run(study, oracle(sphere, n, T, seed=9), n)


# ---------------------------------------------------------------- tune on real estimators


def test_tune_forecaster_on_airline():
    _, series = load_airline()
    train = series[:-24]  # the last two years are the test set; tune never sees them
    space = SearchSpace(
        hidden_size=Int(4, 16),
        lr=Float(3e-3, 3e-2, log=True),
        epochs=Int(2, 5),
        lookback=Int(6, 24),
        cell=Categorical(["lstm", "gru"]),
        bidirectional=Categorical([False, True]),
    )
    res = tune(Forecaster, space, train, n_whales=2, iterations=2, fixed={"patience": None})
    assert res.metric == "rmse" and res.direction == "minimize"
    assert space.contains(res.best_params)
    assert res.counts == {"COMPLETE": 6}
    assert len(res.history) == 3 and res.history == sorted(res.history, reverse=True)
    assert res.best_value == res.history[-1] == res.study.best_value
    model = res.estimator
    assert isinstance(model, Forecaster) and model.params["lookback"] == res.best_params["lookback"]
    assert len(model._series) == len(train)  # refitted on train + validation, no test data
    assert model.predict(24).shape == (24,)


def test_tune_classifier_prunes_through_the_fit_callback():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    X = rng.normal(size=(40, 12, 2)) + y[:, None, None] * 0.8

    class PruneOddTrials(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.number % 2 == 1 and trial.last_step >= 2

    space = SearchSpace(
        hidden_size=Int(4, 12), epochs=Int(4, 6), pooling=Categorical(["last", "mean+max"])
    )
    res = tune(
        SequenceClassifier,
        space,
        X,
        y,
        n_whales=2,
        iterations=2,
        prune=PruneOddTrials(),
        fixed={"patience": None},
    )
    assert res.metric == "accuracy" and res.direction == "maximize"
    assert 0.0 <= res.best_value <= 1.0 and space.contains(res.best_params)
    pruned = [t for t in res.study.trials if t.state.name == "PRUNED"]
    assert [t.number for t in pruned] == [1, 3, 5]
    assert all(sorted(t.intermediate_values) == [1, 2] for t in pruned)  # fit stopped at epoch 2
    assert res.estimator.predict(X[:3]).shape == (3,)


def test_tune_records_failing_trials_and_goes_on():
    _, series = load_airline()
    space = SearchSpace(lookback=Int(90, 100), epochs=Int(1, 2))  # longer than the train part
    msg = r"expected at least one successful trial.*'FAIL': 6.*first reason: ValueError: series"
    with pytest.raises(ValueError, match=msg):
        tune(Forecaster, space, series[:100], n_whales=2, iterations=2)


class _CtrlCWithAReadOpen(Forecaster):
    """A fit that Ctrl-C stops while the process holds an SQLite read open on the tuning
    storage (as when the signal lands inside a storage call): only its traceback keeps it."""

    storage_path = None

    def fit(self, series, **kwargs):
        db = sqlite3.connect(self.storage_path)
        rows = db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                          "LIMIT 100) SELECT i FROM n, trials")  # fmt: skip
        rows.fetchone()  # unfinished: a shared lock no write can commit past
        raise KeyboardInterrupt


def test_ctrl_c_with_a_read_open_fails_the_trial_void_without_waiting_on_the_lock(tmp_path):
    """Oracle: the storage (the trial FAIL and void, none RUNNING) and the SQLite busy
    timeout (60 s): clean-up that ran while the traceback pinned the read would wait it out."""
    from lstmkit.woa.sampler import is_void

    _, series = load_airline()
    _CtrlCWithAReadOpen.storage_path = tmp_path / "t.db"
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        tune(_CtrlCWithAReadOpen, SearchSpace(hidden_size=Int(4, 8)), series, n_whales=2,
             iterations=1, storage=tmp_path / "t.db", refit=False)  # fmt: skip
    assert time.monotonic() - began < 30
    storage = resolve_storage(tmp_path / "t.db")
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL"] and is_void(trials[0])


def test_ctrl_c_as_a_trial_is_created_fails_it_void(tmp_path, monkeypatch):
    """A Ctrl-C that lands after the storage committed a new trial but before its id came
    back (the CLI's handler, as in ``lstmkit tune``). Oracle: the storage holds that trial
    FAIL and void, not RUNNING for ever (with the signal raised at once, nobody knew its id)."""
    from lstmkit.train import interrupts
    from lstmkit.woa.sampler import is_void

    insert = optuna.storages.RDBStorage._create_new_trial

    def insert_then_ctrl_c(self, study_id, template_trial=None):
        trial = insert(self, study_id, template_trial)
        signal.raise_signal(signal.SIGINT)  # the handler runs here, after the commit
        return trial

    monkeypatch.setattr(optuna.storages.RDBStorage, "_create_new_trial", insert_then_ctrl_c)
    _, series = load_airline()
    with pytest.raises(KeyboardInterrupt), interrupts.handling():
        tune(Forecaster, SearchSpace(hidden_size=Int(4, 8)), series, n_whales=2, iterations=1,
             storage=tmp_path / "t.db", refit=False)  # fmt: skip
    monkeypatch.undo()
    storage = resolve_storage(tmp_path / "t.db")
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["FAIL"] and is_void(trials[0])


def test_tune_errors():
    _, series = load_airline()
    space = SearchSpace(lookback=Int(6, 12))
    with pytest.raises(ValueError, match=r"storage: expected a storage shared .* workers=2"):
        tune(Forecaster, space, series, workers=2)
    with pytest.raises(ValueError, match=r"got unknown \['pooling'\]"):
        tune(Forecaster, SearchSpace(pooling=Categorical(["last", "mean"])), series)
    with pytest.raises(ValueError, match=r"y: expected None for a Forecaster"):
        tune(Forecaster, space, series, series)
    with pytest.raises(ValueError, match=r"metric: expected one of .* got 'accuracy'"):
        tune(Forecaster, space, series, metric="accuracy")
    with pytest.raises(TypeError, match=r"expected an estimator class .* got an instance"):
        tune(Forecaster(), space, series)


def test_tune_two_workers_on_sqlite(tmp_path):
    _, series = load_airline()
    space = SearchSpace(hidden_size=Int(4, 8), epochs=Int(1, 3), lookback=Int(6, 12))
    kwargs = {"n_whales": 2, "iterations": 1, "storage": tmp_path / "t.db", "refit": False}
    res = tune(Forecaster, space, series[:-24], workers=2, **kwargs)
    assert res.counts["COMPLETE"] == 4 and set(res.counts) <= {"COMPLETE", "SURPLUS"}
    assert len(members(res.study)) == 4 and res.estimator is None
    again = tune(Forecaster, space, series[:-24], **kwargs)  # resumed: nothing left to do
    assert len(again.study.trials) == len(res.study.trials)
    assert again.best_params == res.best_params
    with pytest.raises(ValueError, match=r"expected the tuning settings .* metric: stored 'rmse'"):
        tune(Forecaster, space, series[:-24], metric="mae", **kwargs)
    assert resolve_storage(tmp_path / "j.journal").__class__.__name__ == "JournalStorage"


def test_default_space_leaves_out_what_is_fixed():
    """space=None: the task's default space without the fixed keywords; an explicit space
    that overlaps them is an error."""
    from lstmkit.data import load_airline
    from lstmkit.tasks import Forecaster
    from lstmkit.tuning.space import default_space

    _, y = load_airline()
    found = tune(
        Forecaster,
        None,
        y[:-12],
        n_whales=2,
        iterations=1,
        refit=False,
        fixed={"horizon": 3, "epochs": 2, "cell": "gru", "bidirectional": False},
    )
    assert set(found.best_params) == set(default_space("forecast")) - {
        "epochs",
        "cell",
        "bidirectional",
    }
    with pytest.raises(
        ValueError, match=r"fixed: expected names outside the space, got \['epochs'\]"
    ):
        tune(Forecaster, default_space("forecast"), y, fixed={"epochs": 2})


def test_a_study_resumed_on_other_data_is_refused(tmp_path):
    """The stored trials were scored on the first series; a second series under the same
    storage and study name must not reuse them."""
    from lstmkit.tasks import Forecaster

    storage = str(tmp_path / "t.db")
    series = np.sin(np.arange(60) / 3.0) + 5
    kw = {
        "n_whales": 2,
        "iterations": 1,
        "refit": False,
        "storage": storage,
        "fixed": {"horizon": 2, "epochs": 2},
    }
    tune(Forecaster, None, series, **kw)
    tune(Forecaster, None, series, **kw)  # the same data resumes
    with pytest.raises(ValueError, match=r"expected the tuning settings it was started with.*data"):
        tune(Forecaster, None, series * 2, **kw)


def test_bad_storage_is_a_value_error(tmp_path):
    from lstmkit.tasks import Forecaster

    with pytest.raises(ValueError, match=r"storage: expected a usable SQLite/journal path"):
        tune(Forecaster, None, np.arange(60.0), storage="bogus://x", n_whales=2, iterations=1)


def test_tuning_under_torchrun_is_refused(monkeypatch):
    """Ranks of one process group would fit different trials inside the same DDP
    collectives; tuning workers are separate processes on one storage instead."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    X, y = load_dataset("italy_power_demand")[:2]
    with pytest.raises(ValueError, match=r"outside a torch\.distributed process group"):
        tune(SequenceClassifier, None, X, y, n_whales=2, iterations=1)
