"""Reproduce the WOA paper's benchmark protocol on F1–F13, both variants, beside its figures.

Protocol (Mirjalili & Lewis 2016, §4): 30 whales, 500 iterations, d = 30, 30 independent
runs per function; the mean and standard deviation of the best value found. Run r uses
seed ``--seed + r`` for every function and variant (F7's noise has its own generator per
run). F6 is run twice: Yao's floor form (``FUNCTIONS["F6"]``) and the authors' code form
Σ|x+0.5|² (``F6-code``), which is the one the paper's F6 figure comes from.

Optional cross-check with mealpy's ``OriginalWOA`` in the same run: in-process if
``import mealpy`` works, else in another interpreter given by ``--mealpy-python`` (mealpy
3.0.3 pins numpy<=1.26.0, so it lives in its own venv; that worker loads
``src/lstmkit/woa/benchmarks.py`` by path because ``import lstmkit`` needs torch).
mealpy 3.0.3's ``OriginalWOA`` is not the paper's algorithm in three ways: its X_rand is a
fresh uniform point of the box rather than a whale, A and C share one random number, and
each whale keeps its old position when the new one is worse (greedy selection).

Also times 500 iterations × 30 whales × d = 30 on the sphere, vectorized and per point.

    python benchmarks/woa_paper.py                              # full protocol, Markdown table
    python benchmarks/woa_paper.py --runs 5 --functions F1,F9 --variants paper
    python benchmarks/woa_paper.py --json benchmarks/results/woa-paper.json \\
        --mealpy-python /tmp/mealpy-venv/bin/python
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ALL_FUNCTIONS = [f"F{i}" for i in range(1, 14)]
VARIANTS = ("paper", "reference-code")


def load_benchmarks_by_path():
    """``lstmkit.woa.benchmarks`` without importing ``lstmkit`` (whose ``__init__`` needs
    torch): used by the mealpy worker, which runs in mealpy's own venv."""
    path = ROOT / "src" / "lstmkit" / "woa" / "benchmarks.py"
    spec = importlib.util.spec_from_file_location("woa_benchmarks", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def function_table(benchmarks, keys: list[str]) -> dict:
    """Keys → BenchmarkFunction; ``F6`` brings ``F6-code`` (the authors' form) along."""
    table = {}
    for key in keys:
        if key == "F6-code":
            table[key] = benchmarks.F6_AUTHORS_CODE
            continue
        if key not in benchmarks.FUNCTIONS:
            raise SystemExit(f"--functions: expected keys among F1..F13, F6-code; got {key!r}")
        table[key] = benchmarks.FUNCTIONS[key]
        if key == "F6":
            table["F6-code"] = benchmarks.F6_AUTHORS_CODE
    return table


def noise_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, 7])


def run_lstmkit(fn, variant: str, args, seed: int) -> float:
    from lstmkit.woa import WOA

    opt = WOA(args.whales, args.iters, seed=seed, variant=variant)
    res = opt.minimize(fn.objective(noise_rng(seed)), fn.bounds(args.dim), vectorized=True)
    return res.fun


def run_mealpy(fn, args, seed: int) -> float:
    from mealpy import FloatVar
    from mealpy.swarm_based.WOA import OriginalWOA

    f = fn.objective(noise_rng(seed))
    low, high = fn.bounds(args.dim)
    problem = {
        "obj_func": lambda x: float(f(x)),
        "bounds": FloatVar(lb=low.tolist(), ub=high.tolist()),
        "minmax": "min",
        "log_to": None,
    }
    model = OriginalWOA(epoch=args.iters, pop_size=args.whales)
    return float(model.solve(problem, seed=seed).target.fitness)


def summarize(key: str, variant: str, values: list[float], seconds: float) -> dict:
    return {
        "function": key,
        "variant": variant,
        "runs": len(values),
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "median": statistics.median(values),
        "best": min(values),
        "worst": max(values),
        "seconds": seconds,
        "values": values,
    }


def measure(key: str, variant: str, runner, args, with_values: bool = False) -> dict:
    """``args.runs`` runs of ``runner(seed)``; prints the record as one JSON line."""
    start = time.perf_counter()
    values = [runner(args.seed + r) for r in range(args.runs)]
    record = summarize(key, variant, values, time.perf_counter() - start)
    shown = record if with_values else {k: v for k, v in record.items() if k != "values"}
    print(json.dumps(shown), flush=True)
    return record


def mealpy_worker(args) -> None:
    """Run mealpy on the selected functions; print one JSON record per function."""
    table = function_table(load_benchmarks_by_path(), args.functions)
    for key, fn in table.items():
        runner = lambda seed, fn=fn: run_mealpy(fn, args, seed)  # noqa: E731
        measure(key, "mealpy OriginalWOA", runner, args, with_values=True)


def mealpy_records(args) -> tuple[list[dict], str]:
    """The mealpy cross-check, in-process or through ``--mealpy-python``; with a note."""
    if importlib.util.find_spec("mealpy") is not None:
        import mealpy

        table = function_table(load_benchmarks_by_path(), args.functions)
        records = [
            measure(key, "mealpy OriginalWOA", lambda s, fn=fn: run_mealpy(fn, args, s), args)
            for key, fn in table.items()
        ]
        return records, f"mealpy {mealpy.__version__} (this interpreter)"
    if args.mealpy_python is None:
        return [], "mealpy not importable here and no --mealpy-python given: skipped"
    command = [
        args.mealpy_python,
        str(Path(__file__).resolve()),
        "--mealpy-worker",
        f"--functions={','.join(args.functions)}",
        f"--runs={args.runs}",
        f"--dim={args.dim}",
        f"--whales={args.whales}",
        f"--iters={args.iters}",
        f"--seed={args.seed}",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for record in records:
        print(json.dumps({k: v for k, v in record.items() if k != "values"}), flush=True)
    version = subprocess.run(
        [
            args.mealpy_python,
            "-c",
            "import mealpy, numpy; print(mealpy.__version__, numpy.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return records, f"mealpy {version[0]} (numpy {version[1]}) via {args.mealpy_python}"


def speed(args) -> dict:
    """Seconds for 500 iterations × 30 whales × d = 30 on the sphere (median of repeats)."""
    from lstmkit.woa import WOA
    from lstmkit.woa.benchmarks import sphere

    def per_point(x: np.ndarray) -> float:
        return float(x @ x)

    bounds = [(-100.0, 100.0)] * 30
    out = {}
    for variant in VARIANTS:
        for label, f, vectorized, repeats in (
            ("vectorized", sphere, True, 7),
            ("per point", per_point, False, 3),
        ):
            times = []
            for r in range(repeats):
                opt = WOA(30, 500, seed=r, variant=variant)
                start = time.perf_counter()
                opt.minimize(f, bounds, vectorized=vectorized)
                times.append(time.perf_counter() - start)
            out[f"{variant}, {label}"] = statistics.median(times)
    return out


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e5:
        return f"{value:.3g}"
    return f"{value:.4g}"


def markdown(records: list[dict], paper: dict, keys: list[str], columns: list[str]) -> str:
    cells = {(r["function"], r["variant"]): r for r in records}
    head = "| F | paper (Table 4) | " + " | ".join(columns) + " |"
    lines = [head, "|---" * (len(columns) + 2) + "|"]
    for key in keys:
        if key == "F6":
            quoted = "(compare F6-code)"
        else:
            source = "F6" if key == "F6-code" else key
            mean, std = paper[source]
            quoted = f"{fmt(mean)} ± {fmt(std)}"
        row = [key, quoted]
        for column in columns:
            r = cells.get((key, column))
            row.append("—" if r is None else f"{fmt(r['mean'])} ± {fmt(r['std'])}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--functions", default=",".join(ALL_FUNCTIONS), help="e.g. F1,F5,F9")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--dim", type=int, default=30)
    parser.add_argument("--whales", type=int, default=30)
    parser.add_argument("--iters", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every record (and the speeds) here")
    parser.add_argument("--mealpy-python", help="an interpreter that can import mealpy")
    parser.add_argument("--no-mealpy", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--mealpy-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.functions = [k.strip() for k in args.functions.split(",") if k.strip()]
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for variant in args.variants:
        if variant not in VARIANTS:
            parser.error(f"--variants: expected names among {VARIANTS}, got {variant!r}")
    if args.runs < 1:
        parser.error(f"--runs: expected >= 1, got {args.runs}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.mealpy_worker:
        mealpy_worker(args)
        return
    from lstmkit.woa import benchmarks

    table = function_table(benchmarks, args.functions)
    started = time.perf_counter()
    records = []
    for key, fn in table.items():
        for variant in args.variants:
            runner = lambda seed, fn=fn, variant=variant: run_lstmkit(fn, variant, args, seed)  # noqa: E731
            records.append(measure(key, variant, runner, args))
    columns = list(args.variants)
    mealpy_note = "disabled (--no-mealpy)"
    if not args.no_mealpy:
        extra, mealpy_note = mealpy_records(args)
        records += extra
        if extra:
            columns.append("mealpy OriginalWOA")
    protocol_seconds = time.perf_counter() - started
    speeds = {} if args.no_speed else speed(args)

    print()
    print(
        f"{args.runs} runs, {args.whales} whales, {args.iters} iterations, d = {args.dim}, "
        f"seeds {args.seed}..{args.seed + args.runs - 1}; {protocol_seconds:.0f} s; {mealpy_note}"
    )
    print()
    print(markdown(records, benchmarks.PAPER_WOA, list(table), columns))
    if speeds:
        print()
        print("500 iterations × 30 whales × d = 30, sphere (median wall time):")
        for label, seconds in speeds.items():
            print(f"- {label}: {seconds * 1000:.0f} ms")
    if args.json:
        meta = {
            "runs": args.runs,
            "whales": args.whales,
            "iters": args.iters,
            "dim": args.dim,
            "seed": args.seed,
            "seconds": protocol_seconds,
            "mealpy": mealpy_note,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
        }
        payload = {"meta": meta, "records": records, "speed_seconds": speeds}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
