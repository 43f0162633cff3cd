"""WOA-BiLSTM tuning with 1 worker process vs 2, the same trials: wall time and speed-up.

The problem: a BiLSTM ``Forecaster`` on Airline (the last 24 months held out), WOA with
``--whales`` × (``--iterations`` + 1) trials (8 × 4 = 32 by default) over hidden_size,
lr, lookback and dropout, a fixed number of epochs (no early stopping, no pruning, so every
trial trains the same number of epochs and only the parameters set its cost). Every run
uses a fresh journal file, ``refit=False``, and one torch thread per worker process
(``tune`` gives each of k workers cpu_count // k threads; the 1-worker run sets 1 thread
itself, so the only difference is the number of processes). The 1- and 2-worker runs
alternate ``--repeats`` times (the machine may be shared) and the medians are compared;
``--threads N`` adds a run of 1 worker with N torch threads (intra-op threads instead).

WOA is deterministic given the objective values, and CPU training with a fixed seed and
one thread is too, so both runs must evaluate the same positions with the same values:
``same_trials`` checks it slot by slot. The 2-worker time includes starting the two
processes (spawn, importing torch); workers also wait at each generation boundary until
the generation's last trial ends (the update needs every whale's fitness).

    nice -n 19 python benchmarks/tune_workers.py
    nice -n 19 python benchmarks/tune_workers.py --json benchmarks/results/tune-workers.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import torch

from lstmkit.data import load_airline
from lstmkit.tasks import Forecaster
from lstmkit.tuning import Float, Int, SearchSpace, tune
from lstmkit.woa.sampler import SLOT

SPACE = SearchSpace(
    hidden_size=Int(32, 64),
    lr=Float(1e-3, 3e-2, log=True),
    lookback=Int(12, 24),
    dropout=Float(0.0, 0.3),
)


def slot_values(study: optuna.Study) -> dict[str, float]:
    """(generation, whale) → value of the COMPLETE trial that evaluated it."""
    out = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        slot = t.system_attrs.get(SLOT)
        if slot is not None:
            out[f"{slot['generation']}/{slot['whale']}"] = t.value
    return out


def time_split(study: optuna.Study) -> tuple[float, float]:
    """Summed over trials: seconds waiting for a slot (ask → claim, e.g. at a generation
    boundary) and seconds evaluating (claim → tell)."""
    waited = evaluated = 0.0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        claimed = t.system_attrs[SLOT]["claimed_at"]
        waited += claimed - t.datetime_start.timestamp()
        evaluated += t.datetime_complete.timestamp() - claimed
    return waited, evaluated


def run(series, args, workers: int, threads: int, folder: Path) -> dict:
    torch.set_num_threads(threads)  # this process's trials (workers=1); spawned ones set 1
    storage = folder / f"w{workers}-t{threads}-{time.monotonic_ns()}.log"
    began = time.perf_counter()
    res = tune(
        Forecaster,
        SPACE,
        series,
        n_whales=args.whales,
        iterations=args.iterations,
        storage=storage,
        workers=workers,
        fixed={"epochs": args.epochs, "patience": None, "num_layers": 2, "bidirectional": True},
        prune=False,
        refit=False,
        seed=args.seed,
    )
    seconds = time.perf_counter() - began
    waited, evaluated = time_split(res.study)
    return {
        "workers": workers,
        "threads_per_worker": 1 if workers > 1 else threads,
        "seconds": round(seconds, 2),
        "trials_evaluating_s": round(evaluated, 2),
        "trials_waiting_s": round(waited, 2),
        "workers_idle_or_starting_s": round(workers * seconds - evaluated - waited, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "counts": res.counts,
        "best_value": res.best_value,
        "slots": slot_values(res.study),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--whales", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved 1-/2-worker pairs")
    parser.add_argument("--threads", type=int, help="also time 1 worker with this many threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _, series = load_airline()
    train = series[:-24]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved, so that load from elsewhere hits both
            runs.append(run(train, args, workers=1, threads=1, folder=Path(tmp)))
            runs.append(run(train, args, workers=2, threads=1, folder=Path(tmp)))
        if args.threads:
            runs.append(run(train, args, workers=1, threads=args.threads, folder=Path(tmp)))
    one = [r for r in runs if r["workers"] == 1 and r["threads_per_worker"] == 1]
    two = [r for r in runs if r["workers"] == 2]
    t1 = statistics.median(r["seconds"] for r in one)
    t2 = statistics.median(r["seconds"] for r in two)
    result = {
        "benchmark": "tune_workers",
        "trials": args.whales * (args.iterations + 1),
        "n_whales": args.whales,
        "iterations": args.iterations,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "optuna": optuna.__version__,
        "python": platform.python_version(),
        "median_seconds_1_worker": t1,
        "median_seconds_2_workers": t2,
        "speedup_2_workers": round(t1 / t2, 3),
        "speedups_per_pair": [
            round(a["seconds"] / b["seconds"], 3) for a, b in zip(one, two, strict=False)
        ],
        "same_trials": all(r["slots"] == one[0]["slots"] for r in one + two),
        "runs": [{k: v for k, v in r.items() if k != "slots"} for r in runs],
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
