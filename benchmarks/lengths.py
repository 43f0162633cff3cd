"""The LSTM training step on a batch of unequal lengths: torch's native kernel (which packs
the batch) against our masked fused BPTT, same run, and what ``backend="auto"`` picks.

    python benchmarks/lengths.py --out results/lengths-cpu.json

Each case: a bidirectional LSTM (8 inputs, hidden H, batch N, T steps), lengths drawn in
[T/4, T] with one full sequence; the time of forward + backward of ``out.sum() + h.sum()``,
median of ``--rounds`` after two warm-up steps. ``native_over_fused`` > 1: fused is faster.
The rule in lstmkit.backends (FUSED_LSTM_MIN_STEPS_PADDED_CPU) comes from this table.
"""

import argparse
import statistics
import sys
import time

import torch
from common import emit, machine

import lstmkit
from lstmkit import backends


def case(hidden: int, batch: int, steps: int, rounds: int) -> dict:
    torch.manual_seed(0)
    x = torch.randn(batch, steps, 8)
    lengths = torch.randint(steps // 4, steps + 1, (batch,))
    lengths[0] = steps
    ms = {}
    for backend in ("native", "fused"):
        m = lstmkit.LSTM(8, hidden, batch_first=True, bidirectional=True, backend=backend)

        def step(m=m):
            out, (h, _) = m(x, lengths=lengths)
            (out.sum() + h.sum()).backward()

        for _ in range(2):
            step()
        times = []
        for _ in range(rounds):
            began = time.perf_counter()
            step()
            times.append(time.perf_counter() - began)
        ms[backend] = 1000 * statistics.median(times)
    auto = lstmkit.LSTM(8, hidden, batch_first=True, bidirectional=True)
    row = {
        "hidden": hidden,
        "batch": batch,
        "steps": steps,
        "native_ms": ms["native"],
        "fused_ms": ms["fused"],
        "native_over_fused": ms["native"] / ms["fused"],
        "auto": auto.backend_for(x, needs_grad=True, lengths=lengths),
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", default="64,256")
    parser.add_argument(
        "--cases",
        default="16x29,16x48,64x48,16x128,64x128,32x200",
        help="batch x steps, comma-separated",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="write the JSON document here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [
        case(h, *map(int, c.split("x")), args.rounds)
        for h in map(int, args.hidden.split(","))
        for c in args.cases.split(",")
    ]
    threshold = backends.FUSED_LSTM_MIN_STEPS_PADDED_CPU
    summary = {
        "threshold_steps": threshold,
        "ratio_below": [round(r["native_over_fused"], 2) for r in rows if r["steps"] < threshold],
        "ratio_from": [round(r["native_over_fused"], 2) for r in rows if r["steps"] >= threshold],
    }
    doc = {
        "benchmark": "lengths",
        "command": " ".join(sys.argv),
        "machine": machine(),
        "summary": summary,
        "rows": rows,
    }
    emit(doc, args.out)


if __name__ == "__main__":
    main()
