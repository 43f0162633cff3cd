"""The poem writer's training throughput on the Tang corpus: today's path against the one
before it, same run, same poems, same seed.

    python benchmarks/text.py --poems 3000 --epochs 3 --out results/text-cpu.json

``before``: the vocabulary head applied to every padded step, then masked; ``now``: the head
on the real steps only (``_CharNet.forward(mask=...)``); ``buckets``: that and batches of
like lengths (``length_buckets``, not the default: see docs/benchmarks.md). All train the
default TextGenerator on the first ``--poems`` poems of ``../shared/data/quantangshi`` for
``--epochs`` epochs; characters/s counts the training characters of every epoch over its
wall time; the validation perplexity after the last epoch says whether they learned as well.
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch
from common import emit, machine

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


def train(poems: list[str], epochs: int, path: str) -> dict:
    model = TextGenerator(epochs=epochs, patience=None, progress=False)
    current = text._loss
    if path == "buckets":
        model._train_cfg = dataclasses.replace(model._train_cfg, length_buckets=True)
    if path == "before":
        text._loss = loss_before
    try:
        began = time.perf_counter()
        model.fit(poems)
        seconds = time.perf_counter() - began
    finally:
        text._loss = current
    trained = sum(len(p) for p in poems) * (1 - model.params["validation"]) * epochs
    return {
        "seconds": seconds,
        "chars_per_s": trained / seconds,
        "epoch_seconds": [e["seconds"] for e in model.history.epochs],
        "val_perplexity": model.perplexity(model.validation_poems_)["model"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--poems", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", help="write the JSON document here")
    args = parser.parse_args()
    poems = read_poems(CORPUS)[: args.poems]
    rows = {}
    for name in ("before", "now", "buckets"):
        rows[name] = train(poems, args.epochs, name)
        print(name, rows[name], flush=True)
    summary = {
        "poems": len(poems),
        "epochs": args.epochs,
        "chars_per_s": {k: round(v["chars_per_s"]) for k, v in rows.items()},
        "speedup": {
            k: round(rows[k]["chars_per_s"] / rows["before"]["chars_per_s"], 2)
            for k in ("now", "buckets")
        },
        "val_perplexity": {k: round(v["val_perplexity"], 1) for k, v in rows.items()},
    }
    doc = {"benchmark": "text", "command": " ".join(sys.argv), "machine": machine()}
    emit(doc | {"summary": summary, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
