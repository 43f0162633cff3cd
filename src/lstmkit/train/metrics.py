"""Evaluation metrics, computed by torchmetrics (not hand-written), named as everywhere else.

Regression (:func:`regression_metrics`): ``mse``, ``rmse``, ``mae``, ``mape``, ``smape``,
``r2``. ``mape`` is taken over the targets that are not zero (a zero target has no
percentage error; the number left out is ``mape_zero_targets``), so it stays finite;
``smape`` = mean 2|y − ŷ| / (|y| + |ŷ|), 0 where both are 0. Percentages are fractions
(0.05 = 5 %).

Classification (:func:`classification_metrics`): ``accuracy``, ``precision``, ``recall``,
``f1`` (macro) and their ``*_weighted`` forms, ``confusion_matrix`` (rows = true class,
columns = predicted, in the order of ``classes``), and ``per_class``: precision, recall, f1
and support of each class.
"""

import numpy as np
import torch
import torchmetrics.functional as tmf


def _tensor(values, name: str) -> torch.Tensor:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite numbers, got NaN or infinity")
    return torch.from_numpy(array)


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """Metrics of predictions against targets of the same shape (any shape, flattened)."""
    y, p = _tensor(y_true, "y_true"), _tensor(y_pred, "y_pred")
    if y.shape != p.shape:
        raise ValueError(
            f"y_pred: expected {y.numel()} values (as many as y_true), got {p.numel()}"
        )
    if y.numel() == 0:
        raise ValueError("y_true: expected at least one value, got none")
    nonzero = y != 0
    mse = float(tmf.mean_squared_error(p, y))
    return {
        "mse": mse,
        "rmse": mse**0.5,
        "mae": float(tmf.mean_absolute_error(p, y)),
        "mape": float(tmf.mean_absolute_percentage_error(p[nonzero], y[nonzero]))
        if bool(nonzero.any())
        else float("nan"),
        "mape_zero_targets": int((~nonzero).sum()),
        "smape": float(tmf.symmetric_mean_absolute_percentage_error(p, y)),
        "r2": _r2(y, p) if y.numel() > 1 else float("nan"),
    }


def _r2(y: torch.Tensor, p: torch.Tensor) -> float:
    """R² = 1 − Σ(y − p)² / Σ(y − ȳ)² in float64, at any scale of y: 1 for a perfect
    prediction, 0 for an imperfect one of a constant y (scikit-learn's conventions).
    torchmetrics' r2_score treats both sums below 1e-4 as zero and returns 1 whatever the
    prediction, so targets of small magnitude (returns, rates: |y| ~ 1e-3) scored 1."""
    rss = float(((y - p) ** 2).sum())
    tss = float(((y - y.mean()) ** 2).sum())
    if tss == 0:
        return 1.0 if rss == 0 else 0.0
    return 1 - rss / tss


def classification_metrics(y_true, y_pred, classes) -> dict:
    """Metrics of predicted class indices against true ones; ``classes`` names the indices."""
    y = torch.as_tensor(np.asarray(y_true, dtype=np.int64).reshape(-1))
    p = torch.as_tensor(np.asarray(y_pred, dtype=np.int64).reshape(-1))
    if y.shape != p.shape:
        raise ValueError(f"y_pred: expected {y.numel()} labels (as y_true), got {p.numel()}")
    k = len(classes)
    if k < 2:
        raise ValueError(f"classes: expected at least 2 classes, got {k}")
    common = {"task": "multiclass", "num_classes": k}
    scores = {"precision": tmf.precision, "recall": tmf.recall, "f1": tmf.f1_score}
    result = {"accuracy": float(tmf.accuracy(p, y, average="micro", **common))}
    for average, suffix in (("macro", ""), ("weighted", "_weighted")):
        for name, score in scores.items():
            result[name + suffix] = float(score(p, y, average=average, **common))
    result["confusion_matrix"] = tmf.confusion_matrix(p, y, **common).tolist()
    result["classes"] = [str(c) for c in classes]
    per_class = {
        name: score(p, y, average="none", **common).tolist() for name, score in scores.items()
    }
    support = torch.bincount(y, minlength=k).tolist()
    result["per_class"] = {
        str(c): {**{m: per_class[m][j] for m in per_class}, "support": support[j]}
        for j, c in enumerate(classes)
    }
    return result


def majority_class_metrics(y_train, y_test, classes=None) -> dict:
    """The majority-class baseline: :func:`classification_metrics` of always predicting
    the most frequent training label (ties: the first in sorted order) on ``y_test``.
    ``classes`` (sorted labels) defaults to those of y_train and y_test together."""
    y_train, y_test = np.asarray(y_train).reshape(-1), np.asarray(y_test).reshape(-1)
    if classes is None:
        classes = np.unique(np.concatenate([y_train, y_test]))
    classes = np.asarray(classes)
    values, counts = np.unique(y_train, return_counts=True)
    top = np.searchsorted(classes, values[counts.argmax()])
    truth = np.searchsorted(classes, y_test)
    return classification_metrics(truth, np.full_like(truth, top), list(classes))


def baseline_metrics(task: str, y_train, y_test, classes=None) -> dict[str, dict]:
    """The naive baseline of a sequence task on the test targets: ``{"majority": ...}``
    (classify, tag: :func:`majority_class_metrics`) or ``{"mean": ...}`` (regress: the
    training targets' mean predicted everywhere). Per-step targets (lists of arrays) are
    flattened over all steps; a task without such a baseline gives ``{}``."""
    y_train, y_test = (
        np.concatenate([np.asarray(t).reshape(-1) for t in y]) for y in (y_train, y_test)
    )
    if task in ("classify", "tag"):
        return {"majority": majority_class_metrics(y_train, y_test, classes)}
    if task == "regress":
        truth = y_test.astype(np.float64)
        guess = np.full_like(truth, y_train.astype(np.float64).mean())
        return {"mean": regression_metrics(truth, guess)}
    return {}
