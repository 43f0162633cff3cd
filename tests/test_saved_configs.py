"""A saved model's config.json is checked against its weights before anything is built
(issue 14): an edited config that asks for a huge network, more layers than there are
tensors, other shapes, inconsistent channel statistics or classes, or non-finite weights
fails at once with one line — exit 2 in the CLI — instead of allocating gigabytes.

Oracle: the model as saved loads and predicts as before; each edit is refused with a
message naming the key, within a second and without growing the process by more than a
few MiB.
"""

import json
import resource
import time

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from lstmkit.cli import main
from lstmkit.tasks import Forecaster, SequenceClassifier


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(24, 12, 2)), np.array([0, 1] * 12)
    model = SequenceClassifier(epochs=1, hidden_size=4, conv_filters=(), progress=False)
    path = tmp_path_factory.mktemp("saved") / "classifier"
    model.fit(X, y).save(path)
    return path, X


def _edited(src, tmp_path, params=None, fitted=None):
    dst = tmp_path / "edited"
    dst.mkdir()
    config = json.loads((src / "config.json").read_text())
    config["params"].update(params or {})
    config["fitted"].update(fitted or {})
    (dst / "config.json").write_text(json.dumps(config))
    (dst / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    return dst


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    ("params", "fitted", "message"),
    [
        ({"hidden_size": 20000}, {}, r"expected shape \(80000, 2\).* got \(16, 2\)"),
        ({"num_layers": 100000}, {}, r"num_layers: expected at most \d+ \(model.safetensors"),
        ({"n_models": 5000}, {}, r"n_models: expected at most \d+"),
        ({"bidirectional": False}, {}, r"expected the \d+ tensors config.json describes"),
        ({}, {"classes": [0, 1, 2]}, r"classes: expected 2 \(the network's outputs\), got 3"),
        ({}, {"mean": [0.0]}, r"mean: expected 2 finite numbers .* got 1"),
        ({}, {"std": [1.0, 0.0]}, r"std: expected positive standard deviations"),
        ({}, {"std": [1.0, None]}, r"std: expected 2 finite numbers"),
    ],
)
def test_an_edited_config_is_refused_at_once(classifier_dir, tmp_path, params, fitted, message):
    src, _ = classifier_dir
    path = _edited(src, tmp_path, params, fitted)
    before, began = _rss_mib(), time.perf_counter()
    with pytest.raises(ValueError, match=message) as err:
        SequenceClassifier.load(path)
    assert time.perf_counter() - began < 1.0
    assert _rss_mib() - before < 64, "the refused network was allocated"
    assert len(str(err.value)) < 400 and "\n" not in str(err.value)


def test_the_model_as_saved_still_loads(classifier_dir, tmp_path):
    src, X = classifier_dir
    path = _edited(src, tmp_path)
    np.testing.assert_array_equal(
        SequenceClassifier.load(path).predict_proba(X),
        SequenceClassifier.load(src).predict_proba(X),
    )


def test_non_finite_weights_are_refused(classifier_dir, tmp_path):
    src, _ = classifier_dir
    path = _edited(src, tmp_path)
    weights = load_file(str(path / "model.safetensors"))
    name = sorted(weights)[0]
    weights[name] = weights[name].copy()
    weights[name].flat[0] = np.nan
    save_file(weights, str(path / "model.safetensors"))
    with pytest.raises(ValueError, match=rf"{name}: expected finite weights"):
        SequenceClassifier.load(path)


def test_a_forecaster_horizon_of_a_billion_is_refused_in_the_cli(tmp_path, capsys):
    series = 10 + np.sin(np.arange(60) / 3)
    Forecaster(horizon=3, lookback=6, epochs=1, hidden_size=4, progress=False).fit(series).save(
        tmp_path / "f"
    )
    path = _edited(tmp_path / "f", tmp_path, {"horizon": 10**9})
    began = time.perf_counter()
    code = main(["predict", "--model", str(path), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert time.perf_counter() - began < 5.0
    assert "expected shape" in err and len(err.strip().splitlines()) == 1
