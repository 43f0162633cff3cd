"""Task benchmark: the estimators' ``fit`` against a plain PyTorch loop doing the same work.

    python benchmarks/tasks.py                    # all cases, 1 epoch, 30 rounds
    python benchmarks/tasks.py --epochs 5 --rounds 15 --json out.json

For each case the estimator is fitted once with a spy on the training loop that records
what it trains on (the training and validation tensors, the batch size, the network's
sizes). The plain loop then does the same work from those tensors, the way a PyTorch user
writes it: ``DataLoader(TensorDataset(...), shuffle=True)``, ``torch.nn.LSTM`` + a linear
head (the same pooling), Adam, gradient-norm clipping at 1.0, and a validation pass per
epoch (padded sequences go through ``pack_padded_sequence``, as they must for the last
state to be right; equal-length ones do not).

Two times per round, interleaved in a seeded random order (the machine is shared and
noisy; the ratio of the same rounds is what counts), medians reported:

* ``call``: the whole ``Estimator(epochs=E).fit(...)`` call — including what the plain
  loop is given for free: reading the arrays, scaling, windowing or padding — against the
  plain loop's ``DataLoader`` + model + optimizer set-up and E epochs;
* ``epoch``: one epoch's training steps + validation loss, ours from ``History`` (the
  same span), the plain loop's timed the same way.

``overhead`` = t(ours) / t(plain) - 1: the target is <= 10% (negative: ours is faster).
If Darts imports (``pip install darts pytorch-lightning`` with torch pinned), its
``BlockRNNModel`` on Airline for the same epochs is timed against ``Forecaster`` too.
Output: a table, then one JSON document on the last line.
"""

import argparse
import json
import platform
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from common import PLAIN_BILSTM
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, TensorDataset

import lstmkit.tasks.forecast as forecast_module
import lstmkit.tasks.sequence as sequence_module
from lstmkit.data import load_dataset, negation_sentiment
from lstmkit.data.negation import one_hot_words
from lstmkit.tasks import Forecaster, SequenceClassifier

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "timeseries"


# -- the cases: (name, estimator factory, fit arguments) ---------------------------------


# the classifier as the plain loop below builds it (the recipe's convolutional branch and
# strides have no counterpart in PlainNet; docs/classification.md times them)
BILSTM = PLAIN_BILSTM


def cases() -> list[tuple[str, object, tuple]]:
    airline = load_dataset("airline").column("Passengers")
    italy = load_dataset("italy_power_demand")
    sentences, labels = negation_sentiment(2000, seed=0)
    words, _ = one_hot_words(sentences)
    out = [
        ("forecaster airline (LSTM 64, h=1)", lambda **kw: Forecaster(**kw), (airline,)),
        (
            "forecaster airline (BiLSTM 64, h=24)",
            lambda **kw: Forecaster(horizon=24, bidirectional=True, **kw),
            (airline,),
        ),
        (
            "classifier ItalyPowerDemand 1096x24x1",
            lambda **kw: SequenceClassifier(**BILSTM, **kw),
            (italy.X_train + italy.X_test, np.concatenate([italy.y_train, italy.y_test])),
        ),
        (
            "classifier negation 2000x(3..8)x42 ragged",
            lambda **kw: SequenceClassifier(**BILSTM, **kw),
            (words, labels),
        ),
    ]
    motions = SHARED / "BasicMotions" / "BasicMotions_TRAIN.ts"
    if motions.is_file():
        from lstmkit.data import read_ts

        X, y = read_ts(motions)
        out.append(
            (
                "classifier BasicMotions 40x100x6",
                lambda **kw: SequenceClassifier(**BILSTM, **kw),
                (X, y),
            )
        )
    return out


def capture(make, args) -> dict:
    """Fit once with a spy on the training loop; return what it was given."""
    seen = {}
    modules = (forecast_module, sequence_module)
    originals = [m.fit for m in modules]

    def spy(model, loss_fn, train, validation, cfg, **kwargs):
        seen.update(model=model, train=train, validation=validation, cfg=cfg)
        return originals[0](model, loss_fn, train, validation, cfg, **kwargs)

    for m in modules:
        m.fit = spy
    try:
        make(epochs=1, progress=False).fit(*args)
    finally:
        for m, f in zip(modules, originals, strict=True):
            m.fit = f
    return seen


# -- the plain PyTorch loop --------------------------------------------------------------


class PlainNet(nn.Module):
    """torch.nn.LSTM + the same pooling and linear head as the estimator's network."""

    def __init__(self, ours) -> None:
        super().__init__()
        rnn = ours.rnn
        self.lstm = nn.LSTM(
            rnn.input_size,
            rnn.hidden_size,
            num_layers=rnn.num_layers,
            batch_first=True,
            bidirectional=rnn.bidirectional,
        )
        self.pooling = ours.pooling
        self.directions = 2 if rnn.bidirectional else 1
        self.head = nn.Linear(ours.head.in_features, ours.head.out_features)

    def forward(self, x, lengths=None):
        if lengths is not None:
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(x)
        if lengths is not None:
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        parts = []
        for kind in self.pooling:
            if kind == "last":
                parts.extend(h_n[-self.directions :])
            elif kind == "max":  # padding is 0 after pad_packed: mask it
                if lengths is not None:
                    real = torch.arange(out.shape[1])[None] < lengths[:, None]
                    out = out.masked_fill(~real[..., None], -torch.inf)
                parts.append(out.amax(1))
            else:
                parts.append(
                    out.sum(1) / (lengths[:, None] if lengths is not None else out.shape[1])
                )
        return self.head(torch.cat(parts, dim=-1))


def plain_fit(seen: dict, epochs: int, seed: int = 0) -> list[float]:
    """The user's loop on the captured tensors; returns the per-epoch times."""
    torch.manual_seed(seed)
    train, val, batch = seen["train"], seen["validation"], seen["cfg"].batch_size
    keys = [k for k in ("x", "lengths", "y") if k in train]
    if "lengths" in train and bool((train["lengths"] == train["x"].shape[1]).all()):
        keys.remove("lengths")  # equal lengths: a user would not pack them
    classify = train["y"].dtype == torch.int64
    loss_fn = nn.functional.cross_entropy if classify else nn.functional.mse_loss
    loader = DataLoader(TensorDataset(*(train[k] for k in keys)), batch_size=batch, shuffle=True)
    model = PlainNet(seen["model"])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def step_loss(parts):
        x, y = parts[0], parts[-1]
        lengths = parts[1] if len(parts) == 3 else None
        return loss_fn(model(x, lengths), y)

    times = []
    for _ in range(epochs):
        began = time.perf_counter()
        model.train()
        for parts in loader:
            loss = step_loss(parts)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        if val is not None:
            model.eval()
            with torch.no_grad():
                val_loader = DataLoader(
                    TensorDataset(*(val[k] for k in keys)), batch_size=max(batch, 256)
                )
                sum(float(step_loss(parts)) for parts in val_loader)
        times.append(time.perf_counter() - began)
    return times


# -- measurement -------------------------------------------------------------------------


def measure(name, make, args, epochs: int, rounds: int, rng: random.Random) -> dict:
    seen = capture(make, args)
    calls = {"ours": [], "plain": []}
    per_epoch = {"ours": [], "plain": []}
    for _ in range(rounds):
        order = ["ours", "plain"]
        rng.shuffle(order)
        for who in order:
            began = time.perf_counter()
            if who == "ours":
                est = make(epochs=epochs, patience=None, progress=False).fit(*args)
                epoch_times = [e["seconds"] for e in est.history_.epochs]
            else:
                epoch_times = plain_fit(seen, epochs)
            calls[who].append(time.perf_counter() - began)
            per_epoch[who].extend(epoch_times)
    med = {k: statistics.median(v) for k, v in calls.items()}
    med_epoch = {k: statistics.median(v) for k, v in per_epoch.items()}
    train = seen["train"]
    return {
        "case": name,
        "epochs": epochs,
        "rounds": rounds,
        "train_samples": len(train["y"]),
        "batch_size": seen["cfg"].batch_size,
        "call_ours_s": med["ours"],
        "call_plain_s": med["plain"],
        "call_overhead": med["ours"] / med["plain"] - 1,
        "epoch_ours_s": med_epoch["ours"],
        "epoch_plain_s": med_epoch["plain"],
        "epoch_overhead": med_epoch["ours"] / med_epoch["plain"] - 1,
    }


def darts_comparison(epochs: int, rounds: int, rng: random.Random) -> dict | None:
    """Optional: Darts' ``BlockRNNModel`` (LSTM 64, look-back 24, horizon 1, batch 32) on the
    same Airline training part for the same epochs, against our default ``Forecaster``."""
    try:
        import logging

        from darts import TimeSeries
        from darts.models import BlockRNNModel
    except ImportError:
        return None
    for name in ("pytorch_lightning", "lightning", "darts"):
        logging.getLogger(name).setLevel(logging.ERROR)
    airline = load_dataset("airline").column("Passengers")
    train = airline[: len(airline) - round(len(airline) * 0.2)]  # ours keeps the end for val
    series = TimeSeries.from_values(((train - train.mean()) / train.std()).astype(np.float32))
    calls = {"ours": [], "darts": []}
    for _ in range(rounds):
        order = ["ours", "darts"]
        rng.shuffle(order)
        for who in order:
            began = time.perf_counter()
            if who == "ours":
                Forecaster(epochs=epochs, patience=None, progress=False).fit(airline)
            else:
                model = BlockRNNModel(
                    input_chunk_length=24,
                    output_chunk_length=1,
                    model="LSTM",
                    hidden_dim=64,
                    n_rnn_layers=1,
                    batch_size=32,
                    n_epochs=epochs,
                    random_state=0,
                    pl_trainer_kwargs={
                        "accelerator": "cpu",
                        "enable_progress_bar": False,
                        "enable_model_summary": False,
                        "logger": False,
                        "enable_checkpointing": False,
                    },
                )
                with warnings.catch_warnings():  # Lightning's notes on a CPU-only run
                    warnings.simplefilter("ignore")
                    model.fit(series, verbose=False)
            calls[who].append(time.perf_counter() - began)
    med = {k: statistics.median(v) for k, v in calls.items()}
    return {
        "case": "Darts BlockRNNModel vs Forecaster, airline (LSTM 64, h=1)",
        "epochs": epochs,
        "rounds": rounds,
        "call_ours_s": med["ours"],
        "call_darts_s": med["darts"],
        "speed_vs_darts": med["darts"] / med["ours"],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--cases", default="", help="substring filter on the case names")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--no-darts", action="store_true", help="skip the Darts comparison")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = random.Random(0)
    results = []
    print(f"{'case':44} {'E':>2} {'ours s':>8} {'plain s':>8} {'call':>7} {'epoch':>7}")
    for name, make, fit_args in cases():
        if args.cases not in name:
            continue
        r = measure(name, make, fit_args, args.epochs, args.rounds, rng)
        results.append(r)
        print(
            f"{name:44} {r['epochs']:>2} {r['call_ours_s']:8.4f} {r['call_plain_s']:8.4f} "
            f"{r['call_overhead']:+7.1%} {r['epoch_overhead']:+7.1%}",
            flush=True,
        )
    darts = None if args.no_darts else darts_comparison(args.epochs, args.rounds, rng)
    if darts is not None:
        print(
            f"Darts BlockRNNModel {darts['call_darts_s']:.4f} s vs Forecaster "
            f"{darts['call_ours_s']:.4f} s: lstmkit {darts['speed_vs_darts']:.1f}x faster",
            flush=True,
        )
    doc = {
        "darts": darts,
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "cases": results,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
