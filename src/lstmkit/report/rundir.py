"""The run directory: every command of the CLI leaves one, and scripts read it.

Layout (files written atomically: a temporary sibling, then ``os.replace``)::

    runs/20261125-153012-forecast/     --out DIR, or a new timestamped folder under runs/
      config.toml                      the resolved options (config file + flags), re-usable
                                       with --config
      metrics.json                     {"model": {"rmse": ...}, "<baseline>": {...}, ...}
      predictions.csv                  one row per predicted value (or step)
      model/                           the estimator: model.safetensors + config.json
      *.png, report.html               the figures, and the self-contained HTML report
      log.txt                          what the command printed

``metrics.json`` is the contract for scripts: top-level keys per model (``"model"`` and
each baseline), metric names as in :mod:`lstmkit.train.metrics` (``rmse``, ``mae``,
``mape``, ``r2``, ``accuracy``, ``precision``, ``recall``, ``f1``, …).
"""

import contextlib
import csv
import io
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import tomli_w

from lstmkit.train.atomic import write_atomically

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell):
    """A text cell that a spreadsheet would read as a formula (one that starts with ``=``,
    ``+``, ``-``, ``@``, a tab or a carriage return: a label or a column name from the user's
    data, say ``=HYPERLINK(...)``) gets a leading apostrophe, as OWASP advises against CSV
    injection; numbers, other text and text that reads as a number (``-1.5``) are unchanged."""
    if not isinstance(cell, str) or not cell.startswith(_FORMULA_START):
        return cell
    try:
        float(cell)
    except ValueError:
        return "'" + cell
    return cell


def jsonable(value):
    """Metrics as JSON: numpy scalars and arrays to Python, NaN/inf to null."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _entries(path: Path) -> set[tuple[str, int]]:
    """(name, modification time in ns) of each entry of folder ``path`` (none if absent)."""
    try:
        return {(e.name, e.stat(follow_symlinks=False).st_mtime_ns) for e in os.scandir(path)}
    except FileNotFoundError:
        return set()


class RunDir:
    """One run's directory; ``RunDir.create(out, command)`` makes it (``out=None``: a new
    ``runs/<time>-<command>`` folder that does not exist yet)."""

    def __init__(self, path: Path, made: Sequence[Path] = ()) -> None:
        self.path = path
        self._made = list(made)  # folders create() made, deepest first
        self._before = _entries(path)  # what was there: (name, mtime) of each entry
        self._config: bytes | None = None  # config.toml as it was before write_config

    @classmethod
    def create(cls, out: str | os.PathLike | None, command: str, root: str = "runs") -> "RunDir":
        if out is not None:
            path = Path(out)
            if path.exists() and not path.is_dir():
                raise ValueError(f"--out {path}: expected a directory, got a file")
            missing = [p for p in (path, *path.parents) if not p.exists()]
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as err:  # a file where a parent folder should be, no permission
                raise ValueError(
                    f"--out {path}: expected a directory that can be made, got "
                    f"{err.strerror.lower()} ({err.filename})"
                ) from None
            return cls(path, missing)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        Path(root).mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):  # mkdir is atomic: two runs started together get two folders
            path = Path(root) / (f"{stamp}-{command}" + (f"-{n}" if n > 1 else ""))
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return cls(path, [path])
        raise ValueError(f"{root}: expected a free run directory name, found 999 taken")

    def abandon(self) -> None:
        """Undo :meth:`create` and :meth:`write_config` for a command refused before it
        wrote anything else: folders it made are removed, an existing run gets its own
        config.toml back. A run that has written more (a checkpoint) is left as it is."""
        config = self.path / "config.toml"
        now = {entry for entry in _entries(self.path) if entry[0] != "config.toml"}
        if now != {entry for entry in self._before if entry[0] != "config.toml"}:
            return
        if self._config is not None:
            write_atomically(config, self._config)
        else:
            config.unlink(missing_ok=True)
        for folder in self._made:
            with contextlib.suppress(OSError):  # not empty (another run's), or gone
                folder.rmdir()

    def write_config(self, config: dict) -> Path:
        with contextlib.suppress(FileNotFoundError):
            self._config = (self.path / "config.toml").read_bytes()
        clean = {k: v for k, v in config.items() if v is not None}
        return write_atomically(self.path / "config.toml", tomli_w.dumps(clean).encode())

    def write_metrics(self, metrics: dict) -> Path:
        text = json.dumps(jsonable(metrics), indent=1, ensure_ascii=False)
        return write_atomically(self.path / "metrics.json", text.encode())

    def write_csv(self, name: str, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
        """A CSV file whose text cells cannot run as spreadsheet formulas
        (:func:`spreadsheet_safe`)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([spreadsheet_safe(cell) for cell in header])
        writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
        return write_atomically(self.path / name, buffer.getvalue().encode())

    def write_bytes(self, name: str, data: bytes) -> Path:
        return write_atomically(self.path / name, data)

    def write_text(self, name: str, text: str) -> Path:
        return write_atomically(self.path / name, text.encode())

    def write_report(self, report, figures: dict[str, bytes]) -> Path:
        """The PNG figures, then ``report.html`` (self-contained: the figures embedded)."""
        for name, png in figures.items():
            write_atomically(self.path / name, png)
        return self.write_text("report.html", report.render())
