"""The training loop: determinism, resume, guards, checkpoints; metrics against hand values."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from lstmkit.train.checkpoint import load_checkpoint, save_checkpoint, write_dir_atomically
from lstmkit.train.loop import TrainConfig, fit
from lstmkit.train.metrics import classification_metrics, regression_metrics


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = __import__("lstmkit").LSTM(2, 4, batch_first=True)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1]).squeeze(-1)


def _loss(model, batch):
    return nn.functional.mse_loss(model(batch["x"]), batch["y"]), len(batch["y"])


def _data(n=40, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, 2, generator=g)
    return {"x": x, "y": x[:, :, 0].sum(1)}


def _params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_same_seed_same_weights_and_history():
    runs = []
    for _ in range(2):
        model = _Tiny()
        history = fit(model, _loss, _data(), _data(10, 2), TrainConfig(epochs=5, batch_size=8))
        runs.append((_params(model), [e["train_loss"] for e in history.epochs]))
    assert torch.equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize(
    ("tty", "progress", "shown"),
    [
        (False, None, False),
        (True, None, True),
        (True, False, False),
        (False, True, True),
    ],
)
def test_progress_bar_only_on_a_terminal_unless_asked(monkeypatch, capsys, tty, progress, shown):
    monkeypatch.setattr("sys.stderr.isatty", lambda: tty)
    fit(_Tiny(), _loss, _data(), None, TrainConfig(epochs=2, batch_size=8, progress=progress))
    err = capsys.readouterr().err
    assert ("epoch" in err) == shown, err


def test_same_seed_same_metrics_from_an_estimator():
    """Seeded determinism end to end (CPU): two fits give identical predictions; another
    seed does not."""
    from lstmkit.tasks import SequenceClassifier

    rng = np.random.default_rng(0)
    X = [rng.normal(size=(int(n), 2)) for n in rng.integers(3, 9, size=60)]
    y = np.array([int(x[:, 0].sum() > 0) for x in X])
    runs = [
        SequenceClassifier(hidden_size=8, epochs=3, seed=s, progress=False).fit(X, y)
        for s in (7, 7, 8)
    ]
    probs = [r.predict_proba(X) for r in runs]
    np.testing.assert_array_equal(probs[0], probs[1])
    assert runs[0].history_.epochs == [
        {**e, "seconds": a["seconds"]}
        for e, a in zip(runs[1].history_.epochs, runs[0].history_.epochs, strict=True)
    ]
    assert not np.array_equal(probs[0], probs[2])


def test_callback_sees_every_epoch_and_can_stop_the_run():
    seen = []

    def stop_at_third(record):
        seen.append(record)
        return record["epoch"] == 3

    model = _Tiny()
    history = fit(
        model,
        _loss,
        _data(),
        _data(10, 2),
        TrainConfig(epochs=10, batch_size=8),
        callback=stop_at_third,
    )
    assert [r["epoch"] for r in seen] == [1, 2, 3] == [e["epoch"] for e in history.epochs]
    assert [r["val_loss"] for r in seen] == [e["val_loss"] for e in history.epochs]
    assert history.stop_reason == "stopped by the callback after epoch 3"
    # an estimator passes it through
    from lstmkit.tasks import Forecaster

    epochs = []
    Forecaster(lookback=4, hidden_size=4, epochs=5, progress=False).fit(
        np.arange(40.0), callback=lambda r: epochs.append(r["epoch"])
    )
    assert epochs == [1, 2, 3, 4, 5]


def test_training_reduces_the_loss():
    model = _Tiny()
    history = fit(model, _loss, _data(), None, TrainConfig(epochs=30, batch_size=8, patience=None))
    assert history.epochs[-1]["train_loss"] < 0.5 * history.epochs[0]["train_loss"]


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    full = _Tiny()
    fit(full, _loss, _data(), _data(10, 2), TrainConfig(epochs=6, batch_size=8, patience=None))
    ckpt = str(tmp_path / "ckpt")
    part = _Tiny()
    fit(
        part,
        _loss,
        _data(),
        _data(10, 2),
        TrainConfig(epochs=3, batch_size=8, patience=None, checkpoint=ckpt),
    )
    resumed = _Tiny()
    history = fit(
        resumed,
        _loss,
        _data(),
        _data(10, 2),
        TrainConfig(epochs=6, batch_size=8, patience=None, checkpoint=ckpt, resume=True),
    )
    assert len(history.epochs) == 6
    # best weights are restored at the end of both runs: compare those
    assert torch.allclose(_params(resumed), _params(full), atol=0, rtol=0)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda m: m["scheduler"].update(mode="max"), r"scheduler\.mode to be 'min', got 'max'"),
        (lambda m: m["scheduler"].update(factor="0.5"), r"scheduler\.factor to be a number"),
        (lambda m: m["scheduler"].pop("patience"), r"expected scheduler to be an object with"),
        (lambda m: m.update(scheduler=None), r"expected scheduler to be an object"),
        (
            lambda m: m["optimizer"]["param_groups"][0].update(lr=float("nan")),
            r"param_groups\[0\]\.lr to be a number, got nan",
        ),
        (lambda m: m["optimizer"].update(scalars=None), r"optimizer\.scalars to be an object"),
        (lambda m: m.pop("epochs_done"), r"expected epochs_done, found none"),
        (lambda m: m["history"].update(best_epoch=-1), r"history\.best_epoch to be a count"),
    ],
)
def test_resume_refuses_a_checkpoint_whose_meta_was_edited(tmp_path, edit, expected):
    """Oracle: the kinds the live scheduler and optimizer hold (what loading would put in
    them); the message names meta.json and the key."""
    ckpt = tmp_path / "ckpt"
    config = TrainConfig(epochs=2, batch_size=8, patience=None, checkpoint=str(ckpt))
    fit(_Tiny(), _loss, _data(), _data(10, 2), config)
    meta = json.loads((ckpt / "meta.json").read_text())
    edit(meta)
    (ckpt / "meta.json").write_text(json.dumps(meta))
    again = TrainConfig(epochs=3, batch_size=8, patience=None, checkpoint=str(ckpt), resume=True)
    with pytest.raises(ValueError, match=expected) as info:
        fit(_Tiny(), _loss, _data(), _data(10, 2), again)
    assert "meta.json" in str(info.value) and len(str(info.value).splitlines()) == 1


def test_non_finite_loss_stops_and_keeps_best_weights():
    model = _Tiny()
    calls = {"n": 0}

    def exploding(m, batch):
        calls["n"] += 1
        loss, n = _loss(m, batch)
        return (loss * math.inf if calls["n"] > 10 else loss), n

    with pytest.warns(RuntimeWarning, match="became inf"):
        history = fit(model, exploding, _data(), None, TrainConfig(epochs=20, batch_size=8))
    assert "became inf" in history.stop_reason
    assert history.best_epoch is not None
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert len(history.epochs) == 2  # 5 batches per epoch: epochs 1-2 finished, 3 stopped


def test_early_stopping_restores_best_epoch():
    model = _Tiny()
    history = fit(
        model,
        _loss,
        _data(),
        _data(10, 2),
        TrainConfig(epochs=200, batch_size=8, patience=3, lr=0.05),
    )
    best = history.best_epoch
    assert history.stop_reason.startswith("early stopping")
    assert len(history.epochs) == best + 1 + 3
    val = min(e["val_loss"] for e in history.epochs)
    assert history.epochs[best]["val_loss"] == val


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"epochs": 0}, "epochs: expected an int >= 1, got 0"),
        ({"lr": -1.0}, "lr: expected a positive number"),
        ({"resume": True}, "resume: expected a checkpoint directory"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_checkpoint_round_trip_and_no_pickles(tmp_path):
    model = _Tiny()
    opt = torch.optim.AdamW(model.parameters())
    _loss(model, _data())[0].backward()
    opt.step()
    path = save_checkpoint(tmp_path / "c", model.state_dict(), {"note": "x"}, opt)
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "tensors.safetensors"]
    state, meta, optim = load_checkpoint(path)
    assert meta["note"] == "x"
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v)
    fresh = torch.optim.AdamW(_Tiny().parameters())
    fresh.load_state_dict(optim)
    assert torch.equal(
        fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"]
    )


def test_damaged_or_foreign_checkpoint_raises(tmp_path):
    path = save_checkpoint(tmp_path / "c", _Tiny().state_dict(), {})
    (path / "tensors.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="expected safetensors, got a damaged file"):
        load_checkpoint(path)
    (path / "meta.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(
        ValueError, match="expected format 'lstmkit-checkpoint-1', got 'something-else'"
    ):
        load_checkpoint(path)
    # a format field holding a big object is quoted cut short, not in full
    (path / "meta.json").write_text(json.dumps({"format": {f"k{i}": None for i in range(500)}}))
    with pytest.raises(ValueError, match=r"got \{'k0': None, .*\.\.\.$") as err:
        load_checkpoint(path)
    assert len(str(err.value).replace(str(path), "")) < 200
    with pytest.raises(ValueError, match="no such directory"):
        load_checkpoint(tmp_path / "missing")


def test_atomic_write_leaves_old_directory_on_failure(tmp_path):
    target = write_dir_atomically(tmp_path / "d", {"a.txt": b"old"})

    files = {"a.txt": b"new", "b.txt": None}  # writing None fails half-way
    with pytest.raises(TypeError):
        write_dir_atomically(target, files)
    assert (target / "a.txt").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no temporary left behind


def test_regression_metrics_against_hand_values():
    y = np.array([1.0, 2.0, 0.0, 4.0])
    p = np.array([1.5, 2.0, 1.0, 3.0])
    m = regression_metrics(y, p)
    err = p - y
    assert m["mse"] == pytest.approx(np.mean(err**2))
    assert m["rmse"] == pytest.approx(math.sqrt(np.mean(err**2)))
    assert m["mae"] == pytest.approx(np.mean(np.abs(err)))
    # MAPE over the non-zero targets: (0.5/1 + 0 + 1/4) / 3
    assert m["mape"] == pytest.approx((0.5 + 0 + 0.25) / 3)
    assert m["mape_zero_targets"] == 1
    smape = np.mean(2 * np.abs(err) / (np.abs(y) + np.abs(p)))
    assert m["smape"] == pytest.approx(smape)
    r2 = 1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2)
    assert m["r2"] == pytest.approx(r2)


@pytest.mark.parametrize("scale", [1e-9, 1e-3, 1.0, 1e6])
def test_r2_is_scikit_learns_at_any_scale_of_the_targets(scale):
    """torchmetrics' r2_score returned 1 for any prediction of targets this small."""
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(0)
    y, p = scale * rng.normal(size=12), scale * rng.normal(size=12)
    assert regression_metrics(y, p)["r2"] == pytest.approx(r2_score(y, p), rel=1e-9)
    assert regression_metrics(y, y)["r2"] == 1.0
    constant = np.full(5, scale)
    assert regression_metrics(constant, constant + scale)["r2"] == r2_score(
        constant, constant + scale
    )


def test_classification_metrics_against_hand_values():
    truth = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    m = classification_metrics(truth, pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # per class precision: a 2/2, b 1/2, c 1/2; recall: a 2/3, b 1/2, c 1/1
    prec, rec = np.array([1, 0.5, 0.5]), np.array([2 / 3, 0.5, 1])
    f1 = 2 * prec * rec / (prec + rec)
    support = np.array([3, 2, 1]) / 6
    assert m["precision"] == pytest.approx(prec.mean())
    assert m["recall"] == pytest.approx(rec.mean())
    assert m["f1"] == pytest.approx(f1.mean())
    assert m["f1_weighted"] == pytest.approx((f1 * support).sum())
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    for j, name in enumerate("abc"):
        got = m["per_class"][name]
        assert (got["precision"], got["recall"]) == pytest.approx((prec[j], rec[j]))
        assert got["f1"] == pytest.approx(f1[j]) and got["support"] == [3, 2, 1][j]
