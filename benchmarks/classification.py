"""Sequence classification on the UCR/UEA panel against the peers a user would pick instead,
same splits, same run: lstmkit's default SequenceClassifier (LSTM-FCN), its ensemble, the
BiLSTM alone, MiniRocket and 1-NN DTW (aeon, the ``classify`` extra).

    python benchmarks/classification.py --data ../shared/data/timeseries --out results.json

Every dataset is reported, losses included: accuracy (mean ± std over ``--seeds``; DTW is
deterministic) and the wall and CPU seconds of one fit and of one prediction of the test
part. Times are taken after a warm-up in the same process (imports, torch's optimizer
set-up, aeon's numba compilation: a one-epoch fit for lstmkit, a whole fit for the peers), so
they are the cost of one more model in a session; the warm-up's own time is recorded too
(``first_call``).

The ensemble is not fitted again: ``SequenceClassifier(n_models=3, seed=s)`` trains its members
exactly as the single models of seeds s, s+1, s+2 and averages their probabilities (asserted
by tests/tasks/test_recipe.py), so its row is computed from the single fits of seeds
``s … s+2`` (two seeds beyond ``--seeds`` are fitted for it), its time being the sum of theirs.

``--jobs 2`` runs two (contender, dataset) pairs at once, one intra-op thread each:
the accuracy is the same, the times are those of a machine with one core per job.
``--load K`` keeps K busy processes running beside the benchmark (times "under load").
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from common import PLAIN_BILSTM, emit, machine

PANEL = ("ArrowHead", "BasicMotions", "GunPoint", "ItalyPowerDemand", "OSULeaf", "ACSF1", "PLAID")
ENSEMBLE = 3  # members of the ensemble row
CONTENDERS = {
    "lstmkit": {},  # the defaults
    "lstmkit-ensemble": None,  # from the lstmkit fits (module docstring)
    "lstmkit-bilstm": {"conv_filters": ()},  # the recurrent branch alone
    "minirocket": None,
    "dtw_1nn": None,
    # ablations (docs/classification.md): the defaults less or plus one ingredient
    "lstmkit-global-norm": {"normalize": "global"},
    "lstmkit-augment": {"augment": ("jitter", "scale")},
    "lstmkit-plateau": {"schedule": "plateau", "validation": 0.2, "epochs": 200, "patience": 30},
    # the defaults before the recipe (v0): BiLSTM on every step, global standardisation,
    # early stopping on a 20 % split; batch size max(8, min(64, n // 16)) of the rest
    "lstmkit-v0": PLAIN_BILSTM | {"epochs": 200, "lr": 3e-3, "patience": 30},
}
MAIN = ("lstmkit", "lstmkit-ensemble", "lstmkit-bilstm", "minirocket", "dtw_1nn")
DETERMINISTIC = {"dtw_1nn"}
COST = {"PLAID": 9, "OSULeaf": 3, "ACSF1": 2}  # rough relative fit times, for scheduling


def _load(root: Path, name: str):
    from lstmkit.data.ts import read_ts

    X_train, y_train = read_ts(root / name / f"{name}_TRAIN.ts")
    X_test, y_test = read_ts(root / name / f"{name}_TEST.ts")
    return X_train, y_train, X_test, y_test


def _model(contender: str, seed: int, n_train: int, **options):
    """An object with fit(X, y) and predict(X) on lists of (T_i, D) arrays."""
    if CONTENDERS[contender] is not None:
        from lstmkit.tasks import SequenceClassifier

        kwargs = CONTENDERS[contender] | options
        if contender == "lstmkit-v0":
            kwargs["batch_size"] = max(8, min(64, (n_train - round(0.2 * n_train)) // 16))
        return SequenceClassifier(seed=seed, progress=False, **kwargs)
    return _Peer(contender, seed)


class _Peer:
    """An aeon peer as lstmkit's evaluate runs it (lstmkit.tasks.baselines)."""

    def __init__(self, name: str, seed: int) -> None:
        self.name, self.seed = name, seed

    def fit(self, X, y):
        from lstmkit.tasks import baselines

        self.train = (X, np.asarray(y))
        if self.name == "minirocket":
            self.length = max(baselines.MIN_MINIROCKET_LENGTH, *(len(s) for s in X))
            self.est = baselines.minirocket_classifier(self.seed)
            self.est.fit(baselines.padded(X, self.length), self.train[1])
        else:
            self.est = baselines.dtw_classifier().fit(baselines._channels_first(X), self.train[1])
        return self

    def predict(self, X):
        from lstmkit.tasks import baselines

        if self.name == "minirocket":  # longer test series are cut to the training length
            cut = [s[: self.length] for s in X]
            return self.est.predict(baselines.padded(cut, self.length))
        return self.est.predict(baselines._channels_first(X))


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _row(name: str, contender: str, runs: list[dict], sizes: tuple, first: float, threads: int):
    acc = [r["accuracy"] for r in runs]
    row = {
        "dataset": name,
        "contender": contender,
        "n_train": sizes[0],
        "n_test": sizes[1],
        "accuracy_mean": statistics.mean(acc),
        "accuracy_std": statistics.pstdev(acc),
        "fit_wall": statistics.mean(r["fit_wall"] for r in runs),
        "fit_cpu": statistics.mean(r["fit_cpu"] for r in runs),
        "predict_wall": statistics.mean(r["predict_wall"] for r in runs),
        "first_call": first,
        "runs": runs,
        "threads": threads,
    }
    print(json.dumps({k: v for k, v in row.items() if k != "runs"}), flush=True)
    return row


def _ensemble_runs(runs: list[dict], seeds: list[int], y_test, classes) -> list[dict]:
    """The n_models=ENSEMBLE rows from the single fits: mean probabilities of seeds s … s+2."""
    by = {r["seed"]: r for r in runs}
    out = []
    for seed in seeds:
        members = [by[seed + k] for k in range(ENSEMBLE)]
        proba = np.mean([m["proba"] for m in members], axis=0)
        out.append(
            {
                "seed": seed,
                "accuracy": float(np.mean(classes[proba.argmax(axis=1)] == y_test)),
                **{
                    key: sum(m[key] for m in members)
                    for key in ("fit_wall", "fit_cpu", "predict_wall", "predict_cpu")
                },
            }
        )
    return out


def run_pair(args) -> list[dict]:
    """One contender on one dataset over the seeds, in this process (lstmkit: with the
    ensemble row when ``ensemble``)."""
    root, name, contender, seeds, threads, ensemble = args
    import torch

    torch.set_num_threads(threads)
    X_train, y_train, X_test, y_test = _load(Path(root), name)
    y_test = np.asarray(y_test)
    warm = {"epochs": 1} if CONTENDERS[contender] is not None else {}
    _, first, _ = _timed(
        lambda: _model(contender, 0, len(X_train), **warm).fit(X_train, y_train).predict(X_test[:2])
    )
    fitted = seeds[:1] if contender in DETERMINISTIC else list(seeds)
    if ensemble:
        fitted = sorted(set(fitted) | {s + k for s in seeds for k in range(ENSEMBLE)})
    runs, classes = [], None
    for seed in fitted:
        model = _model(contender, seed, len(X_train))
        _, fit_wall, fit_cpu = _timed(lambda model=model: model.fit(X_train, y_train))
        if hasattr(model, "predict_proba"):
            proba, pred_wall, pred_cpu = _timed(lambda model=model: model.predict_proba(X_test))
            classes = np.asarray(model.classes_)
            pred = classes[proba.argmax(axis=1)]
        else:
            proba = None
            pred, pred_wall, pred_cpu = _timed(lambda model=model: model.predict(X_test))
        runs.append(
            {
                "seed": seed,
                "accuracy": float(np.mean(np.asarray(pred) == y_test)),
                "fit_wall": fit_wall,
                "fit_cpu": fit_cpu,
                "predict_wall": pred_wall,
                "predict_cpu": pred_cpu,
                "proba": proba,
            }
        )
    sizes = (len(X_train), len(X_test))
    rows = []
    if ensemble:
        rows.append(
            _row(
                name,
                "lstmkit-ensemble",
                _ensemble_runs(runs, seeds, y_test, classes),
                sizes,
                first,
                threads,
            )
        )
    for r in runs:
        r.pop("proba", None)
    own = [r for r in runs if r["seed"] in seeds]
    rows.insert(0, _row(name, contender, own, sizes, first, threads))
    return rows


def _busy() -> None:  # a competing process: one core kept busy
    while True:
        sum(i * i for i in range(10_000))


def table(rows: list[dict], contenders: list[str]) -> str:
    """Markdown: a row per dataset, per contender accuracy mean ± std and the wall seconds
    of one fit + one prediction of the test part (1-NN DTW spends its time predicting)."""
    by = {(r["dataset"], r["contender"]): r for r in rows}
    names = sorted({r["dataset"] for r in rows}, key=lambda n: PANEL.index(n) if n in PANEL else 99)
    head = "| dataset | " + " | ".join(contenders) + " |"
    lines = [head, "|" + "---|" * (len(contenders) + 1)]
    for name in [*names, "mean"]:
        cells = []
        for c in contenders:
            if name == "mean":
                got = [by[(n, c)] for n in names if (n, c) in by]
                if len(got) != len(names):
                    cells.append("")
                    continue
                acc = statistics.mean(r["accuracy_mean"] for r in got)
                seconds = sum(r["fit_wall"] + r["predict_wall"] for r in got)
                cells.append(f"**{acc:.3f}** ({seconds:.0f} s in all)")
                continue
            r = by.get((name, c))
            cells.append(
                ""
                if r is None
                else f"{r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} "
                f"({r['fit_wall']:.1f} + {r['predict_wall']:.1f} s)"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "timeseries"),
    )
    parser.add_argument("--datasets", default=",".join(PANEL))
    parser.add_argument("--contenders", default=",".join(MAIN), help=f"of {', '.join(CONTENDERS)}")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, help="intra-op threads [default: 2 / jobs]")
    parser.add_argument("--load", type=int, default=0, help="busy processes beside the run")
    parser.add_argument("--out", help="write the JSON document here")
    parser.add_argument("--table", help="only print the table of this JSON document")
    args = parser.parse_args()
    if args.table:
        rows = json.loads(Path(args.table).read_text())["rows"]
        print(table(rows, list(dict.fromkeys(r["contender"] for r in rows))))
        return
    datasets, contenders = args.datasets.split(","), args.contenders.split(",")
    unknown = [c for c in contenders if c not in CONTENDERS] + [
        d for d in datasets if not (Path(args.data) / d).is_dir()
    ]
    if unknown:
        parser.error(f"unknown contenders or datasets not under --data: {unknown}")
    seeds = [int(s) for s in args.seeds.split(",")]
    threads = args.threads or max(1, (os.cpu_count() or 2) // args.jobs)
    busy = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(args.load)]
    for p in busy:
        p.start()
    ensemble = "lstmkit-ensemble" in contenders
    if ensemble and "lstmkit" not in contenders:
        parser.error("lstmkit-ensemble is computed from the lstmkit fits: add lstmkit")
    # the longest first, so that two jobs finish together
    order = sorted(datasets, key=lambda d: -COST.get(d, 1))
    pairs = [
        (args.data, d, c, seeds, threads, ensemble and c == "lstmkit")
        for d in order
        for c in contenders
        if c != "lstmkit-ensemble"
    ]
    began = time.perf_counter()
    try:
        if args.jobs == 1:
            rows = [r for p in pairs for r in run_pair(p)]
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
                rows = [r for rs in pool.map(run_pair, pairs) for r in rs]
    finally:
        for p in busy:
            p.terminate()
    print("\n" + table(rows, contenders))
    summary = {
        c: {
            "mean_accuracy": statistics.mean(
                r["accuracy_mean"] for r in rows if r["contender"] == c
            ),
            "max_std": max(r["accuracy_std"] for r in rows if r["contender"] == c),
        }
        for c in contenders
    }
    doc = {
        "benchmark": "classification",
        "command": " ".join(sys.argv),
        "machine": machine() | {"jobs": args.jobs, "threads_per_job": threads, "load": args.load},
        "seconds": time.perf_counter() - began,
        "summary": summary,
        "rows": rows,
    }
    emit(doc, args.out)


if __name__ == "__main__":
    main()
