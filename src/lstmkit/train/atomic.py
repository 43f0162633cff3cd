"""Files and directories replaced atomically: a crash at any point leaves the old or the new
one.

Used for checkpoints and saved models (:mod:`lstmkit.train.checkpoint`,
:mod:`lstmkit.tasks.persist`) and for every file a run writes (:mod:`lstmkit.report.rundir`,
.tsf and ONNX files). Plain Python (no torch), so that a test can load it alone and
kill a save at each of its steps (``tests/train/test_atomic_swap.py``).
"""

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path


def _write_synced(file, data: bytes) -> None:
    """Write ``data`` to the open binary ``file`` and make it durable."""
    file.write(data)
    file.flush()
    os.fsync(file.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and a rename: readers see the
    old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_synced(f, data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a run's files are for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_dir_atomically(path: str | os.PathLike, files: dict[str, bytes]) -> Path:
    """Write ``files`` (name -> bytes) as directory ``path``, replacing it atomically.

    The files go to a temporary sibling ``.NAME.tmp-*`` (written and synced), which then
    takes the place of ``path`` in one step: ``renameat2(RENAME_EXCHANGE)`` swaps the two
    where the system has it (Linux), so ``path`` always exists, old or new. Elsewhere, three
    renames: the finished sibling becomes ``.NAME.new`` (its name says it is complete), the
    old ``path`` moves to ``.NAME.old``, ``.NAME.new`` becomes ``path``. A crash between any
    two steps leaves a state that :func:`recover_dir` (run by the next write and by every
    reader) turns into the newest complete directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_dir(path, writer=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as f:
                _write_synced(f, data)
        _fsync_dir(tmp)
        if not path.exists():
            os.replace(tmp, path)
        elif not path.is_dir():
            raise ValueError(f"{path}: expected a directory to replace, got a file")
        elif _exchange(tmp, path):  # tmp now holds the old files
            _fsync_dir(path.parent)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            new, old = _sibling(path, "new"), _sibling(path, "old")
            os.replace(tmp, new)
            os.replace(path, old)
            os.replace(new, path)
            _fsync_dir(path.parent)
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def recover_dir(path: str | os.PathLike, *, writer: bool = False) -> None:
    """Bring directory ``path`` back from a swap that a crash interrupted: a complete
    ``.NAME.new`` is newer than ``path`` and replaces it; with no ``path``, ``.NAME.old``
    (the previous complete one) comes back. ``writer``: also remove what the swap left
    behind (the old directory, unfinished ``.NAME.tmp-*``) — only the one process that
    writes ``path`` may, since another's temporary directory may be in use."""
    path = Path(path)
    new, old = _sibling(path, "new"), _sibling(path, "old")
    with contextlib.suppress(FileNotFoundError):  # another reader (a rank) recovered it first
        if new.is_dir():
            if path.is_dir() and writer:
                os.replace(path, old)
            if not path.exists():
                os.replace(new, path)
        if not path.exists() and old.is_dir():
            os.replace(old, path)
    if writer:
        for stale in (old, *path.parent.glob(f".{path.name}.tmp-*")):
            shutil.rmtree(stale, ignore_errors=True)


def _sibling(path: Path, role: str) -> Path:
    return path.with_name(f".{path.name}.{role}")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with ``renameat2(RENAME_EXCHANGE)``; False where the
    system or the file system has no such call (then the caller renames step by step)."""
    renameat2 = getattr(_LIBC, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_dir(path: Path) -> None:
    """Make a directory's entries (the renames in it) durable; a no-op where directories
    cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # no C library to load by name (Windows)
    _LIBC = None
