"""Data: built-in datasets shipped inside the package (see ``builtin/SOURCES.md``)."""

import csv
from importlib import resources

import numpy as np


def load_airline() -> tuple[list[str], np.ndarray]:
    """The Airline passengers series: (month labels 'YYYY-MM', float64 array of 144 values)."""
    text = resources.files("lstmkit.data").joinpath("builtin/airline.csv").read_text("utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    return [r["Date"] for r in rows], np.array([float(r["Passengers"]) for r in rows])
