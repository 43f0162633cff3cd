r"""One GRU direction, plain or with the cell variants, with hand-written BPTT.

With every variant option off it computes the plain GRU (either reset placement): the
``fused`` backend runs every GRU here.

The variants (``docs/variants.md``): layer normalisation of the input and recurrent
pre-activations (Ba et al. 2016; ``reset_after=True`` only), recurrent dropout on the
state entering :math:`W_{hh}` (Gal & Ghahramani 2016) and zoneout of h (Krueger et al.
2016), in any combination, in both reset forms.

Backward. With :math:`d_t` the zoneout mask (0 when off), :math:`m` the recurrent mask,
:math:`\bar h_{t-1} = h_{t-1} \odot m`, :math:`\hat n_t` the recurrent part of n
(:math:`g^h_{t,n}` reset after, :math:`r_t \odot \bar h_{t-1}` reset before), and the
constants of all steps computed before the loop,

.. math::

    a^n_t = (1-d_t)(1-z_t)(1-n_t^2), \qquad a^z_t = (1-d_t)(h_{t-1}-n_t) z_t(1-z_t), \qquad
    \zeta_t = d_t + (1-d_t) z_t ,

**reset_after=True**: :math:`\delta g^h_t = \delta h_t \odot [a^n_t \hat n_t r_t(1-r_t),\;
a^z_t,\; a^n_t r_t]`, :math:`\delta a^h_t = \mathcal B_h(\delta g^h_t \odot \gamma_{hh})`,
:math:`\delta h_{t-1} = \zeta_t \delta h_t + (\delta a^h_t W_{hh}) \odot m`;

**reset_after=False**: :math:`\delta n^{pre}_t = \delta h_t a^n_t`,
:math:`\delta(r\bar h)_t = \delta n^{pre}_t W_{hn}`,
:math:`\delta r^{pre}_t = \delta(r \bar h)_t \odot \bar h_{t-1} r_t(1-r_t)`,
:math:`\delta h_{t-1} = \zeta_t \delta h_t + (\delta(r\bar h)_t \odot r_t
+ [\delta r^{pre}_t, \delta z^{pre}_t] W_{h,rz}) \odot m`,

with :math:`\mathcal B` the layer-norm backward of :mod:`lstmkit.recurrence.lstm_variants`
(the identity without layer norm). The input side's gradient is
:math:`[\delta g^h_{t,rz}, \delta h_t a^n_t]`, through the input layer norm for all steps
at once; the weight gradients are matmuls over all steps after the loop.

The loops over time run as the compiled loops of :mod:`lstmkit.recurrence.kernels` or
as the python steps below, as in :mod:`lstmkit.recurrence.lstm_variants`.

Shapes: x (T, N, H_in), gx (T, N, 3H), h (T, N, H); gate order r, z, n.
"""

from functools import partial

import torch
from torch import Tensor

from lstmkit.cells.norm import EPS
from lstmkit.recurrence import kernels, workspace
from lstmkit.recurrence.config import DirectionWeights, RNNConfig
from lstmkit.recurrence.noise import Noise
from lstmkit.recurrence.steps import (
    NONE3,
    buffer,
    carried,
    input_grads,
    input_side,
    needs_autograd,
    norm_backward,
    norm_grads,
    rates,
    right_operand,
    rows,
    rows_contiguous,
    saved_direction,
    shift_prev,
    shift_views,
    stack_stats,
    state_store,
    step_order,
    stored_h,
    sum_prev_outer,
    vector,
    zone_args,
)


def input_bias(w: DirectionWeights, reset_after: bool) -> Tensor | None:
    """The bias added on the input side for all steps: b_ih, and with the reset before
    the matmul all of b_hh too (no part of it sits inside the reset product there)."""
    if w.b_ih is None:
        return None
    return w.b_ih if reset_after else w.b_ih + w.b_hh


def gru_forward(gx, h0, w, noise: Noise, mask, reverse: bool, reset_after: bool, save: bool,
                ops=None):  # fmt: skip
    """The forward loop over gx (T, N, 3H), the input side with :func:`input_bias`.

    ``ops``: the compiled loops (:mod:`lstmkit.recurrence.kernels`); with None the same
    arithmetic runs as torch calls step by step. Returns (out (T, N, H), h_T, saved) with
    saved = (rz (T, N, 2H), n, n̂, hs, a, μ, ρ): n̂ as in the module docstring, hs the
    carried states, a the raw recurrent pre-activation and its layer norm's μ and ρ (None
    without layer norm); None unless ``save``.
    """
    steps, batch, three_h = gx.shape
    hidden = three_h // 3
    rz = buffer(gx, steps, (batch, 2 * hidden), save)
    ns = buffer(gx, steps, (batch, hidden), save)
    if reset_after:  # g^h = h̄ W_hh^T + b_hh (normalised with layer norm); n̂ its n block
        gh = buffer(gx, steps, (batch, three_h), save)
        n_hat = gh[..., 2 * hidden :]
    else:
        gh, n_hat = None, buffer(gx, steps, (batch, hidden), save)  # r ⊙ h̄
    a_h = buffer(gx, steps, (batch, three_h), save) if w.ln_hh is not None else None
    out = gx.new_empty(steps, batch, hidden)  # the layer output: never a cached buffer
    bufs = (rz, ns, n_hat, gh, a_h, out)
    steps_fn = _python_steps if ops is None else partial(_compiled_forward, ops)
    hs, h_last, stats = steps_fn(gx, h0, w, noise, mask, reverse, reset_after, save, *bufs)
    if not save:
        return out, h_last, None
    return out, h_last, (rz, ns, n_hat, hs, a_h, *stats)


def _compiled_forward(ops, gx, h0, w, noise, mask, reverse, reset_after, save, rz, ns, n_hat,
                      gh, a_h, out):  # fmt: skip
    """The steps of :func:`gru_forward` with ``torch.ops.lstmkit.gru_forward``; returns
    (hs, h_T, (μ, ρ) of LN or Nones)."""
    steps, batch = gx.shape[:2]
    m, zh, _ = noise
    h0 = rows_contiguous(h0)
    h_store = None if mask is None else state_store(h0, steps, reverse, save)
    ln_hh = w.ln_hh is not None
    stats = [buffer(gx, steps, (batch, 1), save) if ln_hh else None for _ in range(2)]
    zh, zh_rate = zone_args(zh)
    ops.gru_forward(
        gx=gx, h0=h0, w_hh_t=right_operand(w.w_hh.T), b_hh=vector(w.b_hh),
        ln_hh=vector(w.ln_hh), zh=zh, zh_rate=zh_rate, keep=mask, m=m, reset_after=reset_after,
        reverse=reverse, save=save, rz=rz, n=ns, n_hat=None if reset_after else n_hat, gh=gh,
        a=a_h, out=out, h_store=h_store, mean_h=stats[0], rstd_h=stats[1],
    )  # fmt: skip
    return (*stored_h(h_store, out, reverse, save), stats)


def _python_steps(gx, h0, w, noise, mask, reverse, reset_after, save, rz, ns, n_hat, gh, a_h,
                  out):  # fmt: skip
    """The steps of :func:`gru_forward` as torch calls; returns what
    :func:`_compiled_forward` does."""
    steps, batch, three_h = gx.shape
    hidden = three_h // 3
    m, zh, _ = noise
    ln_hh = w.ln_hh is not None
    zh_t = rates(zh, steps, gx)
    rz_cols, n_cols = slice(0, 2 * hidden), slice(2 * hidden, 3 * hidden)
    gx_rz_t, gx_n_t = rows(gx, steps, rz_cols), rows(gx, steps, n_cols)
    rz_t, n_t = rows(rz, steps), rows(ns, steps)
    r_t, z_t = rows(rz, steps, slice(0, hidden)), rows(rz, steps, slice(hidden, 2 * hidden))
    out_t = out.unbind(0)
    if mask is None:
        hs, h_now, h_before = out, out_t, shift_views(out_t, h0, reverse)
    else:
        hs, h_now, h_before = carried(h0, steps, reverse, save)
    scratch = rows(buffer(gx, steps, (batch, hidden), False), steps)
    hnew_t = h_now if (zh is None and mask is None) else scratch
    hzone_t = h_now if mask is None else hnew_t
    keep_t = mask.unbind(0) if mask is not None else None
    h_in = gx.new_empty(batch, hidden) if m is not None else None
    stats = [None] * steps
    w_hh_t = right_operand(w.w_hh.T)  # (H, 3H)
    if reset_after:
        gh_t, gh_rz_t, n_hat_t = rows(gh, steps), rows(gh, steps, rz_cols), rows(gh, steps, n_cols)
        a_t = rows(a_h, steps) if ln_hh else None
    else:
        n_hat_t = rows(n_hat, steps)
        w_rz_t, w_n_t = w_hh_t[:, : 2 * hidden], w_hh_t[:, 2 * hidden :]
    for t in step_order(steps, reverse):
        h_prev = h_before[t]
        h_bar = h_prev if m is None else torch.mul(h_prev, m, out=h_in)
        r, z = r_t[t], z_t[t]
        if reset_after:
            if ln_hh:
                a = torch.mm(h_bar, w_hh_t, out=a_t[t])
                a_hat, mean, rho = torch.native_layer_norm(a, (three_h,), None, None, EPS)
                if w.b_hh is None:
                    torch.mul(a_hat, w.ln_hh, out=gh_t[t])
                else:
                    torch.addcmul(w.b_hh, a_hat, w.ln_hh, out=gh_t[t])
                stats[t] = (mean, rho)
            elif w.b_hh is None:
                torch.mm(h_bar, w_hh_t, out=gh_t[t])
            else:
                torch.addmm(w.b_hh, h_bar, w_hh_t, out=gh_t[t])
            torch.add(gx_rz_t[t], gh_rz_t[t], out=rz_t[t]).sigmoid_()
            n = torch.addcmul(gx_n_t[t], r, n_hat_t[t], out=n_t[t]).tanh_()
        else:
            torch.addmm(gx_rz_t[t], h_bar, w_rz_t, out=rz_t[t]).sigmoid_()
            rh = torch.mul(r, h_bar, out=n_hat_t[t])
            n = torch.addmm(gx_n_t[t], rh, w_n_t, out=n_t[t]).tanh_()
        h_new = torch.lerp(n, h_prev, z, out=hnew_t[t])
        if zh_t is not None:
            h_new = torch.lerp(h_new, h_prev, zh_t[t], out=hzone_t[t])
        if keep_t is not None:
            keep = keep_t[t]
            torch.mul(h_new, keep, out=out_t[t])
            torch.where(keep, h_new, h_prev, out=h_now[t])
    last = 0 if reverse else steps - 1
    return hs, h_now[last], stack_stats(stats) if (save and ln_hh) else (None, None)


def gru_backward(saved, x, h0, w, noise: Noise, mask, x_norm, dout, dh_n, reverse, reset_after,
                 need_dx=True, ops=None):  # fmt: skip
    """The reverse loop and the weight-gradient matmuls; see the module docstring.

    Returns the gradients of (x, h0) and a DirectionWeights of parameter gradients (the
    gradient of x is None unless ``need_dx``). ``ops`` as in :func:`gru_forward`.
    """
    _, ns, n_hat, hs, a_h, mean_h, rho_h = saved
    steps, batch, hidden = ns.shape
    ln_hh = w.ln_hh is not None
    # δg^h (reset after) or δg^x (before): (T, N, 3H); δn: of n's pre-activation, (T, N, H)
    dg = workspace.empty(ns, steps, batch, 3 * hidden)
    loop = _python_backward if ops is None else partial(_compiled_backward, ops)
    grad_a, dn, dh0 = loop(saved, h0, w, noise, mask, dout, dh_n, reverse, reset_after, dg)
    grads = {}
    if reset_after:
        grads["w_hh"] = sum_prev_outer(grad_a, hs, h0, reverse, noise.recurrent)
        if w.b_hh is not None:
            grads["b_hh"] = dg.view(-1, 3 * hidden).sum(0)
        if ln_hh:
            grads["ln_hh"] = norm_grads(dg, a_h, mean_h, rho_h, w.ln_hh)[1]
        # the recurrent side is done: the n block becomes δn_pre, so the buffer holds the
        # input side's δg^x = [δg_rz, δn_pre]
        dg[..., 2 * hidden :] = dn
    else:
        dw_n = dn.reshape(-1, hidden).T @ n_hat.reshape(-1, hidden)  # Σ δn_pre^T (r ⊙ h̄)
        dw_rz = sum_prev_outer(dg[..., : 2 * hidden], hs, h0, reverse, noise.recurrent)
        grads["w_hh"] = torch.cat([dw_rz, dw_n])
    if w.b_ih is not None:
        grads["b_ih"] = dg.view(-1, 3 * hidden).sum(0)
        if not reset_after:  # all of b_hh sits on the input side beside b_ih
            grads["b_hh"] = grads["b_ih"]
    dx = input_grads(dg, x, w, x_norm, need_dx, grads)
    return dx, dh0, DirectionWeights(**{name: grads.get(name) for name in DirectionWeights._fields})


def _compiled_backward(ops, saved, h0, w, noise, mask, dout, dh_n, reverse, reset_after, dg):
    """The reverse loop with ``torch.ops.lstmkit.gru_backward``; fills dg and returns
    (δa (T, N, 3H) or δg^h itself, δn (T, N, H), δh_0)."""
    rz, ns, n_hat, hs, a_h, mean_h, rho_h = saved
    m, zh, _ = noise
    hidden = ns.shape[-1]
    ln_hh = w.ln_hh is not None
    dn = workspace.empty(ns, *ns.shape) if reset_after else dg[..., 2 * hidden :]
    grad_a = workspace.empty(dg, *dg.shape) if ln_hh else None
    dh0 = ns.new_empty(ns.shape[1:])
    zh, zh_rate = zone_args(zh)
    ops.gru_backward(
        dout=rows_contiguous(dout), dh_n=rows_contiguous(dh_n), h0=rows_contiguous(h0),
        w_hh=right_operand(w.w_hh), rz=rz, n=ns, n_hat=n_hat if reset_after else None, hs=hs, a=a_h,
        mean_h=mean_h, rstd_h=rho_h, ln_hh=vector(w.ln_hh), zh=zh, zh_rate=zh_rate, keep=mask,
        m=m, reset_after=reset_after, reverse=reverse, dg=dg, grad_a=grad_a, dn=dn, dh0=dh0,
    )  # fmt: skip
    return dg if grad_a is None else grad_a, dn, dh0


def _python_backward(saved, h0, w, noise, mask, dout, dh_n, reverse, reset_after, dg):
    """The reverse loop as torch calls; returns what :func:`_compiled_backward` does."""
    rz, ns, n_hat, hs, a_h, mean_h, rho_h = saved
    m, zh, _ = noise
    steps, batch, hidden = ns.shape
    ln_hh = w.ln_hh is not None
    r, z = rz.split(hidden, dim=2)
    a_n = torch.mul(ns, ns).mul_(-1).add_(1)  # 1 - n²
    torch.addcmul(a_n, a_n, z, value=-1, out=a_n)  # (1 - z)(1 - n²)
    a_z = shift_prev(hs, h0, reverse).sub_(ns).mul_(z)  # (h_{t-1} - n) z
    torch.addcmul(a_z, a_z, z, value=-1, out=a_z)  # (h_{t-1} - n) z (1 - z)
    zeta = z
    if zh is not None:
        keep = 1 - zh
        a_n.mul_(keep)
        a_z.mul_(keep)
        zeta = z * keep + zh
    mf = None if mask is None else mask.to(ns.dtype)
    if mf is not None:
        mf_t, pass_t = mf.unbind(0), (1 - mf).unbind(0)
    dh_all = workspace.empty(ns, *ns.shape)  # δh_t after masking, for the n-gate gradients
    dh_t = dh_all.unbind(0)
    dout_t, zeta_t = dout.unbind(0), zeta.unbind(0)
    w_hh = right_operand(w.w_hh)  # (3H, H)
    dhc = ns.new_empty(batch, hidden)  # δh_{t-1}, written by the matmul
    if reset_after:
        g_r, g_z, g_n = dg.split(hidden, dim=2)
        torch.mul(a_n, n_hat, out=g_r).mul_(r).mul_(1 - r)
        g_z.copy_(a_z)
        torch.mul(a_n, r, out=g_n)
        grad_t = dg.unbind(0)
        g3_t = dg.view(steps, batch, 3, hidden).unbind(0)
        dh1_t = dh_all.view(steps, batch, 1, hidden).unbind(0)
        if ln_hh:
            a_t, mh_t, rh_t = a_h.unbind(0), mean_h.unbind(0), rho_h.unbind(0)
            da = [None] * steps
    else:
        b_r = shift_prev(hs, h0, reverse)  # h̄_{t-1} r (1 - r): δr_pre = δ(r ⊙ h̄) ⊙ this
        if m is not None:
            b_r.mul_(m)
        b_r.mul_(r)
        torch.addcmul(b_r, b_r, r, value=-1, out=b_r)
        w_n = w.w_hh[2 * hidden :]
        w_rz = w_hh[: 2 * hidden]
        grad_rz, dn = dg[..., : 2 * hidden], dg[..., 2 * hidden :]
        rz_grad_t, dn_t = grad_rz.unbind(0), dn.unbind(0)
        gr_t, gz_t = grad_rz[..., :hidden].unbind(0), grad_rz[..., hidden:].unbind(0)
        an_t, az_t, br_t, r_t = a_n.unbind(0), a_z.unbind(0), b_r.unbind(0), r.unbind(0)
        drh = ns.new_empty(batch, hidden)
        drh_r = ns.new_empty(batch, hidden)
    carry = dh_n
    for t in reversed(step_order(steps, reverse)):
        dh = torch.add(dout_t[t], carry, out=dh_t[t])
        if mf is not None:
            dh_pass = carry * pass_t[t]
            dh.mul_(mf_t[t])
        if reset_after:
            g3_t[t].mul_(dh1_t[t])
            if ln_hh:
                da[t] = d_a = norm_backward(grad_t[t], a_t[t], mh_t[t], rh_t[t], w.ln_hh)
            else:
                d_a = grad_t[t]
            dh_in = torch.mm(d_a, w_hh, out=dhc)
        else:
            d_n = torch.mul(dh, an_t[t], out=dn_t[t])
            torch.mm(d_n, w_n, out=drh)  # δ(r ⊙ h̄_{t-1}), (N, H)
            torch.mul(drh, br_t[t], out=gr_t[t])
            torch.mul(dh, az_t[t], out=gz_t[t])
            torch.mul(drh, r_t[t], out=drh_r)
            dh_in = torch.addmm(drh_r, rz_grad_t[t], w_rz, out=dhc)
        if m is not None:
            dh_in.mul_(m)
        carry = dh_in.addcmul_(dh, zeta_t[t])
        if mf is not None:
            carry.add_(dh_pass)
    if reset_after:
        return torch.stack(da) if ln_hh else dg, dh_all.mul_(a_n), carry
    return dg, dn, carry


_SAVED = 7  # the length of gru_forward's saved tuple


class GRUVariantDirection(torch.autograd.Function):
    """One direction of the GRU variants as an autograd node with our own BPTT."""

    @staticmethod
    def forward(ctx, x, h0, mask, reverse, reset_after, noise, ops, *weights):
        w = DirectionWeights(*weights)
        gx, norm = input_side(x, w.w_ih, input_bias(w, reset_after), w.ln_ih)
        out, h, saved = gru_forward(gx, h0, w, noise, mask, reverse, reset_after, True, ops)
        ctx.reverse, ctx.reset_after, ctx.noise = reverse, reset_after, noise
        ctx.ops = ops  # the backward runs the same implementation
        ctx.save_for_backward(x, h0, mask, *weights, *saved, *(norm or NONE3))
        return out, h

    @staticmethod
    def backward(ctx, dout, dh_n):
        x, h0, mask, w, saved, x_norm = saved_direction(ctx, _SAVED)
        dx, dh0, dw = gru_backward(
            saved, x, h0, w, ctx.noise, mask, x_norm, dout, dh_n, ctx.reverse, ctx.reset_after,
            ctx.needs_input_grad[0], ctx.ops,
        )  # fmt: skip
        return dx, dh0, None, None, None, None, None, *dw


def run_direction(
    cfg: RNNConfig,
    x: Tensor,
    h0: Tensor,
    c0: None,
    w: DirectionWeights,
    mask: Tensor | None,
    reverse: bool,
    noise: Noise | None = None,
    *,
    steps: str | None = None,
) -> tuple[Tensor, Tensor, None]:
    """The fused GRU direction: an autograd node when gradients are needed; ``steps`` as
    in :func:`lstmkit.recurrence.lstm_variants.run_direction`."""
    noise = noise or Noise()
    ops = kernels.ops_named(steps, x)
    if needs_autograd(x, h0, *w):
        args = (x, h0, mask, reverse, cfg.reset_after, noise, ops)
        out, h = GRUVariantDirection.apply(*args, *w)
        return out, h, None
    gx, _ = input_side(x, w.w_ih, input_bias(w, cfg.reset_after), w.ln_ih)
    out, h, _ = gru_forward(gx, h0, w, noise, mask, reverse, cfg.reset_after, False, ops)
    return out, h, None
