"""``.npz`` archives of sequences: ``X`` (N, T, D) or N arrays with ``lengths``, and ``y``
(:func:`read_npz`); every member's header is checked against the memory budget before it
is read, and nothing in the archive is unpickled."""

import math
import os
import re
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np

from lstmkit.budget import memory_budget
from lstmkit.data.frame import _NUMERIC_KINDS, _as_path
from lstmkit.messages import listed, short_errors, shown


@short_errors
def read_npz(path: str | os.PathLike) -> tuple[np.ndarray | list[np.ndarray], np.ndarray | None]:
    """Read sequences (and labels or targets) from a NumPy ``.npz`` archive.

    Keys, one layout per file:

    * ``X`` (or ``x``): one array (N, ...), e.g. (N, T, D) equal-length sequences;
    * ``X_0``, ``X_1``, ..., ``X_{N-1}``: N variable-length sequences (T_i, D) or (T_i,);
    * ``X`` flat (sum T_i, D) or (sum T_i,) plus ``lengths`` (N,) positive ints: X is
      split along axis 0 into N sequences of those lengths;

    and optionally ``y`` (N, ...), returned as stored. Other keys are refused, so a typo
    such as ``Y`` does not silently drop the labels. Pickles are never loaded
    (``allow_pickle=False``): an object array raises.

    Returns:
        ``(X, y)``: X, a float64 array (layout ``X``) or a list of N float64 arrays
        (variable lengths; :func:`as_sequences` makes them (T_i, D)); y or ``None``.

    Raises:
        ValueError: not an ``.npz`` archive, no ``X``, unexpected keys, an object (pickled)
            or non-numeric X, lengths that do not split X, a y whose length is not N.
    """
    path = _as_path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # zip: first entry, or empty
            got = "a single .npy array" if magic.startswith(b"\x93NUM") else f"{magic!r}..."
            raise ValueError(
                f"{path}: expected an .npz archive (a zip file from numpy.savez), got {got}"
            )
        f.seek(0)
        try:
            archive = np.load(f, allow_pickle=False)
        except (ValueError, *_NPZ_ERRORS) as e:
            raise ValueError(
                f"{path}: expected an .npz archive (numpy.savez), got unreadable data "
                f"({str(e)[:200]})"
            ) from None
        with archive:
            return _npz_contents(path, archive)


# What a damaged archive raises inside zipfile and numpy.lib.format.
_NPZ_ERRORS = (
    OSError,
    EOFError,
    zipfile.BadZipFile,
    KeyError,
    NotImplementedError,
    RuntimeError,
    SyntaxError,  # numpy parses a .npy header dictionary as Python literals
    tokenize.TokenError,
    zlib.error,  # a damaged deflate stream
    OverflowError,  # a header numpy parsed but cannot size
)


def _npz_array(path: Path, archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    _check_npy_size(path, archive, key)
    try:
        array = archive[key]
    except (ValueError, *_NPZ_ERRORS) as e:
        if isinstance(e, ValueError) and "allow_pickle" in str(e):
            hint = "a numeric array (store variable lengths as X_0, X_1, ... or as X plus lengths)"
            if key == "y":
                hint = "a numeric or str array"
            raise ValueError(
                f"{path}: {key} holds Python objects (a pickle), which are never loaded; "
                f"expected {hint}"
            ) from None
        raise ValueError(
            f"{path}: {key}: expected a .npy array, got bad data ({str(e)[:200]})"
        ) from None
    if not isinstance(array, np.ndarray):  # a member not named .npy comes back as bytes
        raise ValueError(f"{path}: {key}: expected a .npy array, got raw bytes")
    return array


def _check_npy_size(path: Path, archive: np.lib.npyio.NpzFile, key: str) -> None:
    """Read the member's .npy header before its data: the array it declares must be what the
    member holds (a header may claim 10^12 elements for a few bytes) and, uncompressed, fit
    a quarter of the memory budget (reading makes float64 copies; a deflate bomb is small on
    disk). Members that are not .npy files are left to the caller."""
    names = archive.zip.namelist()
    name = key if key in names else f"{key}.npy"  # numpy's order: the raw member name first
    if name not in names:
        return
    info = archive.zip.getinfo(name)
    allowed = memory_budget() // 4
    if info.file_size > allowed:
        raise ValueError(
            f"{path}: {key}: expected at most {allowed:,} bytes uncompressed (a quarter of the "
            f"memory budget, LSTMKIT_MEMORY_BUDGET), got {info.file_size:,}"
        )
    try:
        with archive.zip.open(name) as member:
            version = np.lib.format.read_magic(member)
            reader = {  # 3.0 differs from 2.0 in the header's text encoding only
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
                (3, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if reader is None:
                return  # numpy's own reader will say what is wrong
            shape, _, dtype = reader(member)
            header = member.tell()
    except (ValueError, *_NPZ_ERRORS):
        return  # a damaged header: numpy's reader reports it below
    if not all(type(n) is int and n < 2**63 for n in shape):  # numpy takes (True,), 2**64
        raise ValueError(f"{path}: {key}: expected a .npy shape of integers, got {shown(shape)}")
    declared = math.prod(shape) * dtype.itemsize
    if declared > info.file_size - header:
        raise ValueError(
            f"{path}: {key}: expected a .npy array, got a header declaring shape {shape} "
            f"({declared:,} bytes) for {info.file_size - header:,} bytes of data"
        )


def _npz_numeric(path: Path, archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    array = _npz_array(path, archive, key)
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{path}: {key}: expected a numeric array, got dtype {array.dtype}")
    return array.astype(np.float64)


def _npz_contents(
    path: Path, archive: np.lib.npyio.NpzFile
) -> tuple[np.ndarray | list[np.ndarray], np.ndarray | None]:
    keys = set(archive.files)
    found = listed(sorted(keys)) or "none"
    parts = {int(k[2:]): k for k in keys if re.fullmatch(r"X_(0|[1-9][0-9]*)", k)}
    flat = [k for k in ("X", "x") if k in keys]
    unexpected = sorted(keys - set(parts.values()) - {"X", "x", "y", "lengths"})
    if not flat and not parts:
        raise ValueError(
            f"{path}: no X; expected the key X (or x), or X_0, X_1, ...; found keys: {found}"
        )
    if unexpected:
        raise ValueError(
            f"{path}: unexpected keys {listed(unexpected)}; expected X (or x), or X_0, "
            f"X_1, ..., and optionally y and lengths; found keys: {found}"
        )
    if len(flat) == 2 or (flat and parts):
        raise ValueError(
            f"{path}: expected one layout, X (or x) or X_0, X_1, ...; found keys: {found}"
        )
    if parts:
        if "lengths" in keys:
            raise ValueError(
                f"{path}: lengths goes with a flat X, not with X_0, X_1, ...; found keys: {found}"
            )
        absent = sorted(set(range(len(parts))) - set(parts))
        if absent:
            raise ValueError(
                f"{path}: expected X_0 ... X_{len(parts) - 1} for {len(parts)} sequences, "
                f"got no X_{absent[0]}"
            )
        X: np.ndarray | list[np.ndarray] = [
            _npz_numeric(path, archive, f"X_{i}") for i in range(len(parts))
        ]
    else:
        key = flat[0]
        X = _npz_numeric(path, archive, key)
        if X.ndim == 0:
            raise ValueError(f"{path}: {key}: expected an array of N sequences, got a scalar")
        if "lengths" in keys:
            X = _npz_split(path, key, X, _npz_array(path, archive, "lengths"))
    y = None
    if "y" in keys:
        y = _npz_array(path, archive, "y")
        if y.ndim == 0 or y.shape[0] != len(X):
            raise ValueError(
                f"{path}: y: expected {len(X)} entries (one per sequence), got shape {y.shape}"
            )
    return X, y


def _npz_split(path: Path, key: str, X: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise ValueError(
            f"{path}: lengths: expected a 1-D integer array, got dtype {lengths.dtype} and "
            f"shape {lengths.shape}"
        )
    if len(lengths) == 0 or (lengths < 1).any():
        raise ValueError(
            f"{path}: lengths: expected at least one length, all >= 1, got {lengths.tolist()}"
        )
    total = sum(int(n) for n in lengths)  # Python ints: a uint64 sum can wrap around
    if total != X.shape[0]:
        raise ValueError(
            f"{path}: lengths: expected them to sum to {X.shape[0]} ({key} has {X.shape[0]} "
            f"rows), got {total}"
        )
    return np.split(X, np.cumsum(lengths.astype(np.int64))[:-1])
