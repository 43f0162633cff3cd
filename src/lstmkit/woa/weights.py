r"""WOA on the weights: the whales are whole BiLSTM networks (source 004, ``SPEC.md`` §7).

Source 004's step (4) has WOA "search and update the BiLSTM's weights and biases". Here a
whale's position is the flat vector of every parameter of a small recurrent network — a
one-layer LSTM or BiLSTM (:class:`lstmkit.LSTM`) and a linear head on its final states,
the :class:`~lstmkit.tasks.networks.RecurrentNet` with ``pooling="last"`` — and its
fitness is the training loss (source 004's step (2)):

.. math::

    f(\theta) = \frac{1}{NK}\sum_{n,k} (\hat y_{nk}(\theta) - y_{nk})^2
        \quad\text{(regression)},\qquad
    f(\theta) = -\frac{1}{N}\sum_n \log \operatorname{softmax}(\hat y_n(\theta))_{y_n}
        \quad\text{(classification)},

with :math:`\hat y_n = W_{head}\,[h_T, h'_1] + b_{head}`: the forward LSTM's state after
the last step and the backward LSTM's state after it has read the sequence back to the
first step (``h_n`` of :class:`lstmkit.LSTM`; just :math:`h_T` when one-way).

One engine call per direction for the whole population
------------------------------------------------------
A population is a batch of weight sets: every parameter carries a leading population axis
P (``W_ih`` is (P, 4H, D), ...), and each direction of every whale runs the engine's
compiled LSTM loop (:mod:`lstmkit.recurrence.kernels`, ``lstm_population``): per whale
the input side :math:`g^x = x W_{ih}^\top` for all steps, then the plain cell of
:func:`lstmkit.cells.lstm.lstm_cell` step by step, the bias :math:`b = b_{ih} + b_{hh}`
added in the loop,

.. math::

    \mathrm{pre}_t = g^x_t + h_{t-1} W_{hh}^\top + b,\qquad
    C_t = f_t \odot C_{t-1} + i_t \odot g_t,\qquad h_t = o_t \odot \tanh C_t,

the whales on threads, nothing saved for a backward pass; where the compiled loops cannot
run, the engine's python steps run each whale in turn (same arithmetic). Tested against
``torch.nn.LSTM`` with each whale's weights copied; ``docs/woa_weights.md`` times it against
other ways of batching the whales (``benchmarks/woa_weights.py``).

The flat vector
---------------
:class:`WeightLayout` maps a position (d,) to named tensors and back, with the names and
shapes of :class:`~lstmkit.tasks.networks.RecurrentNet`'s ``state_dict`` (those of
``torch.nn.LSTM`` under ``rnn.``, then ``head.weight``, ``head.bias``), so the best whale
loads with ``load_state_dict`` into a real model that gives the same outputs.

Shapes (P whales, N sequences, T steps, D input features, H hidden units, K outputs,
d = :attr:`WeightLayout.size`):

===============================  ==============  ==========================================
name                             shape           meaning
===============================  ==============  ==========================================
population                       (P, d)          one flat parameter vector per whale
x                                (N, T, D)       batch-first input sequences
``rnn.weight_ih_l0[_reverse]``   (P, 4H, D)      input matrices, gate order i, f, g, o
``rnn.weight_hh_l0[_reverse]``   (P, 4H, H)      recurrent matrices
``rnn.bias_ih_l0[_reverse]``     (P, 4H)         b_ih; ``bias_hh`` the same; b = b_ih + b_hh
``head.weight``                  (P, K, F)       F = 2H (bidirectional) or H
``head.bias``                    (P, K)
finals of one direction          (P, N, H)       each whale's h after its last step
output                           (P, N, K)       every whale's predictions
fitness                          (P,)            every whale's training loss
===============================  ==============  ==========================================
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.checks import check_int, is_number
from lstmkit.recurrence import kernels
from lstmkit.recurrence.config import DirectionWeights
from lstmkit.recurrence.lstm_variants import gate_inputs, lstm_forward
from lstmkit.recurrence.noise import Noise
from lstmkit.recurrence.steps import right_operand
from lstmkit.tasks.networks import RecurrentNet
from lstmkit.train import interrupts
from lstmkit.woa.optimizer import WOA, WOAResult

TASKS = ("regression", "classification")


def _check_positive(name: str, value: object) -> float:
    if not (is_number(value) and value > 0):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite positive number, got {value!r}")
    return float(value)


def _check_task(task: object) -> str:
    if task not in TASKS:
        raise ValueError(f"task: expected one of {', '.join(map(repr, TASKS))}, got {task!r}")
    return task


# -- the flat vector ------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightLayout:
    """The map between one flat position (d,) and a network's named parameters.

    The network is ``RecurrentNet(input_size, output_size, cell="lstm",
    hidden_size=hidden_size, bidirectional=bidirectional)`` (one layer, ``pooling="last"``);
    :attr:`entries` are the (name, shape) of its ``state_dict``, in that order, and the flat
    vector is their concatenation, each tensor row-major.

    >>> layout = WeightLayout(input_size=1, hidden_size=8, output_size=1)
    >>> layout.size  # 2 directions × (32·1 + 32·8 + 32 + 32) + 1·16 + 1
    721
    """

    input_size: int
    hidden_size: int
    output_size: int
    bidirectional: bool = True

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "output_size"):
            check_int(name, getattr(self, name), minimum=1)
        if not isinstance(self.bidirectional, bool):
            raise TypeError(
                f"bidirectional: expected a bool, got {type(self.bidirectional).__name__}"
            )

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def suffixes(self) -> tuple[str, ...]:
        """``"_l0"`` and, when bidirectional, ``"_l0_reverse"``."""
        return ("_l0", "_l0_reverse")[: self.directions]

    @property
    def entries(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """(name, shape) of every parameter, in ``state_dict`` order."""
        gates, hidden = 4 * self.hidden_size, self.hidden_size
        rnn = []
        for suffix in self.suffixes:
            rnn += [
                (f"rnn.weight_ih{suffix}", (gates, self.input_size)),
                (f"rnn.weight_hh{suffix}", (gates, hidden)),
                (f"rnn.bias_ih{suffix}", (gates,)),
                (f"rnn.bias_hh{suffix}", (gates,)),
            ]
        head = [
            ("head.weight", (self.output_size, self.directions * hidden)),
            ("head.bias", (self.output_size,)),
        ]
        return tuple(rnn + head)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.entries)

    @property
    def size(self) -> int:
        """d, the length of the flat vector."""
        return sum(math.prod(shape) for _, shape in self.entries)

    def unflatten(self, population: Tensor) -> dict[str, Tensor]:
        """(P, d) → name → (P, *shape) (copies of the column blocks)."""
        if not isinstance(population, Tensor):
            raise TypeError(f"population: expected a Tensor, got {type(population).__name__}")
        if population.dim() != 2 or population.shape[1] != self.size:
            raise ValueError(
                f"population: expected shape (P, {self.size}), one flat vector per whale, "
                f"got {tuple(population.shape)}"
            )
        blocks = population.split([math.prod(shape) for _, shape in self.entries], dim=1)
        return {
            name: block.reshape(population.shape[0], *shape)
            for (name, shape), block in zip(self.entries, blocks, strict=True)
        }

    def state_dict(self, vector: object, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
        """One position (d,) → the network's ``state_dict`` (new tensors of ``dtype``)."""
        flat = torch.as_tensor(np.asarray(vector, dtype=np.float64))
        if flat.shape != (self.size,):
            raise ValueError(
                f"vector: expected shape ({self.size},), the flat parameters of one network, "
                f"got {tuple(flat.shape)}"
            )
        params = self.unflatten(flat.to(dtype)[None])
        return {name: tensor[0].clone() for name, tensor in params.items()}

    def vector(self, state_dict: Mapping[str, Tensor]) -> np.ndarray:
        """A network's ``state_dict`` → the flat position (d,), float64."""
        expected, got = set(self.names), set(state_dict)
        if got != expected:
            missing, extra = sorted(expected - got), sorted(got - expected)
            raise ValueError(
                f"state_dict: expected the keys {list(self.names)}, got {sorted(got)} "
                f"(missing {missing}, unexpected {extra})"
            )
        parts = []
        for name, shape in self.entries:
            tensor = state_dict[name]
            if tuple(tensor.shape) != shape:
                raise ValueError(
                    f"state_dict[{name!r}]: expected shape {shape}, got {tuple(tensor.shape)}"
                )
            parts.append(tensor.detach().cpu().to(torch.float64).reshape(-1))
        return torch.cat(parts).numpy()

    def bounds(self, scale: float = 1.0) -> np.ndarray:
        r"""The search box, (d, 2): :math:`\pm k/\sqrt{H}` for the LSTM parameters and
        :math:`\pm k/\sqrt{F}` for the head (F its fan-in), k = ``scale``.

        With k = 1 this is the box PyTorch draws its initial weights from
        (``torch.nn.LSTM``: :math:`U(-1/\sqrt H, 1/\sqrt H)`; ``torch.nn.Linear``:
        :math:`U(-1/\sqrt F, 1/\sqrt F)`), so the initial population is a population of
        freshly initialised networks; a larger k lets the search reach larger weights.
        """
        scale = _check_positive("scale", scale)
        half = []
        head_fan_in = self.directions * self.hidden_size
        for name, shape in self.entries:
            fan = self.hidden_size if name.startswith("rnn.") else head_fan_in
            half.append(np.full(math.prod(shape), scale / math.sqrt(fan)))
        half = np.concatenate(half)
        return np.stack([-half, half], axis=1)

    def build(self, vector: object | None = None, dtype: torch.dtype = torch.float32):
        """A :class:`~lstmkit.tasks.networks.RecurrentNet` of this layout in evaluation mode,
        with the parameters of ``vector`` (d,) loaded by ``load_state_dict`` (strict); with
        ``vector=None`` it keeps PyTorch's random initialisation."""
        net = RecurrentNet(
            self.input_size,
            self.output_size,
            cell="lstm",
            hidden_size=self.hidden_size,
            bidirectional=self.bidirectional,
        ).to(dtype)
        if vector is not None:
            net.load_state_dict(self.state_dict(vector, dtype))
        return net.eval()


# -- the batched population forward ---------------------------------------------------------


def _final_states(x_steps: Tensor, params: dict[str, Tensor], suffix: str, reverse: bool):
    """Every whale's h after the last step of one direction, (P, N, H), on the engine.

    x_steps (T, N, D); ``params`` from :meth:`WeightLayout.unflatten`; ``suffix`` names the
    direction (``"_l0"`` or ``"_l0_reverse"``)."""
    w_ih, w_hh = params[f"rnn.weight_ih{suffix}"], params[f"rnn.weight_hh{suffix}"]
    b_ih, b_hh = params[f"rnn.bias_ih{suffix}"], params[f"rnn.bias_hh{suffix}"]
    ops = kernels.ops_for(x_steps)
    if ops is not None:
        return ops.lstm_population(
            x=x_steps, w_ih=w_ih, w_hh_t=right_operand(w_hh.transpose(1, 2)), b=b_ih + b_hh,
            reverse=reverse,
        )  # fmt: skip
    zeros = x_steps.new_zeros(x_steps.shape[1], w_hh.shape[2])
    finals = []
    for k in range(w_ih.shape[0]):  # the python steps: one whale at a time
        weights = DirectionWeights(w_ih[k], w_hh[k], b_ih[k], b_hh[k], None)
        gx, _, _ = gate_inputs(x_steps, weights, None)  # x W_ih^T + b_ih + b_hh
        finals.append(lstm_forward(gx, zeros, zeros, weights, Noise(), None, reverse, False)[1])
    return torch.stack(finals)


@torch.no_grad()
def population_forward(layout: WeightLayout, population: Tensor, x: Tensor) -> Tensor:
    """Every whale's network on the same input in one batched pass: (P, d), (N, T, D) →
    (P, N, K). Row k equals ``layout.build(population[k])(x)``. For fitness values only:
    it runs without autograd."""
    params = layout.unflatten(population)
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a Tensor (N, T, D), got {type(x).__name__}")
    if x.dim() != 3 or x.shape[2] != layout.input_size or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"x: expected shape (N, T, {layout.input_size}) with N, T >= 1, got {tuple(x.shape)}"
        )
    if x.dtype != population.dtype:
        raise TypeError(f"x: expected dtype {population.dtype} (the population's), got {x.dtype}")
    if x.device != population.device:
        raise ValueError(
            f"x: expected device {population.device} (the population's), got {x.device}"
        )
    x_steps = x.transpose(0, 1).contiguous()  # (T, N, D)
    finals = [
        _final_states(x_steps, params, suffix, reverse)
        for suffix, reverse in zip(layout.suffixes, (False, True), strict=False)
    ]
    features = torch.cat(finals, dim=2)  # (P, N, F): [h_T, h'_1]
    head = params["head.weight"].transpose(1, 2)  # (P, F, K)
    return torch.baddbmm(params["head.bias"][:, None], features, head)  # (P, N, K)


def task_loss(output: Tensor, target: Tensor, task: str) -> Tensor:
    """The training loss of outputs (..., N, K) against targets: mean squared error over
    N·K (regression, target (N, K)) or mean cross-entropy over N (classification, target
    (N,) class indices); returns the leading shape, e.g. (P,) or ()."""
    task = _check_task(task)
    if task == "regression":
        return ((output - target) ** 2).mean(dim=(-2, -1))
    lead, classes = output.shape[:-1], output.shape[-1]
    per = F.cross_entropy(
        output.reshape(-1, classes), target.expand(lead).reshape(-1), reduction="none"
    )
    return per.reshape(lead).mean(dim=-1)


def population_loss(
    layout: WeightLayout, population: Tensor, x: Tensor, target: Tensor, task: str
) -> Tensor:
    """The fitness of every whale, (P,): :func:`task_loss` of :func:`population_forward`."""
    return task_loss(population_forward(layout, population, x), target, task)


# -- data -----------------------------------------------------------------------------------


def _as_inputs(X: object) -> np.ndarray:
    """(N, T, D) float64 from an array or a list of equal-length (T, D) sequences."""
    try:
        array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"X: expected numbers of shape (N, T, D) (equal-length sequences), got "
            f"{type(X).__name__} ({err})"
        ) from None
    if array.ndim != 3 or 0 in array.shape:
        hint = "; add a feature axis with X[..., None]" if array.ndim == 2 else ""
        raise ValueError(
            f"X: expected 3 dims (N, T, D) with no empty axis, got shape {array.shape}{hint}"
        )
    if not np.isfinite(array).all():
        raise ValueError("X: expected finite values, got NaN or infinity")
    return array


def _as_targets(y: object, n: int, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Regression: (N, K) float64 and None; classification: (N,) indices and the classes."""
    array = np.asarray(y)
    if array.ndim == 0 or array.shape[0] != n:
        raise ValueError(
            f"y: expected {n} targets (one per sequence of X), got shape {array.shape}"
        )
    if task == "classification":
        if array.ndim != 1:
            raise ValueError(f"y: expected 1 dim (N,) of class labels, got shape {array.shape}")
        classes = np.unique(array)
        if classes.size < 2:
            raise ValueError(f"y: expected at least 2 classes, got {classes.tolist()}")
        return np.searchsorted(classes, array), classes
    try:
        values = array.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"y: expected numbers for regression, got {array.dtype} ({err})") from None
    if values.ndim not in (1, 2):
        raise ValueError(f"y: expected 1 or 2 dims (N,) or (N, K), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("y: expected finite values, got NaN or infinity")
    return values.reshape(n, -1), None


# -- fitting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightFit:
    """A network fitted by :func:`fit_weights` (WOA, optionally then Adam) or
    :func:`fit_weights_adam` (Adam only).

    ``model``: the fitted :class:`~lstmkit.tasks.networks.RecurrentNet` (float32,
    evaluation mode); ``loss``: its training loss; ``woa``: the WOA run (``woa.x`` the best
    whale, ``woa.history`` the best loss after each generation) or None; ``adam_losses``:
    the training loss at the start of each Adam epoch (empty without Adam);
    ``n_forward``: network evaluations over the whole training set that the optimizers
    spent (whales × generations, plus one per Adam epoch; the one evaluation of the final
    state is not counted); ``n_backward``: Adam epochs (one backward pass each);
    ``seconds``: wall time of the fit; ``classes``: the class labels (classification).
    """

    model: RecurrentNet
    layout: WeightLayout
    task: str
    loss: float
    woa: WOAResult | None
    adam_losses: np.ndarray
    n_forward: int
    n_backward: int
    seconds: float
    classes: np.ndarray | None = None
    target_ndim: int = 1

    @torch.no_grad()
    def predict(self, X: object) -> np.ndarray:
        """Predictions for X (N, T, D): values (N,) or (N, K) as ``y`` was, or class labels."""
        x = torch.as_tensor(_as_inputs(X), dtype=torch.float32)
        if x.shape[2] != self.layout.input_size:
            raise ValueError(
                f"X: expected {self.layout.input_size} features on the last axis (as in "
                f"training), got shape {tuple(x.shape)}"
            )
        out = self.model(x).numpy()
        if self.task == "classification":
            return self.classes[out.argmax(axis=1)]
        return out[:, 0] if self.target_ndim == 1 else out


class _Problem(NamedTuple):
    """What :func:`_setup` checked: the task, the network's layout and the data as tensors."""

    task: str
    layout: WeightLayout
    x: Tensor
    target: Tensor
    classes: np.ndarray | None
    target_ndim: int


def _setup(X, y, task, hidden_size, bidirectional) -> _Problem:
    task = _check_task(task)
    inputs = _as_inputs(X)
    targets, classes = _as_targets(y, inputs.shape[0], task)
    layout = WeightLayout(  # checks hidden_size and bidirectional
        input_size=inputs.shape[2],
        hidden_size=hidden_size,
        output_size=targets.shape[1] if classes is None else classes.size,
        bidirectional=bidirectional,
    )
    x = torch.as_tensor(inputs, dtype=torch.float32)
    target_dtype = torch.float32 if classes is None else torch.int64
    target = torch.as_tensor(targets, dtype=target_dtype)
    return _Problem(task, layout, x, target, classes, np.asarray(y).ndim)


def _adam(net, x: Tensor, target: Tensor, task: str, epochs: int, lr: float) -> np.ndarray:
    """Full-batch Adam for ``epochs`` steps (one forward and one backward pass each); ends
    with the parameters of the lowest training loss seen, the starting point and the state
    after the last step (one more forward pass) included. Returns the training loss at the
    start of each epoch, (epochs,)."""
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    best, best_state = math.inf, None
    losses = []
    for _ in range(epochs):
        interrupts.check()
        optimizer.zero_grad()
        loss = task_loss(net(x), target, task)
        losses.append(float(loss.detach()))
        if losses[-1] < best:
            best, best_state = losses[-1], {k: v.clone() for k, v in net.state_dict().items()}
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        last = float(task_loss(net(x), target, task))
    if best_state is not None and not last <= best:
        net.load_state_dict(best_state)
    return np.array(losses)


def _finish(problem: _Problem, net, woa, epochs: int, lr: float, start: float) -> WeightFit:
    """Adam for ``epochs`` from ``net`` (:func:`_adam`), then the fit with the training
    loss of the final network; ``woa`` is the :class:`WOAResult` that gave ``net``, or None."""
    task, layout, x, target, classes, target_ndim = problem
    adam_losses = _adam(net, x, target, task, epochs, lr)
    with torch.no_grad():
        loss = float(task_loss(net(x), target, task))
    return WeightFit(
        model=net,
        layout=layout,
        task=task,
        loss=loss,
        woa=woa,
        adam_losses=adam_losses,
        n_forward=epochs + (0 if woa is None else woa.n_evals),
        n_backward=epochs,
        seconds=time.perf_counter() - start,
        classes=classes,
        target_ndim=target_ndim,
    )


def fit_weights(
    X: object,
    y: object,
    *,
    task: str = "regression",
    hidden_size: int = 8,
    bidirectional: bool = True,
    n_whales: int = 30,
    iterations: int = 200,
    seed: int = 0,
    variant: str = "paper",
    bound_scale: float = 4.0,
    hybrid_epochs: int = 0,
    lr: float = 1e-2,
) -> WeightFit:
    r"""Fit a small (Bi)LSTM + linear head by searching its weights with WOA.

    Source 004's WOA-BiLSTM steps (1)–(4): the network of :class:`WeightLayout`, the loss
    (``task="regression"``: MSE; ``"classification"``: cross-entropy over the labels of
    ``y``), and ``WOA(n_whales, iterations, seed=seed, variant=variant)`` over the box
    :meth:`WeightLayout.bounds` (``bound_scale`` = k: ±k/√H) whose fitness is the training
    loss, every generation evaluated in one :func:`population_forward`. The best whale is
    loaded into the returned model. The default k = 4 is four times PyTorch's
    initialisation box; over k ∈ {1, 2, 4, 8, 16} it gave the lowest training loss on
    Airline, while on ItalyPowerDemand a larger k kept lowering it (``docs/woa_weights.md``).
    With ``hybrid_epochs`` > 0, full-batch Adam (learning rate ``lr``) then continues from
    the best whale for that many epochs and keeps the parameters of the lowest training
    loss seen, so the hybrid's training loss is never above the pure WOA one.

    X: (N, T, D) numbers (or a list of N equal-length (T, D) sequences), standardised
    beforehand — the box is sized for inputs and targets of unit scale. y: (N,) or (N, K)
    numbers (regression) or (N,) labels of any type (classification). Runs in float32 on
    the CPU; the same arguments and ``seed`` give the same result.
    """
    problem = _setup(X, y, task, hidden_size, bidirectional)
    task, layout, x, target, _, _ = problem
    check_int("iterations", iterations, minimum=1)
    check_int("hybrid_epochs", hybrid_epochs, minimum=0)
    _check_positive("bound_scale", bound_scale)
    lr = _check_positive("lr", lr)
    optimizer = WOA(n_whales, iterations, seed=check_int("seed", seed, 0), variant=variant)
    start = time.perf_counter()
    run = optimizer.start(layout.bounds(bound_scale))
    while not run.done:
        interrupts.check()  # a Ctrl-C that Python lost (train/interrupts.py)
        population = torch.as_tensor(run.ask(), dtype=torch.float32)  # (P, d)
        run.tell(population_loss(layout, population, x, target, task).numpy())
    result = run.result()
    return _finish(problem, layout.build(result.x), result, hybrid_epochs, lr, start)


def fit_weights_adam(
    X: object,
    y: object,
    *,
    task: str = "regression",
    hidden_size: int = 8,
    bidirectional: bool = True,
    epochs: int = 500,
    lr: float = 1e-2,
    seed: int = 0,
) -> WeightFit:
    """The gradient baseline of :func:`fit_weights`: the same network, data and loss,
    PyTorch's initialisation (``torch.manual_seed(seed)``), then full-batch Adam for
    ``epochs`` epochs, keeping the parameters of the lowest training loss seen."""
    problem = _setup(X, y, task, hidden_size, bidirectional)
    epochs = check_int("epochs", epochs, minimum=1)
    lr = _check_positive("lr", lr)
    seed = check_int("seed", seed, 0)
    start = time.perf_counter()
    with torch.random.fork_rng():  # the caller's global RNG is left as it was
        torch.manual_seed(seed)
        net = problem.layout.build()
    return _finish(problem, net, None, epochs, lr, start)
