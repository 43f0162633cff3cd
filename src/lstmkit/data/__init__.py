"""Data: the time-series frame and the missing-value policy (:mod:`lstmkit.data.frame`), one
reader per format (:mod:`lstmkit.data.csv`, :mod:`lstmkit.data.ts`, :mod:`lstmkit.data.npz`,
:mod:`lstmkit.data.tsf`), in-memory sequences (:mod:`lstmkit.data.sequences`), panels
(:mod:`lstmkit.data.panel`), poem corpora (:mod:`lstmkit.data.poems`), the generated
negation set (:mod:`lstmkit.data.negation`) and the built-in datasets
(:mod:`lstmkit.data.datasets`, sources in ``builtin/SOURCES.md``)."""

import numpy as np

from lstmkit.data.csv import read_csv
from lstmkit.data.datasets import TrainTest, list_datasets, load_dataset
from lstmkit.data.frame import MISSING_POLICIES, TimeSeriesFrame, as_frame
from lstmkit.data.negation import negation_sentiment
from lstmkit.data.npz import read_npz
from lstmkit.data.poems import read_poems
from lstmkit.data.sequences import as_sequences
from lstmkit.data.ts import read_ts
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
