"""The training loop: back-propagation through time in mini-batches, guarded.

Data are held as tensors with the samples on the first axis and batched by index (a seeded
permutation per epoch), so no per-sample Python runs in the hot loop; data too big to hold
(a panel's forecasting windows) can instead be an object with ``len`` and ``take(index)``
that builds each batch when asked. Per epoch:
AdamW steps with gradient-norm clipping, a validation loss, and a learning-rate schedule —

* ``schedule="plateau"``: ReduceLROnPlateau on the validation loss, early stopping with
  the best weights restored;
* ``schedule="onecycle"``: a fixed budget of ``epochs`` with the one-cycle policy (Smith &
  Topin 2019), stepped every batch: the rate rises from lr/25 to ``lr`` over the first
  quarter, then falls along a cosine to lr/10⁴ (Adam's β₁ moves the other way). It needs
  no validation split; the final weights are kept (the best validation epoch's when there
  is a validation part) —

and optionally an atomic checkpoint from which
:func:`fit` resumes exactly (weights, best weights, optimizer, scheduler, RNG states,
history). A loss that becomes NaN or infinite stops the run with a clear reason and keeps
the best weights; so does Ctrl-C.

In a process group of several ranks (``torchrun``, or a group the caller initialised),
:func:`fit` trains data-parallel, each step on the global batch's gradient, as one process
would (:mod:`lstmkit.train.distributed`).
"""

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau
from tqdm.auto import tqdm

from lstmkit.checks import is_int
from lstmkit.train import interrupts
from lstmkit.train.checkpoint import META, check_like, load_checkpoint, recover_dir, save_checkpoint
from lstmkit.train.distributed import Ranks, process_group
from lstmkit.train.threads import training_threads

# loss_fn(model, batch) -> (mean loss over the batch's real elements, number of elements)
LossFn = Callable[[nn.Module, dict[str, Tensor]], tuple[Tensor, int]]


SCHEDULES = ("plateau", "onecycle")


@dataclass(frozen=True)
class TrainConfig:
    """Options of :func:`fit`. ``patience=None`` disables early stopping."""

    epochs: int = 200
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    clip_norm: float | None = 1.0
    patience: int | None = 30
    lr_patience: int = 10
    lr_factor: float = 0.5
    schedule: str = "plateau"  # or "onecycle": a fixed budget, no validation needed
    length_buckets: bool = False  # batches of like lengths (see batches) from data["lengths"]
    equal_tokens: bool = False  # with length_buckets: batches of about as many steps each
    seed: int = 0
    progress: bool | None = None  # None: a bar only when stderr is a terminal
    checkpoint: str | None = None  # directory, rewritten atomically every epoch
    resume: bool = False
    distributed: bool | None = None  # None: data-parallel in a process group of > 1 ranks
    threads: int | None = None  # intra-op threads; None: lstmkit.train.threads' policy

    @classmethod
    def from_params(cls, params: dict, **options) -> "TrainConfig":
        """The training options an estimator keeps in its ``params`` (epochs, batch_size,
        lr, patience, seed), with ``options`` added or overriding."""
        keys = ("epochs", "batch_size", "lr", "patience", "seed", "schedule")
        return cls(**{k: params[k] for k in keys if k in params} | options)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if not (isinstance(self.lr, int | float) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr: expected a positive number, got {self.lr!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience: expected None or an int >= 1, got {self.patience!r}")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ValueError(
                f"clip_norm: expected None or a positive number, got {self.clip_norm!r}"
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule: expected one of {', '.join(SCHEDULES)}, got {self.schedule!r}"
            )
        if self.distributed is not None and not isinstance(self.distributed, bool):
            raise TypeError(f"distributed: expected None, True or False, got {self.distributed!r}")
        if self.threads is not None and not (is_int(self.threads) and self.threads >= 1):
            raise ValueError(f"threads: expected None or an int >= 1, got {self.threads!r}")
        if self.equal_tokens and not (self.length_buckets and self.schedule == "plateau"):
            raise ValueError(
                "equal_tokens: expected length_buckets=True and schedule='plateau' (the "
                "one-cycle schedule needs a fixed number of batches an epoch), got "
                f"length_buckets={self.length_buckets}, schedule={self.schedule!r}"
            )
        if self.resume and not self.checkpoint:
            raise ValueError("resume: expected a checkpoint directory to resume from, got none")


@dataclass
class History:
    """What happened, epoch by epoch."""

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_loss: float = math.inf
    stop_reason: str = "completed"

    def to_dict(self) -> dict:
        return asdict(self)


BUCKET = 8  # batches per length bucket


def batches(
    n: int,
    batch_size: int,
    generator: torch.Generator | None,
    lengths: Tensor | None = None,
    equal_tokens: bool = False,
) -> list[Tensor]:
    r"""Index batches over n samples: a seeded permutation, or in order without a generator.

    With ``lengths`` (sequences of unequal lengths), the permutation is cut into buckets
    of :data:`BUCKET` batches, each bucket sorted by length before it is split into
    batches, and the batches are shuffled: a batch is padded only to the longest of
    similar lengths (PLAID's 100–1,344 steps: a third of the padded steps), while every
    epoch still mixes the data anew.

    ``equal_tokens``: a sorted bucket is split into batches of about
    :math:`B \cdot \bar L` padded steps each (B = ``batch_size``, :math:`\bar L` the mean
    length of the n samples) instead of B samples each — short sequences in bigger
    batches, long ones in smaller (fairseq's ``max_tokens``), so every optimizer step
    reads about as many real steps as a random batch of B does, and an epoch has about as
    many steps."""
    if generator is None:
        return list(torch.arange(n).split(batch_size))
    order = torch.randperm(n, generator=generator)
    if lengths is None or bool((lengths == lengths[0]).all()):
        return list(order.split(batch_size))
    budget = batch_size * float(lengths.double().mean()) if equal_tokens else None
    out = []
    for bucket in order.split(batch_size * BUCKET):
        by_length = bucket[torch.argsort(lengths[bucket], stable=True)]
        out.extend(
            by_length.split(batch_size) if budget is None else _by_steps(by_length, lengths, budget)
        )
    return [out[i] for i in torch.randperm(len(out), generator=generator).tolist()]


def _by_steps(by_length: Tensor, lengths: Tensor, budget: float) -> list[Tensor]:
    """Samples sorted by length, cut into consecutive batches whose padded size (count ×
    the longest) stays within ``budget`` (one sample at least)."""
    out, start = [], 0
    longest = lengths[by_length].tolist()
    for end in range(1, len(longest) + 1):
        if (end - start) * longest[end - 1] > budget and end - 1 > start:
            out.append(by_length[start : end - 1])
            start = end - 1
    out.append(by_length[start:])
    return out


def take(data, index: Tensor) -> dict[str, Tensor]:
    """The samples ``index`` of ``data``: a dict of tensors, or an object that builds
    them on demand with ``take(index)`` (e.g. :class:`lstmkit.data.windows.PanelWindows`)."""
    if hasattr(data, "take"):
        return data.take(index)
    return {k: v[index] for k, v in data.items()}


def _size(data) -> int:
    if hasattr(data, "take"):
        return len(data)
    sizes = {k: v.shape[0] for k, v in data.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"training data: expected the same number of samples, got {sizes}")
    return next(iter(sizes.values()))


def seed_torch(seed: int) -> None:
    """Seed torch's default generator(s): ``torch.manual_seed`` where an accelerator exists;
    on a CPU-only machine the CPU generator alone, which is the same state without the
    lazy CUDA seeding call (it captures a stack trace, ~0.2 ms — a tenth of a small fit)."""
    if torch.cuda.is_available():
        torch.manual_seed(seed)
    else:
        torch.random.default_generator.manual_seed(seed)


def evaluate_loss(model: nn.Module, loss_fn: LossFn, data: dict[str, Tensor], batch: int) -> float:
    """Mean loss over all real elements of ``data`` in evaluation mode."""
    total, count = _loss_sum(model, loss_fn, data, batch)
    return total / max(count, 1)


@torch.no_grad()
def _loss_sum(model, loss_fn, data, batch) -> tuple[float, int]:
    """(sum of the loss over the real elements of ``data``, their number), in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for index in batches(_size(data), batch, None):
        loss, n = loss_fn(model, take(data, index))
        total += float(loss) * n
        count += n
    model.train(was_training)
    return total, count


def _batch_loss(net, loss_fn, data, index, ranks: Ranks | None) -> tuple[Tensor, float, int]:
    """(the loss this process back-propagates, the global batch's mean loss, its number of
    elements). One process: the batch's loss itself. Rank r of W: its part's mean loss
    scaled by W n_r / N, whose DDP average is the gradient of the global mean (the
    derivation is in :mod:`lstmkit.train.distributed`)."""
    if ranks is None:
        loss, size = loss_fn(net, take(data, index))
        return loss, float(loss.detach()), size
    mine = ranks.part(index)
    if len(mine):
        loss, size = loss_fn(net, take(data, mine))
    else:  # a last batch shorter than the world: weight 0, but DDP's all-reduce must run
        loss, size = loss_fn(net, take(data, index[:1]))[0], 0
    total, count = ranks.all_sum([float(loss.detach()) * size if size else 0.0, size])
    if count == 0:
        return loss * 0.0, math.nan, 0
    return loss * (ranks.world_size * size / count), total / count, int(count)


def _validation_loss(model, loss_fn, validation, batch: int, ranks: Ranks | None) -> float:
    """The mean loss over ``validation``; with ranks, each evaluates its contiguous part."""
    if ranks is None:
        return evaluate_loss(model, loss_fn, validation, batch)
    part = take(validation, ranks.part(torch.arange(_size(validation))))
    total, count = ranks.all_sum(_loss_sum(model, loss_fn, part, batch))
    return total / max(count, 1)


def _clone_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train: dict[str, Tensor],
    validation: dict[str, Tensor] | None,
    cfg: TrainConfig,
    *,
    callback: Callable[[dict], bool | None] | None = None,
) -> History:
    """Train ``model`` in place; return its :class:`History`. The best weights (lowest
    validation loss, or training loss without validation) are loaded into ``model`` at the
    end, whatever stopped the run.

    ``callback(record)`` is called after every epoch with that epoch's history record
    (``epoch``, ``train_loss``, ``val_loss``, ``lr``, ``seconds``); returning True stops
    the run (e.g. a tuner pruning a trial on its intermediate validation loss).

    In a process group of W > 1 ranks (``cfg.distributed``; see
    :mod:`lstmkit.train.distributed`) every rank calls ``fit`` with the same data and
    config; ``loss_fn`` then receives the DistributedDataParallel wrapper in training (call
    it, as ``loss_fn(model, batch)`` does; its attributes are under ``.module``) and
    ``model`` itself in evaluation. ``cfg.batch_size`` is the global batch.

    Torch's intra-op threads during the run: ``cfg.threads``, else the policy of
    :mod:`lstmkit.train.threads` (one thread for a small model unless the user chose);
    put back afterwards.
    """
    with training_threads(model, cfg.threads):
        return _fit(model, loss_fn, train, validation, cfg, callback)


def _fit(model, loss_fn, train, validation, cfg: TrainConfig, callback) -> History:
    n = _size(train)
    if n == 0:
        raise ValueError("training data: expected at least one sample, got 0")
    ranks = process_group(model, cfg.distributed)
    if ranks is not None and cfg.batch_size < ranks.world_size:
        raise ValueError(
            f"batch_size: expected at least the world size {ranks.world_size} (the global "
            f"batch is shared by the ranks), got {cfg.batch_size}"
        )
    seed_torch(cfg.seed + (ranks.rank if ranks is not None else 0))
    shuffle = torch.Generator().manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_batch = cfg.schedule == "onecycle"
    if per_batch:
        steps = cfg.epochs * math.ceil(n / cfg.batch_size)
        # a warm-up of 0.25·4 = 1 step makes OneCycleLR divide by zero: 0.3 there
        pct_start = 0.25 if steps != 4 else 0.3
        scheduler = OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=steps, pct_start=pct_start)
    else:
        scheduler = ReduceLROnPlateau(optimizer, factor=cfg.lr_factor, patience=cfg.lr_patience)
    keep_best = validation is not None or not per_batch
    history = History()
    best_state = _clone_state(model)
    start_epoch = 0
    live = (model, optimizer, scheduler, shuffle)  # what a checkpoint saves and restores
    if cfg.resume and cfg.checkpoint:
        recover_dir(cfg.checkpoint)  # a swap a crash interrupted: back to the newest
        if Path(cfg.checkpoint).exists():
            start_epoch, best_state = _resume(cfg.checkpoint, live, history, ranks)
    net = model if ranks is None else ranks.wrap(model)
    show = sys.stderr.isatty() if cfg.progress is None else cfg.progress
    show = show and (ranks is None or ranks.rank == 0)
    bar = tqdm(range(start_epoch, cfg.epochs), disable=not show, unit="epoch", leave=False)
    stale = 0 if history.best_epoch is None else len(history.epochs) - 1 - history.best_epoch
    try:
        for epoch in bar:
            began = time.perf_counter()
            net.train()
            total, count = 0.0, 0
            lengths = train.get("lengths") if cfg.length_buckets else None
            for index in batches(n, cfg.batch_size, shuffle, lengths, cfg.equal_tokens):
                interrupts.check()  # a Ctrl-C that Python lost (train/interrupts.py)
                loss, mean, size = _batch_loss(net, loss_fn, train, index, ranks)
                if not math.isfinite(mean):
                    history.stop_reason = (
                        f"the training loss became {mean} at epoch {epoch + 1}; "
                        f"stopped and kept the best weights (epoch {_human(history.best_epoch)})"
                    )
                    warnings.warn(history.stop_reason, RuntimeWarning, stacklevel=2)
                    break
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
                optimizer.step()
                if per_batch:
                    scheduler.step()
                total += mean * size
                count += size
            if not math.isfinite(mean):  # the run stopped on it above
                break
            train_loss = total / max(count, 1)
            val_loss = (
                _validation_loss(model, loss_fn, validation, max(cfg.batch_size, 256), ranks)
                if validation is not None
                else train_loss
            )
            if ranks is not None:  # rank 0's numbers decide, bit for bit, on every rank
                train_loss, val_loss = ranks.from_rank0([train_loss, val_loss])
            if not per_batch:
                scheduler.step(val_loss)
            record = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - began,
            }
            if validation is not None:
                record["val_loss"] = val_loss
            history.epochs.append(record)
            if val_loss < history.best_loss or not keep_best:
                history.best_loss, history.best_epoch, stale = val_loss, epoch, 0
                best_state = _clone_state(model)
            else:
                stale += 1
            bar.set_postfix(loss=f"{train_loss:.4g}", val=f"{val_loss:.4g}")
            if cfg.checkpoint:
                _save(cfg.checkpoint, live, best_state, history, epoch + 1, ranks)
            if callback is not None and _agreed(callback(dict(record)), ranks):
                history.stop_reason = f"stopped by the callback after epoch {epoch + 1}"
                break
            if cfg.patience is not None and stale >= cfg.patience:
                history.stop_reason = (
                    f"early stopping: no better validation loss for {cfg.patience} epochs"
                )
                break
    except KeyboardInterrupt:
        history.stop_reason = "interrupted; kept the best weights"
    finally:
        bar.close()
    model.load_state_dict(best_state)
    return history


def interrupted(history) -> bool:
    """Whether a :func:`fit` stopped on Ctrl-C (it returns, keeping the best weights):
    callers that must not treat a cut-short fit as finished (a tuning trial, a comparison,
    a command that writes its results) check this and stop too."""
    return (getattr(history, "stop_reason", None) or "").startswith("interrupted")


def _human(epoch: int | None) -> str:
    return "none yet: the initial weights" if epoch is None else str(epoch + 1)


def _agreed(stop: bool | None, ranks: Ranks | None) -> bool:
    """The callback's answer; with ranks, rank 0's."""
    if ranks is None:
        return bool(stop)
    return bool(ranks.from_rank0([float(bool(stop))])[0])


def _rng_key(rank: int) -> str:
    return "rng.torch" if rank == 0 else f"rng.torch.{rank}"


def _save(path, live, best_state, history, epochs_done, ranks):
    """Write the checkpoint of ``live`` = (model, optimizer, scheduler, shuffle generator)
    (rank 0 only, with every rank's torch RNG state; then a barrier, so that no rank reads
    an older checkpoint after this epoch)."""
    model, optimizer, scheduler, shuffle = live
    states = [torch.get_rng_state()] if ranks is None else ranks.gather(torch.get_rng_state())
    rng = {_rng_key(r): s for r, s in enumerate(states)}
    if ranks is None or ranks.rank == 0:
        state = {f"current.{k}": v for k, v in model.state_dict().items()}
        state |= {f"best.{k}": v for k, v in best_state.items()}
        state["rng.shuffle"] = shuffle.get_state()
        state |= rng
        meta = {
            "epochs_done": epochs_done,
            "history": history.to_dict(),
            "scheduler": scheduler.state_dict(),
        }
        save_checkpoint(path, state, meta, optimizer)
    if ranks is not None:
        ranks.barrier()


def _resume(path, live, history, ranks):
    """Load the checkpoint that :func:`_save` wrote into ``live`` and ``history``; return
    (epochs done, best weights)."""
    model, optimizer, scheduler, shuffle = live
    state, meta, optim = load_checkpoint(path)
    meta_file = Path(path) / META
    check_like(meta.get("scheduler"), scheduler.state_dict(), "scheduler", meta_file)
    if optim is not None:
        groups = optimizer.state_dict()["param_groups"]
        check_like(optim["param_groups"], groups, "optimizer.param_groups", meta_file)
    for key in ("epochs_done", "history"):
        if key not in meta:
            raise ValueError(f"{meta_file}: expected {key}, found none")
    try:
        current = {
            k.removeprefix("current."): v for k, v in state.items() if k.startswith("current.")
        }
        best = {k.removeprefix("best."): v for k, v in state.items() if k.startswith("best.")}
        model.load_state_dict(current)
        if optim is not None:
            optimizer.load_state_dict(optim)
        scheduler.load_state_dict(meta["scheduler"])
        shuffle.set_state(state["rng.shuffle"])
        rng = _rng_key(0 if ranks is None else ranks.rank)
        if rng in state or ranks is None:  # a rank the saving run lacked keeps its seed
            torch.set_rng_state(state[rng])
        saved = meta["history"]
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise ValueError(
            f"{path}: expected a training checkpoint of this model, got {str(err)[:200]}"
        ) from err
    history.epochs = saved["epochs"]
    history.best_epoch = saved["best_epoch"]
    history.best_loss = saved["best_loss"]
    return int(meta["epochs_done"]), best
