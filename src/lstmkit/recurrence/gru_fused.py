r"""One GRU direction with hand-written back-propagation through time, both reset forms.

Forward: the input projection of all steps is one matmul (gx = x W_ih^T + b_ih); per step
the recurrent matmul and the gate math of :func:`lstmkit.cells.gru_cell`, with
:math:`h_t = n_t + z_t (h_{t-1} - n_t)` (``torch.lerp``).

Backward (derived in ``docs/bptt.md``). With :math:`\delta h_t` the total gradient
reaching :math:`h_t` and the per-step constants computed for all steps before the loop,

.. math::

    a^n_t = (1-z_t)(1-n_t^2), \qquad a^z_t = (h_{t-1}-n_t)\, z_t(1-z_t),

**reset_after=True** (:math:`\hat n_t = W_{hn} h_{t-1} + b_{hn}`): every gate gradient
is :math:`\delta h_t` times a constant, so the loop is

.. math::

    \delta G^h_t = \delta h_t \odot [a^n_t \hat n_t r_t(1-r_t),\; a^z_t,\; a^n_t r_t], \qquad
    \delta h_{t-1} \mathrel{+}= \delta h_t \odot z_t + \delta G^h_t W_{hh},

and :math:`\delta G^x_t = [\delta G^h_{t,r}, \delta G^h_{t,z}, \delta h_t \odot a^n_t]`.

**reset_after=False** (Cho et al.: :math:`\hat n_t = W_{hn}(r_t \odot h_{t-1}) + b_{hn}`):

.. math::

    \delta n^{pre}_t = \delta h_t a^n_t,\quad
    \delta(rh)_t = \delta n^{pre}_t W_{hn},\quad
    \delta r^{pre}_t = \delta(rh)_t \odot h_{t-1} r_t(1-r_t), \\
    \delta h_{t-1} \mathrel{+}= \delta h_t \odot z_t + \delta(rh)_t \odot r_t
        + [\delta r^{pre}_t, \delta z^{pre}_t] W_{h,rz}.

Weight gradients are matmuls over all steps after the loop.
Shapes: x (T, N, H_in), gx (T, N, 3H), h (T, N, H); gate order r, z, n.
"""

import torch
from torch import Tensor

from lstmkit.recurrence.config import DirectionWeights, RNNConfig
from lstmkit.recurrence.lstm_fused import _order, _shift_prev, needs_autograd, sum_prev_outer
from lstmkit.recurrence.reference import input_projection, project


def gru_forward(
    gx: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    b_hh: Tensor | None,
    mask: Tensor | None,
    reverse: bool,
    reset_after: bool,
    save: bool,
):
    """The forward loop. Returns (out (T, N, H), h_T, saved) with
    saved = (rz (T, N, 2H), n (T, N, H), hn (T, N, H), hs) or None, where hn is
    W_hn h_{t-1} + b_hn (reset_after) or r_t ⊙ h_{t-1} (reset_before), and hs the carried
    hidden states (out when there is no mask).
    """
    steps, batch, three_h = gx.shape
    hidden = three_h // 3
    out = gx.new_empty(steps, batch, hidden)
    rz = gx.new_empty(steps, batch, 2 * hidden) if save else gx.new_empty(batch, 2 * hidden)
    ns = gx.new_empty(steps, batch, hidden) if save else None
    hn = gx.new_empty(steps, batch, hidden) if save else None
    hs = gx.new_empty(out.shape) if (save and mask is not None) else out
    w_hh_t = w_hh.T  # (H, 3H)
    w_rz_t, w_n_t = w_hh_t[:, : 2 * hidden], w_hh_t[:, 2 * hidden :]
    b_rz = b_n = None
    if b_hh is not None:
        b_rz, b_n = b_hh[: 2 * hidden], b_hh[2 * hidden :]
    h = h0
    for t in _order(steps, reverse):
        g = gx[t]
        act = rz[t] if save else rz
        if reset_after:
            gh = torch.mm(h, w_hh_t) if b_hh is None else torch.addmm(b_hh, h, w_hh_t)
            torch.add(g[:, : 2 * hidden], gh[:, : 2 * hidden], out=act)
            act.sigmoid_()
            r, z = act.split(hidden, dim=1)
            h_hat = gh[:, 2 * hidden :]
            n = torch.addcmul(g[:, 2 * hidden :], r, h_hat).tanh_()
        else:
            gh = torch.mm(h, w_rz_t) if b_rz is None else torch.addmm(b_rz, h, w_rz_t)
            torch.add(g[:, : 2 * hidden], gh, out=act)
            act.sigmoid_()
            r, z = act.split(hidden, dim=1)
            h_hat = r * h
            pre = torch.addmm(g[:, 2 * hidden :], h_hat, w_n_t)
            if b_n is not None:
                pre += b_n
            n = pre.tanh_()
        h_new = torch.lerp(n, h, z, out=out[t] if mask is None else None)
        if save:
            ns[t] = n
            hn[t] = h_hat
        if mask is None:
            h = h_new
        else:
            m = mask[t]
            torch.mul(h_new, m, out=out[t])
            h = torch.where(m, h_new, h)
            if save:
                hs[t] = h
    saved = (rz, ns, hn, hs) if save else None
    return out, h, saved


def gru_backward(ctx_tensors, dout: Tensor, dh_n: Tensor, reverse: bool, reset_after: bool):
    """The reverse loop and the weight-gradient matmuls; see the module docstring."""
    x, h0, w_ih, w_hh, rz, ns, hn, hs, mask = ctx_tensors
    steps, batch, hidden = ns.shape
    r, z = rz.split(hidden, dim=2)
    a_n = (1 - z).mul_(1 - ns * ns)
    mf = None if mask is None else mask.to(ns.dtype)
    dh_all = torch.empty_like(ns)  # δh_t after masking, kept for the n-gate gradients
    # the constants are written straight into the buffers the loop then scales in place
    h_prev = _shift_prev(hs, h0, reverse)
    if reset_after:
        grad_h = torch.empty(steps, batch, 3 * hidden, dtype=ns.dtype, device=ns.device)
        g_r, a_z, g_n = grad_h.split(hidden, dim=2)
        torch.mul(a_n, hn, out=g_r).mul_(r).mul_(1 - r)
        torch.mul(a_n, r, out=g_n)
    else:
        grad_rz = torch.empty(steps, batch, 2 * hidden, dtype=ns.dtype, device=ns.device)
        a_z = torch.empty_like(ns)
        b_r = h_prev.mul(r).mul_(1 - r)
        w_n = w_hh[2 * hidden :]
    torch.sub(h_prev, ns, out=a_z).mul_(z).mul_(1 - z)
    del h_prev
    w_hh_nt = w_hh.t().contiguous().T  # NT products in the loop (see lstm_fused)
    if not reset_after:
        w_rz_nt = w_hh_nt[: 2 * hidden]
    carry = dh_n
    for t in reversed(_order(steps, reverse)):
        dh = torch.add(dout[t], carry, out=dh_all[t])
        if mf is not None:
            dh_pass = carry * (1 - mf[t])
            dh.mul_(mf[t])
        if reset_after:
            dg = grad_h[t]
            dg.view(batch, 3, hidden).mul_(dh.unsqueeze(1))
            carry = torch.addmm(dh * z[t], dg, w_hh_nt)
        else:
            dn = dh * a_n[t]
            drh = dn @ w_n  # δ(r ⊙ h_{t-1}), (N, H)
            dg = grad_rz[t]
            torch.mul(drh, b_r[t], out=dg[:, :hidden])
            torch.mul(dh, a_z[t], out=dg[:, hidden:])
            carry = torch.addmm(torch.addcmul(dh * z[t], drh, r[t]), dg, w_rz_nt)
        if mf is not None:
            carry = carry + dh_pass
    # δ of the n pre-activation, all steps: (T, N, H)
    dn_all = dh_all.mul_(a_n)
    dn_flat = dn_all.view(-1, hidden)
    if reset_after:
        grad_rz = grad_h[..., : 2 * hidden]
        dw_hh = sum_prev_outer(grad_h, hs, h0, reverse)
    else:
        dw_n = dn_flat.T @ hn.reshape(-1, hidden)  # Σ δn_pre^T (r ⊙ h_{t-1})
        dw_hh = torch.cat([sum_prev_outer(grad_rz, hs, h0, reverse), dw_n])
    rz_flat = grad_rz.reshape(-1, 2 * hidden)
    x_flat = x.reshape(-1, x.shape[-1])
    dx = (rz_flat @ w_ih[: 2 * hidden] + dn_flat @ w_ih[2 * hidden :]).view(steps, batch, -1)
    dw_ih = torch.cat([rz_flat.T @ x_flat, dn_flat.T @ x_flat])
    db_ih = torch.cat([rz_flat.sum(0), dn_flat.sum(0)])
    # the hidden-side n gradient is δh a^n r_t with the reset after the matmul (grad_h's n
    # block); with the reset before it, b_hn adds beside b_in and the two gradients agree
    db_hh = grad_h.view(-1, 3 * hidden).sum(0) if reset_after else db_ih
    return dx, carry, dw_ih, dw_hh, db_ih, db_hh


class GRUDirection(torch.autograd.Function):
    """One GRU direction as an autograd node with our own BPTT."""

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, mask, reverse, reset_after):
        gx = project(x, w_ih, b_ih)
        out, h, (rz, ns, hn, hs) = gru_forward(gx, h0, w_hh, b_hh, mask, reverse, reset_after, True)
        ctx.reverse, ctx.reset_after = reverse, reset_after
        ctx.has_bias = b_ih is not None
        ctx.save_for_backward(x, h0, w_ih, w_hh, rz, ns, hn, hs, mask)
        return out, h

    @staticmethod
    def backward(ctx, dout, dh_n):
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = gru_backward(
            ctx.saved_tensors, dout, dh_n, ctx.reverse, ctx.reset_after
        )
        if not ctx.has_bias:
            db_ih = db_hh = None
        return dx, dh0, dw_ih, dw_hh, db_ih, db_hh, None, None, None


def run_direction(
    cfg: RNNConfig,
    x: Tensor,
    h0: Tensor,
    c0: None,
    w: DirectionWeights,
    mask: Tensor | None,
    reverse: bool,
    noise=None,
) -> tuple[Tensor, Tensor, None]:
    """The fused GRU direction: autograd node when gradients are needed, plain loop otherwise.

    ``noise`` is accepted for the common signature; the plain cell draws none.
    """
    if needs_autograd(x, h0, *w):
        out, h = GRUDirection.apply(
            x, h0, w.w_ih, w.w_hh, w.b_ih, w.b_hh, mask, reverse, cfg.reset_after
        )
        return out, h, None
    gx = input_projection(cfg, x, w)
    out, h, _ = gru_forward(gx, h0, w.w_hh, w.b_hh, mask, reverse, cfg.reset_after, False)
    return out, h, None
