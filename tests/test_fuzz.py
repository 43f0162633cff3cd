"""A standing fuzz harness for every reader and config loader (issue 14).

Oracle: the error contract, checked for every generated input. A reader either returns a
valid result or raises ``ValueError`` (exactly: an unwrapped subclass such as
``UnicodeDecodeError`` or ``JSONDecodeError`` is a bug) or ``OSError``, the two the CLI
turns into exit 2 with one line. Anything else (IndexError, KeyError, TypeError,
AttributeError, RecursionError, MemoryError, numpy or torch errors) is an internal error,
exit 1: a bug. The message is one line (``str.splitlines``) of at most
:data:`MAX_MESSAGE` characters, not counting the paths in it, and names the file. A valid
result holds what the reader promises: float64 arrays of the documented shapes, finite
where the reader refuses non-finite values, a flat X split exactly as its lengths say. A
saved model that loads predicts finite values (or refuses its input with one line). No
example runs longer than 2 s (hypothesis' ``deadline``; a hard stop at
:data:`HARD_SECONDS`) or reserves more than :data:`MEMORY_BYTES` of address space
(RLIMIT_AS: a header claiming 10¹² elements must be refused, not allocated).

Covered: :func:`read_csv`, :func:`read_ts`, :func:`read_npz`, :func:`read_tsf`,
:func:`read_poems`, every estimator's ``load`` (a saved model's config.json edited at
random next to its real weights), :func:`load_checkpoint` (a checkpoint's meta.json), and
``lstmkit forecast --config`` (generated TOML; the data file is missing, so every run ends
in exit 2 before anything trains). Inputs: random bytes, valid files edited at random,
and files built from parts that are often wrong (see each strategy's docstring).

Examples: the default profile (CI) runs :data:`CI_EXAMPLES` per test, derandomized, so the
file takes well under a minute on two cores; ``LSTMKIT_FUZZ_EXAMPLES=10000 pytest
tests/test_fuzz.py`` raises every test's ``max_examples`` (random seeds) for a long run.
"""

import contextlib
import csv
import io
import json
import math
import os
import re
import resource
import shutil
import signal
import struct
import tempfile
import zipfile
from datetime import UTC
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lstmkit.cli import forecast as forecast_command
from lstmkit.cli import main
from lstmkit.cli_types import StrictFloat, StrictInt
from lstmkit.data import TimeSeriesFrame, TsfData, read_csv, read_npz, read_poems, read_ts, read_tsf
from lstmkit.tasks import (
    Forecaster,
    SequenceClassifier,
    SequenceRegressor,
    SequenceTagger,
    TextGenerator,
    global_forecast,
)
from lstmkit.train.checkpoint import load_checkpoint

DATA = Path(__file__).parents[2] / "shared" / "data" / "timeseries"

MAX_MESSAGE = 500  # characters of an error message, paths not counted
CLICK_FRAME = 100  # click's "lstmkit forecast: error: Invalid value for '--config': ... (see ...)"
HARD_SECONDS = 5.0  # an example still running then is stopped (the deadline reports > 2 s)
MEMORY_BYTES = 4 << 30  # address space an example may reserve beyond what the process has

CI_EXAMPLES = 200
EXAMPLES = int(os.environ.get("LSTMKIT_FUZZ_EXAMPLES", "0"))
settings.register_profile(
    "lstmkit-fuzz-ci",
    max_examples=CI_EXAMPLES,
    deadline=2000,
    derandomize=True,
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,  # capsys, read afresh in each example
    ],
)
settings.register_profile(
    "lstmkit-fuzz-long",
    parent=settings.get_profile("lstmkit-fuzz-ci"),
    max_examples=max(EXAMPLES, 1),
    derandomize=False,
)
# Applied per test, not loaded globally: the other test files keep their own settings.
FUZZ = settings.get_profile("lstmkit-fuzz-long" if EXAMPLES else "lstmkit-fuzz-ci")

_TMP = tempfile.TemporaryDirectory(prefix="lstmkit-fuzz-harness-")
FUZZ_DIR = Path(_TMP.name)


# -- the contract -----------------------------------------------------------------------


class Hang(BaseException):
    """Raised by SIGALRM in an example past :data:`HARD_SECONDS` (a BaseException, so that
    an ``except Exception`` in the code under test cannot turn it into a refusal)."""


def _address_space() -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmSize:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


@contextlib.contextmanager
def bounded():
    """The block may run :data:`HARD_SECONDS` and reserve :data:`MEMORY_BYTES` more address
    space (RLIMIT_AS: a larger allocation raises MemoryError, an internal error)."""
    fired = []

    def stop(signum, frame):
        fired.append(True)
        raise Hang(f"still running after {HARD_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, HARD_SECONDS)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = _address_space()
    if used is not None:
        cap = used + MEMORY_BYTES
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard == -1 else min(cap, hard), hard))
    try:
        yield
    except Hang:
        raise AssertionError(f"a hang: still running after {HARD_SECONDS} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert not fired, f"a hang: still running after {HARD_SECONDS} s (and the stop was caught)"


def outcome(call, *args, **kwargs):
    """``(result, None)``, or ``(None, error)`` for a ValueError or OSError; anything else,
    an unwrapped ValueError subclass included, propagates as the bug it is."""
    with bounded():
        try:
            return call(*args, **kwargs), None
        except OSError as err:
            return None, err
        except ValueError as err:
            if type(err) is not ValueError:
                raise  # UnicodeDecodeError, JSONDecodeError, ...: not wrapped with the file
            return None, err


def assert_refusal(err: Exception, *paths: Path, names_file: bool = True) -> None:
    """One line, at most MAX_MESSAGE characters besides the paths, naming the file."""
    message = str(err)
    lines = message.splitlines()
    assert len(lines) == 1, f"{type(err).__name__} of {len(lines)} lines: {message[:1000]!r}"
    short = message
    for path in paths:
        short = short.replace(str(path), "")
    assert len(short) <= MAX_MESSAGE, (
        f"{type(err).__name__} of {len(short)} characters: {message[:300]!r}..."
    )
    if names_file and isinstance(err, ValueError):  # an OSError carries its filename
        assert any(str(p) in message for p in paths), f"names no file: {message[:300]!r}"


class Long(str):
    """A long string that shows itself as the expression that built it (in hypothesis'
    reports): ``Long("@horizon ", ("9", 5000))`` is ``'@horizon ' + '9' * 5000``."""

    def __new__(cls, *parts):
        self = super().__new__(
            cls, "".join(p if isinstance(p, str) else p[0] * p[1] for p in parts)
        )
        self.shown = " + ".join(
            repr(p) if isinstance(p, str) else f"{p[0]!r} * {p[1]}" for p in parts
        )
        return self

    def __repr__(self) -> str:
        return self.shown


def fuzz_file(name: str, data: bytes | str, directory: Path | None = None) -> Path:
    """``data`` (text is written as UTF-8) in ``directory`` (default: the module's); its
    start is noted in the report of a failing example."""
    if isinstance(data, str):
        data = data.encode("utf-8", errors="surrogatepass")
    note(f"{name}: {data[:2000]!r}" + (f"... ({len(data)} bytes)" if len(data) > 2000 else ""))
    path = (directory or FUZZ_DIR) / name
    path.write_bytes(data)
    return path


def byte_edits(data: bytes, edits) -> bytes:
    """``data`` with each (position, op, byte) edit applied: insert, delete or replace."""
    out = bytearray(data)
    for position, op, byte in edits:
        i = min(position, len(out))
        if op == "insert":
            out[i:i] = bytes([byte])
        elif op == "delete":
            del out[i : i + 1]
        else:
            out[i : i + 1] = bytes([byte])
    return bytes(out)


BYTE_EDITS = st.lists(
    st.tuples(
        st.integers(0, 1 << 16),
        st.sampled_from(["insert", "delete", "replace"]),
        st.one_of(
            st.sampled_from(list(b"@#:,?;\"'\n\r\t -.e019x{}[]\x00\xff\xc3")), st.integers(0, 255)
        ),
    ),
    min_size=1,
    max_size=8,
)


def line_edits(text: str, edits) -> str:
    """``text`` with each (op, index, line, token, pick) edit applied to its lines: drop,
    duplicate or swap line ``index``, replace it with ``line`` or insert ``line`` before
    it, replace one of its ``,``/``:``-separated tokens with ``token``, or cut it short."""
    lines = text.split("\n")
    for op, index, line, token, pick in edits:
        i = index % len(lines) if lines else 0
        if op == "drop" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "swap" and len(lines) > 1:
            j = (i + 1) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "replace" and lines:
            lines[i] = line
        elif op == "insert":
            lines.insert(i, line)
        elif op == "token" and lines:
            parts = re.split(r"([,:])", lines[i])
            parts[2 * (pick % ((len(parts) + 1) // 2))] = token
            lines[i] = "".join(parts)
        elif op == "cut" and lines:
            lines[i] = lines[i][: pick % (len(lines[i]) + 1)]
    return "\n".join(lines)


def line_edit_lists(lines: list[str], tokens: list[str]):
    return st.lists(
        st.tuples(
            st.sampled_from(["drop", "duplicate", "swap", "replace", "insert", "token", "cut"]),
            st.integers(0, 1000),
            st.sampled_from(lines),
            st.sampled_from(tokens),
            st.integers(0, 1000),
        ),
        min_size=1,
        max_size=6,
    )


# numbers that break arithmetic: overflow on subtraction or sum, 64-bit wrap, float limits
INTERESTING_INTS = [
    0, 1, -1, 2, 3, 2**31 - 1, 2**31, 2**32, 2**53 + 1, 2**62, 2**63 - 1, -(2**63),
    2**63, 2**64 - 1, 2**64, 10**12, 10**30,
]  # fmt: skip
INTERESTING_FLOATS = [1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e-300, -0.0, 0.5, 1e-8]
NUMBER_TEXTS = [
    "1e308", "-1e308", "1.7e308", "-1.7e308", "1e309", "-1e309", "1e300", "-1e300", "1e-400",
    "nan", "NaN", "-nan", "+nan", "inf", "-inf", "Infinity", "-Infinity", "INF", "1_000",
    "１２", "٣", "0x10", "1e", "e1", "--1", ".", "-", "+", "-0", "0", "7", " 7 ", "3.25",
    Long(("9", 400)), Long(("9", 5000)), Long(("1", 200_000)),
]  # fmt: skip


# -- CSV --------------------------------------------------------------------------------


def assert_frame(frame: TimeSeriesFrame, columns) -> None:
    assert isinstance(frame, TimeSeriesFrame)
    values = frame.values
    assert values.dtype == np.float64 and values.ndim == 2, (values.dtype, values.shape)
    assert values.shape[0] >= 1 and values.shape[1] >= 1, values.shape
    assert len(frame.columns) == values.shape[1]
    assert all(isinstance(c, str) for c in frame.columns)
    assert np.isfinite(values).all(), f"non-finite values read: {values[~np.isfinite(values)]}"
    assert frame.time is None or len(frame.time) == values.shape[0]
    if columns is not None:
        assert frame.columns == tuple(columns)


CSV_OPTIONS = {
    "missing": st.sampled_from(["error", "ffill", "interpolate", "drop"]),
    "time_column": st.sampled_from(["auto", None, "date", "a", "x"]),
}


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(byte_edits, st.just(b"date,a,b\n2000,1,2\n2001,?,3.5\n2002,4,\n"), BYTE_EDITS),
    ),
    **CSV_OPTIONS,
)
def test_read_csv_any_bytes(data, missing, time_column):
    path = fuzz_file("bytes.csv", data)
    frame, err = outcome(read_csv, path, missing=missing, time_column=time_column)
    if err is not None:
        assert_refusal(err, path)
    else:
        assert_frame(frame, None)


CSV_WORDS = [
    "", "NA", "NaN", "nan", "?", "n/a", "null", "None", "x", "a,b", 'say "hi"', '"', "'",
    "\n", "\r", "é", "日本", "\ufeff", "\x00", "\u2028", "1;2", "1\t2", "2000-01", "1949-01",
]  # fmt: skip
CSV_CELLS = st.one_of(
    st.floats().map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(NUMBER_TEXTS),
    st.sampled_from(CSV_WORDS),
    st.text(max_size=8),
)
# the float range's edges and missing values: filling a gap between them must not overflow
EXTREME_NUMBERS = ["1.7e308", "-1.7e308", "1e308", "-1e308", "5e-324", "0", "1"]
EXTREME_CELLS = st.sampled_from([*EXTREME_NUMBERS, "", "?", "NaN"])
CSV_NAMES = st.one_of(
    st.sampled_from(["date", "Date", "TIME", "ds", "index", "", " ", "a", "b", "x", "y"]),
    st.sampled_from(["Passengers", "a b", '"q"', "a,b", Long(("x", 1000)), "é"]),
    st.text(max_size=6),
)


def csv_text(rows: list[list[str]], delimiter: str, terminator: str, quoting: str) -> str:
    """``rows`` written by the csv module (quoting "minimal" or "all"), or joined as they
    come ("raw": stray quotes and delimiters stay)."""
    if quoting == "raw":
        return terminator.join(delimiter.join(row) for row in rows) + terminator
    buffer = io.StringIO(newline="")
    writer = csv.writer(
        buffer,
        delimiter=delimiter,
        lineterminator=terminator,
        quoting=csv.QUOTE_ALL if quoting == "all" else csv.QUOTE_MINIMAL,
    )
    writer.writerows(rows)
    return buffer.getvalue()


@st.composite
def csv_files(draw):
    """Structured but often wrong CSV: a header (or none), rows of numbers, text, empty,
    huge and non-finite cells, ragged rows, other delimiters, quoting, line ends, BOMs
    and encodings; and the columns to ask for. Returns ``(layout, columns, time_column)``,
    ``layout`` the keywords of :func:`csv_text` plus the encoding."""
    width = draw(st.integers(1, 5))
    if draw(st.integers(0, 3)) == 0:  # a well-formed table of numbers near the float edges
        names = [f"v{k}" for k in range(width)]
        rows = st.lists(st.lists(EXTREME_CELLS, min_size=width, max_size=width), min_size=3)
        rows = [names, *draw(rows)]
    else:
        names = draw(st.lists(CSV_NAMES, min_size=width, max_size=width))
        rows = draw(st.lists(st.lists(CSV_CELLS, min_size=width, max_size=width), max_size=8))
        if draw(st.booleans()):
            rows.insert(0, names)
    if rows and draw(st.integers(0, 9)) == 0:  # a ragged row
        k = draw(st.integers(0, len(rows) - 1))
        rows[k] = rows[k][:-1] if draw(st.booleans()) else [*rows[k], "1"]
    if rows and draw(st.integers(0, 4)) == 0:  # blank lines
        rows.insert(draw(st.integers(0, len(rows))), [])
    layout = {
        "rows": rows,
        "delimiter": draw(st.sampled_from([",", ",", ",", ";", "\t", "|", " "])),
        "terminator": draw(st.sampled_from(["\n", "\r\n", "\r"])),
        "quoting": draw(st.sampled_from(["minimal", "all", "raw"])),
        "encoding": draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"])),
    }
    columns = draw(
        st.one_of(
            st.none(),
            st.lists(st.sampled_from([*names, "nope"]), max_size=3),
        )
    )
    time_column = draw(st.one_of(st.sampled_from(["auto", None]), st.sampled_from(names)))
    return layout, columns, time_column


@FUZZ
@given(case=csv_files(), missing=CSV_OPTIONS["missing"])
def test_read_csv_structured(case, missing):
    layout, columns, time_column = case
    text = csv_text(**{k: v for k, v in layout.items() if k != "encoding"})
    path = fuzz_file("structured.csv", text.encode(layout["encoding"], errors="replace"))
    frame, err = outcome(read_csv, path, columns=columns, time_column=time_column, missing=missing)
    if err is not None:
        assert_refusal(err, path)
    else:
        assert_frame(frame, columns)


# -- .ts --------------------------------------------------------------------------------

MULTIVARIATE_TS = """\
# two dimensions of unequal lengths, with class labels
@problemName tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1,2,3:4,5,6:up
1.5,?,2:0,0,1e-3:down
7,8:9,10:up
"""
REGRESSION_TS = """\
@problemName r
@univariate true
@equalLength true
@seriesLength 3
@targetLabel true
@data
1,2,3:0.5
4,?,6:-2
"""


def _shared_ts_head() -> str:
    """The header and first six cases of ItalyPowerDemand_TRAIN.ts (a real file), if the
    shared data is here."""
    path = DATA / "ItalyPowerDemand" / "ItalyPowerDemand_TRAIN.ts"
    if not path.is_file():
        return MULTIVARIATE_TS
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data")
    return "\n".join(lines[: start + 7]) + "\n"


TS_SEEDS = [_shared_ts_head(), MULTIVARIATE_TS, REGRESSION_TS]
TS_LINES = [
    "@problemName x", "@problemName", "@timeStamps false", "@timeStamps true", "@missing true",
    "@missing false", "@missing maybe", "@univariate true", "@univariate false",
    "@dimensions 1", "@dimensions 2", "@dimensions 0", "@dimensions -1",
    "@dimensions 99999999999999999999", Long("@dimensions ", ("9", 5000)), "@equalLength true",
    "@equalLength false", "@seriesLength 24", "@seriesLength 3", "@seriesLength 0",
    "@seriesLength 1000000000000", Long("@seriesLength ", ("9", 5000)), "@classLabel true 1 2",
    "@classLabel true 1 1", "@classLabel true", "@classLabel false", "@classLabel false 1",
    "@classLabel true up down", "@targetLabel true", "@targetLabel false", "@targetLabel",
    "@data", "@data x", "@DATA", "@", "@ ", "@unknown 1", "#", "", "   ", "\ufeff@data",
    "1,2,3:1", "1,2:3,4:1", "?,?,?:1", "?,?,?:?,?,?:up", ":1", "1:", ":", "::", "1,,2:1",
    "\x00", "1e300,1e300:1", "1.7e308,?,-1.7e308:1", "1.7e308,?,-1.7e308:0,?,1:up",
    "nan,nan:2", "1,2,3:4,5,6:sideways", "1,2,3:inf", "1,2,3:nan", "1,2,3:1e309",
    Long("1,2,3:", ("9", 5000)), Long(("1,", 5000), "1:1"), Long(("x", 100_000)),
]  # fmt: skip
TS_TOKENS = [*NUMBER_TEXTS, "?", "", " ", "x", "up", "down", "1", "2", "?:?", "1:2", ":"]


def assert_cases(X, y, missing: str) -> None:
    assert isinstance(X, list) and len(X) >= 1
    dims = X[0].shape[1] if X[0].ndim == 2 else None
    for case in X:
        assert isinstance(case, np.ndarray) and case.dtype == np.float64
        assert case.ndim == 2 and case.shape[0] >= 1 and case.shape[1] == dims, case.shape
        assert np.isfinite(case).all(), f"non-finite values read ({missing=}): {case}"
    if y is not None:
        assert isinstance(y, np.ndarray) and y.shape == (len(X),), (y.shape, len(X))
        assert y.dtype.kind in "Uf", y.dtype
        if y.dtype.kind == "f":
            assert np.isfinite(y).all(), f"non-finite targets read: {y}"


TS_MISSING = st.sampled_from(["error", "ffill", "interpolate"])
TS_VALUES = st.one_of(
    st.floats().map(repr), EXTREME_CELLS, st.sampled_from(NUMBER_TEXTS), st.sampled_from(["?"])
)


@st.composite
def ts_files(draw):
    """A .ts file built from parts: header lines (dimensions, univariate, equal length,
    series length, class or target labels, missing) that may or may not agree with the
    cases; cases whose dimensions and lengths vary; values huge, non-finite, missing,
    malformed; labels declared or not. One file in four is well formed, its values near
    the float range's edges or missing."""
    if draw(st.integers(0, 3)) == 0:
        values = st.sampled_from([*EXTREME_NUMBERS, "?", "?"])
        dims, length = draw(st.integers(1, 2)), draw(st.integers(3, 6))
        cases = draw(st.lists(st.lists(values, min_size=dims * length, max_size=dims * length)))
        return "@univariate false\n@equalLength true\n@data\n" + "".join(
            ":".join(",".join(case[d * length : (d + 1) * length]) for d in range(dims)) + "\n"
            for case in cases or [["1"] * dims * length]
        )
    dims = draw(st.integers(1, 3))
    length = draw(st.integers(1, 5))
    labels = draw(st.sampled_from([None, "class", "target"]))
    header = ["@problemName fuzz"]
    optional = {
        "@univariate": st.sampled_from(["true", "false"]),
        "@dimensions": st.sampled_from([str(dims), str(dims + 1), "1"]),
        "@equalLength": st.sampled_from(["true", "false"]),
        "@seriesLength": st.sampled_from([str(length), str(length + 1), "1"]),
        "@missing": st.sampled_from(["true", "false"]),
        "@timeStamps": st.sampled_from(["false", "true"]),
    }
    for key, values in optional.items():
        if draw(st.booleans()):
            header.append(f"{key} {draw(values)}")
    if labels == "class":
        header.append("@classLabel true a b 7")
    elif labels == "target":
        header.append("@targetLabel true")
    header.append("@data")
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        d = dims if draw(st.integers(0, 7)) else draw(st.integers(1, 4))
        t = length if draw(st.integers(0, 3)) else draw(st.integers(1, 6))
        parts = [",".join(draw(st.lists(TS_VALUES, min_size=t, max_size=t))) for _ in range(d)]
        if labels == "class":
            parts.append(draw(st.sampled_from(["a", "b", "7", "c", ""])))
        elif labels == "target":
            parts.append(draw(TS_VALUES))
        lines.append(":".join(parts))
    return "\n".join(header + lines) + "\n"


def read_ts_or_refuse(path: Path, missing: str) -> None:
    """``read_ts`` returns well-formed cases or refuses with one line naming the file."""
    result, err = outcome(read_ts, path, missing=missing)
    if err is not None:
        assert_refusal(err, path)
    else:
        assert_cases(*result, missing)


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(byte_edits, st.sampled_from([s.encode() for s in TS_SEEDS]), BYTE_EDITS),
    ),
    missing=TS_MISSING,
)
def test_read_ts_any_bytes(data, missing):
    path = fuzz_file("bytes.ts", data)
    read_ts_or_refuse(path, missing)


@FUZZ
@given(text=ts_files(), missing=TS_MISSING)
def test_read_ts_structured(text, missing):
    path = fuzz_file("structured.ts", text)
    read_ts_or_refuse(path, missing)


@FUZZ
@given(
    seed=st.sampled_from(TS_SEEDS), edits=line_edit_lists(TS_LINES, TS_TOKENS), missing=TS_MISSING
)
def test_read_ts_mutated_file(seed, edits, missing):
    """A valid file with lines dropped, duplicated, garbled; @ headers changed; values made
    huge, NaN or empty; dimensions and lengths made inconsistent; unknown labels."""
    path = fuzz_file("mutated.ts", line_edits(seed, edits))
    read_ts_or_refuse(path, missing)


# -- .npz -------------------------------------------------------------------------------


def assert_npz(X, y) -> None:
    if isinstance(X, list):
        assert len(X) >= 1
        for part in X:
            assert isinstance(part, np.ndarray) and part.dtype == np.float64, type(part)
        n = len(X)
    else:
        assert isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim >= 1
        n = X.shape[0]
    if y is not None:
        assert isinstance(y, np.ndarray) and y.dtype != object and y.ndim >= 1
        assert y.shape[0] == n, (y.shape, n)


def _archive(arrays: dict, compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


VALID_NPZ = [
    _archive({"X": np.arange(24.0).reshape(4, 3, 2), "y": np.array(["a", "b", "a", "b"])}, False),
    _archive({"X_0": np.ones((3, 2)), "X_1": np.zeros((5, 2)), "y": np.array([0.5, 1.0])}, True),
    _archive({"X": np.arange(10.0), "lengths": np.array([3, 7])}, False),
]


@FUZZ
@given(
    data=st.one_of(
        st.builds(
            bytes.__add__,
            st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY"]),
            st.binary(max_size=300),
        ),
        st.builds(byte_edits, st.sampled_from(VALID_NPZ), BYTE_EDITS),
        st.builds(lambda a, n: a[: n % (len(a) + 1)], st.sampled_from(VALID_NPZ), st.integers()),
    )
)
def test_read_npz_any_bytes(data):
    """Random bytes, damaged and truncated archives."""
    path = fuzz_file("bytes.npz", data)
    result, err = outcome(read_npz, path)
    if err is not None:
        assert_refusal(err, path)
    else:
        assert_npz(*result)


NPZ_KEYS = st.sampled_from(["X", "X", "x", "y", "y", "lengths", "X_0", "X_1", "X_2", "X_01", "Y"])
NPZ_DTYPES = st.sampled_from(
    [
        np.float64, np.float32, np.float16, np.int64, np.int8, np.uint64, np.bool_,
        np.complex128, np.dtype("U3"), np.dtype("S3"), np.dtype("M8[D]"), np.dtype("m8[s]"),
        np.dtype([("a", "<f8"), ("b", "<i4")]), np.dtype(">f8"),
    ]
)  # fmt: skip
NUMPY_ARRAYS = hnp.arrays(
    NPZ_DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
)
OBJECT_ARRAYS = st.lists(
    st.one_of(st.none(), st.integers(), st.text(max_size=3), st.floats()), max_size=4
).map(lambda items: np.array([*items, None], dtype=object))  # savez pickles these
LENGTHS = st.builds(
    lambda values, unsigned: (
        np.array([v % 2**64 for v in values], dtype=np.uint64)
        if unsigned
        else np.array([(v + 2**63) % 2**64 - 2**63 for v in values], dtype=np.int64)
    ),
    st.lists(st.one_of(st.integers(-2, 6), st.sampled_from(INTERESTING_INTS)), max_size=5),
    st.booleans(),
)


@st.composite
def wrapping_lengths(draw):
    """A flat X and lengths that hold, besides small lengths that add up to X's rows,
    64-bit integers whose sum wraps around to zero (2⁶³ + 2⁶³, 4 × 2⁶²)."""
    small = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    big, dtype = draw(st.sampled_from([([2**63] * 2, np.uint64), ([2**62] * 4, np.int64)]))
    at = draw(st.integers(0, len(small)))
    lengths = np.array([*small[:at], *big, *small[at:]], dtype=dtype)
    return {"X": np.arange(float(sum(small))), "lengths": lengths}


@FUZZ
@given(
    arrays=st.one_of(
        st.dictionaries(
            NPZ_KEYS, st.one_of(NUMPY_ARRAYS, OBJECT_ARRAYS, LENGTHS), min_size=1, max_size=4
        ),
        wrapping_lengths(),
    ),
    compressed=st.booleans(),
)
def test_read_npz_archives(arrays, compressed):
    """Valid archives with wrong keys, dtypes (object arrays must be refused, never
    unpickled), shapes, lengths (some whose 64-bit sum wraps around), NaN and infinity.
    A flat X read with its lengths comes back as sequences of exactly those lengths."""
    path = fuzz_file("archive.npz", _archive(arrays, compressed))
    result, err = outcome(read_npz, path)
    if err is not None:
        assert_refusal(err, path)
        return
    assert_npz(*result)
    if "lengths" in arrays:
        X, _ = result
        assert [len(x) for x in X] == arrays["lengths"].tolist(), "X not split as lengths say"


def npy_bytes(header: str, data: bytes, version: tuple[int, int]) -> bytes:
    """A .npy member written by hand: magic, version, header length, header, data."""
    raw = header.encode("latin-1", errors="replace")
    wide = version[0] >= 2
    prefix = 6 + 2 + (4 if wide else 2)
    pad = -(prefix + len(raw) + 1) % 64
    raw = raw + b" " * pad + b"\n"
    size = struct.pack("<I" if wide else "<H", len(raw) % (1 << (32 if wide else 16)))
    return b"\x93NUMPY" + bytes(version) + size + raw + data


DESCRS = st.sampled_from(
    [
        "'<f8'", "'<f8'", "'<i8'", "'|b1'", "'<f2'", "'>f8'", "'<c16'", "'|O'", "'<U5'",
        "'|S3'", "'<M8[D]'", "'|V8'", "[('a', '<f8')]", "('<f8', (1000000, 1000000))",
        "[('a', '<f8', (1099511627776,))]", "'<U1000000000'", "'|V1000000000000'", "'foo'",
        "8", "None", "'<f8' ", "'" + "<f8" * 3000 + "'",
    ]
)  # fmt: skip
SHAPES = st.one_of(
    st.lists(
        st.one_of(
            st.integers(0, 5),
            st.sampled_from([10**6, 10**9, 10**12, 2**31, 2**32, 2**62, 2**63, 2**64, -1, 10**30]),
        ),
        max_size=4,
    ).map(lambda dims: "(" + "".join(f"{d}, " for d in dims) + ")"),
    st.sampled_from(["[3]", "3", "None", "'a'", "(1.5,)", "(True,)", "(" * 300 + ")" * 300]),
)


@FUZZ
@given(
    members=st.lists(
        st.tuples(
            st.sampled_from(["X.npy", "x.npy", "y.npy", "lengths.npy", "X_0.npy", "X", "y"]),
            st.one_of(
                st.tuples(DESCRS, st.sampled_from(["False", "True", "1", "None"]), SHAPES).map(
                    lambda t: f"{{'descr': {t[0]}, 'fortran_order': {t[1]}, 'shape': {t[2]}, }}"
                ),
                st.sampled_from(["{}", "{'descr': '<f8'}", "[]", "{'descr': '<f8', 'a': 1}"]),
                st.text(max_size=40),
            ),
            st.one_of(
                st.binary(max_size=64),
                st.integers(0, 10).map(lambda n: np.arange(float(n)).tobytes()),
            ),
            st.sampled_from([(1, 0), (1, 0), (2, 0), (3, 0), (9, 9)]),
        ),
        min_size=1,
        max_size=3,
        unique_by=lambda m: m[0],
    ),
    compression=st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
)
def test_read_npz_crafted_headers(members, compression):
    """.npy headers inside a zip that declare huge shapes (10¹² elements), dtypes that do
    not match the data, malformed headers, versions numpy does not know."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, header, data, version in members:
            archive.writestr(name, npy_bytes(header, data, version))
    path = fuzz_file("crafted.npz", buffer.getvalue())
    result, err = outcome(read_npz, path)
    if err is not None:
        assert_refusal(err, path)
    else:
        assert_npz(*result)


# -- .tsf -------------------------------------------------------------------------------

VALID_TSF = """\
# A small file in the archive's layout.
@relation tiny
@attribute series_name string
@attribute start_timestamp date
@attribute w numeric
@frequency yearly
@horizon 2
@missing true
@equallength false
@data
T1:1979-01-01 00-00-00:3:1,?,3
T2:1980-01-01 00-00-00:-1.5:4.25,5
T3:2000-06-30 12-30-00:7:1.7e308,?,-1.7e308
"""
TSF_LINES = [
    "@relation r", "@relation", "@attribute series_name string", "@attribute x string",
    "@attribute start_timestamp date", "@attribute w numeric", "@attribute x blob",
    "@attribute", "@attribute series_name numeric", "@frequency yearly", "@frequency",
    "@frequency 4_seconds", "@frequency 999999999999999999999_minutes", "@frequency Monthly",
    "@horizon 3", "@horizon 0", "@horizon -1", "@horizon 1.5",
    "@horizon 99999999999999999999999", Long("@horizon ", ("9", 5000)), "@missing false",
    "@missing true", "@missing maybe", "@missingvalues true", "@equallength true",
    "@equallength false", "@data", "@data x", "@", "@unknown 1", "#", "", "\ufeff@data",
    "T9:1979-01-01 00-00-00:1:1,2", "T9:9999-99-99 99-99-99:1:1", "T9:0000-01-01 00-00-00:1:1",
    "T9:1979-01-01 00-00-00:nan:1", "T9:1979-01-01 00-00-00:1e999:1", "T9::1:1",
    "T9:1979-01-01 00-00-00:1:", "T9:1979-01-01 00-00-00:1:?,?,?", "T1:1979-01-01 00-00-00:1:1",
    ":::", Long(("x", 100_000)), Long("T9:1979-01-01 00-00-00:", ("9", 5000), ":1"),
]  # fmt: skip
TSF_TOKENS = [*NUMBER_TEXTS, "?", "", "T1", "1979-01-01 00-00-00", "2000-02-30 00-00-00"]
TSF_MISSING = st.sampled_from(["error", "keep", "interpolate"])


def assert_tsf(data: TsfData, missing: str) -> None:
    assert isinstance(data, TsfData)
    n = len(data.series)
    assert n >= 1 and len(data.names) == n and len(data.starts) == n
    assert all(len(column) == n for column in data.attributes.values())
    assert all(type(v) in (int, float, str) for c in data.attributes.values() for v in c)
    for s in data.series:
        assert isinstance(s, np.ndarray) and s.dtype == np.float64 and s.ndim == 1
        assert s.size >= 1
        assert not np.isinf(s).any(), f"infinite values read ({missing=}): {s}"
        assert missing == "keep" or not np.isnan(s).any(), f"NaN read ({missing=}): {s}"
    assert not data.equal_length or len({s.size for s in data.series}) == 1
    assert data.horizon is None or (type(data.horizon) is int and data.horizon >= 1)
    assert data.season is None or data.season >= 1


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.builds(byte_edits, st.just(VALID_TSF.encode()), BYTE_EDITS),
    ),
    missing=TSF_MISSING,
)
def test_read_tsf_any_bytes(data, missing):
    path = fuzz_file("bytes.tsf", data)
    result, err = outcome(read_tsf, path, missing=missing)
    if err is not None:
        assert_refusal(err, path)
    else:
        assert_tsf(result, missing)


@FUZZ
@given(edits=line_edit_lists(TSF_LINES, TSF_TOKENS), missing=TSF_MISSING)
def test_read_tsf_mutated_file(edits, missing):
    """A valid file with attributes, @frequency, @horizon and lines changed; values made
    huge, missing, NaN; dates garbled."""
    path = fuzz_file("mutated.tsf", line_edits(VALID_TSF, edits))
    result, err = outcome(read_tsf, path, missing=missing)
    if err is not None:
        assert_refusal(err, path)
    else:
        assert_tsf(result, missing)


# -- poem corpora -----------------------------------------------------------------------

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.sampled_from(INTERESTING_INTS),
    st.floats(),
    st.sampled_from(INTERESTING_FLOATS),
    st.text(max_size=10),
)
POEM_WORDS = st.sampled_from(["春眠不觉晓，", "处处闻啼鸟。", "□", "（注）", "[1]", "", "a"])
POEM_JSON = st.recursive(
    st.one_of(JSON_LEAVES, POEM_WORDS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(["paragraphs", "content", "type", "title"]), st.text(max_size=5)
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
POEM = st.one_of(
    st.fixed_dictionaries(
        {
            "paragraphs": st.one_of(
                st.lists(st.one_of(POEM_WORDS, POEM_JSON), max_size=4), POEM_JSON
            )
        },
        optional={"title": POEM_JSON, "author": st.text(max_size=4)},
    ),
    POEM_JSON,
)
POEM_DOCUMENTS = st.one_of(
    st.lists(POEM, max_size=4),
    st.fixed_dictionaries(
        {
            "content": st.one_of(
                st.lists(
                    st.one_of(
                        st.fixed_dictionaries(
                            {"type": st.text(max_size=3)},
                            optional={"content": st.one_of(st.lists(POEM, max_size=3), POEM_JSON)},
                        ),
                        POEM_JSON,
                    ),
                    max_size=3,
                ),
                POEM_JSON,
            )
        }
    ),
    POEM_JSON,
)
DEEP_JSON = st.builds(
    lambda pair, n: Long((pair[0], n), (pair[1], n)),
    st.sampled_from(
        [("[", "]"), ('{"content":', "}"), ('[{"paragraphs":', "}]"), ('{"a":[', "]}")]
    ),
    st.sampled_from([10, 1000, 100_000]),
)


@FUZZ
@given(
    case=st.one_of(
        st.tuples(st.just(".json"), POEM_DOCUMENTS.map(json.dumps)),
        st.tuples(
            st.just(".json"), POEM_DOCUMENTS.map(lambda d: json.dumps(d, ensure_ascii=False))
        ),
        st.tuples(st.just(".json"), DEEP_JSON),
        st.tuples(
            st.just(".json"), st.sampled_from([Long(("1", 5000)), Long("[", ("9", 5000), "]")])
        ),
        st.tuples(st.sampled_from([".json", ".txt"]), st.binary(max_size=200)),
        st.tuples(st.just(".txt"), st.text(max_size=200)),
    )
)
def test_read_poems(case):
    """JSON in the chinese-poetry layouts with wrong types, deeply nested JSON (10⁵ lists),
    huge numbers, random bytes, plain text."""
    suffix, data = case
    path = fuzz_file("poems" + suffix, data)
    poems, err = outcome(read_poems, path)
    if err is not None:
        assert_refusal(err, path)
    else:
        assert isinstance(poems, list) and len(poems) >= 1
        assert all(isinstance(p, str) and p for p in poems), poems[:5]


# -- saved models: config.json ----------------------------------------------------------


class SavedModels(dict):
    """name -> (class, directory, config, use); ``checkpoint``: a training checkpoint's
    directory. Shown by its names in hypothesis' reports."""

    checkpoint: Path

    def __repr__(self) -> str:
        return f"SavedModels({', '.join(self)})"


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """One tiny saved model of each estimator (one epoch, hidden size 4), with inputs to
    use it on, and a training checkpoint."""
    root = tmp_path_factory.mktemp("saved-models")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 12, 2))
    series = 10 + np.sin(np.arange(60) / 3)
    small = {"epochs": 1, "hidden_size": 4, "progress": False}
    with pytest.MonkeyPatch.context() as patch:  # a panel fit of 40 optimizer steps
        patch.setattr(global_forecast, "MIN_STEPS", 40)
        patch.setattr(global_forecast, "MAX_STEPS", 40)
        fitted = {
            "classifier": SequenceClassifier(conv_filters=(), **small).fit(X, np.arange(16) % 2),
            "regressor": SequenceRegressor(**small).fit(X, rng.normal(size=16)),
            "tagger": SequenceTagger(**small).fit(X, rng.integers(0, 3, size=(16, 12))),
            "forecaster": Forecaster(
                horizon=3, lookback=6, checkpoint=str(root / "checkpoint"), **small
            ).fit(series),
            "panel forecaster": Forecaster(
                horizon=3, lookback=6, quantiles=(0.1, 0.5, 0.9), **small
            ).fit(series),
            "text generator": TextGenerator(**small).fit(["abcabc", "bcabca", "cab"] * 4),
        }
    uses = {  # what a loaded model is used for; None: only that it runs
        "classifier": lambda m: m.predict_proba(X[:3]),
        "regressor": lambda m: m.predict(X[:3]),
        "tagger": lambda m: [len(labels) for labels in m.predict(X[:3])],
        "forecaster": lambda m: m.predict(),
        "panel forecaster": lambda m: m.predict(),
        "text generator": lambda m: len(m.generate(seed=0)),
    }
    models = SavedModels()
    for name, model in fitted.items():
        path = model.save(root / name.replace(" ", "-"))
        config = json.loads((path / "config.json").read_text())
        models[name] = (type(model), path, config, uses[name])
    models.checkpoint = root / "checkpoint"
    assert models.checkpoint.is_dir(), "the forecaster left no checkpoint"
    return models


DEEP, HUGE_INT = "\x00deep\x00", "\x00huge int\x00"
CONFIG_LEAVES = st.one_of(
    JSON_LEAVES,
    st.sampled_from([DEEP, HUGE_INT, "lstm", "gru", "direct", "recursive", "last+max", "global"]),
)
CONFIG_VALUES = st.recursive(
    CONFIG_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
CONFIG_EDITS = st.lists(
    st.tuples(
        st.sampled_from(["replace", "replace", "delete", "add"]),
        st.tuples(st.booleans(), st.integers(0, 1 << 20)),
        CONFIG_VALUES,
        st.one_of(
            st.text(max_size=8), st.sampled_from(["hidden_size", "panel", "classes", "format"])
        ),
    ),
    min_size=1,
    max_size=4,
)


def _json_paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_paths(item, (*prefix, i))


def edited_config(config, edits) -> str:
    """``config`` with each (op, (shallow, pick), value, key) edit applied at one of its
    paths (one at most two keys deep if ``shallow``, so that long lists such as a
    forecaster's series do not take most edits), as JSON text (NaN and Infinity allowed,
    as the saver writes them; DEEP becomes 10⁵ nested lists, HUGE_INT an integer of 5000
    digits)."""
    config = json.loads(json.dumps(config))
    for op, (shallow, pick), value, key in edits:
        paths = [p for p in _json_paths(config) if len(p) <= 2 or not shallow]
        path = paths[pick % len(paths)]
        if not path:
            config = value if op == "replace" else config
            continue
        parent = config
        for step in path[:-1]:
            parent = parent[step]
        if op == "replace":
            parent[path[-1]] = value
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][key] = value
        elif isinstance(parent[path[-1]], list):
            parent[path[-1]].append(value)
    text = json.dumps(config, allow_nan=True)
    text = text.replace(json.dumps(DEEP), "[" * 100_000 + "]" * 100_000)
    return text.replace(json.dumps(HUGE_INT), "9" * 5000)


def assert_usable(result) -> None:
    if result is None:
        return
    parts = result if isinstance(result, list) else [result]
    values = np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])
    assert np.isfinite(values).all(), f"a loaded model predicts non-finite values: {result}"


@FUZZ
@given(data=st.data())
def test_saved_config(saved_models, data):
    """A saved model's config.json with values replaced by random JSON (huge, negative,
    non-finite numbers, strings, null, lists, nested objects, 10⁵ nested lists), keys
    deleted or added, next to the real weights: load refuses it with one line, or loads a
    model that predicts (finite values) or refuses its input with one line."""
    name = data.draw(st.sampled_from(sorted(saved_models)), label="estimator")
    cls, saved, config, use = saved_models[name]
    path = FUZZ_DIR / f"model-{saved.name}"
    if not path.is_dir():
        shutil.copytree(saved, path)
    edits = data.draw(CONFIG_EDITS, label="edits")
    fuzz_file("config.json", edited_config(config, edits), path)
    model, err = outcome(cls.load, path)
    if err is not None:
        assert_refusal(err, path)
        return
    result, err = outcome(use, model)
    if err is not None:
        assert_refusal(err, path, names_file=False)  # refused input, not the file
    else:
        assert_usable(result)


@FUZZ
@given(data=st.data())
def test_checkpoint_meta(saved_models, data):
    """A training checkpoint's meta.json edited as above: load_checkpoint returns the
    three parts or refuses with one line."""
    saved = saved_models.checkpoint
    path = FUZZ_DIR / "checkpoint"
    if not path.is_dir():
        shutil.copytree(saved, path)
    meta = json.loads((saved / "meta.json").read_text())
    fuzz_file("meta.json", edited_config(meta, data.draw(CONFIG_EDITS, label="edits")), path)
    result, err = outcome(load_checkpoint, path)
    if err is not None:
        assert_refusal(err, path)
        return
    state, meta, optim = result
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    assert isinstance(meta, dict)
    assert optim is None or (isinstance(optim, dict) and set(optim) == {"state", "param_groups"})


# -- the CLI's TOML config --------------------------------------------------------------

# every spelling of every option of the command: its name, its long flags with - or _
OPTIONS = sorted(
    {(param.name, param) for param in forecast_command.params}
    | {
        (opt[2:].replace("-", sep), param)
        for param in forecast_command.params
        for opt in getattr(param, "opts", []) + getattr(param, "secondary_opts", [])
        if opt.startswith("--")
        for sep in ("-", "_")
    },
    key=lambda option: option[0],
)
TOML_WORDS = [
    "lstm", "gru", "direct", "recursive", "error", "ffill", "interpolate", "drop",
    "0.1,0.5,0.9", "0.5", "a,b", "", "nan", "1e400", "12", " 3 ", "airline", "date",
]  # fmt: skip
TOML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([*INTERESTING_INTS, 10**100]),
    st.integers(0, 1000),
    st.floats(),
    st.sampled_from(INTERESTING_FLOATS),
    st.floats(0, 1),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    st.sampled_from(TOML_WORDS),
    st.just(Long(("x", 100_000))),
    st.datetimes(timezones=st.sampled_from([None, UTC])),
    st.dates(),
    st.times(),
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # nan, inf, -inf, 1e+308: TOML spellings
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return value.isoformat()  # datetime, date, time


def plausible(param: click.Parameter):
    """Values an option takes: its choices, a flag's booleans, numbers in its range, words."""
    kind = param.type
    if isinstance(param, click.Option) and param.is_flag:
        return st.booleans()
    if isinstance(kind, click.Choice):
        return st.sampled_from(list(kind.choices))
    if isinstance(kind, StrictInt):
        low = 0 if kind.min is None else kind.min
        return st.integers(low, min(kind.max, low + 100))
    if isinstance(kind, StrictFloat):
        return st.floats(
            kind.min, kind.max, exclude_min=kind.min_open, exclude_max=kind.max_open
        ).filter(math.isfinite)
    return st.sampled_from(TOML_WORDS)


PLAUSIBLE_ENTRIES = st.sampled_from(OPTIONS).flatmap(  # options with values they take
    lambda option: st.tuples(st.just(option[0]), plausible(option[1]))
)
TOML_ENTRIES = st.one_of(  # options with any TOML value; junk keys
    PLAUSIBLE_ENTRIES,
    st.sampled_from(OPTIONS).flatmap(lambda option: st.tuples(st.just(option[0]), TOML_VALUES)),
    st.tuples(st.text(max_size=12), TOML_VALUES),
)
TOML_JUNK = st.one_of(  # lines that break the syntax or nest deeply
    st.sampled_from(["[forecast]", "[[epochs]]", "a.b = 1", "epochs = ", "= 1", "epochs = 1 2"]),
    st.builds(
        lambda n: Long("epochs = ", ("[", n), ("]", n)), st.sampled_from([10, 1000, 100_000])
    ),
    st.text(max_size=30),
)


def toml_text(entries, junk) -> str:
    lines = [f"{toml_key(key)} = {toml_value(value)}" for key, value in entries]
    return "".join(line + "\n" for line in lines + junk)


@pytest.fixture(scope="module")
def warm_cli(tmp_path_factory):
    """One run first, so that no example pays for the CLI's first imports."""
    tmp = tmp_path_factory.mktemp("warm-cli")
    assert main(["forecast", "--data", str(tmp / "missing.csv"), "--out", str(tmp / "run")]) == 2


@FUZZ
@given(
    entries=st.one_of(
        st.lists(PLAUSIBLE_ENTRIES, max_size=6, unique_by=lambda entry: entry[0]),
        st.lists(TOML_ENTRIES, max_size=6, unique_by=lambda entry: entry[0]),
    ),
    junk=st.lists(TOML_JUNK, max_size=1).filter(lambda junk: not junk or junk[0] != ""),
    with_junk=st.integers(0, 5),
)
def test_cli_config_toml(warm_cli, capsys, entries, junk, with_junk):
    """``lstmkit forecast --config`` with generated TOML (the command's option names and
    junk keys; every TOML type: arrays, tables, dates, huge integers, NaN and infinity,
    long strings; deep nesting; broken syntax) and a data file that does not exist: exit 2
    with one line, whether the config is refused or accepted; nothing trains."""
    capsys.readouterr()
    config, data, out = FUZZ_DIR / "config.toml", FUZZ_DIR / "missing.csv", FUZZ_DIR / "run"
    fuzz_file("config.toml", toml_text(entries, junk if with_junk == 0 else []))
    with bounded():
        code = main(["forecast", "--config", str(config), "--data", str(data), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, f"exit {code}: {err[:2000]}"
    assert len(err.splitlines()) == 1, f"stderr of {len(err.splitlines())} lines: {err[:2000]!r}"
    short = err.strip()
    for path in (config, data, out):
        short = short.replace(str(path), "")
    assert len(short) <= MAX_MESSAGE + CLICK_FRAME, f"{len(short)} characters: {err[:300]!r}"
    assert not out.exists(), "a run directory was created: the command got past its data"
