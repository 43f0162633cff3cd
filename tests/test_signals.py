"""Ctrl-C (SIGINT) and SIGTERM sent to a real ``lstmkit`` process, for every command that
trains, tunes, compares or generates (issue 14).

Oracle: what the run left behind. Each command must exit 130, print one line saying what
was kept, and leave no metrics.json or report.html claiming a finished run; a tuning trial
running when the signal came must end FAIL, never COMPLETE, and void — its whale's position
evaluated again by a resumed run, not counted as a failure (checked in the SQLite storage
with Optuna's own reader: no trial completes after the signal was sent).
"""

import datetime
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _start(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstmkit", *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a pytest-xdist worker ignores SIGINT, and a child would inherit that (Python then
        # installs no Ctrl-C handler): the command gets SIGINT's default, as in a terminal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    _STARTED.append(proc)
    return proc


def _when(ready, proc, timeout=180.0):
    """Wait until ``ready()`` holds while ``proc`` runs (fails if it ends first)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the command ended before the signal: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the command never reached the point to interrupt")
        time.sleep(0.05)


def _stop(proc, signum) -> tuple[int, str]:
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the command did not stop within 120 s of the signal")
    return proc.returncode, err


def _claims_nothing(run) -> None:
    for name in ("metrics.json", "report.html", "tuning.json", "comparison.json"):
        assert not (run / name).exists(), f"{name} written by an interrupted run"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_training_commands_exit_130_keep_the_checkpoint_and_say_how_to_resume(tmp_path, signum):
    proc = _start(
        "classify",
        "--train",
        "italy_power_demand",
        "--epochs",
        5000,
        "--patience",
        5000,
        "--quiet",
        "--out",
        "run",
        cwd=tmp_path,
    )
    _when(lambda: (tmp_path / "run" / "checkpoint").is_dir(), proc)
    code, err = _stop(proc, signum)
    assert code == 130, err
    assert "interrupted after epoch" in err
    assert "continue with: lstmkit classify --resume run" in err
    assert len(err.strip().splitlines()) == 1, err
    _claims_nothing(tmp_path / "run")


def test_tune_marks_the_running_trial_fail_and_exits_130(tmp_path):
    import optuna

    from lstmkit.woa.sampler import is_void

    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    proc = _start(
        "tune",
        "--data",
        "airline",
        "--horizon",
        3,
        "--whales",
        2,
        "--iterations",
        50,
        "--epochs",
        3000,
        "--storage",
        "tune.db",
        "--quiet",
        "--out",
        "run",
        cwd=tmp_path,
    )

    def running():  # read-only SQL while tune may still be creating the schema
        if not (tmp_path / "tune.db").exists():
            return False
        try:
            with sqlite3.connect(f"file:{tmp_path / 'tune.db'}?mode=ro", uri=True) as db:
                query = "SELECT count(*) FROM trials WHERE state = 'RUNNING'"
                return db.execute(query).fetchone()[0] > 0
        except sqlite3.Error:  # no table yet, or locked
            return False

    _when(running, proc)
    signalled = datetime.datetime.now()
    code, err = _stop(proc, signal.SIGINT)
    assert code == 130, err
    assert "marked FAIL" in err and "run the same command to continue" in err
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    late = [
        t.number for t in trials if t.state.name == "COMPLETE" and t.datetime_complete > signalled
    ]
    assert not late, f"trials {late} were recorded COMPLETE after the signal"
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed and all(is_void(t) for t in failed), "an interrupted trial counts as failed"
    _claims_nothing(tmp_path / "run")


def test_compare_exits_130_without_a_table(tmp_path):
    proc = _start(
        "compare",
        "--data",
        "airline",
        "--horizon",
        3,
        "--epochs",
        3000,
        "--seeds",
        "0,1",
        "--whales",
        2,
        "--iterations",
        2,
        "--quiet",
        "--out",
        "run",
        cwd=tmp_path,
    )
    _when(lambda: (tmp_path / "run" / "config.toml").is_file(), proc)
    time.sleep(1.0)  # into the first contender's fit
    code, err = _stop(proc, signal.SIGINT)
    assert code == 130, err
    _claims_nothing(tmp_path / "run")


def test_generate_exits_130_and_writes_nothing(tmp_path):
    proc = _start("generate", "--corpus", "tang300", "--epochs", 500, "--out", "run", cwd=tmp_path)
    _when(lambda: (tmp_path / "run" / "config.toml").is_file(), proc)
    time.sleep(1.0)  # into training
    code, err = _stop(proc, signal.SIGINT)
    assert code == 130, err
    assert err.strip().startswith("lstmkit: interrupted")  # in training: "nothing was written"
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["config.toml"]


def test_ctrl_c_while_torch_loads_exits_130_with_one_line(tmp_path):
    """The signal is sent the moment the import of torch begins (a finder on sys.meta_path),
    through the same entry point as the ``lstmkit`` script."""
    program = textwrap.dedent(
        """
        import os, signal, sys

        class SignalOnTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch":
                    sys.meta_path.remove(self)
                    os.kill(os.getpid(), signal.SIGINT)
                return None

        sys.meta_path.insert(0, SignalOnTorch())
        sys.argv = ["lstmkit", "forecast", "--data", "airline", "--out", "run"]
        from lstmkit.__main__ import run

        sys.exit(run())
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "lstmkit: interrupted while starting; nothing was done"
    assert not (tmp_path / "run").exists()
