r"""One GRU direction of the cell variants, with hand-written BPTT.

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

Shapes: x (T, N, H_in), gx (T, N, 3H), h (T, N, H); gate order r, z, n.
"""

import torch
from torch import Tensor

from lstmkit.cells.norm import EPS
from lstmkit.recurrence.config import DirectionWeights, RNNConfig
from lstmkit.recurrence.lstm_fused import _order, _shift_prev, needs_autograd, sum_prev_outer
from lstmkit.recurrence.lstm_variants import (
    _NONE3,
    _at,
    _stats,
    _store,
    input_side,
    norm_backward,
    normalised,
)
from lstmkit.recurrence.noise import Noise


def gru_forward(gx, h0, w, noise: Noise, mask, reverse: bool, reset_after: bool, save: bool):
    """The forward loop over gx (T, N, 3H) (the input side with b_ih).

    Returns (out (T, N, H), h_T, saved) with saved = (rz (T, N, 2H), n, n̂, hs, â, ρ_h):
    n̂ as in the module docstring, hs the carried states, â and ρ_h the normalised
    recurrent pre-activation and its reciprocal std (None without layer norm).
    """
    steps, batch, three_h = gx.shape
    hidden = three_h // 3
    m, zh, _ = noise
    out = gx.new_empty(steps, batch, hidden)
    rz = gx.new_empty(steps, batch, 2 * hidden)
    ns = gx.new_empty(steps, batch, hidden) if save else None
    n_hat = gx.new_empty(steps, batch, hidden) if save else None
    hs = gx.new_empty(steps, batch, hidden) if save else None
    stats_h = _stats(gx, steps, batch, three_h) if (save and w.ln_hh is not None) else None
    w_hh_t = w.w_hh.T  # (H, 3H)
    w_rz_t, w_n_t = w_hh_t[:, : 2 * hidden], w_hh_t[:, 2 * hidden :]
    b_rz = b_n = None
    if w.b_hh is not None:
        b_rz, b_n = w.b_hh[: 2 * hidden], w.b_hh[2 * hidden :]
    h = h0
    for t in _order(steps, reverse):
        g = gx[t]
        act = rz[t]
        h_in = h if m is None else h * m
        if reset_after:
            if w.ln_hh is None:
                gh = torch.mm(h_in, w_hh_t) if w.b_hh is None else torch.addmm(w.b_hh, h_in, w_hh_t)
            else:
                a = h_in @ w_hh_t
                a_hat, mean, rho = torch.native_layer_norm(a, (three_h,), None, None, EPS)
                gh = a_hat * w.ln_hh if w.b_hh is None else torch.addcmul(w.b_hh, a_hat, w.ln_hh)
                if save:
                    _store(stats_h, t, a, mean, rho)
            torch.add(g[:, : 2 * hidden], gh[:, : 2 * hidden], out=act).sigmoid_()
            r, z = act.split(hidden, dim=1)
            recurrent_n = gh[:, 2 * hidden :]
            n = torch.addcmul(g[:, 2 * hidden :], r, recurrent_n).tanh_()
        else:
            gh = torch.mm(h_in, w_rz_t) if b_rz is None else torch.addmm(b_rz, h_in, w_rz_t)
            torch.add(g[:, : 2 * hidden], gh, out=act).sigmoid_()
            r, z = act.split(hidden, dim=1)
            recurrent_n = r * h_in
            pre = torch.addmm(g[:, 2 * hidden :], recurrent_n, w_n_t)
            if b_n is not None:
                pre += b_n
            n = pre.tanh_()
        h_new = torch.lerp(n, h, z)
        d = _at(zh, t)
        if d is not None:
            h_new = torch.lerp(h_new, h, d) if isinstance(d, Tensor) else h_new + d * (h - h_new)
        if mask is None:
            out[t] = h_new
            h = h_new
        else:
            keep = mask[t]
            torch.mul(h_new, keep, out=out[t])
            h = torch.where(keep, h_new, h)
        if save:
            ns[t], n_hat[t], hs[t] = n, recurrent_n, h
    saved = (rz, ns, n_hat, hs, *(stats_h or _NONE3)) if save else None
    return out, h, saved


def gru_backward(saved, x, h0, w, noise: Noise, mask, x_norm, dout, dh_n, reverse, reset_after):
    """The reverse loop and the weight-gradient matmuls; see the module docstring.

    Returns the gradients of (x, h0) and a DirectionWeights of parameter gradients.
    """
    rz, ns, n_hat, hs, *stats_h = saved
    m, zh, _ = noise
    steps, batch, hidden = ns.shape
    r, z = rz.split(hidden, dim=2)
    h_prev = _shift_prev(hs, h0, reverse)
    a_n = (1 - z).mul_(1 - ns * ns)
    a_z = (h_prev - ns).mul_(z).mul_(1 - z)
    zeta = z
    if zh is not None:
        keep = 1 - zh
        a_n.mul_(keep)
        a_z.mul_(keep)
        zeta = z * keep + zh
    mf = None if mask is None else mask.to(ns.dtype)
    dh_all = torch.empty_like(ns)  # δh_t after masking, kept for the n-gate gradients
    w_hh_nt = w.w_hh.t().contiguous().T  # NT products in the loop (see lstm_fused)
    if reset_after:
        grad_h = torch.empty(steps, batch, 3 * hidden, dtype=ns.dtype, device=ns.device)
        g_r, g_z, g_n = grad_h.split(hidden, dim=2)
        torch.mul(a_n, n_hat, out=g_r).mul_(r).mul_(1 - r)
        g_z.copy_(a_z)
        torch.mul(a_n, r, out=g_n)
        grad_a = torch.empty_like(grad_h) if w.ln_hh is not None else grad_h
    else:
        grad_rz = torch.empty(steps, batch, 2 * hidden, dtype=ns.dtype, device=ns.device)
        h_in_prev = h_prev if m is None else h_prev * m
        b_r = h_in_prev * r * (1 - r)
        w_n = w.w_hh[2 * hidden :]
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
            if w.ln_hh is not None:
                grad_a[t] = norm_backward(dg, *(v[t] for v in stats_h), w.ln_hh)
            dh_in = grad_a[t] @ w_hh_nt
        else:
            drh = (dh * a_n[t]) @ w_n  # δ(r ⊙ h̄_{t-1}), (N, H)
            dg = grad_rz[t]
            torch.mul(drh, b_r[t], out=dg[:, :hidden])
            torch.mul(dh, a_z[t], out=dg[:, hidden:])
            dh_in = torch.addmm(drh * r[t], dg, w_rz_nt)
        if m is not None:
            dh_in.mul_(m)
        carry = torch.addcmul(dh_in, dh, _at(zeta, t))
        if mf is not None:
            carry = carry + dh_pass
    dn_flat = dh_all.mul_(a_n).view(-1, hidden)  # δ of the n pre-activation, all steps
    h_in = hs if m is None else hs * m
    h0_in = h0 if m is None else h0 * m
    grads = {}
    if reset_after:
        grad_rz = grad_h[..., : 2 * hidden]
        grads["w_hh"] = sum_prev_outer(grad_a, h_in, h0_in, reverse)
        if w.b_hh is not None:
            grads["b_hh"] = grad_h.reshape(-1, 3 * hidden).sum(0)
        if w.ln_hh is not None:
            grads["ln_hh"] = (grad_h * normalised(*stats_h)).sum((0, 1))
    else:
        dw_n = dn_flat.T @ n_hat.reshape(-1, hidden)  # Σ δn_pre^T (r ⊙ h̄_{t-1})
        grads["w_hh"] = torch.cat([sum_prev_outer(grad_rz, h_in, h0_in, reverse), dw_n])
    # the input side: δg^x = [δg_rz, δn_pre] (T, N, 3H)
    dgx = torch.cat([grad_rz, dn_flat.view(steps, batch, hidden)], dim=2)
    flat = dgx.view(-1, 3 * hidden)
    if w.b_ih is not None:
        grads["b_ih"] = flat.sum(0)
        if not reset_after:  # b_hn adds beside b_in: the two gradients agree
            grads["b_hh"] = grads["b_ih"]
    if x_norm is not None:
        grads["ln_ih"] = (dgx * normalised(*x_norm)).sum((0, 1))
        dax = norm_backward(dgx, *x_norm, w.ln_ih).view(-1, 3 * hidden)
    else:
        dax = flat
    dx = (dax @ w.w_ih).view(steps, batch, -1)
    grads["w_ih"] = dax.T @ x.reshape(-1, x.shape[-1])
    return dx, carry, DirectionWeights(**{name: grads.get(name) for name in _FIELDS})


_FIELDS = DirectionWeights._fields


class GRUVariantDirection(torch.autograd.Function):
    """One direction of the GRU variants as an autograd node with our own BPTT."""

    @staticmethod
    def forward(ctx, x, h0, mask, reverse, reset_after, noise, *weights):
        w = DirectionWeights(*weights)
        gx, norm = input_side(x, w.w_ih, w.b_ih, w.ln_ih)
        out, h, saved = gru_forward(gx, h0, w, noise, mask, reverse, reset_after, True)
        ctx.reverse, ctx.reset_after, ctx.noise = reverse, reset_after, noise
        ctx.save_for_backward(x, h0, mask, *weights, *saved, *(norm or _NONE3))
        return out, h

    @staticmethod
    def backward(ctx, dout, dh_n):
        x, h0, mask, *rest = ctx.saved_tensors
        count = len(_FIELDS)
        w = DirectionWeights(*rest[:count])
        saved = rest[count : count + 7]
        x_norm = tuple(rest[count + 7 :]) if w.ln_ih is not None else None
        dx, dh0, dw = gru_backward(
            saved, x, h0, w, ctx.noise, mask, x_norm, dout, dh_n, ctx.reverse, ctx.reset_after
        )
        dw = [None if p is None else d for p, d in zip(w, dw, strict=True)]
        return dx, dh0, None, None, None, None, *dw


def run_direction(
    cfg: RNNConfig,
    x: Tensor,
    h0: Tensor,
    c0: None,
    w: DirectionWeights,
    mask: Tensor | None,
    reverse: bool,
    noise: Noise | None = None,
) -> tuple[Tensor, Tensor, None]:
    """The fused variant GRU direction: autograd node when gradients are needed."""
    noise = noise or Noise()
    if needs_autograd(x, h0, *w):
        out, h = GRUVariantDirection.apply(x, h0, mask, reverse, cfg.reset_after, noise, *w)
        return out, h, None
    gx, _ = input_side(x, w.w_ih, w.b_ih, w.ln_ih)
    out, h, _ = gru_forward(gx, h0, w, noise, mask, reverse, cfg.reset_after, False)
    return out, h, None
