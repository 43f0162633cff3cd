"""Saving and loading estimators: ``model.safetensors`` + ``config.json`` in one directory.

The directory is written atomically (see :mod:`lstmkit.train.checkpoint`); loading reads
JSON and safetensors only, so a model file someone sent you cannot run code.
"""

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from lstmkit.train.checkpoint import write_dir_atomically

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
    if not path.is_dir():
        raise ValueError(f"{path}: expected a saved lstmkit model directory, got no such directory")
    try:
        config = json.loads((path / CONFIG).read_text("utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"{path}: expected {CONFIG} in the model directory, found none") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path / CONFIG}: expected JSON, got a damaged file ({err})") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{path / CONFIG}: expected format {FORMAT!r}, got {got!r}")
    if config.get("kind") != kind:
        raise ValueError(f"{path}: expected a saved {kind}, got a saved {config.get('kind')}")
    try:
        state = load_file(str(path / WEIGHTS))
    except FileNotFoundError as err:
        raise ValueError(f"{path}: expected {WEIGHTS} in the model directory, found none") from err
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path / WEIGHTS}: expected safetensors, got a damaged file") from err
    return config, state
