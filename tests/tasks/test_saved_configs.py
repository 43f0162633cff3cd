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
from lstmkit.tasks import Forecaster, SequenceClassifier, SequenceRegressor, TextGenerator


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
        ({}, {"classes": [0, 1, 2]}, r"classes: expected 2 distinct labels .* got \[0, 1, 2\]"),
        ({}, {"classes": [0, 0]}, r"classes: expected 2 distinct labels"),
        ({}, {"classes": "ab"}, r"classes: expected 2 distinct labels .* got 'ab'"),
        ({}, {"mean": [0.0]}, r"mean: expected finite numbers of shape \(2,\), got \[0.0\]"),
        ({}, {"mean": ["0", 1]}, r"mean: expected finite numbers of shape \(2,\)"),
        ({}, {"std": [1.0, 0.0]}, r"std: expected positive numbers of shape \(2,\)"),
        ({}, {"std": [1.0, None]}, r"std: expected positive numbers .* got \[1.0, None\]"),
        ({}, {"rnn_stride": 10**9 * 10**9}, r"rnn_stride: expected an int in \[1, 2147483647\]"),
        ({}, {"conv_stride": None}, r"conv_stride: expected an int in \[1, 2147483647\]"),
        ({}, {"input_size": True}, r"input_size: expected an int in \[1, 2147483647\]"),
        ({}, {"weights": [1.0, "x"]}, r"weights: expected finite numbers of shape \(2,\)"),
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


@pytest.fixture(scope="module")
def saved_others(tmp_path_factory):
    """A regressor, a one-series Forecaster with past covariates, a TextGenerator: saved."""
    root = tmp_path_factory.mktemp("others")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(16, 8, 2))
    small = {"epochs": 1, "hidden_size": 4, "progress": False}
    SequenceRegressor(**small).fit(X, X[:, :, 0].sum(1)).save(root / "SequenceRegressor")
    series = 10 + np.sin(np.arange(60) / 3)
    Forecaster(horizon=2, lookback=6, **small).fit(series, covariates=np.cos(np.arange(60))).save(
        root / "Forecaster"
    )
    TextGenerator(num_layers=1, embedding_size=4, validation=0.0, min_count=1, **small).fit(
        ["床前明月光，疑是地上霜。", "举头望明月，低头思故乡。"]
    ).save(root / "TextGenerator")
    return root


@pytest.mark.parametrize(
    ("kind", "params", "fitted", "message"),
    [
        ("SequenceRegressor", {}, {"y_mean": None}, r"y_mean: expected finite numbers of shape"),
        ("SequenceRegressor", {}, {"y_std": [0.0]}, r"y_std: expected positive numbers"),
        ("SequenceRegressor", {"bidirectional": 1}, {}, r"bidirectional: expected a boolean"),
        ("SequenceRegressor", {"\x1e": 1}, {}, r"params: expected keywords of .*'\\x1e'"),
        ("Forecaster", {}, {"shapes": None}, r"shapes: expected an object of sizes, got None"),
        ("Forecaster", {}, {"season": 0}, r"season: expected an int in \[1, "),
        ("Forecaster", {}, {"series": [[1.0]] * 3}, r"series: expected at least 6 steps"),
        ("Forecaster", {}, {"series": [[1.0, 2.0]] * 9}, r"series: expected finite numbers"),
        ("Forecaster", {}, {"past": None}, r"scalers: expected null for the absent past"),
        ("Forecaster", {}, {"scalers": [None, None, None]}, r"expected \[mean, std\] for the"),
        ("Forecaster", {}, {"scalers": []}, r"scalers: expected 3 \(series, past, future\)"),
        ("TextGenerator", {"max_length": None}, {}, r"max_length: expected an int, got None"),
        ("TextGenerator", {"max_length": 10**9}, {}, r"max_length: expected an int in \[1, "),
        ("TextGenerator", {}, {"vocab": ["a"]}, r"vocab: expected distinct characters after"),
        ("TextGenerator", {}, {"unigram": [1.0]}, r"unigram: expected positive numbers"),
    ],
)
def test_other_estimators_refuse_an_edited_config(saved_others, tmp_path, kind, params, fitted,
                                                  message):  # fmt: skip
    """Oracle: what each estimator's predict or generate reads from ``fitted`` and
    ``params`` (a null there used to surface as a TypeError at predict)."""
    cls = {"SequenceRegressor": SequenceRegressor, "Forecaster": Forecaster,
           "TextGenerator": TextGenerator}[kind]  # fmt: skip
    path = _edited(saved_others / kind, tmp_path, params, fitted)
    with pytest.raises(ValueError, match=message) as err:
        cls.load(path)
    assert len(str(err.value).splitlines()) == 1
    cls.load(saved_others / kind)  # as saved, it loads
