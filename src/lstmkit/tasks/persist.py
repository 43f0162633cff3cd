"""Saving and loading estimators: ``model.safetensors`` + ``config.json`` in one directory.

The directory is written atomically (see :mod:`lstmkit.train.checkpoint`); loading reads
JSON and safetensors only, so a model file someone sent you cannot run code.
"""

import inspect
import json
import os
from pathlib import Path

import numpy as np
import torch

from lstmkit.checks import is_int, is_number
from lstmkit.messages import shown
from lstmkit.train.atomic import recover_dir, write_dir_atomically
from lstmkit.train.checkpoint import read_json, read_tensors, tensor_bytes

WEIGHTS, CONFIG = "model.safetensors", "config.json"
FORMAT = "lstmkit-estimator-1"


def save_estimator(path: str | os.PathLike, kind: str, config: dict, state: dict) -> Path:
    """Write an estimator of class ``kind``: JSON-able ``config`` and tensor ``state``."""
    text = json.dumps({"format": FORMAT, "kind": kind, **config}, indent=1, allow_nan=True)
    return write_dir_atomically(path, {WEIGHTS: tensor_bytes(state), CONFIG: text.encode()})


def load_estimator(path: str | os.PathLike, kind: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read (config, state) of an estimator saved as ``kind``; ValueError if damaged/foreign."""
    path = Path(path)
    what = "a saved lstmkit model"
    recover_dir(path)
    config = read_json(path, CONFIG, FORMAT, what)
    got = config.get("kind")
    if got != kind:
        got = got if isinstance(got, str) and got.isidentifier() and len(got) < 60 else shown(got)
        raise ValueError(f"{path}: expected a saved {kind}, got a saved {got}")
    return config, read_tensors(path, WEIGHTS, what)


def restore(cls, path, setup):
    """Rebuild an estimator of class ``cls`` saved at ``path``: ``setup(model, fitted)``
    restores its fitted attributes and returns its network, into which the weights load.

    The config is checked against the weights before any memory is spent on it: counts of
    layers and networks against the number of tensors in the file, then the network the
    config describes, built on the ``meta`` device (shapes only, no storage), against the
    names and shapes of the saved tensors, which must also be finite. So a config edited to
    ask for a huge network fails at once with one line instead of allocating it."""
    config, state = load_estimator(path, cls.__name__)
    try:
        _check_params(cls, config["params"])
        model = cls(**config["params"])
        _check_counts(config["params"], len(state))
        with torch.device("meta"):
            described = setup(model, config["fitted"]).state_dict()
        _check_weights(described, state)
        model.net_ = setup(model, config["fitted"])
        model.net_.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
        detail = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(err)[:200])
        raise ValueError(
            f"{path}: expected a saved {cls.__name__}, got a damaged one ({detail})"
        ) from err
    model.net_.eval()
    return model


def keyword_params(cls) -> dict[str, inspect.Parameter]:
    """The keyword-only parameters of the constructors of ``cls`` and its bases (a
    subclass's where both have one)."""
    params = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            for p in inspect.signature(vars(klass)["__init__"]).parameters.values():
                if p.kind is p.KEYWORD_ONLY:
                    params.setdefault(p.name, p)
    return params


def _check_params(cls, params) -> None:
    """``params`` are keywords of ``cls``'s constructor, and those whose default is a
    boolean, an int or a float hold one (the constructor checks their ranges)."""
    if not isinstance(params, dict):
        raise ValueError(f"params: expected an object of keywords, got {shown(params)}")
    defaults = keyword_params(cls)
    for name, value in params.items():
        if name not in defaults:
            raise ValueError(f"params: expected keywords of {cls.__name__}, got {shown(name)}")
        default = defaults[name].default
        if value is None and "None" in str(defaults[name].annotation):  # "int | None"
            continue
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "a boolean"
        elif isinstance(default, int):
            ok, kind = is_int(value), "an int"
        elif isinstance(default, float):
            ok, kind = is_number(value), "a number"
        else:
            continue
        if not ok:
            raise ValueError(f"{name}: expected {kind}, got {shown(value)}")


def _check_counts(params: dict, tensors: int) -> None:
    """Layers and networks cannot outnumber the tensors that hold their weights."""
    for key in ("num_layers", "n_models"):
        value = params.get(key)
        if is_int(value) and value > tensors:
            raise ValueError(
                f"{key}: expected at most {tensors} (model.safetensors holds {tensors} "
                f"tensors), got {value}"
            )


def _check_weights(described: dict, saved: dict) -> None:
    """The saved tensors are the described network's, name for name and shape for shape,
    and finite; the first difference is named."""
    missing = sorted(described.keys() - saved.keys())
    extra = sorted(saved.keys() - described.keys())
    if missing or extra:
        what = f"no {missing[0]!r}" if missing else f"an unexpected {extra[0]!r}"
        raise ValueError(
            f"model.safetensors: expected the {len(described)} tensors config.json describes, "
            f"got {len(saved)} with {what}"
        )
    for name, want in described.items():
        got = saved[name]
        if tuple(got.shape) != tuple(want.shape):
            raise ValueError(
                f"{name}: expected shape {tuple(want.shape)} (from config.json), got "
                f"{tuple(got.shape)} in model.safetensors"
            )
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise ValueError(f"{name}: expected finite weights, got NaN or infinity")


# -- what a saved model's "fitted" section may hold ----------------------------------------
# Each estimator's _restore reads its fitted attributes through these, so a hand-edited
# config.json is refused at load with the key named, not at predict with a TypeError.

MAX_COUNT = 2**31 - 1


def saved_count(fitted: dict, key: str, low: int = 1, default=None) -> int:
    """``fitted[key]`` as an int in [low, 2³¹ − 1] (``default`` when absent)."""
    value = fitted.get(key, default)
    if not is_int(value) or not low <= value <= MAX_COUNT:
        raise ValueError(f"{key}: expected an int in [{low}, {MAX_COUNT}], got {shown(value)}")
    return value


def saved_numbers(fitted: dict, key: str, shape: tuple, *, positive: bool = False) -> np.ndarray:
    """``fitted[key]`` as float64 numbers of ``shape`` (a None in it: any length), finite,
    and positive if asked; JSON numbers only (no strings, booleans or nulls)."""
    value = fitted.get(key)
    try:
        array = np.array(value, dtype=np.float64) if _numbers(value, len(shape)) else None
    except ValueError:  # ragged
        array = None
    if (
        array is None
        or array.ndim != len(shape)
        or any(want not in (None, got) for want, got in zip(shape, array.shape, strict=False))
        or not np.isfinite(array).all()
        or (positive and not (array > 0).all())
    ):
        kind = "positive" if positive else "finite"
        raise ValueError(f"{key}: expected {kind} numbers of shape {shape}, got {shown(value)}")
    return array


def _numbers(value, depth: int) -> bool:
    """Lists nested ``depth`` deep (rectangular is left to numpy) of JSON numbers."""
    if depth == 0:
        return is_number(value)
    return isinstance(value, list) and all(_numbers(v, depth - 1) for v in value)


def saved_labels(fitted: dict, key: str, count: int) -> list:
    """``fitted[key]`` as ``count`` distinct class labels, all strings or all numbers."""
    value = fitted.get(key)
    ok = isinstance(value, list) and len(value) == count
    if ok:
        texts = all(isinstance(v, str) for v in value)
        numbers = all(is_number(v) and np.isfinite(v) for v in value)
        ok = (texts or numbers) and len(set(value)) == count
    if not ok:
        raise ValueError(
            f"{key}: expected {count} distinct labels (strings or finite numbers, one per "
            f"network output), got {shown(value)}"
        )
    return value
