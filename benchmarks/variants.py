"""Cell-variant speed: lstmkit's ``fused`` backend against the loops users write today.

    python benchmarks/variants.py                   # hidden 64, 256, 512 (~15-25 min on 1 core)
    python benchmarks/variants.py --quick           # hidden 64 and 256, fewer rounds
    python benchmarks/variants.py --json benchmarks/results/variants-DATE.json
    python benchmarks/variants.py --profile LN-LSTM --hidden 256   # where the time goes

The bar (issue 6): a ``fused`` variant is at least 2x faster in training than the plain
Python loop of torch ops that users write today for the same variant, at T = 200.

Each case times one training step — forward, MSE loss against a fixed random target,
backward — in float32 at T = 200, batch 32, input 32, one layer, training mode (masks
drawn every step, as in training). Contenders:

* ``fused``: ``lstmkit.LSTM/GRU(..., backend="fused")`` with its compiled loops
  (``lstmkit.recurrence.kernels``, built on first use).
* ``fused_python``: the same backend with its python steps (``LSTMKIT_KERNELS=python``),
  what runs where the compiled loops cannot be built.
* ``loop``: the loop of torch ops a user writes (matmul, ``F.layer_norm``, sigmoid, tanh,
  autograd). It is given every advantage the fused path has that a user can write in a
  few lines: the input projection (and its layer norm) for all steps in one call before
  the loop, split into steps with ``unbind`` (indexing ``gx[t]`` instead costs a
  (T, N, G·H) zero fill per step in the backward: 8.6 s instead of 0.8 s at
  H = 512); only the recurrent matmul and the gate math stay inside the loop.
* ``loop_step``: the same loop with the input side computed inside it from ``x[t]``, as
  a cell module called once per step does (the form most hand-written variant cells
  take); its input-weight gradient is then accumulated step by step by autograd.
* ``cell`` (recurrent dropout and zoneout only): the common loop over
  ``torch.nn.LSTMCell`` / ``torch.nn.GRUCell`` (torch's fused cell kernel, the input
  matmul inside every step) with the masks applied around the cell.

``floor`` is not a contender but a bound: the matrix products alone that every exact
training step makes (:func:`matmul_floor`); t(loop) / t(floor) is the most any
implementation could gain over the loop with this BLAS on this machine.

Equal work is checked before timing, in float64 at T = 20 with the same weights and the
masks drawn under one seed: the outputs and every parameter gradient of ``loop``,
``loop_step`` and ``cell`` must equal lstmkit's (to 1e-9). One exception, said in the record: the
``GRUCell`` loop with recurrent dropout lerps towards the dropped state (the cell cannot
see the un-dropped one), so it computes a different function with the same work; it is
checked in evaluation (mask 1), where the two agree.

Timing as in ``benchmarks/engine.py``: a warm-up call per contender, then rounds in which
the contenders run in a fresh seeded random order; the median over rounds is reported,
and ``ratio`` = t(baseline) / t(fused) is taken from the same rounds. Intra-op threads
are fixed with ``torch.set_num_threads`` (``--threads``, default 1: the machine the
figures in docs/benchmarks.md come from has 2 shared cores).

Output: a table on stdout, then one JSON document (``{"machine", "command", "cases",
"summary"}``) on the last line.
"""

import argparse
import datetime
import json
import os
import random
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from common import emit, machine

import lstmkit
from lstmkit.recurrence import kernels

STEPS, BATCH, INPUT = 200, 32, 32
CHECK_STEPS, CHECK_TOL = 20, 1e-9

# name -> (mode, options); zoneout rates as Krueger et al.'s LSTM (0.05 on h, 0.5 on C)
VARIANTS = {
    "LN-LSTM": ("LSTM", {"layer_norm": True}),
    "LN-GRU": ("GRU", {"layer_norm": True}),
    "peephole-LSTM": ("LSTM", {"peephole": True}),
    "rdrop-LSTM": ("LSTM", {"recurrent_dropout": 0.25}),
    "zoneout-LSTM": ("LSTM", {"zoneout": 0.05, "zoneout_cell": 0.5}),
    "rdrop-GRU": ("GRU", {"recurrent_dropout": 0.25}),
    "zoneout-GRU": ("GRU", {"zoneout": 0.1}),
    "all-LSTM": (
        "LSTM",
        {
            "layer_norm": True,
            "peephole": True,
            "recurrent_dropout": 0.25,
            "zoneout": 0.05,
            "zoneout_cell": 0.5,
        },
    ),
}
CELL_VARIANTS = {"rdrop-LSTM", "zoneout-LSTM", "rdrop-GRU", "zoneout-GRU"}


# -- the masks, drawn as docs/variants.md says (recurrent, zoneout h, zoneout C) ----------


def draw_masks(opts, steps, batch, hidden, like):
    """(m (N, H) scaled by 1/(1-p) or None, d_h (T, N, H) or None, d_c or None)."""
    rec = d_h = d_c = None
    p = opts.get("recurrent_dropout", 0.0)
    if p > 0:
        rec = like.new_empty(batch, hidden).bernoulli_(1 - p).div_(1 - p)
    if opts.get("zoneout", 0.0) > 0:
        d_h = like.new_empty(steps, batch, hidden).bernoulli_(opts["zoneout"])
    if opts.get("zoneout_cell", 0.0) > 0:
        d_c = like.new_empty(steps, batch, hidden).bernoulli_(opts["zoneout_cell"])
    return rec, d_h, d_c


# -- the loops users write ----------------------------------------------------------------


def input_steps(x, w, layer_norm, hoist, bias):
    """The input side of every step: x_t W_ih^T, normalised and scaled, plus ``bias``.

    ``hoist``: one call for all steps, split with ``unbind`` (not ``gx[t]``: each select's
    backward would fill a (T, N, G·H) zero); else computed inside the loop from ``x[t]``,
    as a cell module called once per step does.
    """

    def side(v):
        a = v @ w["weight_ih"].T
        if layer_norm:
            return F.layer_norm(a, a.shape[-1:], w["ln_weight_ih"], bias)
        return a if bias is None else a + bias

    if hoist:
        return side(x).unbind(0)
    return (side(x_t) for x_t in x)


def loop_lstm(x, w, opts, hoist=True):
    """LSTM variant as a Python loop of torch ops; w holds weight_ih, ..., weight_ph."""
    steps, batch, _ = x.shape
    hidden = w["weight_hh"].shape[1]
    rec, d_h, d_c = draw_masks(opts, steps, batch, hidden, x)
    layer_norm, peephole = opts.get("layer_norm", False), opts.get("peephole", False)
    bias = w["bias_ih"] if layer_norm else w["bias_ih"] + w["bias_hh"]
    gx_t = input_steps(x, w, layer_norm, hoist, bias)
    if peephole:
        p_i, p_f, p_o = w["weight_ph"].chunk(3)
    h = x.new_zeros(batch, hidden)
    c = x.new_zeros(batch, hidden)
    outs = []
    for t, g_x in enumerate(gx_t):
        h_bar = h if rec is None else h * rec
        if layer_norm:
            pre = g_x + F.layer_norm(
                h_bar @ w["weight_hh"].T, (4 * hidden,), w["ln_weight_hh"], w["bias_hh"]
            )
        else:
            pre = torch.addmm(g_x, h_bar, w["weight_hh"].T)
        i, f, g, o = pre.chunk(4, 1)
        if peephole:
            i, f = i + p_i * c, f + p_f * c
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if peephole:
            o = o + p_o * c_new
        if layer_norm:
            cell_out = F.layer_norm(c_new, (hidden,), w["ln_weight_c"], w["ln_bias_c"])
        else:
            cell_out = c_new
        h_new = torch.sigmoid(o) * torch.tanh(cell_out)
        c = c_new if d_c is None else torch.lerp(c_new, c, d_c[t])  # d c + (1-d) c_new
        h = h_new if d_h is None else torch.lerp(h_new, h, d_h[t])
        outs.append(h)
    return torch.stack(outs)


def loop_gru(x, w, opts, hoist=True):
    """GRU variant (reset after the matmul) as a Python loop of torch ops."""
    steps, batch, _ = x.shape
    hidden = w["weight_hh"].shape[1]
    rec, d_h, _ = draw_masks(opts, steps, batch, hidden, x)
    layer_norm = opts.get("layer_norm", False)
    gx_t = input_steps(x, w, layer_norm, hoist, w["bias_ih"])
    h = x.new_zeros(batch, hidden)
    outs = []
    for t, g_x in enumerate(gx_t):
        h_bar = h if rec is None else h * rec
        gh = h_bar @ w["weight_hh"].T
        if layer_norm:
            gh = F.layer_norm(gh, (3 * hidden,), w["ln_weight_hh"], w["bias_hh"])
        else:
            gh = gh + w["bias_hh"]
        x_r, x_z, x_n = g_x.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h_new = torch.lerp(n, h, z)  # (1-z) n + z h
        h = h_new if d_h is None else torch.lerp(h_new, h, d_h[t])
        outs.append(h)
    return torch.stack(outs)


def loop_cell(x, cell, opts):
    """The loop over torch.nn.LSTMCell / GRUCell with the masks applied around the cell."""
    steps, batch, _ = x.shape
    hidden = cell.hidden_size
    lstm = isinstance(cell, torch.nn.LSTMCell)
    rec, d_h, d_c = draw_masks(opts, steps, batch, hidden, x)
    h = x.new_zeros(batch, hidden)
    c = x.new_zeros(batch, hidden)
    outs = []
    for t in range(steps):
        h_bar = h if rec is None else h * rec
        if lstm:
            h_new, c_new = cell(x[t], (h_bar, c))
            c = c_new if d_c is None else torch.lerp(c_new, c, d_c[t])
        else:
            h_new = cell(x[t], h_bar)  # lerps towards h_bar: see the module docstring
        h = h_new if d_h is None else torch.lerp(h_new, h, d_h[t])
        outs.append(h)
    return torch.stack(outs)


# -- building the contenders --------------------------------------------------------------


def build(variant, hidden, dtype, seed=0):
    """lstmkit's module and {name: (forward(x, noisy) -> output, parameters)}.

    Every contender has its own copy of the module's weights; its parameter list is in
    the module's order. ``noisy=False`` runs without masks (evaluation for lstmkit), which
    equals the training function only for recurrent dropout (m = 1); it is used for the
    one check that needs it (see the module docstring).
    """
    mode, opts = VARIANTS[variant]
    torch.manual_seed(seed)
    cls = lstmkit.LSTM if mode == "LSTM" else lstmkit.GRU
    module = cls(INPUT, hidden, backend="fused", dtype=dtype, **opts)
    # gains and shifts away from 1 and 0, so the check sees them used right
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("ln_"):
                p.add_(0.1 * torch.randn_like(p))
    names = [name.removesuffix("_l0") for name, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    own = dict(zip(names, params, strict=True))
    loop = loop_lstm if mode == "LSTM" else loop_gru

    def fused(x, noisy):
        module.train(noisy)
        return module(x)[0]

    def fused_python(x, noisy):
        with kernels.use("python"):
            return fused(x, noisy)

    step_own = {name: p.detach().clone().requires_grad_() for name, p in own.items()}
    contenders = {
        "fused": (fused, list(module.parameters())),
        "fused_python": (fused_python, list(module.parameters())),
        "loop": (lambda x, noisy: loop(x, own, opts if noisy else {}), [own[n] for n in names]),
        "loop_step": (
            lambda x, noisy: loop(x, step_own, opts if noisy else {}, hoist=False),
            [step_own[n] for n in names],
        ),
    }
    if variant in CELL_VARIANTS:
        cell = (torch.nn.LSTMCell if mode == "LSTM" else torch.nn.GRUCell)(
            INPUT, hidden, dtype=dtype
        )
        with torch.no_grad():
            for name, p in cell.named_parameters():
                p.copy_(own[name])
        contenders["cell"] = (
            lambda x, noisy: loop_cell(x, cell, opts if noisy else {}),
            [getattr(cell, n) for n in names],
        )
    return module, contenders


def check_equal_work(variant, hidden):
    """float64, T = 20: each baseline's output and parameter gradients equal lstmkit's.

    The masks come from one seed: every contender draws them in the documented order.
    Returns {baseline: "train" or "eval"}, the mode it was checked in; raises
    AssertionError on a mismatch.
    """
    module, contenders = build(variant, hidden, torch.float64)
    names = [name for name, _ in module.named_parameters()]
    x = torch.randn(CHECK_STEPS, BATCH, INPUT, dtype=torch.float64)
    target = torch.randn(CHECK_STEPS, BATCH, hidden, dtype=torch.float64)

    def run(name, noisy):
        forward, params = contenders[name]
        torch.manual_seed(1)
        out = forward(x, noisy)
        return out.detach(), torch.autograd.grad(F.mse_loss(out, target), params)

    checked = {}
    for name in contenders:
        if name == "fused":
            continue
        # the GRUCell loop lerps towards the dropped state: equal only without the mask
        noisy = not (name == "cell" and variant == "rdrop-GRU")
        if not noisy:
            assert set(VARIANTS[variant][1]) == {"recurrent_dropout"}
        (out, grads), (want, want_grads) = run(name, noisy), run("fused", noisy)
        err = (out - want).abs().max().item()
        assert err <= CHECK_TOL, f"{variant} H={hidden} {name}: output differs by {err:.2e}"
        for pname, g, w in zip(names, grads, want_grads, strict=True):
            err = (g - w).abs().max().item()
            assert err <= CHECK_TOL, f"{variant} H={hidden} {name}: d{pname} differs by {err:.2e}"
        checked[name] = "train" if noisy else "eval"
    return checked


# -- timing -------------------------------------------------------------------------------


def matmul_floor(mode, hidden, x):
    """The matrix products every exact training step of one direction makes, and nothing
    else: the input projection, T recurrent products forward and T backward, and the two
    weight gradients over all steps (x needs no gradient), into preallocated outputs.

    The loop makes these same products (its weight gradients as T small ones), so
    t(loop) / t(floor) bounds what any implementation of the step on this machine and
    BLAS can gain over the loop.
    """
    gates = (4 if mode == "LSTM" else 3) * hidden
    w_ih, w_hh = torch.randn(gates, INPUT), torch.randn(gates, hidden)
    flat = x.reshape(-1, INPUT)
    gx, hs = torch.empty(STEPS * BATCH, gates), torch.randn(STEPS, BATCH, hidden)
    grad = torch.randn(STEPS, BATCH, gates)
    rec, back = torch.empty(BATCH, gates), torch.empty(BATCH, hidden)
    dw_ih, dw_hh = torch.empty(gates, INPUT), torch.empty(gates, hidden)

    def step():
        torch.mm(flat, w_ih.T, out=gx)
        for t in range(STEPS):
            torch.mm(hs[t], w_hh.T, out=rec)
        for t in range(STEPS):
            torch.mm(grad[t], w_hh, out=back)
        torch.mm(grad.view(-1, gates).T, hs.view(-1, hidden), out=dw_hh)
        torch.mm(grad.view(-1, gates).T, flat, out=dw_ih)

    return step


def time_case(variant, hidden, rounds, min_seconds):
    """Median training-step seconds of every contender, interleaved in shuffled rounds."""
    _, contenders = build(variant, hidden, torch.float32)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(STEPS, BATCH, INPUT, generator=gen)
    target = torch.randn(STEPS, BATCH, hidden, generator=gen)

    def step_fn(forward, params):
        def step():
            out = forward(x, True)
            F.mse_loss(out, target).backward()
            for p in params:
                p.grad = None

        return step

    fns = {name: step_fn(*c) for name, c in contenders.items()}
    fns["floor"] = matmul_floor(VARIANTS[variant][0], hidden, x)
    warm = []
    for fn in fns.values():  # warm-up: allocator, oneDNN primitive cache
        start = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - start)
    rounds = max(rounds, min(30, int(min_seconds / max(min(warm), 1e-6))))
    times = {name: [] for name in fns}
    rng = random.Random(0)
    for _ in range(rounds):
        for name in rng.sample(list(fns), len(fns)):
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return rounds, med, times


def profile_case(variant, hidden, repeats=3, row_limit=25):
    """torch.profiler of every contender's training step: the ops that take the time."""
    from torch.profiler import ProfilerActivity, profile

    _, contenders = build(variant, hidden, torch.float32)
    x = torch.randn(STEPS, BATCH, INPUT)
    target = torch.randn(STEPS, BATCH, hidden)
    for name, (forward, params) in contenders.items():

        def step(forward=forward, params=params):
            out = forward(x, True)
            F.mse_loss(out, target).backward()
            for p in params:
                p.grad = None

        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(repeats):
                step()
        print(f"-- {name} ({repeats} training steps)")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit))


def _commit() -> str:
    """HEAD of the checkout lstmkit is imported from, with "+dirty" when its source differs."""
    src = os.path.dirname(os.path.dirname(os.path.abspath(lstmkit.__file__)))
    try:
        head = subprocess.run(
            ["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", src, "status", "--porcelain", "--", "lstmkit"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+dirty" if dirty else "")


def print_table(cases):
    baselines = ("loop", "loop_step", "cell")
    print("ratio = t(baseline) / t(fused); the bar is >= 2 against the loops of torch ops")
    print(
        f"{'variant':14} {'H':>4} {'fused ms':>9} {'loop ms':>8} "
        + " ".join(f"{b + '/fused':>15}" for b in baselines)
        + f" {'loop/python':>12} {'loop/floor':>11}"
    )
    for c in cases:
        sec, ratio = c["seconds"], c["ratio"]
        ratios = " ".join(f"{ratio[b]:15.2f}" if b in ratio else f"{'-':>15}" for b in baselines)
        python, ceiling = sec["loop"] / sec["fused_python"], sec["loop"] / sec["floor"]
        print(
            f"{c['variant']:14} {c['hidden']:4d} {sec['fused'] * 1e3:9.1f} "
            f"{sec['loop'] * 1e3:8.1f} {ratios} {python:12.2f} {ceiling:11.2f}"
        )
    print("checked equal to lstmkit in training mode, except rdrop-GRU's cell (evaluation)")
    print("loop/python: against the fused kernels' python steps (LSTMKIT_KERNELS=python);")
    print("loop/floor: the loop against its matrix products alone, the most any step could gain")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="hidden 64 and 256, 3 rounds")
    parser.add_argument("--hidden", default="64,256,512", help="hidden sizes, comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per case (at least)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--json", help="also write the JSON document to this file")
    parser.add_argument("--profile", metavar="VARIANT", help="profile every contender and stop")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    hiddens = [int(v) for v in args.hidden.split(",")]
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: expected names from {', '.join(VARIANTS)}, got {unknown}")
    if args.profile:
        if args.profile not in VARIANTS:
            parser.error(f"--profile: expected one of {', '.join(VARIANTS)}, got {args.profile}")
        for hidden in hiddens:
            print(f"== {args.profile} H={hidden}")
            profile_case(args.profile, hidden)
        return 0
    rounds, min_seconds = (3, 0.5) if args.quick else (args.rounds, 2.0)
    if args.quick and args.hidden == parser.get_default("hidden"):
        hiddens = [64, 256]
    load_before = list(os.getloadavg())  # the machine is shared: say how busy it was
    cases = []
    for hidden in hiddens:
        for variant in variants:
            checked = check_equal_work(variant, hidden)
            n, med, times = time_case(variant, hidden, rounds, min_seconds)
            mode, opts = VARIANTS[variant]
            case = {
                "variant": variant,
                "mode": mode,
                "options": opts,
                "T": STEPS,
                "batch": BATCH,
                "input": INPUT,
                "hidden": hidden,
                "dtype": "float32",
                "rounds": n,
                "seconds": med,
                "seconds_all": times,
                "ratio": {k: med[k] / med["fused"] for k in med if k not in ("fused", "floor")},
                "ceiling": med["loop"] / med["floor"],
                "checked": checked,
            }
            if variant == "rdrop-GRU":
                case["note"] = "cell: GRUCell lerps towards the dropped state (same work)"
            cases.append(case)
            print(
                json.dumps({k: v for k, v in case.items() if k != "seconds_all"}),
                file=sys.stderr,
                flush=True,
            )
    print_table(cases)

    def ratios(baseline):
        return {
            f"{c['variant']} H={c['hidden']}": round(c["ratio"][baseline], 2)
            for c in cases
            if baseline in c["ratio"]
        }

    doc = {
        "machine": machine()
        | {
            "date": datetime.date.today().isoformat(),
            "lstmkit_commit": _commit(),
            "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
            "load_average_before": load_before,
            "load_average_after": list(os.getloadavg()),
        },
        "command": "python benchmarks/variants.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "cases": cases,
        "summary": {
            f"{b}_over_fused": {
                "min": min(ratios(b).values()),
                "median": statistics.median(ratios(b).values()),
                "below_2x": {k: v for k, v in ratios(b).items() if v < 2},
                "all": ratios(b),
            }
            for b in ("loop", "loop_step", "cell", "fused_python")
            if ratios(b)
        }
        | {
            "loop_over_floor": {
                f"{c['variant']} H={c['hidden']}": round(c["ceiling"], 2) for c in cases
            }
        },
    }
    emit(doc, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
