"""Intra-op threads for a recurrent training step: 1 against 2 (or --threads) threads, same
run, quiet and beside one competing busy process (a CPU-bound loop this script starts).

    python benchmarks/threads.py --out results/threads-cpu.json
    python benchmarks/threads.py --fits --out results/threads-fits-cpu.json

Each case: a bidirectional LSTM or GRU (8 inputs, hidden H, batch N, T steps, equal
lengths, ``backend="auto"``); the time of forward + backward of ``out.sum()``, median of
``--rounds`` after two warm-up steps. ``many_over_one`` > 1: one thread is faster. With
``--fits``: whole default fits instead (the forecaster on Airline, the classifier on
ItalyPowerDemand and BasicMotions, and a plain BiLSTM of hidden size 256 on BasicMotions),
each model's trainable parameters beside it. The policy in lstmkit.train.threads
(SMALL_MODEL) comes from these tables.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from common import emit, machine

import lstmkit

BUSY = "while True: pass"


def step_ms(mode: str, hidden: int, batch: int, steps: int, threads: int, rounds: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x = torch.randn(batch, steps, 8)
    cls = lstmkit.LSTM if mode == "lstm" else lstmkit.GRU
    m = cls(8, hidden, batch_first=True, bidirectional=True)

    def step():
        out, _ = m(x)
        out.sum().backward()

    for _ in range(2):
        step()
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def fit_seconds(name: str, threads: int) -> tuple[float, int]:
    """(seconds, trainable parameters) of one default fit with ``threads`` fixed."""
    from pathlib import Path

    from lstmkit.data import load_airline, load_dataset
    from lstmkit.data.ts import read_ts
    from lstmkit.tasks import Forecaster, SequenceClassifier

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "timeseries"
    if name == "forecaster-airline":
        model, args = Forecaster(horizon=12, epochs=150, progress=False), (load_airline()[1][:-12],)
    elif name == "classifier-italy":
        italy = load_dataset("italy_power_demand")
        model, args = SequenceClassifier(progress=False), (italy.X_train, italy.y_train)
    else:
        args = read_ts(data / "BasicMotions" / "BasicMotions_TRAIN.ts")
        plain = {"conv_filters": (), "rnn_steps": None, "hidden_size": 256}
        model = SequenceClassifier(progress=False, **(plain if name.endswith("h256") else {}))
    os.environ["LSTMKIT_THREADS"] = str(threads)  # the documented override, for this fit
    began = time.perf_counter()
    model.fit(*args)
    return time.perf_counter() - began, sum(p.numel() for p in model.net_.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", default="16,32,64,128,256,512")
    parser.add_argument("--cases", default="16x24,32x50,64x100", help="batch x steps")
    parser.add_argument("--modes", default="lstm,gru")
    parser.add_argument("--threads", type=int, default=2, help="the many-thread count")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fits", action="store_true", help="time whole default fits")
    parser.add_argument("--out", help="write the JSON document here")
    args = parser.parse_args()
    if args.fits:
        return fits(args)
    rows = []
    for load in ("quiet", "busy"):
        busy = subprocess.Popen([sys.executable, "-c", BUSY]) if load == "busy" else None
        try:
            for mode in args.modes.split(","):
                for hidden in map(int, args.hidden.split(",")):
                    for case in args.cases.split(","):
                        batch, steps = map(int, case.split("x"))
                        one = step_ms(mode, hidden, batch, steps, 1, args.rounds)
                        many = step_ms(mode, hidden, batch, steps, args.threads, args.rounds)
                        row = {
                            "load": load,
                            "mode": mode,
                            "hidden": hidden,
                            "batch": batch,
                            "steps": steps,
                            "work": batch * hidden * hidden,
                            "one_ms": one,
                            "many_ms": many,
                            "many_over_one": many / one,
                        }
                        print(row, flush=True)
                        rows.append(row)
        finally:
            if busy is not None:
                busy.kill()
    summary = {
        load: {
            f"{r['mode']} H{r['hidden']} {r['batch']}x{r['steps']}": round(r["many_over_one"], 2)
            for r in rows
            if r["load"] == load
        }
        for load in ("quiet", "busy")
    }
    doc = {
        "benchmark": "threads",
        "command": " ".join(sys.argv),
        "machine": machine(),
        "summary": summary,
        "rows": rows,
    }
    emit(doc, args.out)


FITS = ("forecaster-airline", "classifier-italy", "classifier-basicmotions", "bilstm-h256")


def fits(args) -> None:
    rows = []
    for name in FITS:  # warm-up: imports, the compiled loops and first calls cost once
        fit_seconds(name, 1)
    for load in ("quiet", "busy"):
        busy = subprocess.Popen([sys.executable, "-c", BUSY]) if load == "busy" else None
        try:
            for name in FITS:
                one, size = fit_seconds(name, 1)
                many, _ = fit_seconds(name, args.threads)
                row = {"load": load, "fit": name, "parameters": size, "one_s": one}
                row |= {"many_s": many, "many_over_one": many / one}
                print(row, flush=True)
                rows.append(row)
        finally:
            if busy is not None:
                busy.kill()
    summary = {
        f"{r['load']} {r['fit']} ({r['parameters']:,} parameters)": round(r["many_over_one"], 2)
        for r in rows
    }
    doc = {"benchmark": "threads-fits", "command": " ".join(sys.argv), "machine": machine()}
    emit(doc | {"summary": summary, "rows": rows}, args.out)


if __name__ == "__main__":
    main()
