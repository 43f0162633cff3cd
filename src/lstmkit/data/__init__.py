"""Data: readers for CSV, UEA/UCR ``.ts`` and ``.npz`` files and in-memory arrays
(:mod:`lstmkit.data.readers`), and the built-in datasets (:mod:`lstmkit.data.datasets`,
sources in ``builtin/SOURCES.md``)."""

import numpy as np

from lstmkit.data.datasets import list_datasets, load_dataset
from lstmkit.data.readers import (
    MISSING_POLICIES,
    TimeSeriesFrame,
    as_frame,
    as_sequences,
    read_csv,
    read_npz,
    read_ts,
)

__all__ = [
    "MISSING_POLICIES",
    "TimeSeriesFrame",
    "as_frame",
    "as_sequences",
    "list_datasets",
    "load_airline",
    "load_dataset",
    "read_csv",
    "read_npz",
    "read_ts",
]


def load_airline() -> tuple[list[str], np.ndarray]:
    """The Airline passengers series: (month labels 'YYYY-MM', float64 array of 144 values)."""
    frame = load_dataset("airline")
    return list(frame.time), frame.column("Passengers").copy()
