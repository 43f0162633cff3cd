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
    restores its fitted attributes and returns its network, into which the weights load."""
    config, state = load_estimator(path, cls.__name__)
    try:
        model = cls(**config["params"])
        model.net = setup(model, config["fitted"])
        model.net.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"{path}: expected a saved {cls.__name__}, got a damaged one ({err})"
        ) from err
    model.net.eval()
    return model
