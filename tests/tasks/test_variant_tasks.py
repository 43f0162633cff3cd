"""The cell variants from the estimators and the CLI: the options reach the network, survive
save/load, run on the fused kernels, are refused early when wrong, and a variant network
learns a real dataset to the bar of the plain one."""

import json

import numpy as np
import pytest
import torch

from lstmkit.cli import main
from lstmkit.data import load_dataset
from lstmkit.data.negation import negation_sentiment, one_hot_words
from lstmkit.tasks import (
    Forecaster,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    TextGenerator,
)

LSTM_ALL = {
    "layer_norm": True,
    "peephole": True,
    "recurrent_dropout": 0.2,
    "zoneout": 0.1,
    "zoneout_cell": 0.1,
    "forget_bias": 1.0,
}
GRU_ALL = {"layer_norm": True, "recurrent_dropout": 0.2, "zoneout": 0.1}


def _sequences(n=24, steps=7, seed=0):
    rng = np.random.default_rng(seed)
    X = [rng.normal(size=(steps - i % 3, 2)) for i in range(n)]
    return X, np.array([x[:, 0].sum() > 0 for x in X]).astype(int)


def _check_network(rnn, options):
    cfg = rnn.cfg
    for key in ("layer_norm", "peephole", "recurrent_dropout", "zoneout", "zoneout_cell"):
        if key in options:
            assert getattr(cfg, key) == options[key], key
    assert rnn.forget_bias == options.get("forget_bias")
    assert rnn.backend_for(torch.zeros(3, 2, cfg.input_size), needs_grad=True) == "compiled"


@pytest.mark.parametrize(("cell", "options"), [("lstm", LSTM_ALL), ("gru", GRU_ALL)])
@pytest.mark.parametrize("cls", [SequenceClassifier, SequenceRegressor, SequenceTagger])
def test_sequence_estimators_take_cell_options_and_keep_them(tmp_path, cls, cell, options):
    X, y = _sequences()
    if cls is SequenceTagger:
        y = [(x[:, 0] > 0).astype(int) for x in X]
    elif cls is SequenceRegressor:
        y = y.astype(float)
    model = cls(cell=cell, cell_options=options, epochs=2, hidden_size=6, progress=False)
    model.fit(X, y)
    _check_network(model.net_.rnn, options)
    model.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m")
    assert loaded.params["cell_options"] == options
    _check_network(loaded.net_.rnn, options)
    got, want = loaded.predict(X), model.predict(X)
    for a, b in zip(got, want, strict=True):  # evaluation: no masks, zoneout's expectation
        np.testing.assert_array_equal(a, b)


def test_forecaster_and_text_generator_take_cell_options(tmp_path):
    series = load_dataset("airline").column("Passengers")
    f = Forecaster(horizon=4, hidden_size=8, epochs=2, cell_options=LSTM_ALL, progress=False)
    f.fit(series[:-4])
    _check_network(f.net_.rnn, LSTM_ALL)
    f.save(tmp_path / "f")
    np.testing.assert_array_equal(Forecaster.load(tmp_path / "f").predict(4), f.predict(4))
    poems = load_dataset("tang300")[:40]
    g = TextGenerator(
        hidden_size=16, embedding_size=8, epochs=1, cell_options=GRU_ALL, cell="gru"
    ).fit(poems)
    _check_network(g.net_.rnn, GRU_ALL)
    g.save(tmp_path / "g")
    assert TextGenerator.load(tmp_path / "g").params["cell_options"] == GRU_ALL


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cell": "gru", "cell_options": {"peephole": True}}, ValueError, "got 'peephole'"),
        ({"cell_options": {"zonout": 0.1}}, ValueError, r"keys among .*got 'zonout'"),
        ({"cell_options": {"zoneout": 2.0}}, ValueError, r"zoneout: expected a float in \[0, 1\)"),
        ({"cell_options": ["layer_norm"]}, TypeError, "cell_options: expected a dict"),
    ],
)
def test_bad_cell_options_fail_at_construction(kwargs, error, match):
    for cls in (SequenceClassifier, Forecaster, TextGenerator):
        with pytest.raises(error, match=match):
            cls(**kwargs)


def test_negation_is_learned_by_a_layer_norm_zoneout_bilstm():
    """The negation task (order matters: bag-of-words stays <= 0.65, test_sequence) is
    learned by the variant BiLSTM to the plain one's bar of 0.95."""
    sentences, labels = negation_sentiment(1200, seed=0)
    X, _vocab = one_hot_words(sentences)
    split = 900
    options = {"layer_norm": True, "zoneout": 0.1, "recurrent_dropout": 0.1}
    model = SequenceClassifier(cell_options=options, hidden_size=32, epochs=60, progress=False)
    model.fit(X[:split], labels[:split])
    report = model.evaluate(X[split:], labels[split:], baselines=False)
    assert report["model"]["accuracy"] >= 0.95


def test_cli_options_reach_the_saved_model(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "classify",
            "--train",
            "italy_power_demand",
            "--epochs",
            "2",
            "--hidden-size",
            "6",
            "--layer-norm",
            "--peephole",
            "--recurrent-dropout",
            "0.2",
            "--zoneout",
            "0.1",
            "--zoneout-cell",
            "0.3",
            "--forget-bias",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    params = json.loads((out / "model" / "config.json").read_text())["params"]
    assert params["cell_options"] == {
        "layer_norm": True,
        "peephole": True,
        "recurrent_dropout": 0.2,
        "zoneout": 0.1,
        "zoneout_cell": 0.3,
        "forget_bias": 1.0,
    }
    _check_network(SequenceClassifier.load(out / "model").net_.rnn, params["cell_options"])
    code = main(["forecast", "--data", "airline", "--cell", "gru", "--peephole", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "cell_options" in err and "peephole" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
