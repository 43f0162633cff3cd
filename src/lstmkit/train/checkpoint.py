"""Checkpoints and saved models without pickles: safetensors for tensors, JSON for the rest.

A checkpoint is a directory holding ``tensors.safetensors`` and ``meta.json``. It is
written into a temporary sibling directory and swapped into place (:func:`write_dir_atomically`),
so a crash never leaves a half-written checkpoint, and a crash at any point of the swap leaves
a state from which :func:`recover_dir` restores the newest complete one. Loading never
executes code from the file.

The optimizer's state (AdamW's moments and step counts) is flattened into the tensor file
under ``optim.<param index>.<name>`` and its hyper-parameters into JSON, so a run resumes
exactly where it stopped.
"""

import ctypes
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

TENSORS, META = "tensors.safetensors", "meta.json"
FORMAT = "lstmkit-checkpoint-1"


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
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
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
    try:
        if new.is_dir():
            if path.is_dir() and writer:
                os.replace(path, old)
            if not path.exists():
                os.replace(new, path)
        if not path.exists() and old.is_dir():
            os.replace(old, path)
    except FileNotFoundError:  # another reader (a rank of the same run) recovered it first
        pass
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


def _tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, f.name)
        return Path(f.name).read_bytes()


def save_checkpoint(
    path: str | os.PathLike,
    model_state: dict[str, torch.Tensor],
    meta: dict,
    optimizer: torch.optim.Optimizer | None = None,
) -> Path:
    """Write model weights, JSON-able ``meta`` and optionally the optimizer state."""
    tensors = {f"model.{k}": v for k, v in model_state.items()}
    meta = {"format": FORMAT, **meta}
    if optimizer is not None:
        state = optimizer.state_dict()
        scalars: dict[str, dict] = {}
        for index, entry in state["state"].items():
            for name, value in entry.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{index}.{name}"] = value
                else:
                    scalars.setdefault(str(index), {})[name] = value
        meta["optimizer"] = {"param_groups": state["param_groups"], "scalars": scalars}
    files = {TENSORS: _tensor_bytes(tensors), META: json.dumps(meta, indent=1).encode()}
    return write_dir_atomically(path, files)


def read_json(path: Path, name: str, expected_format: str, what: str) -> dict:
    """``path/name`` as a JSON object whose "format" is ``expected_format``; else ValueError."""
    if not path.is_dir():
        raise ValueError(f"{path}: expected {what} directory, got no such directory")
    try:
        meta = json.loads((path / name).read_text("utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"{path}: expected {name} in {what}, found none") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path / name}: expected JSON, got a damaged file ({err})") from err
    if not isinstance(meta, dict) or meta.get("format") != expected_format:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path / name}: expected format {expected_format!r}, got {got!r}")
    return meta


def read_tensors(path: Path, name: str, what: str) -> dict[str, torch.Tensor]:
    """``path/name`` read as safetensors (never a pickle); else ValueError."""
    try:
        return load_file(str(path / name))
    except FileNotFoundError as err:
        raise ValueError(f"{path}: expected {name} in {what}, found none") from err
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path / name}: expected safetensors, got a damaged file") from err


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict, dict | None]:
    """Read (model_state, meta, optimizer_state_dict or None); ValueError if damaged/foreign."""
    path = Path(path)
    what = "an lstmkit checkpoint"
    recover_dir(path)
    meta = read_json(path, META, FORMAT, what)
    tensors = read_tensors(path, TENSORS, what)
    model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    optim = None
    if "optimizer" in meta:
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        for index, entry in meta["optimizer"]["scalars"].items():
            state.setdefault(int(index), {}).update(entry)
        optim = {"state": state, "param_groups": meta["optimizer"]["param_groups"]}
    return model, meta, optim
