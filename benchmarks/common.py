"""What the benchmarks share: the machine record and writing their JSON document."""

import json
import os
import platform

import torch


def machine() -> dict:
    """Where a result was measured (recorded with every result file)."""
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def emit(doc: dict, path: str | None) -> None:
    """Print the summary and the document (its last line), and write it to ``path``
    atomically when one is given."""
    print("\nsummary:", json.dumps(doc["summary"], indent=1))
    text = json.dumps(doc)
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    print(text)
