"""The poem writer's training throughput on the Tang corpus: today's path against the one
before it, same run, same poems, same seed.

    python benchmarks/text.py --poems 3000 --epochs 3 --out results/text-cpu.json

``before``: the path when issue 15 was filed — random batches, the vocabulary head
applied to every padded step, then masked, and torch's LSTM kernel on a packed batch
(``backends.native.run_packed``; ``auto``'s rule of then, native for every LSTM on CPU);
``random``: random batches, the head on the real steps only (``_CharNet.forward(mask=...)``)
and ``auto``'s backend on the unpacked batch (since 2026-12-05 the compiled loops);
``buckets``: that with batches of like lengths of ``batch_size`` poems (``length_buckets``);
``equal_tokens``: batches of like lengths holding about as many characters as a random
batch (short poems in bigger batches; the default until 2026-12-05); ``now``: the
defaults (random batches since 2026-12-05). ``--paths`` picks some.
All train the default TextGenerator (``--seed``) on the first ``--poems`` poems of
``../shared/data/quantangshi`` for ``--epochs`` epochs; characters/s counts the training
characters of every epoch over its wall time; the validation perplexity after the last
epoch says whether they learned as well.

Then generation with the ``now`` model, quiet and beside one busy process (``while True:
pass``): characters/s of ``--poems-written`` poems, ``before`` — a whole forward call per
character on torch's threads, as generate did — against ``now`` (``LSTM.step`` on one
thread, ``stepping_threads``).
"""

import argparse
import contextlib
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import emit, machine

from lstmkit import backends
from lstmkit.backends import native
from lstmkit.data import read_poems
from lstmkit.recurrence.lengths import real_steps
from lstmkit.tasks import TextGenerator, text

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "quantangshi"


def loss_before(net, batch):
    """The loss as it was: the head on every step of the padded batch, then the mask."""
    lengths = batch["lengths"]
    steps = int(lengths.max())
    logits, _ = net(batch["tokens"][:, :steps], lengths)
    mask = real_steps(lengths, steps)
    targets = batch["targets"][:, :steps][mask]
    return torch.nn.functional.cross_entropy(logits[mask], targets), int(mask.sum())


def feed_before(self, chars, state):
    """generate's feed as it was: a forward call of the whole network per character."""
    with torch.no_grad():
        ids = torch.tensor([[self._index[c] for c in chars]])
        logits, state = self.net_(ids, state=state)
    return logits[0, -1], state


def written_per_second(model: TextGenerator, path: str, count: int) -> float:
    feed, threads = TextGenerator._feed, text.stepping_threads
    if path == "before":
        TextGenerator._feed, text.stepping_threads = feed_before, contextlib.nullcontext
    try:
        model.generate(seed=0)  # warm-up
        began, chars = time.perf_counter(), 0
        for seed in range(count):
            chars += len(model.generate(seed=seed))
        return chars / (time.perf_counter() - began)
    finally:
        TextGenerator._feed, text.stepping_threads = feed, threads


def generation(model: TextGenerator, count: int) -> dict:
    rates = {}
    for load in ("quiet", "busy"):
        busy = (
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
        )
        try:
            for path in ("before", "now"):
                rates[f"{load}_{path}"] = written_per_second(model, path, count)
        finally:
            if busy is not None:
                busy.kill()
        print(load, {k: round(v) for k, v in rates.items() if k.startswith(load)}, flush=True)
    return rates


def train(poems: list[str], epochs: int, path: str, seed: int = 0) -> tuple[dict, TextGenerator]:
    model = TextGenerator(epochs=epochs, patience=None, progress=False, seed=seed)
    current, kernel = text._loss, backends.BACKENDS["native"]
    widest = backends.FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU
    batching = {  # "now": the defaults
        "before": {"length_buckets": False, "equal_tokens": False},
        "random": {"length_buckets": False, "equal_tokens": False},
        "buckets": {"length_buckets": True, "equal_tokens": False},
        "equal_tokens": {"length_buckets": True, "equal_tokens": True},
    }
    model._train_cfg = dataclasses.replace(model._train_cfg, **batching.get(path, {}))
    if path == "before":
        text._loss = loss_before
        backends.BACKENDS["native"] = native.run_packed
        backends.FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU = 0  # auto: native, as then
    try:
        began = time.perf_counter()
        model.fit(poems)
        seconds = time.perf_counter() - began
        ran = model.net_.rnn.backend_for(  # what a training step on unequal lengths ran
            torch.zeros(2, 5, model.net_.rnn.input_size), needs_grad=True, lengths=[5, 3]
        )
    finally:
        text._loss, backends.BACKENDS["native"] = current, kernel
        backends.FUSED_LSTM_LENGTHS_MAX_HIDDEN_CPU = widest
    trained = sum(len(p) for p in poems) * (1 - model.params["validation"]) * epochs
    row = {
        "seconds": seconds,
        "chars_per_s": trained / seconds,
        "epoch_seconds": [e["seconds"] for e in model.history_.epochs],
        "val_perplexity": model.perplexity(model.validation_poems_)["model"],
        "training_backend": ran,
    }
    return row, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--poems", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--poems-written", type=int, default=20)
    parser.add_argument("--paths", default="before,random,buckets,equal_tokens,now")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the JSON document here")
    args = parser.parse_args()
    poems = read_poems(CORPUS)[: args.poems]
    rows, models = {}, {}
    for name in args.paths.split(","):
        rows[name], models[name] = train(poems, args.epochs, name, args.seed)
        print(name, rows[name], flush=True)
    writing = "now" in models and args.poems_written > 0
    written = generation(models["now"], args.poems_written) if writing else {}
    summary = {
        "poems": len(poems),
        "epochs": args.epochs,
        "chars_per_s": {k: round(v["chars_per_s"]) for k, v in rows.items()},
        "speedup": {
            k: round(rows[k]["chars_per_s"] / rows["before"]["chars_per_s"], 2)
            for k in rows
            if k != "before" and "before" in rows
        },
        "val_perplexity": {k: round(v["val_perplexity"], 1) for k, v in rows.items()},
        "written_chars_per_s": {k: round(v) for k, v in written.items()},
        "writing_speedup": {
            load: round(written[f"{load}_now"] / written[f"{load}_before"], 2)
            for load in ("quiet", "busy")
            if written
        },
    }
    doc = {"benchmark": "text", "command": " ".join(sys.argv), "machine": machine()}
    emit(doc | {"summary": summary, "rows": rows, "written": written}, args.out)


if __name__ == "__main__":
    main()
