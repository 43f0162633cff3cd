"""Sequence estimators: :class:`SequenceClassifier` (sequence → label),
:class:`SequenceRegressor` (sequence → value(s), or a value per step) and
:class:`SequenceTagger` (sequence → a label per step).

Defaults, chosen on the UCR/UEA sets (see ``docs/benchmarks.md``): a BiLSTM of 64 units
whose head reads the final states and the per-channel maximum over the real steps
(``pooling="last+max"``), AdamW at 3e-3, about 16 batches per epoch, early stopping.

Inputs are a list of (T_i, D) arrays of any lengths, a 3-D array (N, T, D) or a 2-D array
(N, T) (one channel). Batches are padded and run with the engine's ``lengths``, so padding
never reaches the outputs, the losses or the metrics. Channels are standardised with
statistics of the real steps of the training part only. The validation part (for early
stopping) is a seeded split of the training data, stratified by class for classifiers.
"""

from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from lstmkit.data.readers import as_sequences
from lstmkit.recurrence.lengths import real_steps
from lstmkit.tasks.networks import (
    RecurrentNet,
    check_cell,
    check_cell_options,
    check_pooling,
    gate_activations,
)
from lstmkit.tasks.persist import restore, save_estimator
from lstmkit.train.loop import TrainConfig, fit, seed_torch
from lstmkit.train.metrics import classification_metrics, regression_metrics


def pad(sequences: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> dict[str, Tensor]:
    """Standardise and pad to {"x": (N, T_max, D) float32, "lengths": (N,) int64}."""
    lengths = np.array([len(s) for s in sequences])
    x = np.zeros((len(sequences), lengths.max(), sequences[0].shape[1]), dtype=np.float32)
    # every real step at once: row n, step t of each sequence's values in the concatenation
    rows = np.repeat(np.arange(len(sequences)), lengths)
    steps = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    x[rows, steps] = (np.concatenate(sequences) - mean) / std
    return {"x": torch.from_numpy(x), "lengths": torch.from_numpy(lengths)}


def split_indices(n: int, fraction: float, seed: int, strata=None) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) index arrays; stratified by ``strata`` labels when given."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation: expected a fraction in [0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    if fraction == 0:
        return np.arange(n), np.arange(0)
    groups = (
        [np.arange(n)]
        if strata is None
        else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    )
    val = []
    for group in groups:
        take = round(len(group) * fraction)
        if strata is not None and len(group) > 1:
            take = max(take, 1)
        val.extend(rng.permutation(group)[:take])
    val = np.sort(np.array(val, dtype=np.int64))
    return np.setdiff1d(np.arange(n), val), val


def default_batch_size(n: int) -> int:
    """About 16 optimizer steps per epoch, between 8 and 64 sequences per batch: small
    datasets (the UCR sets have 40–70 training series) need the steps more than the speed."""
    return int(min(64, max(8, n // 16)))


class _SequenceEstimator:
    """Shared fitting, prediction and persistence; subclasses define targets and loss.

    ``cell_options`` asks for cell variants (``docs/variants.md``), e.g.
    ``{"layer_norm": True, "zoneout": 0.1}``; the keys are checked against the cell.
    """

    _output = "last"
    _kind = ""

    def __init__(
        self,
        *,
        cell: str = "lstm",
        bidirectional: bool = True,
        num_layers: int = 1,
        hidden_size: int = 64,
        dropout: float = 0.0,
        pooling: str = "last+max",
        epochs: int = 200,
        batch_size: int | None = None,
        lr: float = 3e-3,
        patience: int | None = 30,
        validation: float = 0.2,
        seed: int = 0,
        progress: bool | None = None,
        checkpoint: str | None = None,
        resume: bool = False,
        cell_options: dict | None = None,
    ) -> None:
        check_cell(cell)
        check_pooling(pooling)
        self.params = {
            "cell": cell,
            "cell_options": check_cell_options(cell, cell_options),
            "bidirectional": bidirectional,
            "num_layers": num_layers,
            "hidden_size": hidden_size,
            "dropout": dropout,
            "pooling": pooling,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "patience": patience,
            "validation": validation,
            "seed": seed,
        }
        # batch_size=None is resolved from the data in fit; 8 stands in until then
        self._train_cfg = TrainConfig.from_params(
            self.params,
            batch_size=batch_size or 8,
            progress=progress,
            checkpoint=checkpoint,
            resume=resume,
        )
        self.net: RecurrentNet | None = None
        self.history = None

    def _fit(self, X, targets: Tensor, strata, out_size: int, extra_fitted: dict, callback):
        seqs = as_sequences(X)
        if len(seqs) != len(targets):
            raise ValueError(
                f"y: expected {len(seqs)} targets (one per sequence), got {len(targets)}"
            )
        train_idx, val_idx = split_indices(
            len(seqs), self.params["validation"], self.params["seed"], strata
        )
        real = np.concatenate([seqs[i] for i in train_idx])
        std = real.std(axis=0)
        self._fitted = {
            "mean": real.mean(axis=0).tolist(),
            "std": np.where(std > 0, std, 1.0).tolist(),
            "input_size": int(real.shape[1]),
            "output_size": out_size,
            **extra_fitted,
        }
        data = self._tensors(seqs)
        data["y"] = targets
        train = {k: v[torch.from_numpy(train_idx)] for k, v in data.items()}
        val = {k: v[torch.from_numpy(val_idx)] for k, v in data.items()} if len(val_idx) else None
        cfg = self._train_cfg
        if self.params["batch_size"] is None:
            cfg = replace(cfg, batch_size=default_batch_size(len(train_idx)))
        seed_torch(self.params["seed"])
        self.net = self._build()
        self.history = fit(self.net, self._loss, train, val, cfg, callback=callback)
        return self

    def _tensors(self, seqs) -> dict[str, Tensor]:
        mean, std = np.array(self._fitted["mean"]), np.array(self._fitted["std"])
        if seqs[0].shape[1] != self._fitted["input_size"]:
            raise ValueError(
                f"X: expected {self._fitted['input_size']} channels (as in fit), "
                f"got {seqs[0].shape[1]}"
            )
        return pad(seqs, mean, std)

    def _build(self) -> RecurrentNet:
        p = self.params
        return RecurrentNet(
            self._fitted["input_size"],
            self._fitted["output_size"],
            cell=p["cell"],
            hidden_size=p["hidden_size"],
            num_layers=p["num_layers"],
            bidirectional=p["bidirectional"],
            dropout=p["dropout"],
            output=self._output,
            pooling=p["pooling"],
            cell_options=p["cell_options"],
        )

    def _check_fitted(self) -> None:
        if self.net is None:
            raise ValueError(f"this {self._kind} is not fitted yet: call fit(X, y) first")

    @torch.no_grad()
    def _raw(self, X, batch: int = 256) -> list[Tensor]:
        """Network outputs per sequence: (K,) for "last", (T_i, K) for "sequence"."""
        self._check_fitted()
        seqs = as_sequences(X)
        data = self._tensors(seqs)
        self.net.eval()
        outs = []
        for start in range(0, len(seqs), batch):
            x = data["x"][start : start + batch]
            lengths = data["lengths"][start : start + batch]
            out = self.net(x[:, : int(lengths.max())], lengths)
            if self._output == "sequence":
                outs.extend(o[:n] for o, n in zip(out, lengths.tolist(), strict=True))
            else:
                outs.extend(out)
        return outs

    def gate_activations(self, x) -> dict[str, dict[str, np.ndarray]]:
        """The network's gates on one sequence ``x`` (T, D) or (T,), standardised as in
        fit; see :func:`lstmkit.tasks.networks.gate_activations`."""
        self._check_fitted()
        data = self._tensors(as_sequences([x]))
        self.net.eval()
        return gate_activations(self.net, data["x"][0])

    def _loss_last(self, net, batch):
        lengths = batch["lengths"]
        out = net(batch["x"][:, : int(lengths.max())], lengths)
        return self._criterion(out, batch["y"]), len(lengths)

    def _loss_sequence(self, net, batch):
        lengths = batch["lengths"]
        steps = int(lengths.max())
        out = net(batch["x"][:, :steps], lengths)
        mask = real_steps(lengths, steps)
        return self._criterion(out[mask], batch["y"][:, :steps][mask]), int(mask.sum())

    def _loss(self, net, batch):
        if self._output == "sequence":
            return self._loss_sequence(net, batch)
        return self._loss_last(net, batch)

    def save(self, path):
        """Write safetensors weights + JSON config; ``Class.load(path)`` reads them back."""
        self._check_fitted()
        return save_estimator(
            path, self._kind, {"params": self.params, "fitted": self._fitted}, self.net.state_dict()
        )

    @classmethod
    def load(cls, path):
        return restore(cls, path, cls._restore)

    def _restore(self, fitted: dict) -> RecurrentNet:
        self._fitted = fitted
        self._setup_loaded()
        return self._build()

    def _setup_loaded(self) -> None:
        """Restore derived attributes from ``self._fitted`` after loading."""


def _labels(y, name: str = "y") -> np.ndarray:
    array = np.asarray(y)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected one label per sequence (1-D), got shape {array.shape}")
    return array


class SequenceClassifier(_SequenceEstimator):
    """Sequence → label. ``class_weight``: None, "balanced", or a {label: weight} dict."""

    _kind = "SequenceClassifier"

    def __init__(self, *, class_weight=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_weight = class_weight

    def fit(self, X, y, *, callback=None):
        labels = _labels(y)
        self.classes_ = np.unique(labels)
        if len(self.classes_) < 2:
            raise ValueError(f"y: expected at least 2 classes, got {len(self.classes_)}")
        index = np.searchsorted(self.classes_, labels)
        weights = self._class_weights(index)
        self._weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
        extra = {
            "classes": self.classes_.tolist(),
            "weights": None if weights is None else list(weights),
        }
        return self._fit(X, torch.from_numpy(index), index, len(self.classes_), extra, callback)

    def _class_weights(self, index: np.ndarray):
        if self.class_weight is None:
            return None
        counts = np.bincount(index, minlength=len(self.classes_)).astype(np.float64)
        if self.class_weight == "balanced":
            return len(index) / (len(self.classes_) * counts)
        if isinstance(self.class_weight, dict):
            missing = [c for c in self.class_weight if c not in set(self.classes_.tolist())]
            if missing:
                raise ValueError(f"class_weight: expected labels of y, got unknown {missing}")
            return np.array([float(self.class_weight.get(c, 1.0)) for c in self.classes_.tolist()])
        raise ValueError(
            f"class_weight: expected None, 'balanced' or a dict, got {self.class_weight!r}"
        )

    def _setup_loaded(self) -> None:
        self.classes_ = np.array(self._fitted["classes"])
        w = self._fitted["weights"]
        self._weights = None if w is None else torch.tensor(w, dtype=torch.float32)

    def _criterion(self, logits, target):
        return torch.nn.functional.cross_entropy(logits, target, weight=self._weights)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (N, n_classes), columns in the order of ``classes_``."""
        return torch.softmax(torch.stack(self._raw(X)), dim=-1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def evaluate(self, X, y) -> dict:
        """Accuracy, precision, recall, F1 (macro and weighted), confusion matrix."""
        labels = _labels(y)
        unknown = sorted(set(labels.tolist()) - set(self.classes_.tolist()))
        if unknown:
            raise ValueError(
                f"y: expected labels seen in fit {self.classes_.tolist()}, got {unknown}"
            )
        pred = self.predict(X)
        truth = np.searchsorted(self.classes_, labels)
        return classification_metrics(
            truth, np.searchsorted(self.classes_, pred), self.classes_.tolist()
        )


class SequenceRegressor(_SequenceEstimator):
    """Sequence → value(s) (``output="last"``) or a value per step (``output="sequence"``).
    Targets are standardised on the training data; predictions come back on their scale."""

    _kind = "SequenceRegressor"

    def __init__(self, *, output: str = "last", **kwargs) -> None:
        if output not in ("last", "sequence"):
            raise ValueError(f"output: expected 'last' or 'sequence', got {output!r}")
        super().__init__(**kwargs)
        self._output = output
        self.params["output"] = output

    def _targets(self, y, seqs):
        if self._output == "last":
            t = np.asarray(y, dtype=np.float64)
            return t[:, None] if t.ndim == 1 else t
        per_step = as_sequences(y)
        for n, (s, t) in enumerate(zip(seqs, per_step, strict=True)):
            if len(s) != len(t):
                raise ValueError(f"y[{n}]: expected {len(s)} steps (as X[{n}]), got {len(t)}")
        return per_step

    def fit(self, X, y, *, callback=None):
        seqs = as_sequences(X)
        if len(np.asarray(y, dtype=object)) != len(seqs):
            raise ValueError(f"y: expected {len(seqs)} targets (one per sequence), got {len(y)}")
        targets = self._targets(y, seqs)
        real = targets if self._output == "last" else np.concatenate(targets)
        mean, std = real.mean(axis=0), real.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        if self._output == "last":
            tensor = torch.tensor((targets - mean) / std, dtype=torch.float32)
        else:
            tensor = pad(targets, mean, std)["x"]
        extra = {"y_mean": mean.tolist(), "y_std": std.tolist()}
        return self._fit(seqs, tensor, None, real.shape[1], extra, callback)

    def _criterion(self, pred, target):
        return torch.nn.functional.mse_loss(pred, target)

    def predict(self, X):
        mean, std = np.array(self._fitted["y_mean"]), np.array(self._fitted["y_std"])
        outs = [o.numpy().astype(np.float64) * std + mean for o in self._raw(X)]
        if self._output == "last":
            pred = np.stack(outs)
            return pred[:, 0] if pred.shape[1] == 1 else pred
        return [o[:, 0] if o.shape[1] == 1 else o for o in outs]

    def evaluate(self, X, y) -> dict:
        pred = self.predict(X)
        if self._output == "last":
            return regression_metrics(
                np.asarray(y, dtype=np.float64).reshape(-1), np.asarray(pred).reshape(-1)
            )
        truth = np.concatenate([np.asarray(t, dtype=np.float64).reshape(-1) for t in y])
        return regression_metrics(truth, np.concatenate([p.reshape(-1) for p in pred]))


class SequenceTagger(_SequenceEstimator):
    """Sequence → a label per step; y is a list of per-step label arrays."""

    _kind = "SequenceTagger"
    _output = "sequence"

    def fit(self, X, y, *, callback=None):
        seqs = as_sequences(X)
        tags = [np.asarray(t) for t in y]
        if len(tags) != len(seqs):
            raise ValueError(f"y: expected {len(seqs)} tag sequences, got {len(tags)}")
        for n, (s, t) in enumerate(zip(seqs, tags, strict=True)):
            if t.shape != (len(s),):
                raise ValueError(f"y[{n}]: expected {len(s)} tags (as X[{n}]), got shape {t.shape}")
        self.classes_ = np.unique(np.concatenate(tags))
        index = [np.searchsorted(self.classes_, t) for t in tags]
        padded = torch.zeros(len(index), max(len(t) for t in index), dtype=torch.int64)
        for n, t in enumerate(index):
            padded[n, : len(t)] = torch.from_numpy(t)
        classes = {"classes": self.classes_.tolist()}
        return self._fit(seqs, padded, None, len(self.classes_), classes, callback)

    def _setup_loaded(self) -> None:
        self.classes_ = np.array(self._fitted["classes"])

    def _criterion(self, logits, target):
        return torch.nn.functional.cross_entropy(logits, target)

    def predict(self, X) -> list[np.ndarray]:
        return [self.classes_[o.argmax(-1).numpy()] for o in self._raw(X)]

    def evaluate(self, X, y) -> dict:
        pred = np.concatenate(self.predict(X))
        truth = np.concatenate([np.asarray(t) for t in y])
        return classification_metrics(
            np.searchsorted(self.classes_, truth),
            np.searchsorted(self.classes_, pred),
            self.classes_.tolist(),
        )
