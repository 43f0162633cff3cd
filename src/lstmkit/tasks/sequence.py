"""Sequence estimators: :class:`SequenceClassifier` (sequence → label),
:class:`SequenceRegressor` (sequence → value(s), or a value per step) and
:class:`SequenceTagger` (sequence → a label per step).

Defaults, chosen on the UCR/UEA sets (see ``docs/benchmarks.md``): a BiLSTM of 64 units
whose head reads the final states and the per-channel maximum over the real steps
(``pooling="last+max"``), batches of 16 or 32 (:func:`default_batch_size`), AdamW at a
peak rate of 3e-3 × batch / 16 on a one-cycle schedule of a fixed budget (about
:data:`STEP_BUDGET` optimizer steps; ``schedule="plateau"`` stops early instead).

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

from lstmkit.checks import is_int
from lstmkit.data.augment import augment_batch, check_augment
from lstmkit.data.frame import check_magnitude
from lstmkit.data.scaling import FEATURE_NOISE, QUIET, level_and_scale, standardise_each
from lstmkit.data.sequences import as_sequences
from lstmkit.recurrence.lengths import real_steps
from lstmkit.tasks.baselines import sequence_baselines
from lstmkit.tasks.networks import (
    RecurrentNet,
    check_cell,
    check_cell_options,
    check_pooling,
    gate_activations,
)
from lstmkit.tasks.persist import saved_count, saved_labels, saved_numbers
from lstmkit.tasks.protocol import Estimator, constructor_params
from lstmkit.train.loop import TrainConfig, fit, interrupted, seed_torch
from lstmkit.train.metrics import classification_metrics, regression_metrics


def pad(sequences: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> dict[str, Tensor]:
    """Standardise and pad to {"x": (N, T_max, D) float32, "lengths": (N,) int64}."""
    lengths = np.array([len(s) for s in sequences])
    x = np.zeros((len(sequences), lengths.max(), sequences[0].shape[1]), dtype=np.float32)
    # every real step at once, in the concatenation's order (row by row, step by step)
    x[np.arange(lengths.max()) < lengths[:, None]] = (np.concatenate(sequences) - mean) / std
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


# the recipe of the one-value-per-sequence estimators (docs/classification.md)
CONV_FILTERS = (64, 128, 64)  # the LSTM-FCN convolutional branch
RNN_STEPS = 64  # the recurrent branch reads about this many (window-averaged) steps
CONV_STEPS = 128  # the convolutional branch, about this many (patches)
STEP_BUDGET = 240  # optimizer steps of the one-cycle schedule when epochs=None
EPOCH_RANGE = (60, 400)  # ... kept within these epochs
BASE_LR = 3e-3  # the peak rate at batch 16; lr=None scales it with the batch (Goyal et al.)
RESTART_ACCURACY = 0.99  # a classifier below this training accuracy trains another cycle
NORMALISATIONS = ("global", "sequence")


def default_batch_size(n: int) -> int:
    """16 sequences per batch, 32 from 512 training sequences on (about 16 batches an
    epoch): small datasets (the UCR sets have 40–70 training series) need the optimizer
    steps more than the speed."""
    return int(min(32, max(16, n // 16)))


def budget_epochs(n: int, batch_size: int) -> int:
    """Epochs of the one-cycle budget: :data:`STEP_BUDGET` optimizer steps, within
    :data:`EPOCH_RANGE` epochs."""
    per_epoch = -(-n // batch_size)
    low, high = EPOCH_RANGE
    return int(min(high, max(low, -(-STEP_BUDGET // per_epoch))))


def stride_for(lengths, steps: int | None) -> int:
    """The window that brings the median training length down to about ``steps``."""
    if steps is None:
        return 1
    return max(1, int(np.ceil(np.median(lengths) / steps)))


def _check_steps(name: str, value) -> int | None:
    if value is None:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(f"{name}: expected None or an int >= 1, got {value!r}")
    return value


def _check_filters(value) -> tuple[int, ...]:
    filters = tuple(value or ())
    if filters and len(filters) != len(CONV_FILTERS):
        raise ValueError(
            f"conv_filters: expected {len(CONV_FILTERS)} ints (one per block, kernels 8, 5, 3) "
            f"or () for none, got {value!r}"
        )
    if any(not is_int(f) or f < 1 for f in filters):
        raise ValueError(f"conv_filters: expected positive ints, got {value!r}")
    return filters


@torch.no_grad()
def _outputs(net, data: dict[str, Tensor], output: str, batch: int = 256) -> list[Tensor]:
    """``net``'s outputs (evaluation mode) for each sequence of ``data`` (the tensors of
    ``_tensors``): (K,) for "last", (T_i, K) for "sequence" ``output``. Batches are formed
    in order of length (each padded only to its longest), outputs returned in the data's
    order; in evaluation a sequence's output does not depend on its batch."""
    net.eval()
    outs: list = [None] * len(data["lengths"])
    for index in torch.argsort(data["lengths"], stable=True).split(batch):
        lengths = data["lengths"][index]
        extra = data["extra"][index] if "extra" in data else None
        out = net(data["x"][index, : int(lengths.max())], lengths, extra)
        for i, o, n in zip(index.tolist(), out, lengths.tolist(), strict=True):
            outs[i] = o[:n] if output == "sequence" else o
    return outs


def _numbered_on(callback, offset: int):
    """``callback`` of :func:`lstmkit.train.loop.fit` seeing epochs numbered from
    ``offset`` + 1 (a restart's epochs continue the first run's, for pruners too)."""
    return lambda record: callback(record | {"epoch": record["epoch"] + offset})


class EnsembleNet(torch.nn.Module):
    r"""``n_models`` networks trained with seeds seed, seed+1, …; the output combines theirs:
    for probabilities, :math:`\log \frac1M\sum_m \mathrm{softmax}(z_m)` (so a softmax of
    it is the mean of the members' probabilities, as in deep ensembles, Lakshminarayanan et
    al. 2017); for values, the mean."""

    def __init__(self, members: list[RecurrentNet], combine: str) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.combine = combine
        self.output = members[0].output

    def forward(self, x: Tensor, lengths: Tensor | None = None, extra=None) -> Tensor:
        outs = torch.stack([m(x, lengths, extra) for m in self.members])
        if self.combine == "probabilities":
            return torch.logsumexp(torch.log_softmax(outs, -1), 0) - np.log(len(outs))
        return outs.mean(0)


class _SequenceEstimator(Estimator):
    """Shared fitting, prediction and persistence; subclasses define targets and loss.

    ``cell_options`` asks for cell variants (``docs/variants.md``), e.g.
    ``{"layer_norm": True, "zoneout": 0.1}``; the keys are checked against the cell.

    The recipe (``docs/classification.md`` measures each ingredient): ``conv_filters``
    adds the LSTM-FCN convolutional branch; ``rnn_steps``/``conv_steps`` let each branch
    read window means of about that many steps of long series (None: every step);
    ``schedule="onecycle"`` trains a fixed budget (``epochs=None``: about
    :data:`STEP_BUDGET` optimizer steps) with no validation split needed;
    ``schedule="plateau"`` stops early on a ``validation`` share of the training data;
    ``normalize`` standardises each channel over the training set ("global") or each
    sequence on its own ("sequence"); ``n_models`` averages an ensemble over seeds.
    """

    _output = "last"
    _task = ""
    _combine = "mean"
    # batches of like lengths (train.loop.batches): less padding; the classifier's are
    # random (SequenceClassifier._length_buckets)
    _length_buckets = True

    def __init__(
        self,
        *,
        cell: str = "lstm",
        bidirectional: bool = True,
        num_layers: int = 1,
        hidden_size: int = 64,
        dropout: float = 0.0,
        pooling: str = "last+max",
        conv_filters: tuple[int, ...] | str | None = "auto",
        rnn_steps: int | str | None = "auto",
        conv_steps: int | str | None = "auto",
        normalize: str = "auto",
        augment: str | tuple[str, ...] | None = None,
        n_models: int = 1,
        schedule: str = "onecycle",
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        patience: int | None = None,
        validation: float = 0.0,
        seed: int = 0,
        progress: bool | None = None,
        checkpoint: str | None = None,
        resume: bool = False,
        cell_options: dict | None = None,
    ) -> None:
        check_cell(cell)
        check_pooling(pooling)
        per_step = self._output == "sequence"
        # "auto": the LSTM-FCN recipe for the classifier, where it was measured
        # (docs/classification.md); every step and the recurrent layers alone otherwise
        recipe = self._task == "classify"
        if conv_filters == "auto":
            conv_filters = CONV_FILTERS if recipe else ()
        if rnn_steps == "auto":
            rnn_steps = RNN_STEPS if recipe else None
        if conv_steps == "auto":
            conv_steps = CONV_STEPS if recipe else None
        if per_step and (conv_filters or rnn_steps or conv_steps):
            raise ValueError(
                "a per-step output reads every step: expected conv_filters=(), "
                f"rnn_steps=None and conv_steps=None, got {conv_filters!r}, {rnn_steps!r}, "
                f"{conv_steps!r}"
            )
        if normalize == "auto":  # classes: each sequence alone; values: the training set
            normalize = "sequence" if self._task == "classify" else "global"
        if normalize not in NORMALISATIONS:
            raise ValueError(
                f"normalize: expected one of {', '.join(NORMALISATIONS)}, got {normalize!r}"
            )
        if not is_int(n_models) or n_models < 1:
            raise ValueError(f"n_models: expected an int >= 1, got {n_models!r}")
        self.params = constructor_params(
            _SequenceEstimator.__init__,
            locals(),
            cell_options=check_cell_options(cell, cell_options),
            conv_filters=list(_check_filters(conv_filters)),
            rnn_steps=_check_steps("rnn_steps", rnn_steps),
            conv_steps=_check_steps("conv_steps", conv_steps),
            augment=list(check_augment(augment)),
        )
        # epochs/batch_size/lr None are resolved from the data in fit; stand-ins until then
        self._train_cfg = TrainConfig.from_params(
            self.params,
            epochs=epochs or 1,
            batch_size=batch_size or 16,
            lr=lr or BASE_LR,
            length_buckets=self._length_buckets,
            progress=progress,
            checkpoint=checkpoint,
            resume=resume,
        )
        self.net_: RecurrentNet | EnsembleNet | None = None
        self.history_ = None

    def _prepare(self, seqs: list[np.ndarray], fitted: dict | None = None) -> list[np.ndarray]:
        """The sequences as the network reads them before the fitted standardisation
        (``fitted``: the fitted state, or the part of it known so far in fit). Per
        sequence, σ is floored at :data:`QUIET` × the median training σ (:func:`quiet_floor`)."""
        if self.params["normalize"] != "sequence":
            return seqs
        return standardise_each(seqs, quiet_floor(self._fitted if fitted is None else fitted))

    def _fit(
        self, seqs, targets: Tensor, strata, out_size: int, extra_fitted: dict, callback, y=None
    ):
        """Fit on ``seqs`` (from :func:`as_sequences`) and ``targets`` (the network's, one
        row per sequence; each ``fit`` has checked that they pair up, in the words of its own
        targets); ``y``: the targets as the user gave them (kept for :meth:`evaluate`'s
        baselines)."""
        train_idx, val_idx = split_indices(
            len(seqs), self.params["validation"], self.params["seed"], strata
        )
        lengths = [len(seqs[i]) for i in train_idx]
        level_scale = {}
        if self.params["normalize"] == "sequence":
            part = [seqs[i] for i in train_idx]
            sigma = np.median(np.stack([s.std(axis=0) for s in part]), axis=0)
            reference = np.where(sigma > 0, sigma, 1.0)
            features = level_and_scale(part, reference)
            f_std = features.std(axis=0)
            level_scale = {
                "scale_reference": reference.tolist(),
                "quiet_floor": QUIET,
                "extra_mean": features.mean(axis=0).tolist(),
                "extra_std": np.where(f_std > FEATURE_NOISE, f_std, 1.0).tolist(),
            }
        prepared = self._prepare(seqs, level_scale)
        real = np.concatenate([prepared[i] for i in train_idx])
        std = real.std(axis=0)
        self._fitted = {
            "mean": real.mean(axis=0).tolist(),
            "std": np.where(std > 0, std, 1.0).tolist(),
            "input_size": int(real.shape[1]),
            "output_size": out_size,
            "rnn_stride": stride_for(lengths, self.params["rnn_steps"]),
            "conv_stride": stride_for(lengths, self.params["conv_steps"]),
            **level_scale,
            **extra_fitted,
        }
        data = self._tensors(seqs, prepared)
        data["y"] = targets
        train = {k: v[torch.from_numpy(train_idx)] for k, v in data.items()}
        val = {k: v[torch.from_numpy(val_idx)] for k, v in data.items()} if len(val_idx) else None
        batch_size = self.params["batch_size"] or default_batch_size(len(train_idx))
        epochs = self.params["epochs"] or budget_epochs(len(train_idx), batch_size)
        lr = self.params["lr"] or BASE_LR * batch_size / 16
        cfg = replace(self._train_cfg, batch_size=batch_size, epochs=epochs, lr=lr)
        members, histories = [], []
        for k in range(self.params["n_models"]):
            seed_torch(self.params["seed"] + k)
            net = self._build_one()
            member = replace(cfg, seed=cfg.seed + k)
            if cfg.checkpoint and k:  # member k > 0 beside the first: "<checkpoint>-<k>"
                member = replace(member, checkpoint=f"{cfg.checkpoint}-{k}")
            history = fit(net, self._loss, train, val, member, callback=callback)
            histories.append(self._restarted(net, history, train, val, member, callback))
            members.append(net)
            if interrupted(histories[-1]):
                break
        one = self.params["n_models"] == 1
        self.net_ = members[0] if one else EnsembleNet(members, self._combine)
        self._train_data = (seqs, y)  # for the baselines of evaluate; not saved
        self.history_ = histories[-1]
        self.histories_ = histories
        return self

    def _restarted(self, net, history, train, val, cfg, callback):
        """``history`` of ``net`` after up to ``restarts`` more one-cycle runs of the same
        budget while its training accuracy stays below :data:`RESTART_ACCURACY` (the
        classifier's; 0 restarts for other estimators, or other schedules)."""
        restarts = self.params.get("restarts", 0) if cfg.schedule == "onecycle" else 0
        done = 0
        # a run stopped by Ctrl-C or by the callback (a pruned trial) is not restarted
        while done < restarts and history.stop_reason.startswith("completed"):
            accuracy = self._training_accuracy(net, train)
            if accuracy >= RESTART_ACCURACY:
                break
            done += 1
            again = replace(cfg, seed=cfg.seed + 7919 * done, checkpoint=None, resume=False)
            offset = len(history.epochs)
            numbered = None if callback is None else _numbered_on(callback, offset)
            more = fit(net, self._loss, train, val, again, callback=numbered)
            history.epochs += [r | {"epoch": r["epoch"] + offset} for r in more.epochs]
            history.best_loss = more.best_loss
            history.best_epoch = None if more.best_epoch is None else more.best_epoch + offset
            history.stop_reason = (
                f"{more.stop_reason}; restart {done}: training accuracy {accuracy:.3f} was "
                f"below {RESTART_ACCURACY}"
            )
        return history

    def _training_accuracy(self, net, train: dict[str, Tensor]) -> float:
        """The share of the training sequences ``net`` labels right (evaluation mode)."""
        labels = torch.stack(_outputs(net, train, self._output)).argmax(-1)
        return float((labels == train["y"]).float().mean())

    def _tensors(self, seqs, prepared=None) -> dict[str, Tensor]:
        """Padded, standardised inputs (and the head's extra features); ``prepared``:
        :meth:`_prepare` of ``seqs`` when the caller has it already."""
        mean, std = np.array(self._fitted["mean"]), np.array(self._fitted["std"])
        if seqs[0].shape[1] != self._fitted["input_size"]:
            raise ValueError(
                f"X: expected {self._fitted['input_size']} channels (as in fit), "
                f"got {seqs[0].shape[1]}"
            )
        data = pad(self._prepare(seqs) if prepared is None else prepared, mean, std)
        if "scale_reference" in self._fitted:
            f = self._fitted
            features = level_and_scale(seqs, np.array(f["scale_reference"]))
            extra = (features - np.array(f["extra_mean"])) / np.array(f["extra_std"])
            data["extra"] = torch.from_numpy(extra.astype(np.float32))
        return data

    def _build(self) -> RecurrentNet | EnsembleNet:
        members = [self._build_one() for _ in range(self.params["n_models"])]
        return members[0] if len(members) == 1 else EnsembleNet(members, self._combine)

    def _build_one(self) -> RecurrentNet:
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
            extra_size=len(self._fitted.get("extra_mean", ())),
            rnn_stride=self._fitted.get("rnn_stride", 1),
            conv_filters=tuple(p.get("conv_filters", ())),
            conv_stride=self._fitted.get("conv_stride", 1),
        )

    def _raw(self, X) -> list[Tensor]:
        """The fitted network's outputs per sequence of ``X``, in its order (:func:`_outputs`)."""
        self._check_fitted()
        return _outputs(self.net_, self._tensors(as_sequences(X)), self._output)

    def gate_activations(self, x) -> dict[str, dict[str, np.ndarray]]:
        """The network's gates on one sequence ``x`` (T, D) or (T,), standardised as in
        fit; see :func:`lstmkit.tasks.networks.gate_activations`."""
        self._check_fitted()
        data = self._tensors(as_sequences([x]))
        net = self.net_.members[0] if isinstance(self.net_, EnsembleNet) else self.net_
        net.eval()
        return gate_activations(net, data["x"][0])

    def _inputs(self, net, batch) -> Tensor:
        """The batch's inputs up to its longest sequence, augmented in training only."""
        x = batch["x"][:, : int(batch["lengths"].max())]
        if net.training and self.params["augment"]:
            x = augment_batch(x, tuple(self.params["augment"]))
        return x

    def _loss(self, net, batch):
        lengths = batch["lengths"]
        if self._output == "last":
            out = net(self._inputs(net, batch), lengths, batch.get("extra"))
            return self._criterion(out, batch["y"]), len(lengths)
        steps = int(lengths.max())
        out = net(self._inputs(net, batch), lengths)
        mask = real_steps(lengths, steps)
        return self._criterion(out[mask], batch["y"][:, :steps][mask]), int(mask.sum())

    def _class_metrics(self, truth, pred) -> dict:
        """:func:`classification_metrics` of true and predicted labels, by ``classes_``."""
        index = [np.searchsorted(self.classes_, labels) for labels in (truth, pred)]
        return classification_metrics(*index, self.classes_.tolist())

    def evaluate(self, X, y, *, baselines: bool = True, train=None) -> dict[str, dict]:
        """Metrics on (X, y): ``{"model": {...}, <baseline>: {...}, ...}``, every row scored
        the same way on the same test part. The baselines (``baselines=True``,
        :func:`lstmkit.tasks.baselines.sequence_baselines`) are fitted on ``train`` =
        (X_train, y_train), by default the data given to ``fit`` in this session (a loaded
        model keeps none: pass ``train``, or get the model row alone): the majority class or
        the training mean, and with the ``classify`` extra MiniRocket and 1-NN DTW."""
        rows = {"model": self._metrics(X, y)}
        train = train if train is not None else getattr(self, "_train_data", None)
        if baselines and train is not None:
            X_train, y_train = train
            classes = getattr(self, "classes_", None)
            rows |= sequence_baselines(
                self._task,
                as_sequences(X_train),
                y_train,
                as_sequences(X),
                y,
                classes,
                peers=self._output == "last",
                seed=self.params["seed"],
            )
        return rows

    def _restore(self, fitted: dict) -> RecurrentNet:
        _check_saved_scaling(fitted)
        self._fitted = fitted
        self._setup_loaded()
        return self._build()

    def _setup_loaded(self) -> None:
        """Restore derived attributes from ``self._fitted`` after loading."""


def quiet_floor(fitted: dict) -> np.ndarray | float:
    """The floor of each channel's per-sequence σ in ``fitted``: ``quiet_floor`` ×
    ``scale_reference`` (models saved before the floor: 0, none)."""
    return fitted.get("quiet_floor", 0.0) * np.asarray(fitted.get("scale_reference", 1.0))


def _check_saved_scaling(fitted: dict) -> None:
    """A saved model's sizes, strides and statistics are of their kinds and agree: one finite
    mean and positive standard deviation per input channel, the level-and-scale statistics
    (when saved) per channel and feature."""
    channels = saved_count(fitted, "input_size")
    saved_count(fitted, "output_size")
    for key in ("rnn_stride", "conv_stride"):
        saved_count(fitted, key, default=1)
    saved_numbers(fitted, "mean", (channels,))
    saved_numbers(fitted, "std", (channels,), positive=True)
    level_scale = ("scale_reference", "extra_mean", "extra_std")
    if any(key in fitted for key in level_scale):
        saved_numbers(fitted, "scale_reference", (channels,), positive=True)
        saved_numbers(fitted, "extra_mean", (2 * channels,))
        saved_numbers(fitted, "extra_std", (2 * channels,), positive=True)
    if "quiet_floor" in fitted:
        saved_numbers(fitted, "quiet_floor", (), positive=True)


def _labels(y) -> np.ndarray:
    array = np.asarray(y)
    if array.ndim != 1:
        raise ValueError(f"y: expected one label per sequence (1-D), got shape {array.shape}")
    return array


class SequenceClassifier(_SequenceEstimator):
    """Sequence → label. ``class_weight``: None, "balanced", or a {label: weight} dict.

    ``restarts``: with the one-cycle schedule, a network whose training accuracy is below
    :data:`RESTART_ACCURACY` (0.99) after its budget trains another one-cycle run of the
    same budget from where it stands (a warm restart, Loshchilov & Hutter 2017), at most
    ``restarts`` times: the budget grows only where the data need it (ACSF1's 100
    appliances: 0.91 training accuracy after one cycle; docs/classification.md)."""

    _kind = "SequenceClassifier"
    _task = "classify"
    _combine = "probabilities"
    # random batches: where length goes with the class, batches of like lengths are
    # batches of like classes (PLAID: 0.878 ± 0.004 with them, 0.884 ± 0.007 without,
    # 5 seeds, at 1.1-1.25x the time; equal lengths give the same batches either way —
    # docs/classification.md, "Random batches")
    _length_buckets = False
    _estimator_type = "classifier"

    def __init__(self, *, class_weight=None, restarts: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.class_weight = class_weight
        if not is_int(restarts) or restarts < 0:
            raise ValueError(f"restarts: expected an int >= 0, got {restarts!r}")
        self.params["restarts"] = restarts

    def fit(self, X, y, *, callback=None):
        labels = _labels(y)
        X = as_sequences(X)
        if len(X) != len(labels):
            raise ValueError(f"y: expected {len(X)} targets (one per sequence), got {len(labels)}")
        self.classes_, counts = np.unique(labels, return_counts=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y: expected at least 2 classes, got {len(self.classes_)}")
        if counts.min() < 2:
            lonely = [str(c) for c in self.classes_[counts < 2]]
            raise ValueError(
                f"y: expected at least 2 examples of every class, got 1 of class "
                f"{', '.join(map(repr, lonely[:5]))}{' …' if len(lonely) > 5 else ''}"
            )
        index = np.searchsorted(self.classes_, labels)
        weights = self._class_weights(index)
        self._weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
        extra = {
            "classes": self.classes_.tolist(),
            "weights": None if weights is None else list(weights),
        }
        return self._fit(
            X, torch.from_numpy(index), index, len(self.classes_), extra, callback, labels
        )

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
        outputs = self._fitted["output_size"]
        self.classes_ = np.array(saved_labels(self._fitted, "classes", outputs))
        w = self._fitted.get("weights")
        if w is not None:
            w = saved_numbers(self._fitted, "weights", (outputs,))
        self._weights = None if w is None else torch.tensor(w, dtype=torch.float32)

    def _criterion(self, logits, target):
        return torch.nn.functional.cross_entropy(logits, target, weight=self._weights)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (N, n_classes), columns in the order of ``classes_``."""
        return torch.softmax(torch.stack(self._raw(X)), dim=-1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def score(self, X, y) -> float:
        """Accuracy on (X, y): the share of sequences whose label is predicted (what
        scikit-learn's model selection maximises by default)."""
        return float(np.mean(self.predict(X) == _labels(y)))

    def _metrics(self, X, y) -> dict:
        """Accuracy, precision, recall, F1 (macro and weighted), confusion matrix."""
        labels = _labels(y)
        unknown = sorted(set(labels.tolist()) - set(self.classes_.tolist()))
        if unknown:
            raise ValueError(
                f"y: expected labels seen in fit {self.classes_.tolist()}, got {unknown}"
            )
        return self._class_metrics(labels, self.predict(X))


class SequenceRegressor(_SequenceEstimator):
    """Sequence → value(s) (``output="last"``) or a value per step (``output="sequence"``).
    Targets are standardised on the training data; predictions come back on their scale."""

    _kind = "SequenceRegressor"
    _task = "regress"
    _estimator_type = "regressor"

    def __init__(self, *, output: str = "last", **kwargs) -> None:
        if output not in ("last", "sequence"):
            raise ValueError(f"output: expected 'last' or 'sequence', got {output!r}")
        self._output = output
        super().__init__(**kwargs)
        self.params["output"] = output

    def _targets(self, y, seqs):
        if self._output == "last":
            try:
                t = np.asarray(y, dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(f"y: expected numeric targets, got {err}") from None
            if not np.isfinite(t).all():
                bad = tuple(int(i) for i in np.argwhere(~np.isfinite(t))[0])
                raise ValueError(f"y{list(bad)}: expected finite targets, got {t[bad]}")
            check_magnitude(t, lambda at: f"y{list(at)}")
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
        return self._fit(seqs, tensor, None, real.shape[1], extra, callback, y)

    def _setup_loaded(self) -> None:
        outputs = self._fitted["output_size"]
        saved_numbers(self._fitted, "y_mean", (outputs,))
        saved_numbers(self._fitted, "y_std", (outputs,), positive=True)

    def _criterion(self, pred, target):
        return torch.nn.functional.mse_loss(pred, target)

    def predict(self, X):
        mean, std = np.array(self._fitted["y_mean"]), np.array(self._fitted["y_std"])
        outs = [o.numpy().astype(np.float64) * std + mean for o in self._raw(X)]
        if self._output == "last":
            pred = np.stack(outs)
            return pred[:, 0] if pred.shape[1] == 1 else pred
        return [o[:, 0] if o.shape[1] == 1 else o for o in outs]

    def score(self, X, y) -> float:
        """R² on (X, y), of every predicted value together (``evaluate``'s r2)."""
        return float(self._metrics(X, y)["r2"])

    def _metrics(self, X, y) -> dict:
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
    _task = "tag"
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
        index = [torch.from_numpy(np.searchsorted(self.classes_, t)) for t in tags]
        padded = torch.nn.utils.rnn.pad_sequence(index, batch_first=True)
        classes = {"classes": self.classes_.tolist()}
        return self._fit(seqs, padded, None, len(self.classes_), classes, callback, tags)

    def _setup_loaded(self) -> None:
        outputs = self._fitted["output_size"]
        self.classes_ = np.array(saved_labels(self._fitted, "classes", outputs))

    def _criterion(self, logits, target):
        return torch.nn.functional.cross_entropy(logits, target)

    def predict(self, X) -> list[np.ndarray]:
        return [self.classes_[o.argmax(-1).numpy()] for o in self._raw(X)]

    def _metrics(self, X, y) -> dict:
        pred = np.concatenate(self.predict(X))
        truth = np.concatenate([np.asarray(t) for t in y])
        return self._class_metrics(truth, pred)
