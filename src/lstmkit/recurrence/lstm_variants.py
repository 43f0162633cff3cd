r"""One LSTM direction of the cell variants, with hand-written BPTT.

The variants (``docs/variants.md``): layer normalisation of the input and recurrent
pre-activations and of the cell state (Ba et al. 2016), peepholes (Gers & Schmidhuber
2000), recurrent dropout on :math:`h_{t-1}` (Gal & Ghahramani 2016) and zoneout of h and C
(Krueger et al. 2016), in any combination; no projection. The forward is the reference
cell (:func:`lstmkit.cells.lstm_cell` with the zoneout of
:func:`lstmkit.recurrence.reference.zone`) with the input side — one matmul and, with
layer norm, its normalisation — done for all steps before the loop.

Backward. With :math:`d^h, d^c` the zoneout masks (0 when off), :math:`m` the recurrent
mask, :math:`u_t = \mathrm{LN}(\tilde C_t)\gamma_c + \beta_c` (or :math:`\tilde C_t`) and
:math:`\tau_t = \tanh u_t`, every local derivative that does not depend on the incoming
gradient is computed for all steps before the reverse loop:

.. math::

    A_t &= [g_t i_t(1-i_t),\; C_{t-1} f_t(1-f_t),\; i_t(1-g_t^2),\;
            (1-d^h_t)\,\tau_t o_t(1-o_t)], \\
    K_t &= (1-d^h_t)\, o_t (1-\tau_t^2)\;[\odot \gamma_c], \qquad
    F_t = f_t + p_i A^i_t + p_f A^f_t .

The loop carries :math:`\delta h_t` and :math:`\delta C_t`:

.. math::

    \delta \tilde C_t &= (1-d^c_t)\,\delta C_t + \mathcal{B}_c(\delta h_t \odot K_t)
        + \delta h_t \odot A^o_t\, p_o, \\
    \delta G_t &= [\delta\tilde C_t, \delta\tilde C_t, \delta\tilde C_t, \delta h_t] \odot A_t,
    \qquad \delta a^h_t = \mathcal{B}_h(\delta G_t \odot \gamma_{hh}), \\
    \delta h_{t-1} &= d^h_t\, \delta h_t + (\delta a^h_t W_{hh}) \odot m, \qquad
    \delta C_{t-1} = d^c_t\, \delta C_t + \delta\tilde C_t \odot F_t,

where :math:`\mathcal B(\delta\hat v) = \rho\,(\delta\hat v - \overline{\delta\hat v}
- \hat v\, \overline{\delta\hat v \odot \hat v})` is the backward of a layer norm with
normalised value :math:`\hat v` and :math:`\rho = 1/\sqrt{\sigma^2+\varepsilon}` (the
identity when that norm is off). After the loop, as matmuls over all steps:
:math:`\partial W_{hh} = \sum_t \delta a^{h\top}_t (h_{t-1} \odot m)`,
:math:`\partial b = \sum_t \delta G_t`, :math:`\partial\gamma_{hh} = \sum_t \delta G_t
\odot \hat a^h_t`, the input side :math:`\delta a^x = \mathcal B_x(\delta G \odot
\gamma_{ih})` for all steps at once, :math:`\partial W_{ih} = \sum_t \delta a^{x\top}_t x_t`,
:math:`\partial x = \delta a^x W_{ih}`; :math:`\partial p_i = \sum \delta G^i C_{t-1}`,
:math:`\partial p_f = \sum \delta G^f C_{t-1}`, :math:`\partial p_o = \sum \delta G^o
\tilde C_t`; :math:`\partial\gamma_c = \sum (\delta h \odot K/\gamma_c) \odot \hat u`,
:math:`\partial \beta_c = \sum \delta h \odot K / \gamma_c`.

Shapes: x (T, N, H_in), gates (T, N, 4H), C (T, N, H), h (T, N, H); zoneout masks
(T, N, H) or a float (evaluation), recurrent mask (N, H).
"""

import torch
from torch import Tensor

from lstmkit.cells.norm import EPS
from lstmkit.recurrence.config import DirectionWeights, RNNConfig
from lstmkit.recurrence.lstm_fused import _order, _shift_prev, needs_autograd, sum_prev_outer
from lstmkit.recurrence.noise import Noise
from lstmkit.recurrence.reference import project


def normalise(v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(v̂, μ, ρ): v normalised over its last axis, its mean and reciprocal std (..., 1)."""
    return torch.native_layer_norm(v, v.shape[-1:], None, None, EPS)


def norm_backward(dy: Tensor, v: Tensor, mean: Tensor, rstd: Tensor, gain: Tensor) -> Tensor:
    """𝓑: the gradient reaching v from the gradient of y = v̂ ⊙ gain.

    ATen's layer-norm backward: the formula of the module docstring in one kernel, its
    row means accumulated in double on CPU — as exact as autograd's own layer norm.
    """
    out_mask = [True, False, False]
    return torch.ops.aten.native_layer_norm_backward(
        dy, v, v.shape[-1:], mean, rstd, gain, None, out_mask
    )[0]


def normalised(v: Tensor, mean: Tensor, rstd: Tensor) -> Tensor:
    """v̂ again from the saved statistics, for the gains' gradients after the loop."""
    return (v - mean) * rstd


def _at(d: Tensor | float | None, t: int):
    """The zoneout mask of step t: a (N, ·) slice, the evaluation rate, or None."""
    return d[t] if isinstance(d, Tensor) else d


def _one_minus(d: Tensor | float | None):
    return None if d is None else 1 - d


def input_side(x: Tensor, w_ih: Tensor, bias: Tensor | None, ln_ih: Tensor | None):
    """(gx (T, N, G·H), norm): x W_ih^T (normalised, scaled by γ_ih) + bias for all steps;
    norm = (a^x, μ, ρ) with layer norm, else None."""
    if ln_ih is None:
        return project(x, w_ih, bias), None
    a = project(x, w_ih, None)
    a_hat, mean, rstd = normalise(a)
    gx = a_hat * ln_ih if bias is None else torch.addcmul(bias, a_hat, ln_ih)
    return gx, (a, mean, rstd)


_NONE3 = (None, None, None)


def _stats(like: Tensor, steps: int, batch: int, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Buffers for a layer norm's input (T, N, size), mean and ρ (T, N, 1) at every step."""
    return (
        like.new_empty(steps, batch, size),
        like.new_empty(steps, batch, 1),
        like.new_empty(steps, batch, 1),
    )


def _store(stats, t: int, v: Tensor, mean: Tensor, rho: Tensor) -> None:
    stats[0][t], stats[1][t], stats[2][t] = v, mean, rho


def lstm_forward(gx, h0, c0, w, noise: Noise, mask, reverse: bool, save: bool):
    """The forward loop over gx (T, N, 4H) = the input side with the biases.

    Returns (out (T, N, H), h_T, c_T, saved); saved holds the activated gates, the new
    cells C̃, τ = tanh(u), the carried states, and the normalised values with their ρ.
    """
    steps, batch, four_h = gx.shape
    hidden = four_h // 4
    m, zh, zc = noise
    out = gx.new_empty(steps, batch, hidden)
    gates = gx.new_empty(steps, batch, four_h)
    new_c = gx.new_empty(steps, batch, hidden) if save else None
    taus = gx.new_empty(steps, batch, hidden) if save else None
    cs = gx.new_empty(steps, batch, hidden) if save else None
    hs = gx.new_empty(steps, batch, hidden) if save else None
    # with layer norm: the raw recurrent pre-activations and cells, their means and ρ
    stats_h = _stats(gx, steps, batch, four_h) if (save and w.ln_hh is not None) else None
    stats_c = _stats(gx, steps, batch, hidden) if (save and w.ln_c is not None) else None
    w_hh_t = w.w_hh.T  # (H, 4H)
    if w.w_ph is not None:
        p_i, p_f, p_o = w.w_ph.chunk(3)
    h, c = h0, c0
    for t in _order(steps, reverse):
        h_in = h if m is None else h * m
        if w.ln_hh is None:
            pre = torch.addmm(gx[t], h_in, w_hh_t)
        else:
            a = h_in @ w_hh_t
            a_hat, mean, rho = torch.native_layer_norm(a, (four_h,), None, None, EPS)
            pre = torch.addcmul(gx[t], a_hat, w.ln_hh)
            if save:
                _store(stats_h, t, a, mean, rho)
        act = gates[t]  # (N, 4H): i, f, g, o after their nonlinearity
        if w.w_ph is not None:
            pre[:, :hidden].addcmul_(p_i, c)
            pre[:, hidden : 2 * hidden].addcmul_(p_f, c)
        torch.sigmoid(pre[:, : 2 * hidden], out=act[:, : 2 * hidden])
        torch.tanh(pre[:, 2 * hidden : 3 * hidden], out=act[:, 2 * hidden : 3 * hidden])
        i, f, g, o = act.split(hidden, dim=1)
        c_new = torch.addcmul(f * c, i, g)
        pre_o = pre[:, 3 * hidden :]
        if w.w_ph is not None:
            pre_o.addcmul_(p_o, c_new)
        torch.sigmoid(pre_o, out=o)
        if w.ln_c is None:
            tau = torch.tanh(c_new)
        else:
            u_hat, mean, rho = torch.native_layer_norm(c_new, (hidden,), None, None, EPS)
            tau = torch.addcmul(w.ln_c_bias, u_hat, w.ln_c).tanh_()
            if save:
                _store(stats_c, t, c_new, mean, rho)
        h_new = o * tau
        if save:
            new_c[t], taus[t] = c_new, tau
        d = _at(zh, t)
        if d is not None:
            h_new = torch.lerp(h_new, h, d) if isinstance(d, Tensor) else h_new + d * (h - h_new)
        d = _at(zc, t)
        if d is not None:
            c_new = torch.lerp(c_new, c, d) if isinstance(d, Tensor) else c_new + d * (c - c_new)
        if mask is None:
            out[t] = h_new
            h, c = h_new, c_new
        else:
            keep = mask[t]
            torch.mul(h_new, keep, out=out[t])
            h = torch.where(keep, h_new, h)
            c = torch.where(keep, c_new, c)
        if save:
            hs[t], cs[t] = h, c
    saved = (gates, new_c, taus, cs, hs, *(stats_h or _NONE3), *(stats_c or _NONE3))
    return out, h, c, saved if save else None


def lstm_backward(saved, x, h0, c0, w, noise: Noise, mask, x_norm, dout, dh_n, dc_n, reverse):
    """The reverse loop and the weight-gradient matmuls; see the module docstring.

    Returns the gradients of (x, h0, c0) and a DirectionWeights of parameter gradients.
    """
    gates, new_c, taus, cs, hs, *stats = saved
    stats_h, stats_c = stats[:3], stats[3:]
    m, zh, zc = noise
    steps, batch, four_h = gates.shape
    hidden = four_h // 4
    i, f, g, o = gates.split(hidden, dim=2)
    c_prev = _shift_prev(cs, c0, reverse)
    keep_h, keep_c = _one_minus(zh), _one_minus(zc)
    # A holds the local derivatives first and is overwritten by δG step by step.
    grad = torch.empty_like(gates)
    ai, af, ag, ao = grad.split(hidden, dim=2)
    torch.mul(g, i * (1 - i), out=ai)
    torch.mul(c_prev, f * (1 - f), out=af)
    torch.mul(i, 1 - g * g, out=ag)
    torch.mul(taus, o * (1 - o), out=ao)
    k_plain = o * (1 - taus * taus)  # δu / δh̃
    if keep_h is not None:
        ao.mul_(keep_h)
        k_plain.mul_(keep_h)
    k = k_plain if w.ln_c is None else k_plain * w.ln_c
    if w.w_ph is not None:
        p_i, p_f, p_o = w.w_ph.chunk(3)
        f_total = f + p_i * ai + p_f * af
        if w.ln_c is None:
            k = k + ao * p_o  # the output peephole joins the tanh path: both scale δh
            direct_o = None
        else:
            direct_o = ao * p_o
    else:
        f_total, direct_o = f, None
    dh_store = torch.empty(steps, batch, hidden, dtype=gates.dtype, device=gates.device)
    grad_a = torch.empty_like(grad) if w.ln_hh is not None else grad
    mf = None if mask is None else mask.to(gates.dtype)
    w_hh_nt = w.w_hh.t().contiguous().T  # (H, 4H) contiguous: NT products (see lstm_fused)
    dh_carry, dc_carry = dh_n, dc_n
    for t in reversed(_order(steps, reverse)):
        dh = torch.add(dout[t], dh_carry, out=dh_store[t])
        if mf is not None:
            keep = 1 - mf[t]
            dh.mul_(mf[t])
            dc_pass, dh_pass = dc_carry * keep, dh_carry * keep
            dc_carry = dc_carry * mf[t]
        kc = _at(keep_c, t)
        dc = dc_carry if kc is None else dc_carry * kc  # δC̃ from the zoned C
        if w.ln_c is None:
            dc = torch.addcmul(dc, dh, k[t])
        else:
            dc = dc + norm_backward(dh * k[t], *(v[t] for v in stats_c), None)
            if direct_o is not None:
                dc = torch.addcmul(dc, dh, direct_o[t])
        dg_t = grad[t]
        dg_t.view(batch, 4, hidden)[:, :3].mul_(dc.unsqueeze(1))
        dg_t[:, 3 * hidden :].mul_(dh)
        if w.ln_hh is not None:
            grad_a[t] = norm_backward(dg_t, *(v[t] for v in stats_h), w.ln_hh)
        dh_in = grad_a[t] @ w_hh_nt
        if m is not None:
            dh_in.mul_(m)
        dc_prev = dc * f_total[t]
        for d, prev, grad_now in ((_at(zh, t), dh_in, dh), (_at(zc, t), dc_prev, dc_carry)):
            if d is not None:  # zoneout: the kept share of the state passes straight back
                prev.add_(grad_now * d)
        dh_carry, dc_carry = dh_in, dc_prev
        if mf is not None:
            dh_carry = dh_carry + dh_pass
            dc_carry = dc_carry + dc_pass
    flat = grad.view(-1, four_h)
    grads = {}
    if x_norm is not None:  # the input-side layer norm, all steps at once
        grads["ln_ih"] = (grad * normalised(*x_norm)).sum((0, 1))
        dax = norm_backward(grad, *x_norm, w.ln_ih).view(-1, four_h)
    else:
        dax = flat
    dx = (dax @ w.w_ih).view(steps, batch, -1)
    grads["w_ih"] = dax.T @ x.reshape(-1, x.shape[-1])
    h_in = hs if m is None else hs * m
    grads["w_hh"] = sum_prev_outer(grad_a, h_in, h0 if m is None else h0 * m, reverse)
    if w.b_ih is not None:
        grads["b_ih"] = grads["b_hh"] = flat.sum(0)
    if w.ln_hh is not None:
        grads["ln_hh"] = (grad * normalised(*stats_h)).sum((0, 1))
    if w.ln_c is not None:
        du = (dh_store * k_plain).view(-1, hidden)  # δu, the gradient reaching LN(C̃)γ+β
        grads["ln_c"] = (du * normalised(*stats_c).view(-1, hidden)).sum(0)
        grads["ln_c_bias"] = du.sum(0)
    if w.w_ph is not None:
        dp_i = (grad[..., :hidden] * c_prev).sum((0, 1))
        dp_f = (grad[..., hidden : 2 * hidden] * c_prev).sum((0, 1))
        dp_o = (grad[..., 3 * hidden :] * new_c).sum((0, 1))
        grads["w_ph"] = torch.cat([dp_i, dp_f, dp_o])
    return (
        dx,
        dh_carry,
        dc_carry,
        DirectionWeights(**{name: grads.get(name) for name in DirectionWeights._fields}),
    )


_FIELDS = DirectionWeights._fields


class LSTMVariantDirection(torch.autograd.Function):
    """One direction of the LSTM variants as an autograd node with our own BPTT."""

    @staticmethod
    def forward(ctx, x, h0, c0, mask, reverse, noise, *weights):
        w = DirectionWeights(*weights)
        bias = None if w.b_ih is None else w.b_ih + w.b_hh
        gx, norm = input_side(x, w.w_ih, bias, w.ln_ih)
        out, h, c, saved = lstm_forward(gx, h0, c0, w, noise, mask, reverse, True)
        ctx.reverse, ctx.noise = reverse, noise
        ctx.save_for_backward(x, h0, c0, mask, *weights, *saved, *(norm or _NONE3))
        return out, h, c

    @staticmethod
    def backward(ctx, dout, dh_n, dc_n):
        x, h0, c0, mask, *rest = ctx.saved_tensors
        w = DirectionWeights(*rest[: len(_FIELDS)])
        saved = rest[len(_FIELDS) : len(_FIELDS) + 11]
        x_norm = tuple(rest[len(_FIELDS) + 11 :]) if w.ln_ih is not None else None
        dx, dh0, dc0, dw = lstm_backward(
            saved, x, h0, c0, w, ctx.noise, mask, x_norm, dout, dh_n, dc_n, ctx.reverse
        )
        dw = [None if p is None else d for p, d in zip(w, dw, strict=True)]
        return dx, dh0, dc0, None, None, None, *dw


def run_direction(
    cfg: RNNConfig,
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    w: DirectionWeights,
    mask: Tensor | None,
    reverse: bool,
    noise: Noise | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The fused variant LSTM direction: autograd node when gradients are needed."""
    noise = noise or Noise()
    if needs_autograd(x, h0, c0, *w):
        return LSTMVariantDirection.apply(x, h0, c0, mask, reverse, noise, *w)
    bias = None if w.b_ih is None else w.b_ih + w.b_hh
    gx, _ = input_side(x, w.w_ih, bias, w.ln_ih)
    out, h, c, _ = lstm_forward(gx, h0, c0, w, noise, mask, reverse, False)
    return out, h, c
