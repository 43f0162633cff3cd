"""Data: readers for CSV, UEA/UCR ``.ts`` and ``.npz`` files and in-memory arrays
(:mod:`lstmkit.data.readers`), poem corpora (:mod:`lstmkit.data.poems`), the generated
negation set (:mod:`lstmkit.data.negation`) and the built-in datasets
(:mod:`lstmkit.data.datasets`, sources in ``builtin/SOURCES.md``)."""

import numpy as np

from lstmkit.data.datasets import TrainTest, list_datasets, load_dataset
from lstmkit.data.negation import negation_sentiment
from lstmkit.data.poems import read_poems
from lstmkit.data.readers import (
    MISSING_POLICIES,
    TimeSeriesFrame,
    as_frame,
    as_sequences,
    read_csv,
    read_npz,
    read_ts,
)
from lstmkit.data.tsf import TsfData, read_tsf, write_tsf

__all__ = [
    "MISSING_POLICIES",
    "TimeSeriesFrame",
    "TrainTest",
    "TsfData",
    "as_frame",
    "as_sequences",
    "list_datasets",
    "load_airline",
    "load_dataset",
    "negation_sentiment",
    "read_csv",
    "read_npz",
    "read_poems",
    "read_ts",
    "read_tsf",
    "write_tsf",
]


def load_airline() -> tuple[list[str], np.ndarray]:
    """The Airline passengers series: (month labels 'YYYY-MM', float64 array of 144 values)."""
    frame = load_dataset("airline")
    return list(frame.time), frame.column("Passengers").copy()
