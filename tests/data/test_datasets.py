"""Built-in datasets: each registered entry loads from the package, equals the shared copy it
was taken from, is matched by pyproject's package-data (so a wheel ships it) and has its
source and licence note."""

import fnmatch
import tomllib
from pathlib import Path

import numpy as np
import pytest

from lstmkit.data import (
    TimeSeriesFrame,
    TrainTest,
    list_datasets,
    load_airline,
    load_dataset,
    negation_sentiment,
    read_poems,
    read_ts,
)
from lstmkit.data.datasets import dataset_path

ROOT = Path(__file__).parents[2]
SHARED = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared data not found at {SHARED}")
NAMES = ["airline", "italy_power_demand", "tang300", "negation"]


def test_listing_names_tasks_and_files():
    listing = {d["name"]: d for d in list_datasets()}
    assert list(listing) == NAMES
    assert {d["task"] for d in listing.values()} == {"forecasting", "classification", "text"}
    assert listing["negation"]["files"] == []
    for entry in listing.values():
        assert entry["description"] and entry["licence"]


@pytest.mark.parametrize("name", NAMES)
def test_every_file_ships_with_a_source_note(name):
    (entry,) = [d for d in list_datasets() if d["name"] == name]
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["lstmkit.data"]
    notes = dataset_path("SOURCES.md").read_text("utf-8")
    assert f"## {name}" in notes or any(Path(f).name in notes for f in entry["files"])
    for file in entry["files"]:
        assert dataset_path(Path(file).name).is_file()
        assert any(fnmatch.fnmatch(file, p) for p in patterns), (file, patterns)
    if name == "tang300":  # MIT asks for its notice beside the copy
        licence = dataset_path("tang300-LICENSE.txt").read_text("utf-8")
        assert "MIT License" in licence and "JackeyGao" in licence


def test_airline():
    frame = load_dataset("airline")
    assert isinstance(frame, TimeSeriesFrame)
    assert frame.values.shape == (144, 1)
    assert (frame.values[0, 0], frame.values[-1, 0]) == (112, 432)
    months, values = load_airline()
    assert months[:2] == ["1949-01", "1949-02"] and len(months) == 144
    np.testing.assert_array_equal(values, frame.values[:, 0])


@needs_data
def test_italy_power_demand_equals_the_shared_copy():
    data = load_dataset("italy_power_demand")
    assert isinstance(data, TrainTest)
    X_train, y_train, X_test, y_test = data
    assert (len(X_train), len(X_test)) == (67, 1029)
    assert {x.shape for x in X_train + X_test} == {(24, 1)}
    assert set(y_train) == set(y_test) == {"1", "2"}
    folder = SHARED / "timeseries" / "ItalyPowerDemand"
    for X, y, split in ((X_train, y_train, "TRAIN"), (X_test, y_test, "TEST")):
        X_ref, y_ref = read_ts(folder / f"ItalyPowerDemand_{split}.ts")
        np.testing.assert_array_equal(np.stack(X), np.stack(X_ref))
        np.testing.assert_array_equal(y, y_ref)


@needs_data
def test_tang300_equals_the_shared_copy():
    poems = load_dataset("tang300")
    assert poems == read_poems(SHARED / "tang300" / "tangshisanbaishou.json")
    assert len(poems) == 263 and all(isinstance(p, str) and p for p in poems)


def test_negation_is_the_seeded_generated_set():
    sentences, labels = load_dataset("negation")
    ref_sentences, ref_labels = negation_sentiment(2000, seed=0)
    assert sentences == ref_sentences
    np.testing.assert_array_equal(labels, ref_labels)
    assert len(sentences) == 2000 and labels.mean() == 0.5


def test_unknown_dataset():
    with pytest.raises(ValueError, match=r"unknown dataset 'airplane'; available: 'airline', "):
        load_dataset("airplane")
