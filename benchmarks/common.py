"""What the benchmarks share: writing their JSON document."""

import json
import os


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
