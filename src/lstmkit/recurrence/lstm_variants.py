r"""One LSTM direction, plain or with the cell variants, with hand-written BPTT.

With every variant option off it computes the plain cell of torch.nn, with its projection
(``proj_size``) too: the ``fused`` backend runs every LSTM here.

The variants (``docs/variants.md``): layer normalisation of the input and recurrent
pre-activations and of the cell state (Ba et al. 2016), peepholes (Gers & Schmidhuber
2000), recurrent dropout on :math:`h_{t-1}` (Gal & Ghahramani 2016) and zoneout of h and C
(Krueger et al. 2016), in any combination; the projection is for the plain cell only (as
in torch.nn). The forward is the reference cell (:func:`lstmkit.cells.lstm_cell` with the
zoneout of :func:`lstmkit.recurrence.reference.zone`) with the input side — one matmul and,
with layer norm, its normalisation — done for all steps before the loop.

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

Projection (LSTMP, Sak et al. 2014): :math:`h_t = (o_t \odot \tau_t) W_{hr}^\top`, P wide,
is what the recurrence and the output carry (:math:`W_{hh}` is (4H, P)). In the loop the
step's :math:`\delta h_t` (P wide) becomes :math:`\delta h_t W_{hr}` before everything
above, and after the loop :math:`\partial W_{hr} = \sum_t \delta h_t^\top (o_t \odot
\tau_t)`.

The loops over time run in one of two implementations that compute the same numbers
(``docs/variants.md``, "Speed"): the compiled loops of :mod:`lstmkit.recurrence.kernels`
(per step the recurrent matmul, then one pass per row that evaluates the local
derivatives above on the fly), or the python steps below (torch calls, the local
derivatives of all steps precomputed). Buffers of (T, N, ·) come from
:mod:`lstmkit.recurrence.workspace`.

Shapes: x (T, N, H_in), gates (T, N, 4H), C (T, N, H), h (T, N, P); zoneout masks
(T, N, H) or a float (evaluation), recurrent mask (N, H).
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
    shift_views,
    stack_stats,
    state_store,
    step_order,
    stored,
    stored_h,
    sum_prev_outer,
    vector,
    zone_args,
)


def lstm_forward(gx, h0, c0, w, noise: Noise, mask, reverse: bool, save: bool, ops=None,
                 bias=None):  # fmt: skip
    """The forward loop over gx (T, N, 4H) = the input side with the biases.

    ``ops``: the compiled loops (:mod:`lstmkit.recurrence.kernels`); with None the same
    arithmetic runs as torch calls step by step. The compiled loops write each step's
    pre-activations over gx (without layer norm on h̄ W_hh^T): gx is scratch to them.
    ``bias`` (compiled loops only): b_ih + b_hh, added in the loop when gx leaves it out
    (:func:`gate_inputs`). Returns (out (T, N, H), h_T, c_T, saved);
    saved (None unless ``save``) holds the activated gates (T, N, 4H), τ = tanh(u), C̃ (or
    None when the backward needs it not), the carried h (T, N, H), the carried C with its
    initial value (T+1, N, H), and with layer norm the raw recurrent pre-activations and
    both norms' μ and ρ (T, N, 1).
    """
    if ops is not None:
        return _compiled_forward(ops, gx, h0, c0, w, noise, mask, reverse, save, bias)
    assert bias is None, "the python steps read the biases from gx"
    return _python_steps(gx, h0, c0, w, noise, mask, reverse, save)


def _compiled_forward(ops, gx, h0, c0, w, noise: Noise, mask, reverse, save, bias):
    """:func:`lstm_forward` with ``torch.ops.lstmkit.lstm_forward``."""
    steps, batch, four_h = gx.shape
    hidden = four_h // 4
    m, zh, zc = noise
    peephole, ln_hh, ln_c = w.w_ph is not None, w.ln_hh is not None, w.ln_c is not None
    h0, c0 = rows_contiguous(h0), rows_contiguous(c0)
    gates = buffer(gx, steps, (batch, four_h), save)
    taus = buffer(gx, steps, (batch, hidden), save)
    a_h = buffer(gx, steps, (batch, four_h), save) if ln_hh else None
    c_store = state_store(c0, steps, reverse, save)
    h_store = None if mask is None else state_store(h0, steps, reverse, save)
    out = gx.new_empty(steps, batch, h0.shape[-1])  # the layer output: never a cached buffer
    plain_c = zc is None and mask is None  # C̃ is then the carried C itself
    new_c = None if plain_c else buffer(gx, steps, (batch, hidden), save)
    norms = (ln_hh, ln_hh, ln_c, ln_c)  # (μ, ρ) of LN(h̄ W_hh^T), then of LN(C̃)
    stats = [buffer(gx, steps, (batch, 1), save) if on else None for on in norms]
    (zh, zh_rate), (zc, zc_rate) = zone_args(zh), zone_args(zc)
    mean_h, rstd_h, mean_c, rstd_c = stats
    ops.lstm_forward(
        gx=gx, h0=h0, c0=c0, w_hh_t=right_operand(w.w_hh.T), b=bias,
        w_hr_t=None if w.w_hr is None else right_operand(w.w_hr.T),
        w_ph=vector(w.w_ph), ln_hh=vector(w.ln_hh), ln_c=vector(w.ln_c),
        ln_c_bias=vector(w.ln_c_bias), zh=zh, zh_rate=zh_rate, zc=zc, zc_rate=zc_rate,
        keep=mask, m=m, reverse=reverse, save=save, gates=gates, taus=taus, a=a_h,
        c_store=c_store, out=out, h_store=h_store, new_c=new_c, mean_h=mean_h, rstd_h=rstd_h,
        mean_c=mean_c, rstd_c=rstd_c,
    )  # fmt: skip
    cs, c_last = stored(c_store, steps, reverse, save)
    hs, h_last = stored_h(h_store, out, reverse, save)
    if not save:
        return out, h_last, c_last, None
    if not (peephole or ln_c):
        new_c = None  # the backward reads C̃ for the output peephole and LN(C̃) only
    elif new_c is None:
        new_c = cs
    return out, h_last, c_last, (gates, taus, new_c, hs, c_store, a_h, *stats)


def _python_steps(gx, h0, c0, w, noise: Noise, mask, reverse, save):
    """:func:`lstm_forward` as torch calls step by step. Every step writes into views of
    buffers made before the loop: the saved (T, ...) buffers, or one-row scratch."""
    steps, batch, four_h = gx.shape
    hidden = four_h // 4
    m, zh, zc = noise
    peephole, ln_hh, ln_c = w.w_ph is not None, w.ln_hh is not None, w.ln_c is not None
    gates = buffer(gx, steps, (batch, four_h), save)
    # the carried states: C with its initial value in one (T+1, N, H) buffer when saving
    if save:
        c_ext = state_store(c0, steps, reverse, True)
        c_now = stored(c_ext, steps, reverse, True)[0].unbind(0)
        c_before = shift_views(c_now, c_ext[steps if reverse else 0], reverse)
    else:
        c_ext, c_now, c_before = carried(c0, steps, reverse, False)
    out = gx.new_empty(steps, batch, h0.shape[-1])  # P wide: the projection's size, else H
    out_t = out.unbind(0)
    if mask is None:  # the carried h is the output itself
        hs, h_now, h_before = out, out_t, shift_views(out_t, h0, reverse)
    else:
        hs, h_now, h_before = carried(h0, steps, reverse, save)
    # C̃ goes straight into the carried state when nothing is applied after it
    plain_c = zc is None and mask is None
    keep_new_c = save and not plain_c and (peephole or ln_c)
    new_c = None if plain_c else buffer(gx, steps, (batch, hidden), keep_new_c)
    cnew_t = c_now if plain_c else rows(new_c, steps)
    taus = buffer(gx, steps, (batch, hidden), save)
    tau_t = rows(taus, steps)
    a_h = buffer(gx, steps, (batch, four_h), save) if ln_hh else None  # h̄ W_hh^T before LN
    a_t = None if a_h is None else rows(a_h, steps)
    zh_t, zc_t = rates(zh, steps, gx), rates(zc, steps, gx)
    gx_t = gx.unbind(0)
    gate_t = rows(gates, steps)
    i_t, f_t, g_t, o_t = (rows(gates, steps, slice(k * hidden, (k + 1) * hidden)) for k in range(4))
    if_t = rows(gates, steps, slice(0, 2 * hidden))  # (N, 2H): i and f
    pre = gx.new_empty(batch, four_h)  # the pre-activations of the step being computed
    pre4 = pre.view(batch, 4, hidden)
    pre_if, pre_g, pre_o = pre[:, : 2 * hidden], pre4[:, 2], pre4[:, 3]
    width = out.shape[-1]  # of h: P with a projection, else H
    scratch = (gx.new_empty(1, batch, k) for k in (width, hidden))
    w_hr_t = None if w.w_hr is None else right_operand(w.w_hr.T)  # (H, P)
    raw = None if w_hr_t is None else gx.new_empty(batch, hidden)  # o ⊙ τ before W_hr
    plain_h = zh is None and mask is None
    hnew_t = h_now if plain_h else rows(next(scratch), steps)
    hzone_t = h_now if mask is None else hnew_t
    if mask is None:
        czone_t = c_now
    else:  # a scratch, but never over the C̃ the backward reads
        czone_t = rows(next(scratch), steps) if keep_new_c else cnew_t
    stats_h, stats_c = [None] * steps, [None] * steps
    h_in = gx.new_empty(batch, hidden) if m is not None else None
    keep_t = mask.unbind(0) if mask is not None else None
    w_hh_t = right_operand(w.w_hh.T)  # (H, 4H)
    if peephole:
        p_if, p_o = w.w_ph[: 2 * hidden].view(2, hidden), w.w_ph[2 * hidden :]
    for t in step_order(steps, reverse):
        h_prev, c_prev = h_before[t], c_before[t]
        h_bar = h_prev if m is None else torch.mul(h_prev, m, out=h_in)
        if ln_hh:
            a = torch.mm(h_bar, w_hh_t, out=a_t[t])
            a_hat, mean, rho = torch.native_layer_norm(a, (four_h,), None, None, EPS)
            torch.addcmul(gx_t[t], a_hat, w.ln_hh, out=pre)
            stats_h[t] = (mean, rho)
        else:
            torch.addmm(gx_t[t], h_bar, w_hh_t, out=pre)
        if peephole:
            pre4[:, :2].addcmul_(p_if, c_prev.unsqueeze(1))
            torch.sigmoid(pre_if, out=if_t[t])
        else:
            torch.sigmoid(pre, out=gate_t[t])
        g = torch.tanh(pre_g, out=g_t[t])
        o = o_t[t]
        c_new = torch.mul(f_t[t], c_prev, out=cnew_t[t]).addcmul_(i_t[t], g)
        if peephole:
            pre_o.addcmul_(p_o, c_new)
            torch.sigmoid(pre_o, out=o)
        if ln_c:
            u, mean, rho = torch.native_layer_norm(c_new, (hidden,), w.ln_c, w.ln_c_bias, EPS)
            tau = torch.tanh(u, out=tau_t[t])
            stats_c[t] = (mean, rho)
        else:
            tau = torch.tanh(c_new, out=tau_t[t])
        if w_hr_t is None:
            h_new = torch.mul(o, tau, out=hnew_t[t])
        else:
            h_new = torch.mm(torch.mul(o, tau, out=raw), w_hr_t, out=hnew_t[t])
        if zh_t is not None:
            h_new = torch.lerp(h_new, h_prev, zh_t[t], out=hzone_t[t])
        if zc_t is not None:
            c_new = torch.lerp(c_new, c_prev, zc_t[t], out=czone_t[t])
        if keep_t is not None:
            keep = keep_t[t]
            torch.mul(h_new, keep, out=out_t[t])
            torch.where(keep, h_new, h_prev, out=h_now[t])
            torch.where(keep, c_new, c_prev, out=c_now[t])
    last = 0 if reverse else steps - 1
    if not save:
        return out, h_now[last], c_now[last], None
    if not keep_new_c:  # C̃ is the carried C, when the backward reads it
        new_c = stored(c_ext, steps, reverse, True)[0] if (peephole or ln_c) else None
    mean_h, rho_h = stack_stats(stats_h) if ln_hh else (None, None)
    mean_c, rho_c = stack_stats(stats_c) if ln_c else (None, None)
    saved = (gates, taus, new_c, hs, c_ext, a_h, mean_h, rho_h, mean_c, rho_c)
    return out, h_now[last], c_now[last], saved


def lstm_backward(saved, x, h0, w, noise: Noise, mask, x_norm, dout, dh_n, dc_n, reverse,
                  need_dx=True, ops=None):  # fmt: skip
    """The reverse loop and the weight-gradient matmuls; see the module docstring.

    Returns the gradients of (x, h0, c0) and a DirectionWeights of parameter gradients
    (the gradient of x is None unless ``need_dx``). ``ops`` as in :func:`lstm_forward`.
    """
    gates, taus, new_c, hs, c_ext, a_h, mean_h, rho_h, mean_c, rho_c = saved
    steps, batch, four_h = gates.shape
    hidden = four_h // 4
    ln_hh, ln_c = w.ln_hh is not None, w.ln_c is not None
    c_prev = c_ext[1:] if reverse else c_ext[:-1]
    loop = _python_backward if ops is None else partial(_compiled_backward, ops)
    grad, grad_a, du, dh0, dc0, dhs = loop(saved, c_prev, w, noise, mask, dout, dh_n, dc_n, reverse)
    grads = {}
    if w.w_hr is not None:  # ∂W_hr = Σ_t δh_tᵀ (o_t ⊙ τ_t)
        raw = torch.mul(gates[..., 3 * hidden :], taus).view(-1, hidden)
        grads["w_hr"] = dhs.view(-1, dhs.shape[-1]).T @ raw
    dx = input_grads(grad, x, w, x_norm, need_dx, grads)
    grads["w_hh"] = sum_prev_outer(grad_a, hs, h0, reverse, noise.recurrent)
    if w.b_ih is not None:
        grads["b_ih"] = grads["b_hh"] = grad.view(-1, four_h).sum(0)
    if ln_hh:
        grads["ln_hh"] = norm_grads(grad, a_h, mean_h, rho_h, w.ln_hh)[1]
    if ln_c:
        _, grads["ln_c"], grads["ln_c_bias"] = norm_grads(
            du, new_c, mean_c, rho_c, w.ln_c, w.ln_c_bias
        )
    if w.w_ph is not None:  # Σ over all steps and samples of δG ⊙ the cell each gate reads
        count, products = steps * batch, workspace.empty(taus, *taus.shape)
        dp = [
            torch.mul(grad[..., k * hidden : (k + 1) * hidden], cell, out=products)
            .view(count, hidden)
            .sum(0)
            for k, cell in ((0, c_prev), (1, c_prev), (3, new_c))
        ]
        grads["w_ph"] = torch.cat(dp)
    return dx, dh0, dc0, DirectionWeights(**{name: grads.get(name) for name in _FIELDS})


def _compiled_backward(ops, saved, c_prev, w, noise: Noise, mask, dout, dh_n, dc_n, reverse):
    """The reverse loop with ``torch.ops.lstmkit.lstm_backward``.

    Returns (δG, δa, δu, δh_0, δC_0, δh): δG (T, N, 4H), δa its layer-norm backward (δG
    itself without LN), δu (T, N, H) or None, δh (T, N, P) of every step with a
    projection (for ∂W_hr), else None.
    """
    gates, taus, new_c, _, _, a_h, mean_h, rho_h, mean_c, rho_c = saved
    m, zh, zc = noise
    ln_hh, ln_c = w.ln_hh is not None, w.ln_c is not None
    grad = workspace.empty(gates, *gates.shape)
    grad_a = workspace.empty(gates, *gates.shape) if ln_hh else None
    du = workspace.empty(taus, *taus.shape) if ln_c else None
    dh0, dc0 = dh_n.new_empty(dh_n.shape), taus.new_empty(taus.shape[1:])
    dhs = None if w.w_hr is None else workspace.empty(dout, *dout.shape)
    (zh, zh_rate), (zc, zc_rate) = zone_args(zh), zone_args(zc)
    ops.lstm_backward(
        dout=rows_contiguous(dout), dh_n=rows_contiguous(dh_n), dc_n=rows_contiguous(dc_n),
        w_hh=right_operand(w.w_hh), w_hr=None if w.w_hr is None else right_operand(w.w_hr),
        gates=gates, taus=taus, c_prev=c_prev, c_new=new_c if ln_c else None, a=a_h,
        mean_h=mean_h, rstd_h=rho_h, mean_c=mean_c,
        rstd_c=rho_c, w_ph=vector(w.w_ph), ln_hh=vector(w.ln_hh), ln_c=vector(w.ln_c), zh=zh,
        zh_rate=zh_rate, zc=zc, zc_rate=zc_rate, keep=mask, m=m, reverse=reverse, grad=grad,
        grad_a=grad_a, du=du, dh0=dh0, dc0=dc0, dh_store=dhs,
    )  # fmt: skip
    return grad, grad if grad_a is None else grad_a, du, dh0, dc0, dhs


def _python_backward(saved, c_prev, w, noise: Noise, mask, dout, dh_n, dc_n, reverse):
    """The reverse loop as torch calls; returns what :func:`_compiled_backward` does."""
    gates, taus, new_c, _, _, a_h, mean_h, rho_h, mean_c, rho_c = saved
    m, zh, zc = noise
    steps, batch, four_h = gates.shape
    hidden = four_h // 4
    peephole, ln_hh, ln_c = w.w_ph is not None, w.ln_hh is not None, w.ln_c is not None
    i, f, g, o = gates.split(hidden, dim=2)
    # A holds the local derivatives first and is overwritten by δG step by step.
    grad = workspace.empty(gates, *gates.shape)
    ai, af, ag, ao = grad.split(hidden, dim=2)
    torch.addcmul(i, i, i, value=-1, out=ai).mul_(g)  # g i (1 - i)
    torch.addcmul(f, f, f, value=-1, out=af).mul_(c_prev)  # C_{t-1} f (1 - f)
    torch.sub(i, torch.mul(g, g, out=ag).mul_(i), out=ag)  # i (1 - g²)
    torch.addcmul(o, o, o, value=-1, out=ao).mul_(taus)  # τ o (1 - o)
    k = torch.mul(taus, taus).mul_(o)
    torch.sub(o, k, out=k)  # o (1 - τ²): δu / δh̃
    if zh is not None:
        keep_h = 1 - zh
        ao.mul_(keep_h)
        k.mul_(keep_h)
    direct_o_t = None
    if peephole:
        p_i, p_f, p_o = w.w_ph.chunk(3)
        f_total = torch.addcmul(f, ai, p_i).addcmul_(af, p_f)
        if ln_c:
            direct_o_t = (ao * p_o).unbind(0)
        else:
            k.addcmul_(ao, p_o)  # the output peephole joins the tanh path: both scale δh
    else:
        f_total = f
    zh_t, zc_t = rates(zh, steps, gates), rates(zc, steps, gates)
    keepc_t = None if zc is None else rates(1 - zc, steps, gates)
    dout_t, k_t, ftot_t = dout.unbind(0), k.unbind(0), f_total.unbind(0)
    grad_t = grad.unbind(0)
    g3_t = grad.view(steps, batch, 4, hidden)[:, :, :3].unbind(0)
    go_t = ao.unbind(0)
    dcs = workspace.empty(gates, steps, batch, hidden)  # δC̃ of every step
    dc_t, dc1_t = dcs.unbind(0), dcs.view(steps, batch, 1, hidden).unbind(0)
    du = workspace.empty(gates, steps, batch, hidden) if ln_c else None  # δu: γ_c, β_c
    du_t = du.unbind(0) if ln_c else None
    width, proj = dout.shape[-1], w.w_hr is not None  # h is P wide with a projection
    dhs = buffer(gates, steps, (batch, width), proj)  # δh_t: of every step for ∂W_hr
    dh_t = rows(dhs, steps)
    dh_raw = gates.new_empty(batch, hidden) if proj else None  # δh_t W_hr: δ(o ⊙ τ)
    if ln_c:
        cn_t, mc_t, rc_t = new_c.unbind(0), mean_c.unbind(0), rho_c.unbind(0)
    if ln_hh:
        a_t, mh_t, rh_t = a_h.unbind(0), mean_h.unbind(0), rho_h.unbind(0)
        da = [None] * steps
    mf = None if mask is None else mask.to(gates.dtype)
    if mf is not None:
        mf_t, pass_t = mf.unbind(0), (1 - mf).unbind(0)
    w_hh = right_operand(w.w_hh)  # (4H, P)
    dhc = gates.new_empty(batch, width)  # δh_{t-1}, written by the matmul
    dcc = (gates.new_empty(batch, hidden), gates.new_empty(batch, hidden))  # δC, in turns
    dh_carry, dc_carry = dh_n, dc_n
    for n, t in enumerate(reversed(step_order(steps, reverse))):
        dh = torch.add(dout_t[t], dh_carry, out=dh_t[t])
        if mf is not None:
            dh.mul_(mf_t[t])
            dh_pass, dc_pass = dh_carry * pass_t[t], dc_carry * pass_t[t]
            dc_carry = dc_carry * mf_t[t]
        if proj:
            dh = torch.mm(dh, w.w_hr, out=dh_raw)
        dc = dc_t[t]
        if ln_c:
            base = dc_carry if zc_t is None else torch.mul(dc_carry, keepc_t[t], out=dc)
            du_now = torch.mul(dh, k_t[t], out=du_t[t])
            torch.add(base, norm_backward(du_now, cn_t[t], mc_t[t], rc_t[t], w.ln_c), out=dc)
            if direct_o_t is not None:
                dc.addcmul_(dh, direct_o_t[t])
        elif zc_t is None:
            torch.addcmul(dc_carry, dh, k_t[t], out=dc)
        else:
            torch.mul(dc_carry, keepc_t[t], out=dc).addcmul_(dh, k_t[t])
        g3_t[t].mul_(dc1_t[t])
        go_t[t].mul_(dh)
        if ln_hh:
            da[t] = d_a = norm_backward(grad_t[t], a_t[t], mh_t[t], rh_t[t], w.ln_hh)
        else:
            d_a = grad_t[t]
        dh_carry = torch.mm(d_a, w_hh, out=dhc)
        if m is not None:
            dh_carry.mul_(m)
        if zh_t is not None:  # zoneout: the kept share of the state passes straight back
            dh_carry.addcmul_(dh, zh_t[t])
        dc_next = torch.mul(dc, ftot_t[t], out=dcc[n % 2])
        if zc_t is not None:
            dc_next.addcmul_(dc_carry, zc_t[t])
        if mf is not None:
            dh_carry.add_(dh_pass)
            dc_next.add_(dc_pass)
        dc_carry = dc_next
    grad_a = torch.stack(da) if ln_hh else grad
    return grad, grad_a, du, dh_carry, dc_carry, dhs if proj else None


def gate_inputs(x, w: DirectionWeights, ops):
    """(gx, the input-side norm's saved tensors or None, the bias the loop adds or None):
    gx = x W_ih^T for all steps, with b = b_ih + b_hh in it — except for the compiled loops
    without the input-side layer norm, which add b in their pass over each step's rows (it
    saves a pass of a (T·N, 4H) bias broadcast: ~4 % of a forward at hidden 64)."""
    bias = None if w.b_ih is None else w.b_ih + w.b_hh
    late = ops is not None and w.ln_ih is None and bias is not None
    gx, norm = input_side(x, w.w_ih, None if late else bias, w.ln_ih)
    return gx, norm, bias if late else None


_FIELDS = DirectionWeights._fields
_SAVED = 10  # the length of lstm_forward's saved tuple


class LSTMVariantDirection(torch.autograd.Function):
    """One direction of the LSTM variants as an autograd node with our own BPTT."""

    @staticmethod
    def forward(ctx, x, h0, c0, mask, reverse, noise, ops, *weights):
        w = DirectionWeights(*weights)
        gx, norm, bias = gate_inputs(x, w, ops)
        out, h, c, saved = lstm_forward(gx, h0, c0, w, noise, mask, reverse, True, ops, bias)
        ctx.reverse, ctx.noise, ctx.ops = reverse, noise, ops  # the backward runs the same
        ctx.save_for_backward(x, h0, mask, *weights, *saved, *(norm or NONE3))
        return out, h, c

    @staticmethod
    def backward(ctx, dout, dh_n, dc_n):
        x, h0, mask, w, saved, x_norm = saved_direction(ctx, _SAVED)
        dx, dh0, dc0, dw = lstm_backward(
            saved, x, h0, w, ctx.noise, mask, x_norm, dout, dh_n, dc_n, ctx.reverse,
            ctx.needs_input_grad[0], ctx.ops,
        )  # fmt: skip
        dw = [None if p is None else d for p, d in zip(w, dw, strict=True)]
        return dx, dh0, dc0, None, None, None, None, *dw


def run_direction(
    cfg: RNNConfig,
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    w: DirectionWeights,
    mask: Tensor | None,
    reverse: bool,
    noise: Noise | None = None,
    *,
    steps: str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The fused LSTM direction: an autograd node when gradients are needed. ``steps``:
    the step implementation, "compiled" or "python" (None: ``LSTMKIT_KERNELS``'s choice,
    :func:`lstmkit.recurrence.kernels.ops_named`)."""
    noise = noise or Noise()
    ops = kernels.ops_named(steps, x)
    if needs_autograd(x, h0, c0, *w):
        return LSTMVariantDirection.apply(x, h0, c0, mask, reverse, noise, ops, *w)
    gx, _, bias = gate_inputs(x, w, ops)
    out, h, c, _ = lstm_forward(gx, h0, c0, w, noise, mask, reverse, False, ops, bias)
    return out, h, c
