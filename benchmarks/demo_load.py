"""Time to a result on a busy machine: ``lstmkit demo`` quiet and beside one competing busy
process (a CPU-bound loop this script starts), with the thread policy of
lstmkit.train.threads and with 2 threads for every fit (``LSTMKIT_THREADS=2``, what torch
did before the policy), same run.

    python benchmarks/demo_load.py --out results/demo-load-cpu.json

``busy_over_quiet`` per mode is the slowdown a competing process causes (the issue's bar:
at most 2x); ``policy_over_two`` per load is the policy's time over 2 threads' (< 1: faster).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import emit, machine

BUSY = "while True: pass"


def demo_seconds(threads: str | None, quick: bool) -> float:
    env = dict(os.environ)
    env.pop("LSTMKIT_THREADS", None)
    if threads is not None:
        env["LSTMKIT_THREADS"] = threads
    with tempfile.TemporaryDirectory() as folder:
        args = [
            sys.executable,
            "-m",
            "lstmkit",
            "demo",
            "--quiet",
            "--out",
            str(Path(folder) / "d"),
        ]
        began = time.perf_counter()
        subprocess.run(args + (["--quick"] if quick else []), env=env, check=True)
        return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the demo's tiny budgets")
    parser.add_argument("--out", help="write the JSON document here")
    args = parser.parse_args()
    # one untimed quick demo first: the first run after a boot or an install pays for
    # building the compiled loops, numba's caches and cold files, whichever mode it is
    demo_seconds(None, quick=True)
    seconds = {}
    for load in ("quiet", "busy"):
        busy = subprocess.Popen([sys.executable, "-c", BUSY]) if load == "busy" else None
        try:
            for mode, threads in (("policy", None), ("two", "2")):
                seconds[(load, mode)] = demo_seconds(threads, args.quick)
                print(load, mode, round(seconds[(load, mode)], 1), flush=True)
        finally:
            if busy is not None:
                busy.kill()
    summary = {
        "seconds": {f"{load} {mode}": round(s, 1) for (load, mode), s in seconds.items()},
        "busy_over_quiet": {
            mode: round(seconds[("busy", mode)] / seconds[("quiet", mode)], 2)
            for mode in ("policy", "two")
        },
        "policy_over_two": {
            load: round(seconds[(load, "policy")] / seconds[(load, "two")], 2)
            for load in ("quiet", "busy")
        },
    }
    doc = {
        "benchmark": "demo_load",
        "command": " ".join(sys.argv),
        "machine": machine(),
        "summary": summary,
    }
    emit(doc, args.out)


if __name__ == "__main__":
    main()
