"""Estimators over the engine: forecasting, sequence classification, and more."""

from lstmkit.tasks.forecast import (
    Forecaster,
    MeanForecaster,
    NaiveForecaster,
    SeasonalNaiveForecaster,
)

__all__ = ["Forecaster", "MeanForecaster", "NaiveForecaster", "SeasonalNaiveForecaster"]
