"""The report's figures, drawn with matplotlib (Agg, no display) and returned as PNG bytes.

Each function takes plain arrays and lists — what the estimators and the optimizer already
give — so the figures are the same whether a run comes from the CLI or from Python.
"""

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

_SIZE = (7.0, 3.2)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def learning_curves(epochs: Sequence[Mapping]) -> bytes:
    """Training and validation loss per epoch (a ``History.epochs`` list); log scale."""
    fig, ax = plt.subplots(figsize=_SIZE)
    x = [e["epoch"] for e in epochs]
    ax.plot(x, [e["train_loss"] for e in epochs], label="training loss")
    if epochs and "val_loss" in epochs[0]:
        ax.plot(x, [e["val_loss"] for e in epochs], label="validation loss")
    ax.set(xlabel="epoch", ylabel="loss")
    if all(e["train_loss"] > 0 for e in epochs):
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def forecast(
    history: np.ndarray,
    actual: np.ndarray,
    predicted: Mapping[str, np.ndarray],
    labels: Sequence[str] | None = None,
    context: int = 48,
) -> bytes:
    """The last ``context`` steps of the series, then the held-out part: actual against
    each prediction; a vertical line marks where the horizon starts."""
    fig, ax = plt.subplots(figsize=_SIZE)
    past = np.asarray(history, dtype=float)[-context:]
    start = len(past)
    steps = np.arange(start + len(actual))
    ax.plot(steps[:start], past, color="0.3", label="history")
    ax.plot(steps[start:], actual, color="black", marker=".", label="actual")
    for name, values in predicted.items():
        ax.plot(steps[start:], values, marker=".", label=name)
    ax.axvline(start - 0.5, color="red", linestyle="--", linewidth=1, label="forecast origin")
    if labels is not None and len(labels) == len(steps):
        ticks = np.linspace(0, len(steps) - 1, 6).astype(int)
        ax.set_xticks(ticks, [labels[t] for t in ticks])
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def residuals(actual: np.ndarray, predicted: np.ndarray) -> bytes:
    """Residuals (actual − predicted) per step of the horizon."""
    fig, ax = plt.subplots(figsize=_SIZE)
    r = np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float)
    ax.bar(np.arange(1, len(r) + 1), r, color=np.where(r >= 0, "tab:blue", "tab:orange"))
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xlabel="step ahead", ylabel="actual − predicted")
    ax.grid(alpha=0.3)
    return _png(fig)


def confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> bytes:
    """Confusion matrix: rows the true class, columns the predicted one, counts written in."""
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(classes), 1.0 + 0.6 * len(classes)))
    ax.imshow(m, cmap="Blues")
    for (i, j), count in np.ndenumerate(m):
        colour = "white" if count > m.max() / 2 else "black"
        ax.text(j, i, str(count), ha="center", va="center", color=colour)
    ax.set_xticks(range(len(classes)), [str(c) for c in classes], rotation=45)
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set(xlabel="predicted", ylabel="true")
    return _png(fig)


def convergence(best: Sequence[float], label: str = "best validation score") -> bytes:
    """The optimizer's best value after each iteration (generation)."""
    fig, ax = plt.subplots(figsize=_SIZE)
    ax.plot(np.arange(len(best)), best, marker=".")
    ax.set(xlabel="iteration", ylabel=label)
    ax.grid(alpha=0.3)
    return _png(fig)


def gates(activations: Mapping[str, np.ndarray], title: str = "") -> bytes:
    """Heatmaps of gate activations over time for one sample: each entry (T, H) — for an
    LSTM i, f, o and the cell state C; for a GRU r and z — time on x, unit on y."""
    names = list(activations)
    fig, axes = plt.subplots(len(names), 1, figsize=(7.0, 1.4 * len(names) + 0.6), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=True):
        values = np.asarray(activations[name], dtype=float).T  # (H, T)
        image = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
        ax.set_ylabel(name)
        fig.colorbar(image, ax=ax, fraction=0.03)
    axes[-1].set_xlabel("time step")
    if title:
        axes[0].set_title(title)
    return _png(fig)


def fan_chart(
    names: Sequence[str],
    history: Sequence[np.ndarray],
    actual: Sequence[np.ndarray],
    median: Sequence[np.ndarray],
    lower: Sequence[np.ndarray] | None = None,
    upper: Sequence[np.ndarray] | None = None,
    band: str = "80 % interval",
    context: int = 48,
) -> bytes:
    """Small multiples, one per series (three to a row): the last ``context`` steps of its
    history, then the held-out part: actual, the median forecast and, with ``lower`` and
    ``upper``, the band between them shaded (labelled ``band``). Steps are counted from the
    forecast origin (1 = the first step ahead); a vertical line marks the origin."""
    n = len(names)
    if n == 0:
        raise ValueError("names: expected at least one series, got none")
    lows = [None] * n if lower is None else lower
    highs = [None] * n if upper is None else upper
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.6 * cols + 0.6, 2.2 * rows + 0.5), squeeze=False
    )
    series = zip(names, history, actual, median, lows, highs, strict=True)
    for ax, (name, past, truth, mid, lo, hi) in zip(axes.flat, series, strict=False):
        past = np.asarray(past, dtype=float)[-context:]
        ahead = np.arange(1, len(mid) + 1)
        ax.plot(np.arange(1 - len(past), 1), past, color="0.3", linewidth=1, label="history")
        if lo is not None and hi is not None:
            ax.fill_between(ahead, lo, hi, color="tab:blue", alpha=0.25, linewidth=0, label=band)
        ax.plot(ahead, mid, color="tab:blue", marker=".", markersize=3, label="median")
        truth = np.asarray(truth, dtype=float)
        ax.plot(ahead[: len(truth)], truth, color="black", marker=".", markersize=3, label="actual")
        ax.axvline(0.5, color="red", linestyle="--", linewidth=0.8)
        ax.set_title(str(name), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    return _png(fig)
