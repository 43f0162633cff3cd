"""Checkpoints and saved models without pickles: safetensors for tensors, JSON for the rest.

A checkpoint is a directory holding ``tensors.safetensors`` and ``meta.json``, replaced
atomically (:func:`write_dir_atomically`: a crash at any point leaves the old or the new
one). Loading never executes code from the file.

The optimizer's state (AdamW's moments and step counts) is flattened into the tensor file
under ``optim.<param index>.<name>`` and its hyper-parameters into JSON, so a run resumes
exactly where it stopped.
"""

import json
import math
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from lstmkit.checks import is_int, is_number
from lstmkit.messages import shown
from lstmkit.train.atomic import recover_dir, write_dir_atomically

TENSORS, META = "tensors.safetensors", "meta.json"
FORMAT = "lstmkit-checkpoint-1"


def tensor_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """``tensors`` as a safetensors file (detached, contiguous, on the CPU)."""
    return save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})


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
    files = {TENSORS: tensor_bytes(tensors), META: json.dumps(meta, indent=1).encode()}
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
        raise ValueError(f"{path / name}: expected format {expected_format!r}, got {shown(got)}")
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
    _check_meta(meta, path / META)
    tensors = read_tensors(path, TENSORS, what)
    model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    optim = None
    if "optimizer" in meta:
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        for index, entry in meta["optimizer"]["scalars"].items():  # checked by _check_meta
            state.setdefault(int(index), {}).update(entry)
        optim = {"state": state, "param_groups": meta["optimizer"]["param_groups"]}
    return model, meta, optim


def _is_count(value) -> bool:
    return is_int(value) and 0 <= value < 2**63


def _check_meta(meta: dict, file: Path) -> None:
    """ValueError unless ``meta`` has the kinds :func:`save_checkpoint` writes (a training
    run's: ``epochs_done``, ``history``, ``scheduler``; the optimizer's groups and scalars),
    so what reads it later cannot fail on a hand-edited or damaged file."""

    def need(ok: bool, key: str, expected: str, got) -> None:
        if not ok:
            raise ValueError(f"{file}: expected {key} to be {expected}, got {shown(got)}")

    if "epochs_done" in meta:
        need(_is_count(meta["epochs_done"]), "epochs_done", "a count", meta["epochs_done"])
    if "history" in meta:
        history = meta["history"]
        need(isinstance(history, dict), "history", "an object", history)
        epochs = history.get("epochs")
        records = isinstance(epochs, list) and all(isinstance(e, dict) for e in epochs)
        numbers = records and all(is_number(v) for e in epochs for v in e.values())
        need(numbers, "history.epochs", "a list of objects of numbers", epochs)
        best = history.get("best_epoch")
        need(best is None or _is_count(best), "history.best_epoch", "a count or null", best)
        loss = history.get("best_loss")
        need(is_number(loss), "history.best_loss", "a number", loss)
    if "scheduler" in meta:
        need(isinstance(meta["scheduler"], dict), "scheduler", "an object", meta["scheduler"])
    if "optimizer" in meta:
        optimizer = meta["optimizer"]
        need(isinstance(optimizer, dict), "optimizer", "an object", optimizer)
        groups = optimizer.get("param_groups")
        listed = isinstance(groups, list) and all(isinstance(g, dict) for g in groups)
        need(listed, "optimizer.param_groups", "a list of objects", groups)
        scalars = optimizer.get("scalars")
        indexed = isinstance(scalars, dict) and all(
            k.isascii() and k.isdigit() and len(k) < 10 and isinstance(v, dict)
            for k, v in scalars.items()
        )
        need(indexed, "optimizer.scalars", "an object of objects keyed by parameter index", scalars)


def check_like(value, template, key: str, file: Path) -> None:
    """ValueError unless JSON ``value`` has the shape of the live ``template`` it will be
    loaded into (e.g. a scheduler's ``state_dict``): objects with the same keys, lists of the
    same length, numbers (finite where the template's is), booleans, ``null`` where the
    template has ``None`` or a boolean, and strings equal to the template's (settings such
    as a scheduler's mode, which a resumed run keeps)."""
    if isinstance(template, dict):
        ok = isinstance(value, dict) and set(value) == set(template)
        expected = f"an object with keys {sorted(template)}"
    elif isinstance(template, list | tuple):
        ok = isinstance(value, list) and len(value) == len(template)
        expected = f"a list of {len(template)}"
    elif template is None or isinstance(template, bool):
        ok, expected = value is None or isinstance(value, bool), "a boolean or null"
    elif is_number(template):
        finite = not math.isfinite(template) or (is_number(value) and math.isfinite(value))
        ok, expected = is_number(value) and finite, "a number"
    elif isinstance(template, str):
        ok, expected = value == template, repr(template)
    else:
        raise TypeError(f"check_like: no JSON kind for {type(template).__name__}")
    if not ok:
        raise ValueError(f"{file}: expected {key} to be {expected}, got {shown(value)}")
    if isinstance(template, dict):
        for name, item in template.items():
            check_like(value[name], item, f"{key}.{name}", file)
    elif isinstance(template, list | tuple):
        for index, item in enumerate(template):
            check_like(value[index], item, f"{key}[{index}]", file)
