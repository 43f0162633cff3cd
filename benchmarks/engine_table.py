"""Render the JSON of ``benchmarks/engine.py --json FILE`` as the Markdown tables of
``docs/benchmarks.md``.

    python benchmarks/engine_table.py benchmarks/results/engine-cpu.json [more.json ...]
"""

import json
import statistics
import sys


def _key(c: dict) -> tuple:
    return (c["mode"], c["T"], c["batch"], c["hidden"], c["layers"], c["bidirectional"], c["phase"])


def main(*paths: str) -> int:
    """Later files replace the cases of earlier ones with the same configuration."""
    merged: dict[tuple, dict] = {}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        print(f"Machine: {doc['machine']}  \nCommand: `{doc['command']}`\n")
        for c in doc["cases"]:
            merged[_key(c)] = c
    cases = list(merged.values())
    print(
        "speed = t(torch.nn) / t(backend), median of interleaved rounds; "
        "above 1 is faster than torch.nn.\n"
    )
    print(
        "| cell | T | N | H | layers | dir | phase | torch.nn ms | reference | fused | native "
        "| auto | auto ran | auto GFLOP/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        s = c["speed_vs_torch"]
        print(
            f"| {c['mode']} | {c['T']} | {c['batch']} | {c['hidden']} | {c['layers']} | "
            f"{'bi' if c['bidirectional'] else 'uni'} | {c['phase']} | "
            f"{c['seconds']['torch.nn'] * 1e3:.2f} | {s['reference']:.2f} | {s['fused']:.2f} | "
            f"{s['native']:.2f} | {s['auto']:.2f} | {c['auto_ran']} | {c['gflops']['auto']:.1f} |"
        )
    print()
    autos = [c["speed_vs_torch"]["auto"] for c in cases]
    below = [c for c in cases if c["speed_vs_torch"]["auto"] < 0.95]
    ratio = [
        c["seconds"]["reference"] / c["seconds"]["fused"]
        for c in cases
        if c["phase"] == "train" and c["T"] == 200
    ]
    print(
        f"- auto / torch.nn: min {min(autos):.2f}, median {statistics.median(autos):.2f}, "
        f"{len(below)} of {len(cases)} cases below 0.95"
    )
    for c in below:
        print(
            f"  - {c['mode']} T={c['T']} N={c['batch']} H={c['hidden']} L={c['layers']} "
            f"{'bi' if c['bidirectional'] else 'uni'} {c['phase']}: auto "
            f"{c['speed_vs_torch']['auto']:.2f}, native {c['speed_vs_torch']['native']:.2f} "
            f"(auto ran {c['auto_ran']})"
        )
    print(
        f"- fused / reference, training at T=200: min {min(ratio):.2f}, "
        f"median {statistics.median(ratio):.2f} over {len(ratio)} cases"
    )
    for h in sorted({c["hidden"] for c in cases}):
        gru = [
            c["speed_vs_torch"]["fused"]
            for c in cases
            if c["mode"] == "GRU" and c["phase"] == "train" and c["hidden"] == h
        ]
        print(f"- fused GRU training / torch.nn.GRU at H={h}: {min(gru):.2f}–{max(gru):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
