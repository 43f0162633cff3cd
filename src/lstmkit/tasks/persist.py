"""Saving and loading estimators: ``model.safetensors`` + ``config.json`` in one directory.

The directory is written atomically (see :mod:`lstmkit.train.checkpoint`); loading reads
JSON and safetensors only, so a model file someone sent you cannot run code.
"""

import json
import os
from pathlib import Path

import torch
from safetensors.torch import save

from lstmkit.train.checkpoint import read_json, read_tensors, recover_dir, write_dir_atomically

WEIGHTS, CONFIG = "model.safetensors", "config.json"
FORMAT = "lstmkit-estimator-1"


def save_estimator(path: str | os.PathLike, kind: str, config: dict, state: dict) -> Path:
    """Write an estimator of class ``kind``: JSON-able ``config`` and tensor ``state``."""
    weights = save({k: v.detach().contiguous().cpu() for k, v in state.items()})
    text = json.dumps({"format": FORMAT, "kind": kind, **config}, indent=1, allow_nan=True)
    return write_dir_atomically(path, {WEIGHTS: weights, CONFIG: text.encode()})


def load_estimator(path: str | os.PathLike, kind: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read (config, state) of an estimator saved as ``kind``; ValueError if damaged/foreign."""
    path = Path(path)
    what = "a saved lstmkit model"
    recover_dir(path)
    config = read_json(path, CONFIG, FORMAT, what)
    if config.get("kind") != kind:
        raise ValueError(f"{path}: expected a saved {kind}, got a saved {config.get('kind')}")
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
        model = cls(**config["params"])
        _check_counts(config["params"], len(state))
        with torch.device("meta"):
            described = setup(model, config["fitted"]).state_dict()
        _check_weights(described, state)
        model.net = setup(model, config["fitted"])
        model.net.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"{path}: expected a saved {cls.__name__}, got a damaged one ({err})"
        ) from err
    model.net.eval()
    return model


def _check_counts(params: dict, tensors: int) -> None:
    """Layers and networks cannot outnumber the tensors that hold their weights."""
    for key in ("num_layers", "n_models"):
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > tensors:
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
