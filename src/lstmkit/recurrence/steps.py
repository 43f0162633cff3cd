r"""What the hand-written BPTT loops share (``lstm_variants``, ``gru_variants``).

The order of the steps, the "previous" state of every step, the weight-gradient sum over
steps, the input side for all steps, the layer-norm backward, and the buffers and per-step
views the loops write into: a loop indexes Python lists of views made before it (one
``unbind`` per buffer) and writes every result into its place with ``out=``, so a step is
only the arithmetic, with no slicing, no allocation and no copy afterwards (at the sizes
where a step is short, that bookkeeping was a third of its time). Buffers of (T, N, ·) come
from :mod:`lstmkit.recurrence.workspace`. "Previous" means the step processed before: t−1
forward, t+1 in the reverse direction.
"""

import torch
from torch import Tensor

from lstmkit.cells.norm import EPS
from lstmkit.recurrence import workspace
from lstmkit.recurrence.config import DirectionWeights


def step_order(steps: int, reverse: bool) -> range:
    """The steps in the order a direction processes them."""
    return range(steps - 1, -1, -1) if reverse else range(steps)


def shift_prev(seq: Tensor, first: Tensor, reverse: bool) -> Tensor:
    """The "previous" state of every step, (T, N, ·), from the carried states and the
    initial one."""
    if reverse:
        return torch.cat([seq[1:], first.unsqueeze(0)])
    return torch.cat([first.unsqueeze(0), seq[:-1]])


def sum_prev_outer(grad: Tensor, hs: Tensor, h0: Tensor, reverse: bool, m=None) -> Tensor:
    """:math:`\\sum_t \\delta G_t^T (h_{t-1} \\odot m)` over all steps as two matmuls: (G, P).

    grad (T, N, G), hs (T, N, P) the carried states, h0 (N, P) the "previous" state of the
    first step processed, m the recurrent mask (N, P) or None (no mask).
    """
    if m is not None:
        hs, h0 = hs * m, h0 * m
    if reverse:
        first, rest, prev = -1, slice(None, -1), slice(1, None)
    else:
        first, rest, prev = 0, slice(1, None), slice(None, -1)
    total = grad[rest].reshape(-1, grad.shape[-1]).T @ hs[prev].reshape(-1, hs.shape[-1])
    total += grad[first].T @ h0
    return total


def needs_autograd(*tensors: Tensor | None) -> bool:
    """True when grad mode is on and any of ``tensors`` requires a gradient."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def norm_backward(dy: Tensor, v: Tensor, mean: Tensor, rstd: Tensor, gain: Tensor) -> Tensor:
    """𝓑: the gradient reaching v from the gradient of y = v̂ ⊙ gain.

    ATen's layer-norm backward: the formula of the module docstring in one kernel, its
    row means accumulated in double on CPU — as exact as autograd's own layer norm.
    """
    out_mask = [True, False, False]
    return torch.ops.aten.native_layer_norm_backward(
        dy, v, v.shape[-1:], mean, rstd, gain, None, out_mask
    )[0]


def norm_grads(dy, v, mean, rstd, gain, shift=None, dv=False):
    """(δv or None, Σ dy ⊙ v̂, Σ dy or None) over all rows of y = v̂ ⊙ gain (+ shift).

    One call of ATen's layer-norm backward gives the gains' (and shifts') gradients of
    every step at once, without the (T, N, ·) products a sum written out would make.
    """
    mask = [dv, True, shift is not None]
    return torch.ops.aten.native_layer_norm_backward(
        dy, v, v.shape[-1:], mean, rstd, gain, shift, mask
    )


def input_side(x: Tensor, w_ih: Tensor, bias: Tensor | None, ln_ih: Tensor | None):
    """(gx (T, N, G·H), norm): x W_ih^T (normalised, scaled by γ_ih) + bias for all steps;
    norm = (a^x, μ, ρ) with layer norm, else None."""
    steps, batch = x.shape[:2]
    a = workspace.empty(x, steps, batch, w_ih.shape[0])  # x W_ih^T (+ bias without LN)
    flat, a_flat = x.reshape(-1, x.shape[-1]), a.view(-1, a.shape[-1])
    if ln_ih is None and bias is not None:
        torch.addmm(bias, flat, w_ih.T, out=a_flat)
    else:
        torch.mm(flat, w_ih.T, out=a_flat)
    if ln_ih is None:
        return a, None
    gx = workspace.empty(x, *a.shape)
    mean, rstd = workspace.empty(x, steps, batch, 1), workspace.empty(x, steps, batch, 1)
    torch.ops.aten.native_layer_norm.out(
        a, a.shape[-1:], ln_ih, bias, EPS, out0=gx, out1=mean, out2=rstd
    )
    return gx, (a, mean, rstd)


NONE3 = (None, None, None)


def saved_direction(ctx, count: int):
    """(x, h0, mask, w, saved, x_norm) from a direction's autograd node, which saved
    ``x, h0, mask, *weights, *saved, *(norm or NONE3)``, ``saved`` of ``count`` tensors;
    x_norm None without the input layer norm."""
    x, h0, mask, *rest = ctx.saved_tensors
    fields = len(DirectionWeights._fields)
    w = DirectionWeights(*rest[:fields])
    x_norm = tuple(rest[fields + count :]) if w.ln_ih is not None else None
    return x, h0, mask, w, rest[fields : fields + count], x_norm


def input_grads(grad: Tensor, x: Tensor, w: DirectionWeights, x_norm, need_dx: bool, grads):
    """The input side's backward from δg^x (T, N, G·H), all steps at once: ∂W_ih (and ∂γ_ih
    through x_norm) into ``grads``; returns ∂x, or None unless ``need_dx``."""
    steps, batch, width = grad.shape
    dax = grad
    if x_norm is not None:
        dax, grads["ln_ih"], _ = norm_grads(grad, *x_norm, w.ln_ih, dv=True)
    dax = dax.view(-1, width)
    grads["w_ih"] = dax.T @ x.reshape(-1, x.shape[-1])
    return (dax @ w.w_ih).view(steps, batch, -1) if need_dx else None


def buffer(like: Tensor, steps: int, shape: tuple[int, ...], keep: bool) -> Tensor:
    """A new (T, *shape) buffer when ``keep``, else a (1, *shape) scratch for a value
    that is used within its step only."""
    return workspace.empty(like, steps if keep else 1, *shape)


def rows(buf: Tensor, steps: int, cols: slice | None = None) -> tuple[Tensor, ...]:
    """The T per-step views ``buf[t]`` (of the columns ``cols`` of the last axis): those
    of a (T, ...) buffer, or a one-row scratch's one view T times."""
    views = (buf if cols is None else buf[..., cols]).unbind(0)
    return views if len(views) == steps else views * steps


def carried(first: Tensor, steps: int, reverse: bool, keep: bool):
    """(buffer, now, before) for a state carried from step to step.

    ``now[t]`` is where step t writes its state and ``before[t]`` the state it reads:
    ``first`` for the first step processed, else the previous step's ``now``. With
    ``keep`` every step has its own (T, N, ·) row; without, two scratch tensors take
    turns, so a step never overwrites the state it is reading.
    """
    if keep:
        buf = workspace.empty(first, steps, *first.shape)
        now = buf.unbind(0)
    else:
        buf = None
        pair = (first.new_empty(first.shape), first.new_empty(first.shape))
        now = tuple(pair[(steps - 1 - t if reverse else t) % 2] for t in range(steps))
    return buf, now, shift_views(now, first, reverse)


def shift_views(now, first: Tensor, reverse: bool) -> tuple:
    """before[t]: the state step t reads (``first`` for the first step processed)."""
    if reverse:
        return (*now[1:], first)
    return (first, *now[:-1])


def rates(d: Tensor | float | None, steps: int, like: Tensor):
    """A zoneout mask as T per-step tensors: the (N, ·) rows of a training mask, or the
    evaluation rate p as a 0-dim tensor (it broadcasts); None when off."""
    if d is None:
        return None
    if isinstance(d, Tensor):
        return d.unbind(0)
    return (like.new_tensor(d),) * steps


def state_store(first: Tensor, steps: int, reverse: bool, save: bool) -> Tensor:
    """Where the compiled loops keep a carried state: (T+1, N, ·) with ``first`` at the
    "previous" end when saving (step t writes row t+1, or row t in reverse), else two
    rows taking turns."""
    store = workspace.empty(first, steps + 1 if save else 2, *first.shape)
    if save:
        store[steps if reverse else 0] = first
    return store


def stored(store: Tensor, steps: int, reverse: bool, save: bool):
    """(the states of all steps (T, N, ·) or None, the last state) of a state_store."""
    if not save:
        return None, store[(steps - 1) % 2]
    states = store[:-1] if reverse else store[1:]
    return states, store[0 if reverse else steps]


def stored_h(h_store: Tensor | None, out: Tensor, reverse: bool, save: bool):
    """(the carried h of all steps, h_T) after a compiled forward: h is carried in the
    output itself without a length mask, else in its state_store."""
    steps = out.shape[0]
    if h_store is None:
        return out, out[0 if reverse else steps - 1]
    return stored(h_store, steps, reverse, save)


def zone_args(d):
    """A zoneout mask as the compiled loops take it: (the (T, N, ·) mask or None, the rate
    of evaluation, 0 when off)."""
    if isinstance(d, Tensor):
        return d, 0.0
    return None, float(d or 0.0)


def vector(v: Tensor | None) -> Tensor | None:
    return None if v is None else v.contiguous()


def right_operand(w: Tensor) -> Tensor:
    """w as the right-hand matrix of the per-step products h W: row-major (a copy of W_hh^T,
    4H·H numbers, once per call). MKL's small products with a row-major right operand ran
    1.2-2.3x faster than with the transposed view (or with W_hh^T stored column-major, which
    the backward had used) at batch 8-64, hidden 32-512 on this machine's AVX-512 CPU
    (docs/benchmarks.md, "Row-major products, BLAS on the step's rows")."""
    return w.contiguous()


def rows_contiguous(v: Tensor) -> Tensor:
    """v itself when its rows are contiguous (what the kernels read), else a copy."""
    return v if v.stride(-1) == 1 else v.contiguous()


def stack_stats(stats: list) -> tuple[Tensor, Tensor]:
    """The per-step (μ, ρ) pairs of a layer norm as two (T, N, 1) tensors."""
    means, rhos = zip(*stats, strict=True)
    return torch.stack(means), torch.stack(rhos)
