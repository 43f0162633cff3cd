"""Engine benchmark: every lstmkit backend against torch.nn in the same run.

    python benchmarks/engine.py                     # the full grid (tens of minutes on 2 cores)
    python benchmarks/engine.py --quick             # a small grid, a few minutes
    python benchmarks/engine.py --json out.json     # also write all results to a file

Grid: T in {50, 200}, batch in {16, 64}, hidden in {32, 128, 512}; LSTM and GRU; uni- and
bidirectional; 1 and 2 layers; inference (no_grad forward) and a training step (forward +
backward of a random cotangent). Input size = hidden size. ``--proj-size P``: the LSTM
cases with a projection of size P (LSTMP; torch.nn then runs its default, non-oneDNN
implementation).

For each case every backend and torch.nn run with the same weights, interleaved round by
round in a seeded random order (the machine is shared and noisy, so ratios taken in the
same rounds are what count); the median of the rounds is reported (at least 5 rounds,
more for short steps so that each backend is timed for about 0.3 s). ``speed`` =
t(torch.nn) / t(backend): above 1 is faster than torch.nn. GFLOP/s counts the matmul
work only (training = 3x the forward). Peak memory of a training step is measured in a
fresh process per backend, as the rise of the peak resident set over the resident set
before the step.

Output: a table on stdout, then one JSON document (``{"cases": [...], "memory": [...],
"summary": {...}}``) on the last line.
"""

import argparse
import itertools
import json
import random
import statistics
import subprocess
import sys
import time

import torch
from common import emit, machine

import lstmkit

BACKENDS = ("reference", "fused", "native", "auto")


def flops_forward(
    mode: str, steps: int, batch: int, hidden: int, layers: int, dirs: int, proj: int = 0
) -> int:
    """Multiply-adds x 2 of the input, recurrent and projection matmuls (input size =
    hidden size; h is ``proj`` wide with a projection)."""
    gates = 4 if mode == "LSTM" else 3
    width = proj or hidden
    per_layer = 0
    for layer in range(layers):
        in_size = hidden if layer == 0 else width * dirs
        per_layer += dirs * 2 * steps * batch * gates * hidden * (in_size + width)
        per_layer += dirs * 2 * steps * batch * hidden * proj
    return per_layer


def make_models(mode: str, hidden: int, layers: int, bidirectional: bool, proj: int = 0):
    torch.manual_seed(0)
    extra = {"proj_size": proj} if proj else {}
    ref = getattr(torch.nn, mode)(
        hidden, hidden, num_layers=layers, bidirectional=bidirectional, **extra
    )
    models = {"torch.nn": ref}
    for name in BACKENDS:
        ours = getattr(lstmkit, mode)(
            hidden, hidden, num_layers=layers, bidirectional=bidirectional, backend=name, **extra
        )
        ours.load_state_dict(ref.state_dict())
        models[name] = ours
    return models


def step_fn(model, x, grad, train: bool):
    if not train:

        def infer():
            with torch.no_grad():
                model(x)

        return infer

    def train_step():
        out, _ = model(x)
        out.backward(grad)
        model.zero_grad(set_to_none=True)
        x.grad = None

    return train_step


def time_case(mode, steps, batch, hidden, layers, bidirectional, train, rounds, backends, proj=0):
    proj = proj if mode == "LSTM" else 0
    models = make_models(mode, hidden, layers, bidirectional, proj)
    models = {k: v for k, v in models.items() if k == "torch.nn" or k in backends}
    x = torch.randn(steps, batch, hidden, requires_grad=train)
    dirs = 2 if bidirectional else 1
    grad = torch.randn(steps, batch, dirs * (proj or hidden))
    fns = {name: step_fn(m, x, grad, train) for name, m in models.items()}
    warm = []
    for fn in fns.values():  # warm-up: allocator, oneDNN primitive cache
        start = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - start)
    # short steps are noisy: time at least ~0.3 s per backend (at most 50 rounds)
    rounds = max(rounds, min(50, int(0.3 / max(min(warm), 1e-6))))
    times = {name: [] for name in fns}
    names = list(fns)
    # a fresh seeded order every round: a rotation would keep the cyclic order, so each
    # backend would always run right after the same one (after `fused`'s large buffers)
    rng = random.Random(0)
    for _ in range(rounds):
        for name in rng.sample(names, len(names)):
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    work = flops_forward(mode, steps, batch, hidden, layers, dirs, proj) * (3 if train else 1)
    auto_choice = models["auto"].last_backend if "auto" in models else None
    return {
        "rounds": rounds,
        "mode": mode,
        "T": steps,
        "batch": batch,
        "hidden": hidden,
        "proj_size": proj,
        "layers": layers,
        "bidirectional": bidirectional,
        "phase": "train" if train else "inference",
        "auto_ran": auto_choice,
        "seconds": med,
        "speed_vs_torch": {n: med["torch.nn"] / med[n] for n in med if n != "torch.nn"},
        "gflops": {n: work / med[n] / 1e9 for n in med},
    }


_MEMORY_CHILD = """
import resource, sys, torch, lstmkit
mode, steps, batch, hidden, bi, name = sys.argv[1:]
steps, batch, hidden, bi = int(steps), int(batch), int(hidden), bi == "1"
torch.manual_seed(0)
if name == "torch.nn":
    m = getattr(torch.nn, mode)(hidden, hidden, bidirectional=bi)
else:
    m = getattr(lstmkit, mode)(hidden, hidden, bidirectional=bi, backend=name)
x = torch.randn(steps, batch, hidden, requires_grad=True)
g = torch.randn(steps, batch, (2 if bi else 1) * hidden)
def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024
# warm-up on a tiny batch so lazily loaded kernels are not counted as the step's memory
small = x.detach()[:2, :2].requires_grad_()
o, _ = m(small)
o.backward(torch.ones_like(o))
m.zero_grad(set_to_none=True)
base = rss_kib()
out, _ = m(x)
out.backward(g)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(max(peak - base, 0))
"""


def memory_case(mode, steps, batch, hidden, bidirectional, names):
    result = {
        "mode": mode,
        "T": steps,
        "batch": batch,
        "hidden": hidden,
        "bidirectional": bidirectional,
        "peak_mib": {},
    }
    for name in names:
        args = [mode, str(steps), str(batch), str(hidden), "1" if bidirectional else "0", name]
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, *args],
            capture_output=True,
            text=True,
            check=True,
        )
        result["peak_mib"][name] = int(out.stdout.strip().splitlines()[-1]) / 1024
    ref = result["peak_mib"]["torch.nn"]
    result["ratio_vs_torch"] = {n: v / ref for n, v in result["peak_mib"].items() if ref > 0}
    return result


def print_table(cases, memory):
    head = (
        f"{'mode':4} {'T':>4} {'N':>3} {'H':>4} {'L':>1} {'bi':>2} {'phase':9} "
        f"{'torch ms':>9} " + " ".join(f"{b:>9}" for b in BACKENDS) + "  auto_ran  GF/s(auto)"
    )
    print("speed = t(torch.nn) / t(backend); above 1 is faster than torch.nn")
    print(head)
    for c in cases:
        speeds = " ".join(
            f"{c['speed_vs_torch'][b]:9.2f}" if b in c["speed_vs_torch"] else f"{'-':>9}"
            for b in BACKENDS
        )
        gf = c["gflops"].get("auto", float("nan"))
        print(
            f"{c['mode']:4} {c['T']:4d} {c['batch']:3d} {c['hidden']:4d} {c['layers']:1d} "
            f"{'y' if c['bidirectional'] else 'n':>2} {c['phase']:9} "
            f"{c['seconds']['torch.nn'] * 1e3:9.2f} {speeds}  {c['auto_ran'] or '-':8}  {gf:8.1f}"
        )
    if memory:
        print("\npeak memory of one training step (MiB), ratio to torch.nn")
        for m in memory:
            cells = "  ".join(
                f"{n} {v:.1f} ({m['ratio_vs_torch'][n]:.2f}x)" for n, v in m["peak_mib"].items()
            )
            print(
                f"{m['mode']:4} T={m['T']} N={m['batch']} H={m['hidden']} "
                f"bi={'y' if m['bidirectional'] else 'n'}: {cells}"
            )


def summarise(cases, memory):
    def worst(backend, phase=None, pred=lambda c: True):
        vals = [
            c["speed_vs_torch"][backend]
            for c in cases
            if backend in c["speed_vs_torch"] and (phase is None or c["phase"] == phase) and pred(c)
        ]
        return min(vals) if vals else None

    fused_vs_ref = [
        c["seconds"]["reference"] / c["seconds"]["fused"]
        for c in cases
        if c["phase"] == "train"
        and c["T"] == 200
        and "reference" in c["seconds"]
        and "fused" in c["seconds"]
    ]
    gru_train = [
        (c["hidden"], c["speed_vs_torch"]["fused"])
        for c in cases
        if c["mode"] == "GRU" and c["phase"] == "train" and "fused" in c["speed_vs_torch"]
    ]
    return {
        "auto_min_speed_vs_torch": worst("auto"),
        "auto_min_speed_train": worst("auto", "train"),
        "auto_min_speed_inference": worst("auto", "inference"),
        "fused_over_reference_train_T200_min": min(fused_vs_ref) if fused_vs_ref else None,
        "fused_over_reference_train_T200_median": (
            statistics.median(fused_vs_ref) if fused_vs_ref else None
        ),
        "fused_gru_train_speed_vs_torch_by_hidden": {
            h: [round(s, 2) for hh, s in gru_train if hh == h]
            for h in sorted({h for h, _ in gru_train})
        },
        "fused_peak_memory_ratio_max": max(
            (m["ratio_vs_torch"]["fused"] for m in memory if "fused" in m["ratio_vs_torch"]),
            default=None,
        ),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small grid for a smoke run")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per case")
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated subset of " + ",".join(BACKENDS),
    )
    parser.add_argument("--modes", default="LSTM,GRU")
    parser.add_argument("--T", default="50,200", help="sequence lengths, comma-separated")
    parser.add_argument("--batch", default="16,64", help="batch sizes, comma-separated")
    parser.add_argument("--hidden", default="32,128,512", help="hidden sizes, comma-separated")
    parser.add_argument("--proj-size", type=int, default=0, help="LSTM projection size (0: none)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory part")
    parser.add_argument("--memory-only", action="store_true", help="only the peak-memory part")
    parser.add_argument("--json", help="also write the JSON document to this file")
    args = parser.parse_args(argv)
    backends = tuple(b for b in args.backends.split(",") if b)
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(
            f"--backends: expected names from {', '.join(BACKENDS)}, got {sorted(unknown)}"
        )
    modes = tuple(args.modes.split(","))
    if args.quick:
        grid = itertools.product(modes, (50,), (16,), (32, 128), (1,), (False, True), (False, True))
    else:
        ints = [
            tuple(int(v) for v in getattr(args, k).split(",")) for k in ("T", "batch", "hidden")
        ]
        grid = itertools.product(modes, *ints, (1, 2), (False, True), (False, True))
    cases = []
    if args.memory_only:
        grid = ()
    for mode, steps, batch, hidden, layers, bi, train in grid:
        case = time_case(
            mode, steps, batch, hidden, layers, bi, train, args.rounds, backends, args.proj_size
        )
        cases.append(case)
        print(json.dumps(case), file=sys.stderr, flush=True)
    memory = []
    if not args.no_memory:
        mem_grid = itertools.product(
            modes, (200,), (64,), (32, 128) if args.quick else (128, 512), (False, True)
        )
        for mode, steps, batch, hidden, bi in mem_grid:
            names = ["torch.nn", *[b for b in backends if b != "reference"]]
            memory.append(memory_case(mode, steps, batch, hidden, bi, names))
    print_table(cases, memory)
    doc = {
        "machine": machine(),
        "command": "python benchmarks/engine.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "cases": cases,
        "memory": memory,
        "summary": summarise(cases, memory),
    }
    emit(doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
