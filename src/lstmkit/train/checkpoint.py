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

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lstmkit.train.atomic import recover_dir, write_dir_atomically

TENSORS, META = "tensors.safetensors", "meta.json"
FORMAT = "lstmkit-checkpoint-1"


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
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, a number too long
        raise ValueError(
            f"{path / name}: expected JSON, got a damaged file ({str(err)[:200]})"
        ) from None
    except RecursionError:
        raise ValueError(f"{path / name}: expected JSON, got values nested too deeply") from None
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
