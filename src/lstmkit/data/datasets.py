"""Built-in datasets that ship inside the package; sources and licences in ``builtin/SOURCES.md``.

Adding a dataset is one entry in ``_REGISTRY``: its file under ``builtin/`` (listed in
``package-data``), the task, one line of description and the reader that loads it.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

from lstmkit.data.readers import TimeSeriesFrame, read_csv

_SOURCES = "builtin/SOURCES.md"


@dataclass(frozen=True)
class _Dataset:
    name: str
    task: str  # "forecasting", "classification", ...
    description: str
    file: str  # under builtin/
    read: Callable[[str | os.PathLike], object]


_REGISTRY = {
    d.name: d
    for d in (
        _Dataset(
            name="airline",
            task="forecasting",
            description="Monthly international airline passengers (thousands), 1949-01 to "
            "1960-12, 144 values (Box & Jenkins, Series G)",
            file="airline.csv",
            read=read_csv,
        ),
    )
}


def list_datasets() -> list[dict]:
    """The built-in datasets: one dict each with ``name``, ``task``, ``description``,
    ``file`` (inside the package) and ``source`` (the note on its source and licence)."""
    return [
        {
            "name": d.name,
            "task": d.task,
            "description": d.description,
            "file": f"builtin/{d.file}",
            "source": _SOURCES,
        }
        for d in _REGISTRY.values()
    ]


def load_dataset(name: str) -> TimeSeriesFrame | object:
    """Load a built-in dataset by name, with its registered reader (``"airline"``: a
    :class:`~lstmkit.data.readers.TimeSeriesFrame` with time labels ``'YYYY-MM'`` and the
    column ``'Passengers'``).

    Raises:
        ValueError: an unknown name; the message lists the available ones.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(map(repr, _REGISTRY))}")
    dataset = _REGISTRY[name]
    ref = resources.files("lstmkit.data").joinpath(f"builtin/{dataset.file}")
    with resources.as_file(ref) as path:
        return dataset.read(path)
