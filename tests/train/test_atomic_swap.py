"""A kill at every point of a directory save (checkpoints and models), then a reader.

Oracle: the two versions written. A subprocess saves version "new" over version "old" and
is killed (``os._exit``, no cleanup runs) at its k-th file-system step — every rename,
exchange, directory sync and removal, k = 1, 2, … until a save completes. After each kill
a reader must find one whole version (never a mix, never nothing), "new" from the first
kill after the commit on, and the next save must leave no stray sibling behind. Both
swaps are tried: ``renameat2(RENAME_EXCHANGE)`` and the three renames used without it.
"""

import subprocess
import sys
import textwrap

import pytest

from lstmkit.train import atomic
from lstmkit.train.atomic import _exchange, recover_dir, write_dir_atomically
from lstmkit.train.checkpoint import load_checkpoint, save_checkpoint

ATOMIC = atomic.__file__

_SAVE = textwrap.dedent(
    """
    import importlib.util, os, shutil, sys
    # the module alone (plain Python): no torch to import in each of the killed processes
    spec = importlib.util.spec_from_file_location("atomic", sys.argv[4])
    ck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ck)
    target, swap, crash_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    calls = 0

    def killing(fn):
        def step(*args, **kwargs):
            global calls
            calls += 1
            if calls == crash_at:
                os._exit(9)
            return fn(*args, **kwargs)
        return step

    exchange = ck._exchange if swap == "exchange" else (lambda a, b: False)
    ck._exchange = killing(exchange)
    ck._fsync_dir = killing(ck._fsync_dir)
    os.replace = killing(os.replace)
    shutil.rmtree = killing(shutil.rmtree)
    ck.write_dir_atomically(target, {"a.txt": b"new", "b.txt": b"new"})
    """
)


def _can_exchange(tmp_path) -> bool:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    return _exchange(tmp_path / "x", tmp_path / "y")


def _version(path) -> str:
    """The one version the directory holds; fails on a mix or a missing file."""
    got = {(path / name).read_bytes().decode() for name in ("a.txt", "b.txt")}
    assert len(got) == 1, f"a mix of versions: {got}"
    return got.pop()


STEPS = 16  # more than a save takes (7 with the exchange, 10 with the renames)


@pytest.mark.parametrize("swap", ["exchange", "renames"])
def test_a_kill_at_any_step_of_a_save_leaves_the_old_or_the_new_version(tmp_path, swap):
    if swap == "exchange" and not _can_exchange(tmp_path):
        pytest.skip("this file system has no renameat2(RENAME_EXCHANGE)")
    seen, done, tried = [], False, 0
    while not done and tried < STEPS:  # kill points in batches of 4 (independent folders)
        runs = []
        for crash_at in range(tried + 1, tried + 5):
            target = write_dir_atomically(
                tmp_path / f"k{crash_at}" / "ckpt", {"a.txt": b"old", "b.txt": b"old"}
            )
            command = [sys.executable, "-c", _SAVE, str(target), swap, str(crash_at), ATOMIC]
            runs.append((target, subprocess.Popen(command, stderr=subprocess.PIPE, text=True)))
        tried += len(runs)
        for target, proc in runs:
            _, err = proc.communicate(timeout=120)
            if done:
                continue
            assert proc.returncode in (0, 9), err
            recover_dir(target)  # what every reader does first
            seen.append(_version(target))
            write_dir_atomically(target, {"a.txt": b"next", "b.txt": b"next"})
            assert [p.name for p in target.parent.iterdir()] == ["ckpt"], "a stray sibling"
            assert _version(target) == "next"
            done = proc.returncode == 0  # the first save not killed: every step was tried
    if not done:
        pytest.fail(f"the save never completed in {STEPS} steps")
    assert seen[-1] == "new" and len(seen) >= 4, seen
    first_new = seen.index("new")
    assert set(seen[first_new:]) == {"new"}, f"went back to the old version after a kill: {seen}"
    assert set(seen[:first_new]) == {"old"}, seen


def test_a_checkpoint_killed_mid_save_loads_whole(tmp_path):
    """The same through save_checkpoint/load_checkpoint: after a kill in the middle of
    the swap (the old directory moved away, the new one not yet in place) the reader
    finds the new checkpoint whole."""
    import torch

    path = tmp_path / "checkpoint"
    save_checkpoint(path, {"w": torch.zeros(3)}, {"epoch": 1})
    new, old = path.with_name(".checkpoint.new"), path.with_name(".checkpoint.old")
    save_checkpoint(new, {"w": torch.ones(3)}, {"epoch": 2})  # complete, not yet swapped
    path.rename(old)  # killed here: no checkpoint/ at all
    state, meta, _ = load_checkpoint(path)
    assert meta["epoch"] == 2 and state["w"].tolist() == [1.0, 1.0, 1.0]
    assert path.is_dir() and not new.exists()
