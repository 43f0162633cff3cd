r"""WOA as an Optuna sampler: one seeded WOA run, rebuilt from the study's storage alone.

:class:`WOASampler` runs :class:`~lstmkit.woa.optimizer.WOA` (ask/tell) in the unit box of a
:class:`~lstmkit.tuning.space.SearchSpace`, generation by generation: generation g has
``n_whales`` *slots*, whale i of generation g is one trial. Nothing lives in the sampler
object; the run is rebuilt from the storage every time it is needed, so any number of
worker processes sharing one storage compute the same generations, and a study resumed
after a crash continues where it stopped.

Replay (the WOA state from the storage)
---------------------------------------
Start ``WOA(n_whales, iterations, seed=seed, variant=variant).start(space.bounds)``; for
g = 0, 1, …: ``X = run.ask()`` is generation g; if every slot of g has a finished holder,
``run.tell(fitness of the slots)`` and go on, else g is the *current* generation. The
fitness of a slot, minimised:

================================================  =========================================
the slot's trial                                  fitness
================================================  =========================================
COMPLETE with value v                             v (minimize), −v (maximize)
FAIL told by Optuna (the objective raised or      +inf, as ``WOA.minimize`` counts a
returned NaN/inf)                                 failed evaluation
PRUNED                                            +inf: Optuna stores the last intermediate
                                                  value as a pruned trial's value, but an
                                                  intermediate value (e.g. an epoch's
                                                  validation loss) is not the objective's
                                                  scale, so it is not used
FAIL *not* told by Optuna (a worker died: failed  *void*: the slot is free again and a new
by Optuna's heartbeat, by this sampler's lease,   trial evaluates it — the position is
or by hand)                                       deterministic, so nothing is lost
================================================  =========================================

"Told by Optuna" is known from :meth:`WOASampler.after_trial`, which Optuna calls for every
trial finished by ``study.tell``/``optimize`` (and never for a trial failed as stale): it
stores the state it saw under ``WOASampler:told``. A FAIL without that mark is void.

System attributes
-----------------
Per trial: ``WOASampler:slot`` = ``{"generation": g, "whale": i, "position": u,
"claimed_at": t}`` (u the unit-box position, whose decoding are the trial's parameters; t
the wall-clock time of the claim, so ``t − datetime_start`` is how long the trial waited),
or None once released; ``WOASampler:lease`` (see below); ``WOASampler:told``;
``WOASampler:expired`` (set when another worker failed the trial for an expired lease);
``WOASampler:surplus`` (a trial asked after the run had no slot left). Per study:
``WOASampler:config`` (n_whales, iterations, variant, seed, the space): a sampler with other
settings raises ValueError instead of replaying a different run; with ``seed=None`` a seed
is drawn once and stored, and a resumed study reuses it (give an explicit seed when several
workers start at once).

Claiming a slot (several workers, no lock)
------------------------------------------
Optuna storages have no compare-and-swap on attributes, so a claim is *write, then read*:
a trial writes its slot, re-reads the study, and keeps the slot only if no other live trial
holds it; otherwise it releases it (writes None) and retries after a random pause. Two
trials can both back off, but never both keep a slot: if A's re-read missed B's write,
B's write came after A's, so B's re-read (later still) sees A's — given a storage whose
reads see every completed write (RDB, journal file, in-memory). The slot is chosen among
the free ones by the trial number, which spreads concurrent workers over different slots.
Membership starts at the first ``suggest`` of the trial (Optuna samples relative
parameters lazily), in :meth:`sample_relative`.

Waiting
-------
When every slot of the current generation is held and some holders are still running, a
new trial *waits* (polls every ``poll_interval`` seconds) until the generation completes
and the next one has a free slot — it never turns into a random trial. The wait ends
when (a) the generation completes, (b) a holder becomes void (its worker died; the waiting
trial takes the freed slot), or (c) after ``wait_timeout`` seconds (None: no limit),
with :class:`WaitTimeout` raised from ``suggest`` (the trial is recorded as FAIL and holds
no slot). A dead worker cannot block the run: while waiting, the sampler fails trials
whose lease expired, and calls ``optuna.storages.fail_stale_trials`` when the storage has
Optuna's heartbeat (``RDBStorage(heartbeat_interval=…)``); both make the slot void.

Leases
------
Optuna's heartbeat exists only for ``RDBStorage`` (not ``JournalStorage`` in Optuna 5),
and it starts only after ``study.ask`` returned. So the sampler keeps its own lease: from
the trial's first ``suggest`` (before it waits or claims) until :meth:`after_trial`, a
thread renews ``WOASampler:lease`` = (wall-clock time + ``lease_grace``) every
``lease_interval`` seconds. A RUNNING trial whose lease is in the past is failed by the next
worker that looks: a slot holder's slot becomes void, a trial that died while waiting is
cleaned up (workers' clocks must agree within a fraction of the grace; one machine, or
NTP). A worker frozen for longer than the grace is treated as dead: its slot is evaluated
again and its own ``tell`` then fails, as with Optuna's heartbeat. A trial killed inside
``study.ask`` (before any ``suggest``) holds no slot and blocks nothing, but stays RUNNING
in the storage. ``lease_interval=None`` turns leases off (then only Optuna's heartbeat or
``wait_timeout`` end a wait on a dead worker).

End of the run and other parameters
-----------------------------------
After the last generation (``iterations`` updates, so ``n_whales·(iterations + 1)``
evaluations for ``variant="paper"``, ``n_whales·iterations`` for ``"reference-code"``)
there is no slot left: a trial asked then is marked surplus, ``study.stop()`` is called
inside ``optimize``, and its ``suggest`` raises ``optuna.TrialPruned`` — it is not
evaluated. Parameters outside the space are sampled by ``independent_sampler``
(``RandomSampler`` by default, seeded from ``seed``); suggesting a parameter of the space
with another distribution raises ValueError (it would otherwise be sampled at random).
Trials enqueued with fixed parameters (``study.enqueue_trial``) are evaluated but are not
members of any generation.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from lstmkit.checks import is_number
from lstmkit.woa.optimizer import WOA, WOARun

if TYPE_CHECKING:  # the sampler reads any space with _SPACE_PROTOCOL; woa imports no tuning
    from lstmkit.tuning.space import SearchSpace

# what the sampler asks of its space (lstmkit.tuning.space.SearchSpace has it all): the
# unit-box bounds, decoding a position, Optuna distributions, a description, the names
_SPACE_PROTOCOL = ("bounds", "decode", "distributions", "describe", "names")
PREFIX = "WOASampler:"
SLOT = PREFIX + "slot"
LEASE = PREFIX + "lease"
TOLD = PREFIX + "told"
EXPIRED = PREFIX + "expired"
INTERRUPTED = PREFIX + "interrupted"
SURPLUS = PREFIX + "surplus"
CONFIG = PREFIX + "config"


class WaitTimeout(RuntimeError):
    """A trial waited longer than ``wait_timeout`` for the current generation to finish."""


# -- the run as the storage shows it ---------------------------------------------------------


def is_void(trial: FrozenTrial) -> bool:
    """A FAIL that Optuna's ``tell`` did not report (the worker died) or that a Ctrl-C cut
    short (:func:`fail_interrupted`): the slot is free, its position is evaluated again."""
    if trial.state != TrialState.FAIL:
        return False
    return trial.system_attrs.get(TOLD) != "FAIL" or bool(trial.system_attrs.get(INTERRUPTED))


def fail_interrupted(storage, trial_ids) -> None:
    """Fail, as void, those of ``trial_ids`` still RUNNING: trials a Ctrl-C caught before
    their objective ran or finished."""
    for trial_id in trial_ids:
        if storage.get_trial(trial_id).state == TrialState.RUNNING:
            _fail(storage, trial_id, INTERRUPTED, True)


def _fail(storage, trial_id: int, reason: str, value: object) -> None:
    """Set the system attribute ``reason`` and fail the trial, unless it finished first
    (Optuna's tell, or another worker, got there first)."""
    try:
        storage.set_trial_system_attr(trial_id, reason, value)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except UpdateFinishedTrialError:
        pass


def fitness(trial: FrozenTrial, direction: StudyDirection) -> float:
    """The minimised WOA fitness of a finished holder (table in the module docstring)."""
    if trial.state != TrialState.COMPLETE:
        return math.inf
    value = float(trial.value)
    return -value if direction == StudyDirection.MAXIMIZE else value


@dataclass
class WOAState:
    """The run rebuilt from the storage.

    ``generation`` the current generation (the number of complete ones); ``positions``
    (n, d) its unit-box positions, None once ``finished``; ``holders[i]`` the live trials
    holding whale i of the current generation (normally 0 or 1); ``members[(g, i)]`` the
    trial counted for each slot of the complete generations; ``history[g]`` the best
    fitness after generation g (minimised, like ``WOAResult.history``); ``run`` the
    :class:`WOARun` after the complete generations were told.
    """

    generation: int
    n_generations: int
    positions: np.ndarray | None
    holders: list[list[FrozenTrial]]
    members: dict[tuple[int, int], FrozenTrial]
    history: list[float]
    run: WOARun
    finished: bool

    @property
    def free_whales(self) -> list[int]:
        """Whales of the current generation that no live trial holds."""
        if self.finished:
            return []
        return [i for i, held in enumerate(self.holders) if not held]

    @property
    def all_claimed(self) -> bool:
        """No slot left to start: the run is finished, or the last generation is all held."""
        last = self.generation == self.n_generations - 1
        return self.finished or (last and not self.free_whales)

    @property
    def running(self) -> list[FrozenTrial]:
        return [t for held in self.holders for t in held if not t.state.is_finished()]


def _holders(trials: Sequence[FrozenTrial]) -> dict[tuple[int, int], list[FrozenTrial]]:
    """Live (not void) trials per slot, lowest trial number first."""
    out: dict[tuple[int, int], list[FrozenTrial]] = {}
    for trial in trials:
        slot = trial.system_attrs.get(SLOT)
        if slot is not None and not is_void(trial) and trial.state != TrialState.WAITING:
            out.setdefault((int(slot["generation"]), int(slot["whale"])), []).append(trial)
    for held in out.values():
        held.sort(key=lambda t: t.number)
    return out


def _check_positions(held: list[FrozenTrial], x: np.ndarray, g: int, i: int) -> None:
    for trial in held:
        stored = np.asarray(trial.system_attrs[SLOT]["position"], dtype=float)
        if stored.shape != x.shape or not np.allclose(stored, x, rtol=0.0, atol=1e-12):
            raise RuntimeError(
                f"trial {trial.number} holds whale {i} of generation {g} at {stored.tolist()}, "
                f"but the replay puts that whale at {x.tolist()}: the study was run with other "
                f"WOA settings (n_whales, iterations, seed, variant or space)"
            )


# -- leases -----------------------------------------------------------------------------------


class _Lease:
    """Renews ``WOASampler:lease`` of one trial every ``interval`` s until stopped."""

    def __init__(self, storage, trial_id: int, interval: float, grace: float) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.interval, self.grace = interval, grace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{trial_id}")

    def renew(self) -> bool:
        """Write a new expiry; False when the trial is already finished."""
        try:
            self.storage.set_trial_system_attr(self.trial_id, LEASE, time.time() + self.grace)
        except UpdateFinishedTrialError:
            return False
        return True

    def start(self) -> None:
        self.renew()
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        """End the renewals; ``wait``: until the thread has finished its last one."""
        self._stop.set()
        if wait and self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.renew():
                    return
            except optuna.exceptions.StorageInternalError as err:  # e.g. sqlite busy: next time
                warnings.warn(
                    f"lease of trial id {self.trial_id}: renewal failed ({err}); retrying in "
                    f"{self.interval} s",
                    RuntimeWarning,
                    stacklevel=1,
                )


# -- the sampler ------------------------------------------------------------------------------


class WOASampler(BaseSampler):
    """The Whale Optimization Algorithm over ``space`` (protocol in the module docstring).

    ``n_whales`` ≥ 2 slots per generation, ``iterations`` = T WOA updates, ``seed`` (int,
    or None: drawn once per study and stored), ``variant`` ``"paper"`` or
    ``"reference-code"``; ``independent_sampler`` for parameters outside the space
    (default ``RandomSampler(seed)``). ``lease_interval``/``lease_grace`` (seconds; grace
    defaults to 3 intervals), ``wait_timeout`` (seconds or None), ``poll_interval``.

    The same run as :meth:`WOA.minimize` on the decoded objective:

    >>> from lstmkit.tuning.space import Float, SearchSpace
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> space = SearchSpace(x=Float(-5, 5), y=Float(-5, 5))
    >>> def sphere(params):
    ...     return sum(v**2 for v in params.values())
    >>> study = optuna.create_study(sampler=WOASampler(space, n_whales=6, iterations=20, seed=0))
    >>> study.optimize(lambda trial: sphere(space.suggest(trial)), n_trials=6 * 21)
    >>> res = WOA(6, 20, seed=0).minimize(lambda u: sphere(space.decode(u)), space.bounds)
    >>> study.best_value == res.fun
    True
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        n_whales: int = 10,
        iterations: int = 5,
        seed: int | None = None,
        variant: str = "paper",
        independent_sampler: BaseSampler | None = None,
        lease_interval: float | None = 10.0,
        lease_grace: float | None = None,
        wait_timeout: float | None = None,
        poll_interval: float = 0.25,
    ) -> None:
        if not all(hasattr(space, name) for name in _SPACE_PROTOCOL):
            raise TypeError(f"space: expected a SearchSpace, got {type(space).__name__}")
        if isinstance(seed, np.random.Generator):
            raise TypeError(
                "seed: expected an int or None (stored in the study, so that every worker "
                "replays the same run), got a numpy Generator"
            )
        woa = WOA(n_whales, iterations, seed=seed, variant=variant)  # checks the numbers
        self.space = space
        self.n_whales, self.iterations, self.variant = woa.n_whales, woa.max_iter, variant
        self.seed = seed
        self._independent = independent_sampler or RandomSampler(seed=seed)
        self.lease_interval = _positive_or_none("lease_interval", lease_interval)
        self.lease_grace = _positive_or_none("lease_grace", lease_grace)
        if self.lease_interval is not None:
            if self.lease_grace is None:
                self.lease_grace = 3.0 * self.lease_interval
            if self.lease_grace <= self.lease_interval:
                raise ValueError(
                    f"lease_grace: expected more than lease_interval={self.lease_interval} s, "
                    f"got {self.lease_grace}"
                )
        self.wait_timeout = _positive_or_none("wait_timeout", wait_timeout)
        self.poll_interval = _positive_or_none("poll_interval", poll_interval)
        if self.poll_interval is None:
            raise ValueError("poll_interval: expected seconds > 0, got None")
        self._init_local()

    def _init_local(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[int, _Lease] = {}
        self._jitter = random.Random()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_leases", "_jitter")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_local()

    def __repr__(self) -> str:
        return (
            f"WOASampler(n_whales={self.n_whales}, iterations={self.iterations}, "
            f"seed={self.seed!r}, variant={self.variant!r}, space={self.space.names})"
        )

    @property
    def n_generations(self) -> int:
        """Evaluated generations: T + 1 (``"paper"``) or T (``"reference-code"``)."""
        return self.iterations + 1 if self.variant == "paper" else self.iterations

    @property
    def n_evaluations(self) -> int:
        return self.n_whales * self.n_generations

    def reseed_rng(self) -> None:
        self._independent.reseed_rng()
        self._jitter = random.Random()

    # -- configuration stored in the study ---------------------------------------------------

    def _config(self, study: optuna.Study) -> dict:
        """The study's WOA settings: stored by the first sampler, checked by every later one."""
        storage, study_id = study._storage, study._study_id
        settings = dict(n_whales=self.n_whales, iterations=self.iterations, variant=self.variant)
        mine = settings | {"seed": self.seed, "space": self.space.describe()}
        mine = json.loads(json.dumps(mine))  # as the storage gives it back
        stored = storage.get_study_system_attrs(study_id).get(CONFIG)
        if stored is None:
            seed = self.seed if self.seed is not None else random.SystemRandom().randrange(2**32)
            storage.set_study_system_attr(study_id, CONFIG, mine | {"seed": seed})
            stored = storage.get_study_system_attrs(study_id)[CONFIG]
        if self.seed is None:
            mine["seed"] = stored["seed"]
        if mine != stored:
            diff = {k: (stored.get(k), v) for k, v in mine.items() if stored.get(k) != v}
            raise ValueError(
                "study: expected the WOA settings it was started with, got other ones "
                + "; ".join(
                    f"{k}: expected {want!r}, got {got!r}" for k, (want, got) in diff.items()
                )
            )
        return mine

    # -- replay --------------------------------------------------------------------------------

    def state(self, study: optuna.Study) -> WOAState:
        """The run as the storage shows it now (see the module docstring: Replay)."""
        self._raise_error_if_multi_objective(study)
        config = self._config(study)
        held = _holders(study._storage.get_all_trials(study._study_id, deepcopy=False))
        woa = WOA(self.n_whales, self.iterations, seed=config["seed"], variant=self.variant)
        run = woa.start(self.space.bounds)
        members: dict[tuple[int, int], FrozenTrial] = {}
        direction = study.direction  # read once: each read asks the storage
        g = 0
        while not run.done:
            X = run.ask()
            slots = [held.get((g, i), []) for i in range(self.n_whales)]
            for i, holders in enumerate(slots):
                _check_positions(holders, X[i], g, i)
            complete = all(slots) and all(t.state.is_finished() for s in slots for t in s)
            if not complete:  # g is the current generation
                break
            members.update({(g, i): holders[0] for i, holders in enumerate(slots)})
            run.tell([fitness(s[0], direction) for s in slots])
            g += 1
        else:  # every generation is complete: the run is finished
            X, slots = None, [[] for _ in range(self.n_whales)]
        history = [float(h) for h in run.history]
        return WOAState(g, self.n_generations, X, slots, members, history, run, run.done)

    # -- Optuna's sampler interface ------------------------------------------------------------

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.space.distributions()

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        """Claim a slot for ``trial`` (waiting if needed) and decode its position."""
        if not search_space or trial.system_attrs.get("fixed_params"):
            return {}
        slot = self._claim(study, trial)
        if slot is None:
            study._storage.set_trial_system_attr(trial._trial_id, SURPLUS, True)
            if getattr(study._thread_local, "in_optimize_loop", False):
                study.stop()
            raise optuna.TrialPruned(
                f"the WOA run is complete ({self.n_generations} generations of "
                f"{self.n_whales} whales): trial {trial.number} is surplus and not evaluated"
            )
        params = self.space.decode(slot["position"])
        return {name: params[name] for name in search_space}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if param_name in self.space and _is_member(study, trial):
            raise ValueError(
                f"{param_name}: expected the distribution of the WOA space, "
                f"{self.space[param_name].distribution()}, got {param_distribution} "
                f"(suggest the space's parameters with SearchSpace.suggest(trial))"
            )
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        """Mark the state Optuna tells (a FAIL without this mark is void), end the lease."""
        if trial.system_attrs.get(SLOT) is not None:
            if (lease := self._leases.get(trial._trial_id)) is not None:
                lease.renew()  # time for Optuna to store the state before anyone may expire it
            study._storage.set_trial_system_attr(trial._trial_id, TOLD, state.name)
        self._end_lease(trial._trial_id)
        self._independent.after_trial(study, trial, state, values)

    # -- claiming -----------------------------------------------------------------------------

    def _claim(self, study: optuna.Study, trial: FrozenTrial) -> dict | None:
        """Write-then-read claim of a free slot of the current generation; None once the
        run is finished. Waits while the current generation is held but unfinished."""
        storage, trial_id = study._storage, trial._trial_id
        began = time.monotonic()
        attempt = 0
        self._start_lease(storage, trial_id)  # from here on a dead worker's trial expires
        while True:
            self._expire_dead(study)
            state = self.state(study)
            if state.finished:
                self._end_lease(trial_id)
                return None
            if free := state.free_whales:
                i = free[trial.number % len(free)]
                slot = {
                    "generation": state.generation,
                    "whale": i,
                    "position": state.positions[i].tolist(),
                    "claimed_at": time.time(),
                }
                storage.set_trial_system_attr(trial_id, SLOT, slot)
                if not self._contested(study, trial_id, (state.generation, i)):
                    return slot
                storage.set_trial_system_attr(trial_id, SLOT, None)
                attempt += 1
                time.sleep(self._jitter.uniform(0.0, 0.02 * min(attempt, 10)))
                continue
            waited = time.monotonic() - began
            if self.wait_timeout is not None and waited > self.wait_timeout:
                self._end_lease(trial_id)
                numbers = [t.number for t in state.running]
                raise WaitTimeout(
                    f"trial {trial.number} waited {waited:.1f} s (wait_timeout="
                    f"{self.wait_timeout} s) for generation {state.generation} to finish: its "
                    f"whales are held by running trials {numbers}; if their workers died, "
                    f"enable leases (lease_interval) or the storage's heartbeat"
                )
            time.sleep(self.poll_interval)

    def _contested(self, study: optuna.Study, trial_id: int, slot: tuple[int, int]) -> bool:
        trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
        return any(t._trial_id != trial_id for t in _holders(trials).get(slot, []))

    def _expire_dead(self, study: optuna.Study) -> None:
        """Fail RUNNING trials whose worker is gone: those Optuna's heartbeat finds stale, and
        those whose lease is in the past (slot holders, whose slot becomes void, and trials
        that died while waiting for a slot)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        storage, running = study._storage, (TrialState.RUNNING,)
        trials = storage.get_all_trials(study._study_id, deepcopy=False, states=running)
        now = time.time()
        for trial in trials:
            lease = trial.system_attrs.get(LEASE)
            if lease is not None and lease < now:
                _fail(storage, trial._trial_id, EXPIRED, now)

    def _start_lease(self, storage, trial_id: int) -> None:
        if self.lease_interval is None:
            return
        with self._lock:
            if trial_id in self._leases:
                return
            lease = _Lease(storage, trial_id, self.lease_interval, self.lease_grace)
            self._leases[trial_id] = lease
        lease.start()

    def abandon(self) -> None:
        """The run is stopping (Ctrl-C): end every lease this sampler holds (the caller
        fails the trials with :func:`fail_interrupted`)."""
        with self._lock:
            held, self._leases = self._leases, {}
        for lease in held.values():  # no wait: a renewal may be waiting on the database
            lease.stop(wait=False)

    def _end_lease(self, trial_id: int) -> None:
        with self._lock:
            lease = self._leases.pop(trial_id, None)
        if lease is not None:
            lease.stop()


def _is_member(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Whether the trial holds a slot (read from the storage: Optuna's copy predates it)."""
    return study._storage.get_trial(trial._trial_id).system_attrs.get(SLOT) is not None


def _positive_or_none(name: str, value: object) -> float | None:
    if value is None:
        return None
    if not (is_number(value) and value > 0):
        raise ValueError(f"{name}: expected seconds > 0 or None, got {value!r}")
    return float(value)
