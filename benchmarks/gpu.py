"""The engine on a GPU: lstmkit against cuDNN (torch.nn) and the loop users write, same run.

    python benchmarks/gpu.py --json benchmarks/results/gpu-DATE.json   # a CUDA device
    python benchmarks/gpu.py --device cpu --quick                       # a smoke run here

Each case times one training step (forward, MSE against a fixed target, backward) and,
for the plain cells, one inference forward (``no_grad``), in float32, one layer, input 32,
T = 200, on one device. Contenders:

* ``torch.nn``: ``torch.nn.LSTM``/``GRU`` — cuDNN's plain cell; for a variant it computes
  another (simpler) function, so its ratio says what the variant costs over cuDNN's plain
  cell, not who is faster at the same work.
* ``auto``: ``lstmkit.LSTM``/``GRU`` as a user gets it (plain cells: native, cuDNN with the
  weights flattened into one buffer — the ratio to torch.nn shows any overhead).
* ``fused``: lstmkit's fused backend; on a GPU its steps are torch calls (the compiled
  whole-loop kernels are CPU code), so it is launch-bound at small sizes.
* ``loop``: the Python loop of torch ops a user writes for the same cell
  (``benchmarks/variants.py``'s ``loop_lstm``/``loop_gru``, input projection hoisted),
  with the same weights; the same-function reference for a variant.

Before timing, every variant's ``fused`` output and gradients are checked against the
``loop`` in float64 at T = 20 on the device, under one seed (the same masks), to 1e-9.

Timing: a warm-up call per contender, then rounds in a fresh seeded random order; each
call is bracketed by ``torch.cuda.synchronize`` (the work is asynchronous); the median
over rounds is reported, and ``speed_vs`` = t(other) / t(contender) from the same rounds.

Output: a table on stdout, then one JSON document (``{"machine", "command", "cases",
"checks", "summary"}``) on the last line.
"""

import argparse
import itertools
import json
import random
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from common import emit, machine
from variants import INPUT, STEPS, VARIANTS, loop_gru, loop_lstm

import lstmkit

PLAIN = {"LSTM": ("LSTM", {}), "GRU": ("GRU", {})}
CHECK_STEPS, CHECK_TOL = 20, 1e-9


def contenders(name, hidden, device, dtype, seed=0):
    """{contender: (forward(x) -> output, parameters)} with the same weights everywhere."""
    mode, opts = {**PLAIN, **VARIANTS}[name]
    torch.manual_seed(seed)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    auto = cls(INPUT, hidden, dtype=dtype, **opts)
    with torch.no_grad():  # layer-norm gains and shifts away from 1 and 0
        for pname, p in auto.named_parameters():
            if pname.startswith("ln_"):
                p.add_(0.1 * torch.randn_like(p))
    fused = cls(INPUT, hidden, dtype=dtype, backend="fused", **opts)
    fused.load_state_dict(auto.state_dict())
    auto, fused = auto.to(device), fused.to(device)
    own = {
        n.removesuffix("_l0"): p.detach().clone().requires_grad_()
        for n, p in fused.named_parameters()
    }
    names = list(own)
    loop = loop_lstm if mode == "LSTM" else loop_gru
    result = {
        "auto": (lambda x: auto(x)[0], list(auto.parameters())),
        "fused": (lambda x: fused(x)[0], list(fused.parameters())),
        "loop": (lambda x: loop(x, own, opts), [own[n] for n in names]),
    }
    ref = getattr(torch.nn, mode)(INPUT, hidden, dtype=dtype)
    if not opts:  # the same weights; for a variant, cuDNN's plain cell of the same size
        ref.load_state_dict(auto.state_dict())
    ref = ref.to(device)
    result["torch.nn"] = (lambda x: ref(x)[0], list(ref.parameters()))
    return result


def check(name, hidden, batch, device):
    """float64, T = 20: fused equals the loop (outputs and every parameter gradient)."""
    cands = contenders(name, hidden, device, torch.float64)
    x = torch.randn(CHECK_STEPS, batch, INPUT, dtype=torch.float64, device=device)
    target = torch.randn(CHECK_STEPS, batch, hidden, dtype=torch.float64, device=device)

    def run(key):
        forward, params = cands[key]
        torch.manual_seed(1)  # the same masks for both (the documented draw order)
        out = forward(x)
        return out.detach(), torch.autograd.grad(F.mse_loss(out, target), params)

    (out, grads), (want, want_grads) = run("fused"), run("loop")
    errs = [(out - want).abs().max().item()]
    errs += [(g - w).abs().max().item() for g, w in zip(grads, want_grads, strict=True)]
    worst = max(errs)
    assert worst <= CHECK_TOL, f"{name} H={hidden}: fused differs from the loop by {worst:.2e}"
    return worst


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_case(name, hidden, batch, train, device, rounds):
    cands = contenders(name, hidden, device, torch.float32)
    x = torch.randn(STEPS, batch, INPUT, device=device)
    target = torch.randn(STEPS, batch, hidden, device=device)

    def step(forward, params):
        def train_step():
            loss = F.mse_loss(forward(x), target)
            for g, p in zip(torch.autograd.grad(loss, params), params, strict=True):
                p.grad = g  # what an optimizer would read

        def infer():
            with torch.no_grad():
                forward(x)

        return train_step if train else infer

    fns = {key: step(*c) for key, c in cands.items()}
    for fn in fns.values():  # warm-up: cuDNN plans, the caching allocator
        fn()
    sync(device)
    times = {key: [] for key in fns}
    rng = random.Random(0)
    for _ in range(rounds):
        for key in rng.sample(list(fns), len(fns)):
            sync(device)
            start = time.perf_counter()
            fns[key]()
            sync(device)
            times[key].append(time.perf_counter() - start)
    med = {key: statistics.median(ts) for key, ts in times.items()}
    return {
        "variant": name,
        "hidden": hidden,
        "batch": batch,
        "T": STEPS,
        "phase": "train" if train else "inference",
        "rounds": rounds,
        "seconds": med,
        "speed_vs_torch": {k: med["torch.nn"] / med[k] for k in med if k != "torch.nn"},
        "speed_vs_loop": {k: med["loop"] / med[k] for k in med if k != "loop"},
    }


def print_table(cases):
    print("speed = t(other) / t(contender); above 1 is faster. torch.nn = cuDNN's plain cell")
    print(
        f"{'variant':14} {'H':>5} {'N':>4} {'phase':9} {'torch ms':>9} {'auto/torch':>10} "
        f"{'fused/torch':>11} {'fused/loop':>10} {'loop ms':>8}"
    )
    for c in cases:
        s, v = c["speed_vs_torch"], c["speed_vs_loop"]
        print(
            f"{c['variant']:14} {c['hidden']:5d} {c['batch']:4d} {c['phase']:9} "
            f"{c['seconds']['torch.nn'] * 1e3:9.2f} {s['auto']:10.2f} {s['fused']:11.2f} "
            f"{v['fused']:10.2f} {c['seconds']['loop'] * 1e3:8.2f}"
        )


def summarise(cases):
    plain = [c for c in cases if c["variant"] in PLAIN]
    variants = [c for c in cases if c["variant"] not in PLAIN]
    return {
        "auto_vs_cudnn_plain_min": min((c["speed_vs_torch"]["auto"] for c in plain), default=None),
        "auto_vs_cudnn_plain_max": max((c["speed_vs_torch"]["auto"] for c in plain), default=None),
        "fused_vs_loop_variants_min": min(
            (c["speed_vs_loop"]["fused"] for c in variants), default=None
        ),
        "fused_vs_loop_variants_median": (
            statistics.median(c["speed_vs_loop"]["fused"] for c in variants) if variants else None
        ),
        "variant_cost_over_cudnn_median": (
            statistics.median(1 / c["speed_vs_torch"]["fused"] for c in variants)
            if variants
            else None
        ),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke run")
    parser.add_argument("--quick", action="store_true", help="one size, LSTM/GRU and two variants")
    parser.add_argument("--hidden", default="64,256,1024", help="hidden sizes, comma-separated")
    parser.add_argument("--batch", default="32,256", help="batch sizes, comma-separated")
    parser.add_argument("--rounds", type=int, default=10, help="timed rounds per case")
    parser.add_argument("--only", help="comma-separated cells to time (LSTM, GRU, LN-LSTM, ...)")
    parser.add_argument("--json", help="also write the JSON document to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here (use --device cpu)")
    names = [*PLAIN, *VARIANTS]
    hiddens = [int(v) for v in args.hidden.split(",")]
    batches = [int(v) for v in args.batch.split(",")]
    if args.quick:
        names, hiddens, batches = ["LSTM", "GRU", "LN-LSTM", "zoneout-GRU"], [32], [8]
    if args.only:
        unknown = set(args.only.split(",")) - set(names)
        if unknown:
            parser.error(f"--only: expected names from {', '.join(names)}, got {sorted(unknown)}")
        names = args.only.split(",")
    checks = {name: check(name, 16, 4, device) for name in names if name not in PLAIN}
    print("equal work (max abs difference, float64):", json.dumps(checks), file=sys.stderr)
    cases = []
    for name, hidden, batch in itertools.product(names, hiddens, batches):
        for train in (True, False) if name in PLAIN else (True,):
            case = time_case(name, hidden, batch, train, device, args.rounds)
            cases.append(case)
            print(json.dumps(case), file=sys.stderr, flush=True)
    print_table(cases)
    doc = {
        "machine": machine(),
        "command": "python benchmarks/gpu.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "checks": checks,
        "cases": cases,
        "summary": summarise(cases),
    }
    emit(doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
