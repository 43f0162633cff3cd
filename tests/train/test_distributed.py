"""Training across processes (DDP under torchrun) and WOA tuning across processes (one
Optuna RDB storage). The oracle is always one process: the same fit with the same global
batch, the same tuning with the same seed.

This file is also the program those processes run: ``torchrun … test_distributed.py
ranks OUT`` (the training checks) and ``python test_distributed.py tune-worker URL`` (one
tuning worker); see ``__main__`` at the end.
"""

import functools
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import torch.distributed as dist
from torch import nn

import lstmkit
from lstmkit.tasks import Forecaster, SequenceTagger, global_forecast
from lstmkit.train import loop
from lstmkit.train.checkpoint import load_checkpoint
from lstmkit.train.loop import TrainConfig, fit

HERE = Path(__file__).resolve()
EPOCHS, RESUME_AT = 6, 3

# ---------------------------------------------------------------- shared by both sides


class _Net(nn.Module):
    """float64 per-step regressor: an lstmkit.LSTM and a linear head."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = lstmkit.LSTM(2, 5, batch_first=True, dtype=torch.float64)
        self.head = nn.Linear(5, 1, dtype=torch.float64)

    def forward(self, x):
        return self.head(self.rnn(x)[0]).squeeze(-1)


def _loss(net, batch):
    """Mean squared error over the real steps: the element counts differ between ranks."""
    real = torch.arange(batch["x"].shape[1])[None] < batch["lengths"][:, None]
    return nn.functional.mse_loss(net(batch["x"])[real], batch["y"][real]), int(real.sum())


def _data(n: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 7, 2, generator=g, dtype=torch.float64)
    return {
        "x": x,
        "y": 0.3 * x[..., 0].cumsum(1),
        "lengths": torch.randint(1, 8, (n,), generator=g),
    }


def _cfg(**options) -> TrainConfig:
    # 17 samples in global batches of 8: 8, 8, 1, so the last batch leaves rank 1 empty;
    # lr 0.2 is large enough for ReduceLROnPlateau to halve it twice and early stopping to
    # end the run at epoch 6, keeping epoch 2's weights
    base = {"epochs": EPOCHS, "batch_size": 8, "lr": 0.2, "lr_patience": 1, "patience": 4}
    return TrainConfig(**base | {"progress": False} | options)


def _train_val():
    return _data(17, 1), _data(5, 2)


def _tagging_data():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(rng.integers(3, 9)), 2)) for _ in range(24)]
    y = [(x[:, 0] > 0).astype(int) + (x[:, 1] > 1) for x in X]
    return X, y


def _tagger():
    return SequenceTagger(hidden_size=6, epochs=3, batch_size=8, seed=0, progress=False)


def _panel_forecaster():
    """A small global Forecaster over a panel of 5 series of unequal lengths, with a fixed
    budget of 24 steps of global batch 16 (a window gathered only on the rank that uses it)."""
    global_forecast.MIN_STEPS = global_forecast.MAX_STEPS = 24
    rng = np.random.default_rng(3)
    panel = [
        np.sin(np.arange(n) / 3) * (k + 1) + rng.normal(0, 0.1, n)
        for k, n in enumerate((30, 12, 45, 3, 20))
    ]
    model = Forecaster(horizon=3, lookback=8, hidden_size=6, batch_size=16, progress=False)
    return model.fit(panel)


def _params(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _epochs(history) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs]


# ---------------------------------------------------------------- the ranks' program


def _rank_job(out: Path) -> None:
    """What every rank runs under torchrun; rank r saves its results to out/rank<r>.pt."""
    torch.set_num_threads(1)
    result = {}
    # an estimator, unchanged: its fit joins the group that torchrun describes
    assert not dist.is_initialized()
    tagger = _tagger().fit(*_tagging_data())
    rank = dist.get_rank()
    result["tagger"] = (_params(tagger.net_), _epochs(tagger.history_))
    panel = _panel_forecaster()
    result["panel"] = (_params(panel.net_), _epochs(panel.history_))

    writes = []
    save = loop.save_checkpoint
    loop.save_checkpoint = lambda *a, **k: writes.append(1) or save(*a, **k)
    train, val = _train_val()
    model = _Net(0)
    history = fit(model, _loss, train, val, _cfg(checkpoint=str(out / "straight")))
    result["straight"] = (_params(model), _epochs(history), history.stop_reason, len(writes))

    part = _Net(0)  # 3 epochs, then a fresh model (other weights) resumes to 6
    fit(part, _loss, train, val, _cfg(epochs=RESUME_AT, checkpoint=str(out / "resumed")))
    if rank == 0:  # fit's barrier: the checkpoint of epoch 3 is complete on every rank
        shutil.copytree(out / "resumed", out / "at3")
    dist.barrier()
    resumed = _Net(1)
    history = fit(resumed, _loss, train, val, _cfg(checkpoint=str(out / "resumed"), resume=True))
    result["resumed"] = (_params(resumed), _epochs(history))

    bad = {k: v.clone() for k, v in train.items()}
    bad["y"][13, 0] = math.inf  # one sample, on one rank's part of one batch
    broken = _Net(0)
    history = fit(broken, _loss, bad, val, _cfg())
    result["nonfinite"] = (_params(broken), history.stop_reason)

    try:
        fit(_Net(0), _loss, train, val, _cfg(batch_size=1))
    except ValueError as err:
        result["small_batch"] = str(err)
    torch.save(result, out / f"rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loopback_env() -> dict:
    # gloo's connections on the loopback interface only; one torch thread per process
    return os.environ | {"GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Both ranks' results of one ``torchrun --nproc_per_node 2`` launch."""
    out = tmp_path_factory.mktemp("ranks")
    cmd = [
        *("nice", "-n", "19", sys.executable, "-m", "torch.distributed.run"),
        *("--nnodes", "1", "--nproc_per_node", "2"),
        *("--master_addr", "127.0.0.1", "--master_port", str(_free_port())),
        *(str(HERE), "ranks", str(out)),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=_loopback_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    results = [torch.load(out / f"rank{r}.pt") for r in range(2)]
    return results, out


@pytest.fixture(scope="module")
def one_process():
    """The oracle: the same fit in this process, global batch 8 as one batch."""
    train, val = _train_val()
    model = _Net(0)
    history = fit(model, _loss, train, val, _cfg(distributed=False))
    return model, history


# ---------------------------------------------------------------- DDP under torchrun


# float64, 6 epochs of 3 steps: the ranks add partial sums in another order than one process
# does (their halves of the batch, then the all-reduce) and scale by W n_r / N: a few units
# of 2**-52 (2.2e-16) per operation, which AdamW's division by sqrt(v) keeps relative.
# Measured: 3.7e-16 of the largest weight, losses within 7.8e-16; the bound is ~3000x that.
RTOL = 1e-12


def test_two_ranks_match_one_process_with_the_same_global_batch(ranks, one_process):
    (rank0, _), _ = ranks
    model, history = one_process
    weights, epochs, reason, _ = rank0["straight"]
    want = _params(model)
    assert (weights - want).abs().max() <= RTOL * want.abs().max()
    assert [e["lr"] for e in epochs] == [e["lr"] for e in _epochs(history)]
    assert [e["lr"] for e in epochs][-1] == 0.05  # the schedule acted, identically
    for got, expected in zip(epochs, _epochs(history), strict=True):
        assert got["train_loss"] == pytest.approx(expected["train_loss"], rel=RTOL)
        assert got["val_loss"] == pytest.approx(expected["val_loss"], rel=RTOL)
    assert reason == history.stop_reason
    assert reason.startswith("early stopping") and history.best_epoch == 1


def test_the_ranks_hold_identical_replicas_and_histories(ranks):
    (rank0, rank1), _ = ranks
    for key in ("straight", "resumed", "tagger"):
        assert torch.equal(rank0[key][0], rank1[key][0]), key
        assert rank0[key][1] == rank1[key][1], key


def test_only_rank0_writes_the_checkpoint_with_every_ranks_rng_state(ranks):
    (rank0, rank1), out = ranks
    assert (rank0["straight"][3], rank1["straight"][3]) == (EPOCHS, 0)
    state, meta, _ = load_checkpoint(out / "straight")
    assert meta["epochs_done"] == EPOCHS
    assert {"rng.torch", "rng.torch.1"} <= set(state)
    assert not torch.equal(state["rng.torch"], state["rng.torch.1"])  # seeds seed + rank


def test_a_ddp_checkpoint_resumes_exactly_under_ddp_and_in_one_process(ranks, one_process):
    (rank0, _), out = ranks
    assert torch.equal(rank0["resumed"][0], rank0["straight"][0])
    assert rank0["resumed"][1] == rank0["straight"][1]
    # one process resumes the 2-rank checkpoint of epoch 3: 3 + 3 epochs equal 6 in one
    copy = out / "at3-one"
    shutil.copytree(out / "at3", copy)
    model = _Net(1)
    train, val = _train_val()
    fit(model, _loss, train, val, _cfg(checkpoint=str(copy), resume=True, distributed=False))
    want = _params(one_process[0])
    assert (_params(model) - want).abs().max() <= RTOL * want.abs().max()


def test_a_nonfinite_loss_on_one_rank_stops_every_rank_as_one_process_stops(ranks):
    (rank0, rank1), _ = ranks
    train, val = _train_val()
    train["y"][13, 0] = math.inf
    model = _Net(0)
    with pytest.warns(RuntimeWarning, match="the training loss became"):
        history = fit(model, _loss, train, val, _cfg(distributed=False))
    assert rank0["nonfinite"][1] == rank1["nonfinite"][1] == history.stop_reason
    assert torch.equal(rank0["nonfinite"][0], _params(_Net(0)))  # the initial weights kept
    assert torch.equal(_params(model), _params(_Net(0)))


def test_a_global_batch_smaller_than_the_world_is_refused(ranks):
    (rank0, _), _ = ranks
    assert rank0["small_batch"] == (
        "batch_size: expected at least the world size 2 (the global batch is shared by the "
        "ranks), got 1"
    )


# float32 (the estimators' dtype): the same reordering at 2**-23 (1.2e-7) per operation,
# 3 epochs of 3 AdamW steps. Measured: 6.9e-8 of the largest weight, losses within 1.6e-7;
# the bound is ~100x that, and 4000x below what another global batch does (next test).
RTOL_FLOAT32 = 1e-5


def test_an_estimator_fits_unchanged_under_torchrun_as_in_one_process(ranks):
    (rank0, _), _ = ranks
    tagger = _tagger().fit(*_tagging_data())
    want = _params(tagger.net_)
    weights, epochs = rank0["tagger"]
    assert (weights - want).abs().max() <= RTOL_FLOAT32 * want.abs().max()
    # the estimators' defaults: the one-cycle schedule stepped per batch, batches of like
    # lengths, no validation part
    assert tagger.params["schedule"] == "onecycle" and "val_loss" not in epochs[0]
    for got, expected in zip(epochs, _epochs(tagger.history_), strict=True):
        assert got.keys() == expected.keys()
        assert got["lr"] == expected["lr"]
        assert got["train_loss"] == pytest.approx(expected["train_loss"], rel=RTOL_FLOAT32)


def test_a_panel_forecaster_fits_under_torchrun_as_in_one_process(ranks, monkeypatch):
    """The panel's lazy windows: each rank gathers its share of every global batch; the
    result is the one-process fit's."""
    (rank0, rank1), _ = ranks
    monkeypatch.setattr(global_forecast, "MIN_STEPS", 24)  # _panel_forecaster sets them
    monkeypatch.setattr(global_forecast, "MAX_STEPS", 24)
    model = _panel_forecaster()
    want = _params(model.net_)
    for weights, epochs in (rank0["panel"], rank1["panel"]):
        assert (weights - want).abs().max() <= RTOL_FLOAT32 * want.abs().max()
        got = [e["train_loss"] for e in epochs]
        assert got == pytest.approx([e["train_loss"] for e in model.history_.epochs], rel=1e-4)


def test_the_float32_tolerance_catches_another_global_batch():
    """The tolerance above is not vacuous: global batch 4 instead of 8 (e.g. each rank
    stepping on its own half) moves the weights far beyond it."""
    one = _tagger().fit(*_tagging_data())
    other = SequenceTagger(hidden_size=6, epochs=3, batch_size=4, seed=0, progress=False)
    other.fit(*_tagging_data())
    a, b = _params(one.net_), _params(other.net_)
    assert (a - b).abs().max() > 100 * RTOL_FLOAT32 * a.abs().max()


# ---------------------------------------------------------------- no process group


def test_distributed_true_without_a_group_is_a_value_error(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    train, val = _train_val()
    with pytest.raises(ValueError, match=r"distributed=True: expected an initialised"):
        fit(_Net(0), _loss, train, val, _cfg(distributed=True))
    with pytest.raises(TypeError, match=r"distributed: expected None, True or False, got 'yes'"):
        _cfg(distributed="yes")


def test_torchrun_env_without_its_rendezvous_is_a_value_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        monkeypatch.delenv(name, raising=False)
    train, val = _train_val()
    with pytest.raises(ValueError, match=r"WORLD_SIZE=2: expected torchrun's environment"):
        fit(_Net(0), _loss, train, val, _cfg())
    assert not dist.is_initialized()


# ---------------------------------------------------------------- tuning: one RDB storage

N_WHALES, ITERATIONS, TUNE_SEED = 3, 2, 5


class _Meeting(Forecaster):
    """A Forecaster whose fits in a tuning worker first leave a file ``fit.<pid>`` in
    ``$TUNE_MEETING`` and wait (up to 60 s) until two processes have left one: so both
    workers surely evaluate trials, however the two processes are scheduled. Without the
    variable it is a plain Forecaster (the one-process oracle)."""

    @functools.wraps(Forecaster.fit)  # keeps fit's signature: tune passes its callback
    def fit(self, *args, **kwargs):
        folder = os.environ.get("TUNE_MEETING")
        if folder:
            Path(folder, f"fit.{os.getpid()}").touch()
            deadline = time.monotonic() + 60
            while len(list(Path(folder).glob("fit.*"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        return super().fit(*args, **kwargs)


def _tune(storage):
    from lstmkit.data import load_airline
    from lstmkit.tuning.space import Float, Int, SearchSpace
    from lstmkit.tuning.tune import tune

    _, series = load_airline()
    space = SearchSpace(hidden_size=Int(2, 8), lookback=Int(4, 12), lr=Float(3e-3, 3e-2, log=True))
    return tune(
        _Meeting,
        space,
        series[:-12],
        n_whales=N_WHALES,
        iterations=ITERATIONS,
        storage=storage,
        study_name="shared",
        seed=TUNE_SEED,
        prune=False,  # pruning compares with the trials finished so far: timing-dependent
        refit=False,
        fixed={"horizon": 3, "epochs": 3, "patience": None},
    )


def _slots(study) -> dict[tuple[int, int], optuna.trial.FrozenTrial]:
    """(generation, whale) -> the COMPLETE trial that evaluated it; no slot twice."""
    from lstmkit.woa.sampler import SLOT

    held = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        slot = t.system_attrs[SLOT]
        key = (slot["generation"], slot["whale"])
        assert key not in held, f"slot {key} evaluated twice"
        held[key] = t
    return held


def test_two_tuning_processes_on_one_sqlite_url_do_one_processs_run(tmp_path):
    """Two independent processes (as on two machines) run tune on one sqlite:/// URL and
    the same study name: together they evaluate every whale of every generation once, and
    the run is the one a single process does with the same seed (the sampler replays one
    seeded WOA from the storage; the fitness of a position does not depend on the worker)."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    # the tables first, once: two processes creating them at the same instant can collide
    # ("table ... already exists", see docs/distributed.md); the study itself they share
    optuna.storages.RDBStorage(url)
    cmd = ["nice", "-n", "19", sys.executable, str(HERE), "tune-worker", url]
    env = os.environ | {"TUNE_MEETING": str(tmp_path)}
    procs = [subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    alone = _tune(None)  # the oracle, in this process and in memory, meanwhile
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-4000:]

    study = optuna.load_study(study_name="shared", storage=url)
    shared = _slots(study)
    want = _slots(alone.study)
    slots = [(g, i) for g in range(ITERATIONS + 1) for i in range(N_WHALES)]
    assert sorted(shared) == sorted(want) == slots
    for key in slots:
        assert (shared[key].params, shared[key].value) == (want[key].params, want[key].value)
    assert study.best_value == alone.best_value
    assert {p.name for p in tmp_path.glob("fit.*")} == {f"fit.{p.pid}" for p in procs}


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "ranks":
        _rank_job(Path(sys.argv[2]))
    elif command == "tune-worker":
        torch.set_num_threads(1)  # as in the oracle (conftest): the same fitness bits
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        _tune(sys.argv[2])
    else:
        raise SystemExit(f"expected 'ranks OUT' or 'tune-worker URL', got {command!r}")
