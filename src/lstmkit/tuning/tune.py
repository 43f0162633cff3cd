r"""WOA-BiLSTM: tune an estimator's hyper-parameters with WOA (or another Optuna sampler).

Protocol (``SPEC.md`` §7: "tune on a validation set … many papers tune on the test set; we
never do"): :func:`tune` sees only the training data the caller passes. It splits it once:

==========================  ===================================================================
estimator                   tuning split of the data passed to :func:`tune`
==========================  ===================================================================
``Forecaster``              chronological: the first :math:`T - v` steps train, the last
                            :math:`v = \mathrm{round}(T \cdot \text{validation})` steps
                            validate; the fitness is ``metric`` of the v-step forecast from
                            the end of the training part (``evaluate(...)["model"]``)
``SequenceClassifier``      seeded split, stratified by class (``split_indices``)
``SequenceRegressor``,      seeded split
``SequenceTagger``
==========================  ===================================================================

Each trial builds ``estimator(**fixed, **params)`` with the trial's parameters, fits it on
the training part (its own early-stopping split is taken inside that part) and returns
``evaluate(validation part)[metric]``. The default metric is ``rmse`` (minimised) for
forecasting and regression and ``accuracy`` (maximised) for classification and tagging; a
metric is maximised when larger is better (accuracy, precision, recall, f1 and their
``_weighted`` forms, r2). With ``refit=True`` the best parameters are fitted again on all
the data passed (training + validation part). Hold the test set out before calling tune.

Pruning (``prune=True``: Optuna's ``MedianPruner`` after the first ``n_whales`` trials and
5 epochs; or any Optuna pruner): each epoch's validation loss (the estimator's own
early-stopping split; the training loss without one) is reported as an intermediate value
through the estimators' ``fit(..., callback=...)`` hook (``lstmkit.train.loop.fit`` calls
``callback(record)`` after every epoch and stops when it returns True); a pruned trial
counts as +inf for WOA. An estimator whose ``fit`` has no ``callback`` parameter is fitted
to the end, its history is reported afterwards, and it is never pruned.

Failures: a trial whose estimator raises (an impossible combination, a lookback longer
than the training part, …) is recorded as FAIL with the error logged by Optuna, and the
search goes on; so is a non-finite score (Optuna fails a NaN value). WOA counts both as
+inf.

Storage and workers: ``storage=None`` keeps the study in memory; a URL (``sqlite:///…``,
``postgresql://…``) is an ``RDBStorage``; a plain path ending in ``.log``/``.journal`` is
a ``JournalStorage`` file, any other plain path a SQLite file; an Optuna storage object is
used as given. ``workers=k`` runs k workers that share the storage (so one is required):
this process and k − 1 spawned ones (multiprocessing, spawn), each running
``study.optimize`` with ``torch.set_num_threads(cpu_count // k)`` (this process's setting
is restored afterwards). Running tune again on the same storage and ``study_name`` resumes
the study: finished trials are kept, a slot whose worker died is evaluated again (see
:mod:`lstmkit.woa.sampler`). If a spawned worker dies, tune raises once the others are done,
and running it again on the same storage evaluates the dead worker's slot (after its lease
expires).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import importlib.util
import inspect
import json
import math
import multiprocessing
import os
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc
import torch
from optuna.storages import BaseStorage, InMemoryStorage
from optuna.trial import TrialState

from lstmkit.data.sequences import as_sequences
from lstmkit.train import interrupts
from lstmkit.train.distributed import in_process_group
from lstmkit.train.loop import interrupted
from lstmkit.train.threads import torch_threads
from lstmkit.tuning.space import SearchSpace, default_space
from lstmkit.woa.sampler import SURPLUS, WaitTimeout, WOASampler, fail_interrupted

REGRESSION_METRICS = {"mse": "minimize", "rmse": "minimize", "mae": "minimize",
                      "mape": "minimize", "smape": "minimize", "r2": "maximize"}  # fmt: skip
CLASSIFICATION_METRICS = {
    name + suffix: "maximize"
    for name in ("accuracy", "precision", "recall", "f1")
    for suffix in ("", "_weighted")
    if not (name == "accuracy" and suffix)
}
DEFAULT_METRIC = {"forecast": "rmse", "regress": "rmse", "classify": "accuracy", "tag": "accuracy"}
SAMPLERS = ("woa", "tpe", "random", "cmaes")
JOURNAL_SUFFIXES = (".log", ".journal")
TUNE_ATTR = "lstmkit:tune"


class TrialFailed(RuntimeError):
    """The estimator raised inside a trial; Optuna records the trial as FAIL and goes on."""


class _Interrupted(BaseException):
    """Ctrl-C inside a trial, carried past Optuna (which catches ``KeyboardInterrupt`` and
    then writes the trial's state on this thread, unbounded): :func:`_work` fails the trial,
    as void, within a time limit."""


@dataclass(repr=False)
class TuneResult:
    """What :func:`tune` found.

    ``best_params`` the best trial's parameters (the space's names), ``best_value`` its
    validation ``metric`` (``direction`` tells which way is better); ``history[g]`` the best
    value after generation g (WOA) or after each block of ``n_whales`` trials (other
    samplers); ``estimator`` refitted on all the data passed with ``fixed`` + best
    parameters (None with ``refit=False``); ``study`` the Optuna study; ``counts`` trials
    per state (``SURPLUS``: asked by a worker after every WOA slot was taken, not
    evaluated).
    """

    best_params: dict[str, Any]
    best_value: float
    metric: str
    direction: str
    history: list[float]
    study: optuna.Study
    estimator: Any = None
    counts: dict[str, int] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"TuneResult(best_value={self.best_value:.6g} ({self.metric}, {self.direction}), "
            f"best_params={self.best_params}, generations={len(self.history)}, "
            f"counts={self.counts}, refitted={self.estimator is not None})"
        )


# -- data: the tuning split ------------------------------------------------------------------


@dataclass
class _Split:
    """Training and validation parts, each as the arguments of ``fit`` and ``evaluate``:
    ``(series,)`` for forecasting, else ``(X, y)``."""

    train: tuple
    val: tuple


def _take(items, index: np.ndarray):
    if isinstance(items, np.ndarray):
        return items[index]
    return [items[i] for i in index]


def split_data(task: str, X, y, validation: float, seed: int) -> _Split:
    """The tuning split (table in the module docstring)."""
    if isinstance(validation, bool) or not isinstance(validation, int | float):
        raise TypeError(f"validation: expected a fraction in (0, 1), got {validation!r}")
    if not 0 < validation < 1:
        raise ValueError(f"validation: expected a fraction in (0, 1), got {validation!r}")
    if task == "forecast":
        if y is not None:
            raise ValueError(
                "y: expected None for a Forecaster (the series is X; covariates are not "
                f"tuned), got {type(y).__name__}"
            )
        series = np.asarray(X, dtype=np.float64)
        v = round(len(series) * validation)
        if v < 1 or len(series) - v < 2:
            raise ValueError(
                f"X: expected a series long enough for a validation tail of "
                f"{validation:.0%}, got {len(series)} steps"
            )
        return _Split((series[:-v],), (series[-v:],))
    if y is None:
        raise ValueError(f"y: expected targets for a {task} estimator, got None")
    seqs = as_sequences(X)
    if task == "classify":
        targets = np.asarray(y)
    else:  # per-sequence values or per-step arrays of different lengths
        targets = y if isinstance(y, np.ndarray) else list(y)
    if len(targets) != len(seqs):
        raise ValueError(f"y: expected {len(seqs)} targets (one per sequence), got {len(targets)}")
    from lstmkit.tasks.sequence import split_indices

    strata = targets if task == "classify" else None
    train, val = split_indices(len(seqs), validation, seed, strata)
    if len(val) == 0 or len(train) == 0:
        raise ValueError(
            f"validation: expected both parts non-empty, got {len(train)} training and "
            f"{len(val)} validation sequences of {len(seqs)}"
        )
    return _Split(
        (_take(seqs, train), _take(targets, train)), (_take(seqs, val), _take(targets, val))
    )


# -- the objective -------------------------------------------------------------------------


def _pruning_callback(trial: optuna.Trial, pruned: list[int]):
    """``callback(record)`` for ``fit``: report the epoch's validation loss, stop if pruned."""

    def callback(record: dict) -> bool:
        value = record.get("val_loss", record["train_loss"])
        trial.report(float(value), int(record["epoch"]))
        if trial.should_prune():
            pruned.append(int(record["epoch"]))
            return True
        return False

    return callback


@dataclass
class _Objective:
    """One trial: build the estimator with the trial's parameters, fit, score."""

    estimator: type
    task: str
    space: SearchSpace
    fixed: dict
    metric: str
    data: _Split

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._evaluate(trial)
        except KeyboardInterrupt:  # Ctrl-C anywhere in the trial: a void FAIL, never COMPLETE
            pass
        raise _Interrupted  # outside the handler: no traceback that pins a database read

    def _evaluate(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial)
        try:
            model = self.estimator(**self.fixed, **params)
            score = self._fit_score(model, trial)
        except optuna.TrialPruned:
            raise
        except Exception as err:  # the estimator's failure: a FAIL trial, the search goes on
            reason = f"{type(err).__name__}: {err}"
            trial.set_user_attr("fail_reason", reason)
            raise TrialFailed(reason) from err
        if not math.isfinite(score):
            trial.set_user_attr("fail_reason", f"{self.metric} = {score}")
        return score  # Optuna records a non-finite value as FAIL

    def _fit_score(self, model, trial: optuna.Trial) -> float:
        pruned: list[int] = []
        hook = "callback" in inspect.signature(model.fit).parameters
        kwargs = {"callback": _pruning_callback(trial, pruned)} if hook else {}
        model.fit(*self.data.train, **kwargs)
        if interrupted(model.history_):  # the fit returned on Ctrl-C: stop the trial too
            raise KeyboardInterrupt
        if not hook:  # fitted to the end: its history is reported now
            for record in model.history_.epochs:
                loss = record.get("val_loss", record["train_loss"])
                trial.report(float(loss), int(record["epoch"]))
        if pruned:
            raise optuna.TrialPruned(f"pruned after epoch {pruned[0]}")
        options = {} if self.task == "forecast" else {"baselines": False}
        return float(model.evaluate(*self.data.val, **options)["model"][self.metric])


# -- storage, sampler, workers -------------------------------------------------------------


def resolve_storage(storage) -> BaseStorage | None:
    """None, an Optuna storage, a URL, or a path (``.log``/``.journal``: journal; else SQLite)."""
    if storage is None or isinstance(storage, BaseStorage):
        return storage
    if not isinstance(storage, str | os.PathLike):
        raise TypeError(
            f"storage: expected None, a path, a URL or an Optuna storage, got "
            f"{type(storage).__name__}"
        )
    text = os.fspath(storage)
    try:
        if "://" in text:
            return _rdb(text)
        path = Path(text).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in JOURNAL_SUFFIXES:
            backend = optuna.storages.journal.JournalFileBackend(str(path))
            return optuna.storages.journal.JournalStorage(backend)
        return _rdb(f"sqlite:///{path}")
    except (OSError, ImportError, sqlalchemy.exc.SQLAlchemyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"storage: expected a usable SQLite/journal path or database URL, got {text!r} "
            f"({first})"
        ) from err


def _rdb(url: str) -> BaseStorage:
    """An RDB storage; tried twice, because two workers opening one new database at the
    same instant can both try to create Optuna's tables and the later one fails with
    "already exists" (optuna#4621) — the second try finds them made."""
    # several processes write one SQLite file: wait for its lock instead of failing at 5 s
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def _make_sampler(spec, space: SearchSpace, n_whales: int, iterations: int, seed: int, worker: int):
    """The sampler of one worker: WOA shares its seed (one run), the others get seed + worker."""
    if isinstance(spec, optuna.samplers.BaseSampler):
        return spec
    if spec == "woa":
        return WOASampler(space, n_whales=n_whales, iterations=iterations, seed=seed)
    if spec == "tpe":
        return optuna.samplers.TPESampler(seed=seed + worker)
    if spec == "random":
        return optuna.samplers.RandomSampler(seed=seed + worker)
    # "cmaes": tune has refused any other name
    return optuna.samplers.CmaEsSampler(seed=seed + worker, warn_independent_sampling=False)


@dataclass
class _Job:
    """What one worker needs (pickled to spawned processes)."""

    storage: Any
    study_name: str
    sampler: Any
    pruner: optuna.pruners.BasePruner
    objective: _Objective
    n_whales: int
    iterations: int
    seed: int
    timeout: float | None
    worker: int = 0
    threads: int | None = None
    verbosity: int = optuna.logging.INFO


def _done(study: optuna.Study, sampler, job: _Job) -> bool:
    """No trial left to start: every WOA slot claimed, or the budget of the other samplers,
    ``n_whales·(iterations + 1)`` trials, asked."""
    if isinstance(sampler, WOASampler):
        return sampler.state(study).all_claimed
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
    return len(trials) >= job.n_whales * (job.iterations + 1)


def _work(job: _Job) -> None:
    """One worker: load the study and optimise until nothing is left to start."""
    if job.threads is not None:  # a spawned worker: its own torch threads and Optuna logging
        torch.set_num_threads(job.threads)
        optuna.logging.set_verbosity(job.verbosity)
    space = job.objective.space
    sampler = _make_sampler(job.sampler, space, job.n_whales, job.iterations, job.seed, job.worker)
    study = optuna.load_study(
        study_name=job.study_name, storage=job.storage, sampler=sampler, pruner=job.pruner
    )
    if _done(study, sampler, job):
        return

    def stop_when_done(study: optuna.Study, _trial) -> None:
        interrupts.check()  # a Ctrl-C that Python lost (train/interrupts.py)
        if _done(study, sampler, job):
            study.stop()

    with _created_trials(study) as created:
        try:
            study.optimize(
                job.objective,
                timeout=job.timeout,
                catch=(TrialFailed, WaitTimeout),
                callbacks=[stop_when_done],
            )
            return
        except (KeyboardInterrupt, _Interrupted):
            pass
        # Outside the handler: the traceback of a Ctrl-C that came during a storage call can
        # hold an SQLite statement open (a shared lock no write gets past) until it is freed.
        gc.collect()
        if isinstance(sampler, WOASampler):
            sampler.abandon()
        # this worker's trials: failed and void, none left RUNNING
        _briefly(lambda: fail_interrupted(study._storage, created), seconds=10.0)
    raise KeyboardInterrupt


def _briefly(clean_up, seconds: float) -> None:
    """Run ``clean_up`` for at most ``seconds`` (a database locked by the interrupted
    operation must not hang the exit); what it cannot do, the leases' expiry does later."""

    def quietly() -> None:
        try:
            clean_up()
        except Exception as err:  # the storage refused: leave it to the leases' expiry
            warnings.warn(f"tune: could not mark the interrupted trials FAIL ({err})", stacklevel=1)

    done = threading.Thread(target=quietly, daemon=True)
    done.start()
    done.join(seconds)


@contextlib.contextmanager
def _created_trials(study: optuna.Study):
    """The ids of the trials this process creates in ``study`` inside the block (a Ctrl-C
    may come between Optuna creating a trial and the sampler or objective seeing it)."""
    created: list[int] = []
    storage = study._storage
    create = storage.create_new_trial

    def create_and_note(study_id, template_trial=None):
        # a Ctrl-C after the insert committed but before the id came back would leave a
        # RUNNING trial nobody knows: the signal waits for the id to be noted
        with interrupts.deferred():
            trial_id = create(study_id, template_trial)
            created.append(trial_id)
        return trial_id

    storage.create_new_trial = create_and_note
    try:
        yield created
    finally:
        del storage.create_new_trial  # the class's method again


def _run_workers(job: _Job, workers: int) -> None:
    """Worker 0 is this process (already imported, with ``threads`` torch threads while it
    works); workers 1 … k−1 are spawned processes."""
    if workers == 1:
        _work(job)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    verbosity = optuna.logging.get_verbosity()
    context = multiprocessing.get_context("spawn")
    procs = [
        context.Process(
            target=_work,
            args=(replace(job, worker=w, threads=threads, verbosity=verbosity),),
        )
        for w in range(1, workers)
    ]
    for proc in procs:
        proc.start()
    try:
        with torch_threads(threads):
            _work(job)
    finally:
        for proc in procs:
            proc.join()
    codes = [proc.exitcode for proc in procs]
    if any(code != 0 for code in codes):
        raise RuntimeError(
            f"workers: expected exit code 0 from each of the {workers - 1} spawned workers, "
            f"got {codes} (their tracebacks are above); the study in the storage is intact, "
            f"run tune again to resume"
        )


# -- checks ------------------------------------------------------------------------------------


def task_of(estimator) -> str:
    """The task of an estimator class (or subclass): forecast, classify, regress or tag."""
    if not isinstance(estimator, type):
        raise TypeError(
            f"estimator: expected an estimator class (Forecaster, SequenceClassifier, "
            f"SequenceRegressor, SequenceTagger), got an instance of {type(estimator).__name__}"
        )
    # imported on first use: the estimators bring torchmetrics (~1.5 s), which
    # ``import lstmkit.tuning`` should not cost
    from lstmkit.tasks import Forecaster, SequenceClassifier, SequenceRegressor, SequenceTagger

    tasks = {
        Forecaster: "forecast",
        SequenceClassifier: "classify",
        SequenceRegressor: "regress",
        SequenceTagger: "tag",
    }
    for cls, task in tasks.items():
        if issubclass(estimator, cls):
            return task
    raise TypeError(
        f"estimator: expected Forecaster, SequenceClassifier, SequenceRegressor or "
        f"SequenceTagger (or a subclass), got {estimator.__name__}"
    )


def constructor_keywords(cls: type) -> set[str]:
    """Keyword parameters of ``cls(...)``, following ``**kwargs`` up the MRO."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(klass.__init__).parameters
        names |= {n for n, p in params.items() if n != "self" and p.kind != p.VAR_KEYWORD}
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return names


def _check_params(estimator: type, space: SearchSpace, fixed: dict) -> None:
    known = constructor_keywords(estimator)
    unknown = sorted((set(space) | set(fixed)) - known)
    if unknown:
        raise ValueError(
            f"space/fixed: expected constructor keywords of {estimator.__name__} "
            f"({', '.join(sorted(known))}), got unknown {unknown}"
        )
    both = sorted(set(space) & set(fixed))
    if both:
        raise ValueError(f"fixed: expected names outside the space, got {both} in both")


def _metric(task: str, metric: str | None) -> tuple[str, str]:
    table = REGRESSION_METRICS if task in ("forecast", "regress") else CLASSIFICATION_METRICS
    metric = DEFAULT_METRIC[task] if metric is None else metric
    if metric not in table:
        raise ValueError(f"metric: expected one of {sorted(table)} for {task}, got {metric!r}")
    return metric, table[metric]


def _pruner(prune, n_whales: int) -> optuna.pruners.BasePruner:
    if isinstance(prune, optuna.pruners.BasePruner):
        return prune
    if prune is True:
        return optuna.pruners.MedianPruner(n_startup_trials=n_whales, n_warmup_steps=5)
    if prune is False or prune is None:
        return optuna.pruners.NopPruner()
    raise TypeError(f"prune: expected a bool or an Optuna pruner, got {prune!r}")


def data_fingerprint(X, y=None) -> str:
    """SHA-256 of the data's values and shapes: a study resumed on other data is refused."""
    digest = hashlib.sha256()
    for part in (X, y):
        if part is None:
            digest.update(b"none")
            continue
        items = part if isinstance(part, list | tuple) else [part]
        for item in items:
            array = np.ascontiguousarray(np.asarray(item))
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes() if array.dtype != object else repr(array).encode())
    return digest.hexdigest()


def _check_resumed(study: optuna.Study, direction: str, config: dict) -> None:
    """A study found in the storage must be the same tuning problem."""
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study {study.study_name!r}: expected direction {direction} (metric), got the "
            f"stored {study.direction.name.lower()}; choose another study_name"
        )
    stored = study.user_attrs.get(TUNE_ATTR)
    if stored is None:
        study.set_user_attr(TUNE_ATTR, config)
    elif stored != config:
        diff = [f"{k}: stored {stored.get(k)!r}, got {v!r}" for k, v in config.items()
                if stored.get(k) != v]  # fmt: skip
        raise ValueError(
            f"study {study.study_name!r}: expected the tuning settings it was started with, "
            f"got {'; '.join(diff)}; choose another study_name"
        )


# -- results ------------------------------------------------------------------------------------


def _history(study: optuna.Study, sampler, n_whales: int, sign: float) -> list[float]:
    """Best value so far after each generation (WOA) or each block of n_whales trials."""
    if isinstance(sampler, WOASampler):
        return [sign * h for h in sampler.state(study).history]
    best, out = math.inf, []
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    for start in range(0, len(finished), n_whales):
        for t in finished[start : start + n_whales]:
            if t.state == TrialState.COMPLETE:
                best = min(best, sign * t.value)
        out.append(sign * best)
    return out


def _counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state; "SURPLUS" for the pruned trials that found the WOA run complete."""
    trials = study.get_trials(deepcopy=False)
    return dict(Counter("SURPLUS" if t.system_attrs.get(SURPLUS) else t.state.name for t in trials))


def _best_trial(study: optuna.Study):
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        reasons = (t.user_attrs.get("fail_reason") for t in study.get_trials(deepcopy=False))
        raise ValueError(
            f"tune: expected at least one successful trial, got none of "
            f"{len(study.trials)} ({_counts(study)}); first reason: "
            f"{next(filter(None, reasons), 'see the FAIL trials logged above')}"
        )
    return study.best_trial


def _refit(estimator: type, task: str, fixed: dict, params: dict, X, y):
    model = estimator(**fixed, **params)
    model = model.fit(X) if task == "forecast" else model.fit(X, y)
    if interrupted(model.history_):
        raise KeyboardInterrupt
    return model


# -- tune -----------------------------------------------------------------------------------


def tune(
    estimator: type,
    space: SearchSpace | None,
    X,
    y=None,
    *,
    n_whales: int = 10,
    iterations: int = 5,
    sampler: str | optuna.samplers.BaseSampler = "woa",
    storage=None,
    study_name: str | None = None,
    workers: int = 1,
    validation: float = 0.2,
    metric: str | None = None,
    fixed: dict | None = None,
    seed: int = 0,
    prune: bool | optuna.pruners.BasePruner = True,
    refit: bool = True,
    timeout: float | None = None,
) -> TuneResult:
    """Tune ``estimator``'s constructor keywords over ``space`` on a validation split of
    (X, y) (protocol in the module docstring); return a :class:`TuneResult`.

    ``space``: a :class:`SearchSpace` of constructor keywords (None: ``default_space`` of
    the estimator's task without the keywords in ``fixed``; an explicit space that shares
    a name with ``fixed`` raises). ``n_whales`` × ``iterations``: the WOA population and updates,
    ``n_whales·(iterations + 1)`` trials; other samplers (``"tpe"``, ``"random"``,
    ``"cmaes"`` or an Optuna sampler object) get the same number of trials. ``fixed``:
    constructor keywords kept constant (default ``seed=seed, progress=False``). ``timeout``
    (seconds) is each worker's ``study.optimize`` timeout.
    """
    task = task_of(estimator)
    fixed = {"seed": seed, "progress": False} | dict(fixed or {})
    if space is None:  # the task's default space, without what the caller fixes
        space = SearchSpace({k: v for k, v in default_space(task).items() if k not in fixed})
    if not isinstance(space, SearchSpace):
        raise TypeError(f"space: expected a SearchSpace or None, got {type(space).__name__}")
    _check_params(estimator, space, fixed)
    metric, direction = _metric(task, metric)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: expected an int >= 1, got {workers!r}")
    if in_process_group():
        raise ValueError(
            "tune: expected to run outside a torch.distributed process group (torchrun), got "
            "one: each rank would fit a different trial inside the same DDP collectives. "
            "Start tuning workers as separate processes on one storage (docs/distributed.md)"
        )
    if not (isinstance(sampler, optuna.samplers.BaseSampler) or sampler in SAMPLERS):
        raise ValueError(
            f"sampler: expected one of {SAMPLERS} or an Optuna sampler, got {sampler!r}"
        )
    if sampler == "cmaes" and importlib.util.find_spec("cmaes") is None:
        raise ImportError(
            "sampler='cmaes': expected the cmaes package (pip install cmaes), got none installed"
        )
    resolved = resolve_storage(storage)
    if workers > 1 and (resolved is None or isinstance(resolved, InMemoryStorage)):
        raise ValueError(
            f"storage: expected a storage shared between processes (a path or URL) for "
            f"workers={workers}, got {storage!r}"
        )
    data = split_data(task, X, y, validation, seed)
    woa = _make_sampler(sampler, space, n_whales, iterations, seed, worker=0)
    pruner = _pruner(prune, n_whales)
    study = optuna.create_study(
        storage=resolved,
        study_name=study_name or f"lstmkit-{estimator.__name__}",
        direction=direction,
        sampler=woa,
        pruner=pruner,
        load_if_exists=True,
    )
    config = {
        "estimator": estimator.__name__,
        "metric": metric,
        "validation": validation,
        "fixed": json.loads(json.dumps(fixed, default=repr)),
        "space": space.describe(),
        "sampler": sampler if isinstance(sampler, str) else type(sampler).__name__,
        "seed": seed,
        "data": data_fingerprint(X, y),
    }
    _check_resumed(study, direction, config)
    job = _Job(
        storage=resolved if resolved is not None else study._storage,
        study_name=study.study_name,
        sampler=sampler,
        pruner=pruner,
        objective=_Objective(estimator, task, space, fixed, metric, data),
        n_whales=n_whales,
        iterations=iterations,
        seed=seed,
        timeout=timeout,
    )
    began = time.monotonic()
    _run_workers(job, workers)
    out_of_time = timeout is not None and time.monotonic() - began >= timeout
    if isinstance(woa, WOASampler) and not woa.state(study).finished and not out_of_time:
        _work(job)  # slots left by a worker that died: evaluate them here
    best = _best_trial(study)
    sign = -1.0 if direction == "maximize" else 1.0
    params = {name: best.params[name] for name in space}
    model = _refit(estimator, task, fixed, params, X, y) if refit else None
    return TuneResult(
        best_params=params,
        best_value=float(best.value),
        metric=metric,
        direction=direction,
        history=_history(study, woa, n_whales, sign),
        study=study,
        estimator=model,
        counts=_counts(study),
    )
