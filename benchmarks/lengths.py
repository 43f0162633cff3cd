"""A bidirectional LSTM/GRU training step on a batch of unequal lengths: torch.nn with
``pack_padded_sequence`` (the reference a user would write) against lstmkit's backends
and ``backend="auto"``, same weights, same run.

    python benchmarks/lengths.py --out results/lengths-cpu.json
    python benchmarks/lengths.py --device cuda --out results/lengths-cuda.json

Each case: 8 inputs, hidden H, batch N, T steps, lengths drawn in [T/4, T] with one full
sequence; the time of forward + backward of ``out.sum() + h_n.sum()``, median of
``--rounds`` after two warm-up steps. Contenders: ``packed`` (torch.nn, packed in and
padded out), ``native`` (torch's kernels on the unpacked batch, lstmkit.backends.native),
``fused`` (our BPTT: the compiled loops, masked) and ``auto``. ``packed_over_*`` > 1: that
contender is faster than the packed reference. The ``auto`` rules in lstmkit.backends come
from this table.
"""

import argparse
import statistics
import sys
import time

import torch
from common import emit, machine
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit


def timed(step, rounds: int, device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    for _ in range(2):
        step()
    times = []
    for _ in range(rounds):
        sync()
        began = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def case(mode: str, hidden: int, batch: int, steps: int, rounds: int, device) -> dict:
    torch.manual_seed(0)
    x = torch.randn(batch, steps, 8, device=device)
    lengths = torch.randint(steps // 4, steps + 1, (batch,))
    lengths[0] = steps
    reference = getattr(torch.nn, mode)(8, hidden, batch_first=True, bidirectional=True)
    reference = reference.to(device)

    def packed():
        seq = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, hidden_state = reference(seq)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
        h_n = hidden_state[0] if mode == "LSTM" else hidden_state
        (out.sum() + h_n.sum()).backward()

    ms = {"packed": timed(packed, rounds, device)}
    for backend in ("native", "fused", "auto"):
        m = getattr(lstmkit, mode)(8, hidden, batch_first=True, bidirectional=True, backend=backend)
        m.load_state_dict(reference.state_dict())
        m = m.to(device)

        def step(m=m):
            out, hidden_state = m(x, lengths=lengths)
            h_n = hidden_state[0] if mode == "LSTM" else hidden_state
            (out.sum() + h_n.sum()).backward()

        ms[backend] = timed(step, rounds, device)
        if backend == "auto":
            chosen = m.last_backend
    row = {"mode": mode, "hidden": hidden, "batch": batch, "steps": steps, "auto": chosen}
    row |= {f"{name}_ms": round(value, 2) for name, value in ms.items()}
    row |= {
        f"packed_over_{name}": round(ms["packed"] / ms[name], 2) for name in ms if name != "packed"
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="LSTM,GRU")
    parser.add_argument("--hidden", default="64,256")
    parser.add_argument(
        "--cases",
        default="16x29,16x48,64x48,16x128,32x128,64x128,32x200",
        help="batch x steps, comma-separated",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (synchronised timing)")
    parser.add_argument("--out", help="write the JSON document here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = [
        case(mode, h, *map(int, c.split("x")), args.rounds, device)
        for mode in args.modes.split(",")
        for h in map(int, args.hidden.split(","))
        for c in args.cases.split(",")
    ]
    summary = {
        mode: {
            f"packed_over_{name}": [min(r[key] for r in sub), max(r[key] for r in sub)]
            for name in ("native", "fused", "auto")
            for key in [f"packed_over_{name}"]
        }
        for mode in args.modes.split(",")
        for sub in [[r for r in rows if r["mode"] == mode]]
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
