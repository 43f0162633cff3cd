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
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
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


# The sequence estimators' BiLSTM before the LSTM-FCN recipe (docs/classification.md): the
# recurrent encoder alone on every step, standardised over the training set, early stopping
# on a 20 % validation part. benchmarks/tasks.py times it against its plain loop;
# benchmarks/classification.py scores it (with the budget of the time) as "lstmkit-v0".
PLAIN_BILSTM = {
    "conv_filters": (),
    "rnn_steps": None,
    "conv_steps": None,
    "normalize": "global",
    "schedule": "plateau",
    "validation": 0.2,
}
