"""Quick recipe probes: test accuracy and fit+predict seconds of SequenceClassifier
variants on one UCR/UEA set, one thread per fit, two fits at once; one JSON line per fit.

    python benchmarks/classification_probe.py ACSF1 default,conv256,epochs200 0,1 [jobs]

Used for the "Probes after the panel run" table of docs/classification.md.
"""

import concurrent.futures as cf
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "timeseries"
VARIANTS = {
    "default": {},
    "conv256": {"conv_steps": 256},
    "conv512": {"conv_steps": 512},
    "wide": {"conv_filters": (128, 256, 128)},
    "epochs400": {"epochs": 400},
    "rnn128": {"rnn_steps": 128},
    "conv64": {"conv_steps": 64},
    "conv32": {"conv_steps": 32},
    "lr2x": {"lr": 6e-3},
    "epochs200": {"epochs": 200},
}


def run(name: str, variant: str, seed: int) -> tuple:
    import torch

    from lstmkit.data.ts import read_ts
    from lstmkit.tasks import SequenceClassifier

    torch.set_num_threads(1)
    Xtr, ytr = read_ts(ROOT / name / f"{name}_TRAIN.ts")
    Xte, yte = read_ts(ROOT / name / f"{name}_TEST.ts")
    t = time.perf_counter()
    m = SequenceClassifier(seed=seed, progress=False, **VARIANTS[variant]).fit(Xtr, ytr)
    acc = float((m.predict(Xte) == np.asarray(yte)).mean())
    return name, variant, seed, acc, time.perf_counter() - t


if __name__ == "__main__":
    name, variants = sys.argv[1], sys.argv[2].split(",")
    seeds = [int(s) for s in sys.argv[3].split(",")]
    jobs = [(name, v, s) for v in variants for s in seeds]
    with cf.ProcessPoolExecutor(int(sys.argv[4]) if len(sys.argv) > 4 else 2) as pool:
        for result in pool.map(run, *zip(*jobs, strict=True)):
            print(json.dumps(result), flush=True)
