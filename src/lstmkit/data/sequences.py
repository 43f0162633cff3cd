"""In-memory sequences: a (N, T, D) / (N, T) array, a list of (T_i, D) / (T_i,) arrays or
a pandas-like object become N float64 arrays (T_i, D) (:func:`as_sequences`)."""

import numpy as np

from lstmkit.data.frame import _NUMERIC_KINDS, MAX_MAGNITUDE, check_magnitude


def as_sequences(X: object) -> list[np.ndarray]:
    """Normalise input for sequence tasks to a list of N float64 arrays (T_i, D).

    Accepts a (N, T, D) array, a (N, T) array (D = 1), or a list/tuple (or 1-D object
    array) of (T_i, D) or (T_i,) arrays — NumPy arrays, nested lists, CPU tensors or
    anything with ``to_numpy``. The result may share memory with the input.

    Raises:
        ValueError: no sequences, an empty sequence, a sequence that is not (T_i, D) or
            (T_i,), a D that differs from sequence 0's, non-numeric, NaN or infinite
            values; the message names the sequence's index.
        TypeError: X is not an array or a list of arrays.
    """
    expected = "X: expected an (N, T, D) or (N, T) array or a list of (T_i, D) arrays, got"
    if isinstance(X, str | bytes) or not (
        isinstance(X, list | tuple | np.ndarray) or hasattr(X, "__array__")
    ):
        raise TypeError(f"{expected} {type(X).__name__}")
    if isinstance(X, list | tuple) or (isinstance(X, np.ndarray) and X.dtype == object):
        items = list(X)
    else:
        array = np.asarray(X)
        if array.ndim not in (2, 3):
            raise ValueError(f"{expected} an array of shape {array.shape}")
        items = list(array if array.ndim == 3 else array[..., None])
    if not items:
        raise ValueError("X: expected at least one sequence, got none")
    out = []
    for i, item in enumerate(items):
        if hasattr(item, "to_numpy"):
            item = item.to_numpy()
        try:
            seq = np.asarray(item)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"sequence {i}: expected a (T, D) or (T,) array, got {type(item).__name__} "
                f"that is not one ({e})"
            ) from None
        if seq.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"sequence {i}: expected numbers, got dtype {seq.dtype}")
        if seq.ndim == 1:
            seq = seq[:, None]
        if seq.ndim != 2:
            raise ValueError(f"sequence {i}: expected shape (T, D) or (T,), got {seq.shape}")
        if seq.shape[0] == 0 or seq.shape[1] == 0:
            raise ValueError(
                f"sequence {i}: expected at least one step and one feature, got shape {seq.shape}"
            )
        if out and seq.shape[1] != out[0].shape[1]:
            raise ValueError(
                f"sequence {i}: expected {out[0].shape[1]} features (as sequence 0), got "
                f"{seq.shape[1]}"
            )
        out.append(np.ascontiguousarray(seq, dtype=np.float64))
    flat = np.concatenate(out)  # one check of all values; find the culprit only if needed
    if not np.isfinite(flat).all():
        i, seq = next((i, q) for i, q in enumerate(out) if not np.isfinite(q).all())
        t, d = np.argwhere(~np.isfinite(seq))[0]
        raise ValueError(
            f"sequence {i}: expected finite values, got {seq[t, d]} at step {t}, feature {d}"
        )
    if np.abs(flat).max() > MAX_MAGNITUDE:
        for i, seq in enumerate(out):
            check_magnitude(seq, lambda at, i=i: f"sequence {i}, step {at[0]}, feature {at[1]}")
    return out
