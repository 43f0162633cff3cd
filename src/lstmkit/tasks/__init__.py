"""Estimators over the engine: forecasting, sequence classification, regression and tagging,
and the character-level text generator."""

from lstmkit.tasks.forecast import (
    Forecaster,
    MeanForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
)
from lstmkit.tasks.sequence import SequenceClassifier, SequenceRegressor, SequenceTagger
from lstmkit.tasks.text import TextGenerator

__all__ = [
    "Forecaster",
    "MeanForecaster",
    "NaiveForecaster",
    "SeasonalNaiveForecaster",
    "SequenceClassifier",
    "SequenceRegressor",
    "SequenceTagger",
    "TextGenerator",
]
