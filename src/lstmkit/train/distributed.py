r"""Training across processes and machines: PyTorch's DistributedDataParallel (DDP).

:func:`lstmkit.train.loop.fit` trains data-parallel when its process is one of W > 1
*ranks* of a process group: a group the caller initialised
(``torch.distributed.init_process_group``), or else the one that ``torchrun`` describes in
the environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), which :func:`process_group` joins: gloo for a model on the CPU, NCCL for
a model on a GPU. Every rank runs the same program on the same data, so an estimator's
``fit`` or the CLI work unchanged under ``torchrun --nproc_per_node W``
(``TrainConfig(distributed=False)`` opts out; ``True`` requires a group).

One step of a global batch
--------------------------
Every rank draws the same seeded permutation of the epoch and cuts it into the same global
batches of B = ``TrainConfig.batch_size`` samples (the last one may be shorter). Rank r
takes part r of ``index.tensor_split(W)``: :math:`\lceil B/W \rceil` or
:math:`\lfloor B/W \rfloor` samples (the first B mod W ranks take one more). With
:math:`n_r` the elements that rank r's loss averages over (samples, or real time steps for
per-step losses: the count ``loss_fn`` returns), :math:`N = \sum_r n_r` and
:math:`\bar\ell_r` rank r's mean loss, the loss of the global batch is

.. math::

    L = \frac{1}{N} \sum_r n_r \bar\ell_r .

DDP *averages* the ranks' gradients, :math:`\frac{1}{W}\sum_r g_r`, so rank r
back-propagates :math:`\frac{W n_r}{N}\,\bar\ell_r` and the average is exactly
:math:`\nabla L`, the gradient that one process computes on the whole global batch, also
when the ranks' counts differ (a short last batch, sequences of different lengths). N and
:math:`\sum_r n_r \bar\ell_r` come from one all-reduce of two float64 numbers before the
backward pass (:meth:`Ranks.all_sum`); it also tells every rank whether the batch's loss
is finite, so all stop together. A rank whose part is empty (a last batch of fewer than W
samples) runs the batch's first sample with weight 0, so DDP's all-reduce still meets every
rank and adds an exact zero. Clipping and the AdamW step then act on the same averaged
gradient on every rank: the replicas stay equal without sending weights.

The epoch
---------
Training loss: the sum of the global batches' :math:`N L` over the sum of their N.
Validation loss: rank r evaluates part r of the validation set (contiguous,
``tensor_split``); sums and counts are all-reduced. Both numbers are then broadcast from
rank 0 (:meth:`Ranks.from_rank0`), so ReduceLROnPlateau, early stopping, the best weights
and the callback's stop decide on the same bits everywhere. The callback runs on every
rank; rank 0's answer counts.

Rank 0 alone shows the progress bar and writes the checkpoint; every rank's torch RNG state
(dropout) is gathered into it (``rng.torch`` for rank 0, ``rng.torch.<r>`` for rank r) and
a barrier follows the write, so no rank can read an older checkpoint after ``fit``
returns. Rank r's torch generator is seeded with ``seed + r``, so the ranks draw different
dropout masks. A checkpoint holds nothing else that depends on the rank: any world size
(one process included) can resume it; a rank without a saved RNG state keeps its fresh
seed.

Equal to one process
--------------------
With dropout off, W ranks and global batch B compute the same steps as one process with
batch B, up to the order of floating-point sums (per-rank partial sums, the all-reduce's
order, the :math:`W n_r / N` scale): relative differences of a few units of the dtype's
rounding per step (tested in float64, ``tests/train/test_distributed.py``).

Limits: every rank must reach every collective (an exception on one rank leaves the others
waiting until torchrun's agent ends them, or until the group's timeout); a model on a GPU
must be on ``cuda:LOCAL_RANK``; the whole training set is held by every rank.
"""

import atexit
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

TORCHRUN_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Ranks:
    """This process's place in the process group: ``rank`` of ``world_size``, with tensors
    for collectives on ``device`` (the model's)."""

    rank: int
    world_size: int
    device: torch.device

    def part(self, index: Tensor) -> Tensor:
        """This rank's share of ``index``: part ``rank`` of ``index.tensor_split(world_size)``."""
        return index.tensor_split(self.world_size)[self.rank]

    def wrap(self, model: nn.Module) -> DistributedDataParallel:
        """``model`` in DDP (which broadcasts rank 0's weights and buffers once, here)."""
        cuda = self.device.type == "cuda"
        return DistributedDataParallel(model, device_ids=[self.device] if cuda else None)

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """The sums over all ranks of ``values``, in float64."""
        buffer = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(buffer)
        return buffer.tolist()

    def from_rank0(self, values: Sequence[float]) -> list[float]:
        """Rank 0's ``values`` on every rank, bit for bit."""
        buffer = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.broadcast(buffer, src=0)
        return buffer.tolist()

    def gather(self, tensor: Tensor) -> list[Tensor]:
        """Every rank's ``tensor`` (same shape and dtype on all ranks), on the CPU."""
        local = tensor.to(self.device)
        parts = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(parts, local)
        return [p.cpu() for p in parts]

    def barrier(self) -> None:
        dist.barrier(device_ids=[self.device.index] if self.device.type == "cuda" else None)


def torchrun_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"WORLD_SIZE: expected an integer, got {text!r}") from None


def in_process_group() -> bool:
    """True under torchrun (WORLD_SIZE > 1) or in an initialised group of several ranks."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size() > 1
    return torchrun_world_size() > 1


def process_group(model: nn.Module, required: bool | None) -> Ranks | None:
    """The :class:`Ranks` that ``fit`` trains ``model`` in, or None for one process.

    ``required``: None trains data-parallel when a process group with more than one rank
    is initialised or torchrun's environment says ``WORLD_SIZE`` > 1 (then it joins that
    group with ``init_process_group``: NCCL for a model on a GPU, gloo otherwise; the
    group stays for later fits and is destroyed at exit); False never; True as None, but
    raises ValueError when there is no group to join.
    """
    if required is False:
        return None
    device = next(model.parameters(), torch.empty(0)).device
    if not (dist.is_available() and dist.is_initialized()):
        if dist.is_available() and torchrun_world_size() > 1:
            _join_from_env(device)
        elif required:
            raise ValueError(
                "distributed=True: expected an initialised torch.distributed process group "
                f"or torchrun's environment with WORLD_SIZE > 1, got neither "
                f"(WORLD_SIZE={os.environ.get('WORLD_SIZE')!r})"
            )
        else:
            return None
    world = dist.get_world_size()
    return Ranks(dist.get_rank(), world, device) if world > 1 else None


def _join_from_env(device: torch.device) -> None:
    """``init_process_group`` from torchrun's environment variables (``env://``)."""
    missing = [k for k in TORCHRUN_ENV if k not in os.environ and k != "LOCAL_RANK"]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']}: expected torchrun's environment "
            f"({', '.join(TORCHRUN_ENV)}), got {', '.join(missing)} unset"
        )
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.index != local:
            raise ValueError(
                f"model: expected it on cuda:{local} (this process's LOCAL_RANK) for NCCL, "
                f"got {device}"
            )
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    atexit.register(_leave)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
