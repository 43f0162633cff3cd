// The pointwise work of one time step of the cell variants (docs/variants.md), forward
// and backward, as single CPU kernels: lstmkit's own, compiled on first use by
// lstmkit.recurrence.kernels and called from the loops of lstm_variants/gru_variants.
//
// The loops stay in Python: per step they run the recurrent matmul (MKL through
// torch.mm) and then one of these kernels, which does in one pass over each row what
// the Python kernels do in ten to twenty torch calls: the gate nonlinearities, the
// layer norms of the row (statistics, normalisation, their backward), peepholes,
// zoneout, the length mask and recurrent dropout. The equations, and their derivatives,
// are those of the module docstrings of lstm_variants.py and gru_variants.py; every
// kernel is tested against the reference backend (autograd over the cell functions).
//
// Layout: every (N, K) argument is a row-strided matrix whose rows are contiguous (the
// Python side passes views of (T, N, K) buffers); per-row statistics are (N, 1). Gate
// order i, f, g, o (LSTM) and r, z, n (GRU), as torch.nn. float and double.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>

namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

// -- rows of a matrix -----------------------------------------------------------------

template <typename T>
struct Rows {
  T* p = nullptr;
  int64_t s = 0;
  T* operator[](int64_t n) const { return p + n * s; }
  explicit operator bool() const { return p != nullptr; }
};

template <typename T>
Rows<T> rows(const Tensor& t, int64_t n, int64_t k, const char* name) {
  TORCH_CHECK(t.dim() == 2 && t.size(0) == n && t.size(1) == k,
              name, ": expected shape (", n, ", ", k, "), got ", t.sizes());
  TORCH_CHECK(k == 1 || t.stride(1) == 1, name, ": expected contiguous rows, got strides ",
              t.strides());
  TORCH_CHECK(t.scalar_type() == c10::CppTypeToScalarType<std::remove_const_t<T>>::value,
              name, ": expected dtype ", c10::CppTypeToScalarType<std::remove_const_t<T>>::value,
              ", got ", t.scalar_type());
  TORCH_CHECK(t.device().is_cpu(), name, ": expected a CPU tensor, got ", t.device());
  return {static_cast<T*>(t.data_ptr()), t.stride(0)};
}

template <typename T>
Rows<T> rows(const OptTensor& t, int64_t n, int64_t k, const char* name) {
  return t ? rows<T>(*t, n, k, name) : Rows<T>{};
}

template <typename T>
const T* vector_of(const OptTensor& t, int64_t k, const char* name) {
  if (!t) return nullptr;
  TORCH_CHECK(t->dim() == 1 && t->size(0) == k && t->is_contiguous(), name,
              ": expected a contiguous vector of ", k, ", got ", t->sizes());
  TORCH_CHECK(t->scalar_type() == c10::CppTypeToScalarType<T>::value, name,
              ": expected dtype ", c10::CppTypeToScalarType<T>::value, ", got ",
              t->scalar_type());
  return t->data_ptr<T>();
}

// -- vector helpers ---------------------------------------------------------------------

template <typename T>
using V = at::vec::Vectorized<T>;

template <typename T>
inline V<T> load(const T* p, int64_t k) {
  return V<T>::loadu(p, k);
}

template <typename T>
inline V<T> sigmoid(const V<T>& x) {
  return (V<T>(T(1)) + x.neg().exp()).reciprocal();
}

// a + w (b - a), the form of torch.lerp for the weights zoneout uses
template <typename T>
inline V<T> lerp(const V<T>& a, const V<T>& b, const V<T>& w) {
  return at::vec::fmadd(w, b - a, a);
}

template <typename T>
inline double hsum(const V<T>& v) {
  alignas(64) T buf[V<T>::size()];
  v.store(buf);
  double s = 0;
  for (int64_t k = 0; k < V<T>::size(); ++k) s += buf[k];
  return s;
}

// the first k lanes of v, zeros elsewhere (for the sums over a row's last chunk)
template <typename T>
inline V<T> head(const V<T>& v, int64_t k) {
  return k == V<T>::size() ? v : V<T>::set(V<T>(T(0)), v, k);
}

#define LSTMKIT_FOR_CHUNKS(j, k, len)                                   \
  for (int64_t j = 0, k = std::min<int64_t>(V<T>::size(), len); j < (len); \
       j += V<T>::size(), k = std::min<int64_t>(V<T>::size(), (len) - j))

// (mean, 1/sqrt(var + eps)) of a row of length len, biased variance, two passes
template <typename T>
inline std::pair<T, T> moments(const T* x, int64_t len, double eps) {
  V<T> acc(T(0));
  LSTMKIT_FOR_CHUNKS(j, k, len) { acc += head(load(x + j, k), k); }
  const T mean = static_cast<T>(hsum(acc) / len);
  V<T> sq(T(0));
  const V<T> mu(mean);
  LSTMKIT_FOR_CHUNKS(j, k, len) {
    const V<T> d = head(load(x + j, k) - mu, k);
    sq = at::vec::fmadd(d, d, sq);
  }
  const double var = hsum(sq) / len;
  return {mean, static_cast<T>(1.0 / std::sqrt(var + eps))};
}

// A zoneout mask: per element (training), one rate (evaluation), or off.
template <typename T>
struct Zone {
  Rows<const T> d;
  T rate = 0;
  bool on = false;
  V<T> at(int64_t n, int64_t j, int64_t k) const {
    return d ? load(d[n] + j, k) : V<T>(rate);
  }
};

template <typename T>
Zone<T> zone(const OptTensor& d, double rate, int64_t n, int64_t k, const char* name) {
  Zone<T> z;
  z.d = rows<const T>(d, n, k, name);
  z.rate = static_cast<T>(rate);
  z.on = static_cast<bool>(z.d) || rate > 0;
  return z;
}

// the length mask: (N, 1) bool, true on the real steps
Rows<const bool> keep_rows(const OptTensor& keep, int64_t n) {
  if (!keep) return {};
  TORCH_CHECK(keep->scalar_type() == at::kBool, "keep: expected bool, got ",
              keep->scalar_type());
  return rows<const bool>(*keep, n, 1, "keep");
}

constexpr double kEps = 1e-5;  // lstmkit.cells.norm.EPS

template <typename F>
void for_rows(int64_t n, int64_t width, const F& f) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(width, 1));
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) f(r);
  });
}

// ======================================================================================
// LSTM forward step
//
//   pre = rec                                   (rec = x W_ih^T + b + h̄ W_hh^T)
//       | gx + LN(rec) γ_hh                      (layer norm: rec = h̄ W_hh^T)
//   i = σ(pre_i + p_i C), f = σ(pre_f + p_f C), g = tanh(pre_g)
//   C̃ = f C + i g,  o = σ(pre_o + p_o C̃),  τ = tanh(LN(C̃) γ_c + β_c | C̃),  h̃ = o τ
//   h = lerp(h̃, h_prev, d^h),  C = lerp(C̃, C_prev, d^c),  then the length mask
//   h̄_next = h m (recurrent dropout)
// ======================================================================================

template <typename T>
void lstm_step_impl(const Tensor& rec_t, const OptTensor& gx_t, const Tensor& c_prev_t,
                    const Tensor& h_prev_t, const OptTensor& w_ph_t, const OptTensor& ln_hh_t,
                    const OptTensor& ln_c_t, const OptTensor& ln_c_bias_t, const OptTensor& zh_t,
                    double zh_rate, const OptTensor& zc_t, double zc_rate, const OptTensor& keep_t,
                    const OptTensor& m_t, const Tensor& gates_t, const Tensor& c_new_t,
                    const Tensor& tau_t, const Tensor& out_t, const Tensor& h_now_t,
                    const Tensor& c_now_t, const OptTensor& h_bar_t, const OptTensor& mean_h_t,
                    const OptTensor& rstd_h_t, const OptTensor& mean_c_t,
                    const OptTensor& rstd_c_t) {
  const int64_t N = c_prev_t.size(0), H = c_prev_t.size(1), G = 4 * H;
  const auto rec = rows<const T>(rec_t, N, G, "rec");
  const auto gx = rows<const T>(gx_t, N, G, "gx");
  const auto c_prev = rows<const T>(c_prev_t, N, H, "c_prev");
  const auto h_prev = rows<const T>(h_prev_t, N, H, "h_prev");
  const T* w_ph = vector_of<T>(w_ph_t, 3 * H, "w_ph");
  const T* ln_hh = vector_of<T>(ln_hh_t, G, "ln_hh");
  const T* ln_c = vector_of<T>(ln_c_t, H, "ln_c");
  const T* ln_c_bias = vector_of<T>(ln_c_bias_t, H, "ln_c_bias");
  TORCH_CHECK(!ln_hh || gx, "lstm_step: layer norm needs gx");
  TORCH_CHECK(!ln_c == !ln_c_bias, "lstm_step: ln_c and ln_c_bias go together");
  const auto zh = zone<T>(zh_t, zh_rate, N, H, "zh");
  const auto zc = zone<T>(zc_t, zc_rate, N, H, "zc");
  const auto keep = keep_rows(keep_t, N);
  const auto m = rows<const T>(m_t, N, H, "m");
  const auto gates = rows<T>(gates_t, N, G, "gates");
  const auto c_new = rows<T>(c_new_t, N, H, "c_new");
  const auto tau = rows<T>(tau_t, N, H, "tau");
  const auto out = rows<T>(out_t, N, H, "out");
  const auto h_now = rows<T>(h_now_t, N, H, "h_now");
  const auto c_now = rows<T>(c_now_t, N, H, "c_now");
  const auto h_bar = rows<T>(h_bar_t, N, H, "h_bar");
  const auto mean_h = rows<T>(mean_h_t, N, 1, "mean_h");
  const auto rstd_h = rows<T>(rstd_h_t, N, 1, "rstd_h");
  const auto mean_c = rows<T>(mean_c_t, N, 1, "mean_c");
  const auto rstd_c = rows<T>(rstd_c_t, N, 1, "rstd_c");
  TORCH_CHECK(!m == !h_bar, "lstm_step: m and h_bar go together");
  TORCH_CHECK(!ln_hh || (mean_h && rstd_h), "lstm_step: layer norm needs mean_h, rstd_h");
  TORCH_CHECK(!ln_c || (mean_c && rstd_c), "lstm_step: layer norm needs mean_c, rstd_c");

  for_rows(N, G, [&](int64_t n) {
    const T* r = rec[n];
    T mu_h = 0, rho_h = 1;
    if (ln_hh) {
      std::tie(mu_h, rho_h) = moments(r, G, kEps);
      mean_h[n][0] = mu_h;
      rstd_h[n][0] = rho_h;
    }
    const V<T> vmu_h(mu_h), vrho_h(rho_h);
    auto pre = [&](int64_t gate, int64_t j, int64_t k) {
      const int64_t at = gate * H + j;
      if (!ln_hh) return load(r + at, k);
      return at::vec::fmadd((load(r + at, k) - vmu_h) * vrho_h, load(ln_hh + at, k),
                            load(gx[n] + at, k));
    };
    T* gr = gates[n];
    const bool kept = !keep || keep[n][0];
    // the rest of the step once C̃ (cn) and τ are known
    auto finish = [&](int64_t j, int64_t k, const V<T>& cn, const V<T>& tv) {
      V<T> po = pre(3, j, k);
      if (w_ph) po = at::vec::fmadd(load(w_ph + 2 * H + j, k), cn, po);
      const V<T> o = sigmoid(po);
      o.store(gr + 3 * H + j, k);
      tv.store(tau[n] + j, k);
      V<T> h = o * tv;
      const V<T> hp = load(h_prev[n] + j, k);
      const V<T> cp = load(c_prev[n] + j, k);
      if (zh.on) h = lerp(h, hp, zh.at(n, j, k));
      const V<T> c = zc.on ? lerp(cn, cp, zc.at(n, j, k)) : cn;
      const V<T> hn = kept ? h : hp;
      if (kept) {
        h.store(out[n] + j, k);
      } else {
        V<T>(T(0)).store(out[n] + j, k);
      }
      hn.store(h_now[n] + j, k);  // may be out itself: the same values when kept
      (kept ? c : cp).store(c_now[n] + j, k);  // may be c_new itself (no zoneout, no mask)
      if (m) (hn * load(m[n] + j, k)).store(h_bar[n] + j, k);
    };
    LSTMKIT_FOR_CHUNKS(j, k, H) {
      const V<T> cp = load(c_prev[n] + j, k);
      V<T> pi = pre(0, j, k), pf = pre(1, j, k);
      if (w_ph) {
        pi = at::vec::fmadd(load(w_ph + j, k), cp, pi);
        pf = at::vec::fmadd(load(w_ph + H + j, k), cp, pf);
      }
      const V<T> i = sigmoid(pi), f = sigmoid(pf), g = pre(2, j, k).tanh();
      i.store(gr + j, k);
      f.store(gr + H + j, k);
      g.store(gr + 2 * H + j, k);
      const V<T> cn = at::vec::fmadd(f, cp, i * g);
      cn.store(c_new[n] + j, k);
      if (!ln_c) finish(j, k, cn, cn.tanh());
    }
    if (ln_c) {
      const T* cn_row = c_new[n];
      const auto [mu_c, rho_c] = moments(cn_row, H, kEps);
      mean_c[n][0] = mu_c;
      rstd_c[n][0] = rho_c;
      const V<T> vmu(mu_c), vrho(rho_c);
      LSTMKIT_FOR_CHUNKS(j, k, H) {
        const V<T> cn = load(cn_row + j, k);
        const V<T> u =
            at::vec::fmadd((cn - vmu) * vrho, load(ln_c + j, k), load(ln_c_bias + j, k));
        finish(j, k, cn, u.tanh());
      }
    }
  });
}

void lstm_step(const Tensor& rec, const OptTensor& gx, const Tensor& c_prev,
               const Tensor& h_prev, const OptTensor& w_ph, const OptTensor& ln_hh,
               const OptTensor& ln_c, const OptTensor& ln_c_bias, const OptTensor& zh,
               double zh_rate, const OptTensor& zc, double zc_rate, const OptTensor& keep,
               const OptTensor& m, const Tensor& gates, const Tensor& c_new, const Tensor& tau,
               const Tensor& out, const Tensor& h_now, const Tensor& c_now,
               const OptTensor& h_bar, const OptTensor& mean_h, const OptTensor& rstd_h,
               const OptTensor& mean_c, const OptTensor& rstd_c) {
  AT_DISPATCH_FLOATING_TYPES(rec.scalar_type(), "lstm_step", [&] {
    lstm_step_impl<scalar_t>(rec, gx, c_prev, h_prev, w_ph, ln_hh, ln_c, ln_c_bias, zh,
                             zh_rate, zc, zc_rate, keep, m, gates, c_new, tau, out, h_now,
                             c_now, h_bar, mean_h, rstd_h, mean_c, rstd_c);
  });
}

// ======================================================================================
// LSTM backward step (step t, in the reverse of the processing order)
//
//   δh_carry = r ⊙ m + e        (r = δa_{next} W_hh from the matmul, e from the last call)
//   δh = (δout + δh_carry) [kept]; with the length mask the carries pass padding unchanged
//   A_o = (1-d^h) τ o (1-o),  K = (1-d^h) o (1-τ²),  δu = δh K
//   δC̃ = (1-d^c) δC + δh (K + A_o p_o)              without LN(C̃)
//       | (1-d^c) δC + 𝓑_c(δu) + δh A_o p_o          with it
//   δG = [δC̃ g i(1-i), δC̃ C_{t-1} f(1-f), δC̃ i(1-g²), δh A_o],  δa = 𝓑_h(δG) | δG
//   δC_prev = δC̃ (f + p_i A_i + p_f A_f) + d^c δC,  e_next = d^h δh (+ the passed carry)
//
// 𝓑(δy) = ρ (δy γ - mean(δy γ) - v̂ mean(δy γ v̂)), the layer-norm backward of a row.
// ======================================================================================

template <typename T>
void lstm_step_backward_impl(
    const Tensor& dout_t, const Tensor& r_t, const OptTensor& m_t, const OptTensor& e_t,
    const Tensor& dc_t, const Tensor& gates_t, const Tensor& tau_t, const Tensor& c_prev_t,
    const OptTensor& c_new_t, const OptTensor& a_t, const OptTensor& mean_h_t,
    const OptTensor& rstd_h_t, const OptTensor& mean_c_t, const OptTensor& rstd_c_t,
    const OptTensor& w_ph_t, const OptTensor& ln_hh_t, const OptTensor& ln_c_t,
    const OptTensor& zh_t, double zh_rate, const OptTensor& zc_t, double zc_rate,
    const OptTensor& keep_t, const Tensor& dg_t, const OptTensor& da_t, const OptTensor& du_t,
    const Tensor& dc_next_t, const OptTensor& e_next_t) {
  const int64_t N = tau_t.size(0), H = tau_t.size(1), G = 4 * H;
  const auto dout = rows<const T>(dout_t, N, H, "dout");
  const auto r = rows<const T>(r_t, N, H, "r");
  const auto m = rows<const T>(m_t, N, H, "m");
  const auto e = rows<const T>(e_t, N, H, "e");
  const auto dc_in = rows<const T>(dc_t, N, H, "dc");
  const auto gates = rows<const T>(gates_t, N, G, "gates");
  const auto tau = rows<const T>(tau_t, N, H, "tau");
  const auto c_prev = rows<const T>(c_prev_t, N, H, "c_prev");
  const T* w_ph = vector_of<T>(w_ph_t, 3 * H, "w_ph");
  const T* ln_hh = vector_of<T>(ln_hh_t, G, "ln_hh");
  const T* ln_c = vector_of<T>(ln_c_t, H, "ln_c");
  const auto c_new = rows<const T>(c_new_t, N, H, "c_new");
  const auto a = rows<const T>(a_t, N, G, "a");
  const auto mean_h = rows<const T>(mean_h_t, N, 1, "mean_h");
  const auto rstd_h = rows<const T>(rstd_h_t, N, 1, "rstd_h");
  const auto mean_c = rows<const T>(mean_c_t, N, 1, "mean_c");
  const auto rstd_c = rows<const T>(rstd_c_t, N, 1, "rstd_c");
  const auto zh = zone<T>(zh_t, zh_rate, N, H, "zh");
  const auto zc = zone<T>(zc_t, zc_rate, N, H, "zc");
  const auto keep = keep_rows(keep_t, N);
  const auto dg = rows<T>(dg_t, N, G, "dg");
  const auto da = rows<T>(da_t, N, G, "da");
  const auto du = rows<T>(du_t, N, H, "du");
  const auto dc_next = rows<T>(dc_next_t, N, H, "dc_next");
  const auto e_next = rows<T>(e_next_t, N, H, "e_next");
  TORCH_CHECK(!ln_hh || (a && mean_h && rstd_h && da), "lstm_step_backward: LN(h) inputs");
  TORCH_CHECK(!ln_c || (c_new && mean_c && rstd_c && du), "lstm_step_backward: LN(C) inputs");
  TORCH_CHECK(!(zh.on || keep) || e_next, "lstm_step_backward: zoneout or mask needs e_next");

  const V<T> one(T(1)), zero(T(0));
  for_rows(N, G, [&](int64_t n) {
    const T* gr = gates[n];
    const bool kept = !keep || keep[n][0];
    // δh of this step (0 when padded) and the carry it passes on unchanged
    auto dh_at = [&](int64_t j, int64_t k, V<T>& passed) {
      V<T> carry = load(r[n] + j, k);
      if (m) carry = carry * load(m[n] + j, k);
      if (e) carry = carry + load(e[n] + j, k);
      passed = kept ? zero : carry;
      return kept ? load(dout[n] + j, k) + carry : zero;
    };
    auto a_o_k = [&](int64_t j, int64_t k, V<T>& kk) {
      const V<T> o = load(gr + 3 * H + j, k), tv = load(tau[n] + j, k);
      V<T> ao = tv * o * (one - o);
      kk = o * (one - tv * tv);
      if (zh.on) {
        const V<T> keep_h = one - zh.at(n, j, k);
        ao = ao * keep_h;
        kk = kk * keep_h;
      }
      return ao;
    };
    // LN(C̃): the sums of 𝓑_c over the row first
    double s1 = 0, s2 = 0;
    T mu_c = 0, rho_c = 1;
    if (ln_c) {
      mu_c = mean_c[n][0];
      rho_c = rstd_c[n][0];
      const V<T> vmu(mu_c), vrho(rho_c);
      V<T> a1(T(0)), a2(T(0));
      LSTMKIT_FOR_CHUNKS(j, k, H) {
        V<T> passed, kk;
        const V<T> dh = dh_at(j, k, passed);
        a_o_k(j, k, kk);
        const V<T> u = dh * kk;
        u.store(du[n] + j, k);
        const V<T> dy = head(u * load(ln_c + j, k), k);
        a1 += dy;
        a2 = at::vec::fmadd(dy, (load(c_new[n] + j, k) - vmu) * vrho, a2);
      }
      s1 = hsum(a1) / H;
      s2 = hsum(a2) / H;
    }
    const V<T> vs1(static_cast<T>(s1)), vs2(static_cast<T>(s2));
    const V<T> vmu_c(mu_c), vrho_c(rho_c);
    T* dgr = dg[n];
    LSTMKIT_FOR_CHUNKS(j, k, H) {
      V<T> passed, kk;
      const V<T> dh = dh_at(j, k, passed);
      const V<T> ao = a_o_k(j, k, kk);
      const V<T> dc_carry = load(dc_in[n] + j, k);
      const V<T> dc_kept = kept ? dc_carry : zero;
      V<T> dct = zc.on ? dc_kept * (one - zc.at(n, j, k)) : dc_kept;
      if (ln_c) {
        const V<T> chat = (load(c_new[n] + j, k) - vmu_c) * vrho_c;
        const V<T> dy = load(du[n] + j, k) * load(ln_c + j, k);
        dct = dct + vrho_c * (dy - vs1 - chat * vs2);
        if (w_ph) dct = at::vec::fmadd(dh * ao, load(w_ph + 2 * H + j, k), dct);
      } else {
        if (w_ph) kk = at::vec::fmadd(ao, load(w_ph + 2 * H + j, k), kk);
        dct = at::vec::fmadd(dh, kk, dct);
      }
      const V<T> i = load(gr + j, k), f = load(gr + H + j, k), g = load(gr + 2 * H + j, k);
      const V<T> cp = load(c_prev[n] + j, k);
      const V<T> ai = g * i * (one - i), af = cp * f * (one - f);
      (dct * ai).store(dgr + j, k);
      (dct * af).store(dgr + H + j, k);
      (dct * i * (one - g * g)).store(dgr + 2 * H + j, k);
      (dh * ao).store(dgr + 3 * H + j, k);
      V<T> ft = f;
      if (w_ph) {
        ft = at::vec::fmadd(load(w_ph + j, k), ai, ft);
        ft = at::vec::fmadd(load(w_ph + H + j, k), af, ft);
      }
      V<T> dcn = dct * ft;
      if (zc.on) dcn = at::vec::fmadd(zc.at(n, j, k), dc_kept, dcn);
      (kept ? dcn : dc_carry).store(dc_next[n] + j, k);
      if (e_next) {
        V<T> en = passed;
        if (zh.on) en = at::vec::fmadd(zh.at(n, j, k), dh, en);
        en.store(e_next[n] + j, k);
      }
    }
    if (ln_hh) {  // δa = 𝓑_h(δG) over the row of 4H
      const V<T> vmu(mean_h[n][0]), vrho(rstd_h[n][0]);
      const T* ar = a[n];
      V<T> a1(T(0)), a2(T(0));
      LSTMKIT_FOR_CHUNKS(j, k, G) {
        const V<T> dy = head(load(dgr + j, k) * load(ln_hh + j, k), k);
        a1 += dy;
        a2 = at::vec::fmadd(dy, (load(ar + j, k) - vmu) * vrho, a2);
      }
      const V<T> m1(static_cast<T>(hsum(a1) / G)), m2(static_cast<T>(hsum(a2) / G));
      T* dar = da[n];
      LSTMKIT_FOR_CHUNKS(j, k, G) {
        const V<T> dy = load(dgr + j, k) * load(ln_hh + j, k);
        const V<T> ahat = (load(ar + j, k) - vmu) * vrho;
        (vrho * (dy - m1 - ahat * m2)).store(dar + j, k);
      }
    }
  });
}

void lstm_step_backward(
    const Tensor& dout, const Tensor& r, const OptTensor& m, const OptTensor& e,
    const Tensor& dc, const Tensor& gates, const Tensor& tau, const Tensor& c_prev,
    const OptTensor& c_new, const OptTensor& a, const OptTensor& mean_h,
    const OptTensor& rstd_h, const OptTensor& mean_c, const OptTensor& rstd_c,
    const OptTensor& w_ph, const OptTensor& ln_hh, const OptTensor& ln_c, const OptTensor& zh,
    double zh_rate, const OptTensor& zc, double zc_rate, const OptTensor& keep,
    const Tensor& dg, const OptTensor& da, const OptTensor& du, const Tensor& dc_next,
    const OptTensor& e_next) {
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_step_backward", [&] {
    lstm_step_backward_impl<scalar_t>(dout, r, m, e, dc, gates, tau, c_prev, c_new, a, mean_h,
                                      rstd_h, mean_c, rstd_c, w_ph, ln_hh, ln_c, zh, zh_rate,
                                      zc, zc_rate, keep, dg, da, du, dc_next, e_next);
  });
}

// ======================================================================================
// GRU forward step
//
// reset after the matmul (torch.nn, cuDNN): g^h = h̄ W_hh^T + b_hh, or with layer norm
// LN(a) γ_hh + b_hh from a = h̄ W_hh^T (written back into g^h, which the backward reads);
//   r = σ(g^x_r + g^h_r),  z = σ(g^x_z + g^h_z),  n = tanh(g^x_n + r ⊙ g^h_n)
// reset before (Cho et al.): rz already holds σ(·) and n the pre-activation
//   g^x_n + (r ⊙ h̄) W_hn^T; n = tanh(n) in place.
// Then h̃ = n + z (h_prev - n), h = lerp(h̃, h_prev, d^h), the length mask, h̄ = h m.
// ======================================================================================

template <typename T>
void gru_step_impl(const OptTensor& gx_t, const OptTensor& gh_t, const OptTensor& a_t,
                   const Tensor& h_prev_t, const OptTensor& ln_hh_t, const OptTensor& b_hh_t,
                   const OptTensor& zh_t, double zh_rate, const OptTensor& keep_t,
                   const OptTensor& m_t, bool reset_after, const Tensor& rz_t,
                   const Tensor& n_t, const Tensor& out_t, const Tensor& h_now_t,
                   const OptTensor& h_bar_t, const OptTensor& mean_h_t,
                   const OptTensor& rstd_h_t) {
  const int64_t N = h_prev_t.size(0), H = h_prev_t.size(1), G = 3 * H;
  const auto gx = rows<const T>(gx_t, N, G, "gx");
  const auto gh = rows<T>(gh_t, N, G, "gh");
  const auto a = rows<const T>(a_t, N, G, "a");
  const auto h_prev = rows<const T>(h_prev_t, N, H, "h_prev");
  const T* ln_hh = vector_of<T>(ln_hh_t, G, "ln_hh");
  const T* b_hh = vector_of<T>(b_hh_t, G, "b_hh");
  const auto zh = zone<T>(zh_t, zh_rate, N, H, "zh");
  const auto keep = keep_rows(keep_t, N);
  const auto m = rows<const T>(m_t, N, H, "m");
  const auto rz = rows<T>(rz_t, N, 2 * H, "rz");
  const auto nn = rows<T>(n_t, N, H, "n");
  const auto out = rows<T>(out_t, N, H, "out");
  const auto h_now = rows<T>(h_now_t, N, H, "h_now");
  const auto h_bar = rows<T>(h_bar_t, N, H, "h_bar");
  const auto mean_h = rows<T>(mean_h_t, N, 1, "mean_h");
  const auto rstd_h = rows<T>(rstd_h_t, N, 1, "rstd_h");
  TORCH_CHECK(!reset_after || (gx && gh), "gru_step: the reset after the matmul needs gx, gh");
  TORCH_CHECK(!ln_hh || (reset_after && a && mean_h && rstd_h), "gru_step: LN(h) inputs");
  TORCH_CHECK(!m == !h_bar, "gru_step: m and h_bar go together");

  for_rows(N, G, [&](int64_t n) {
    if (ln_hh) {  // g^h = LN(a) γ_hh (+ b_hh), written for the backward
      const T* ar = a[n];
      const auto [mu, rho] = moments(ar, G, kEps);
      mean_h[n][0] = mu;
      rstd_h[n][0] = rho;
      const V<T> vmu(mu), vrho(rho);
      LSTMKIT_FOR_CHUNKS(j, k, G) {
        V<T> v = (load(ar + j, k) - vmu) * vrho * load(ln_hh + j, k);
        if (b_hh) v = v + load(b_hh + j, k);
        v.store(gh[n] + j, k);
      }
    }
    const bool kept = !keep || keep[n][0];
    T* rzr = rz[n];
    LSTMKIT_FOR_CHUNKS(j, k, H) {
      V<T> r, z, nv;
      if (reset_after) {
        const T* x = gx[n];
        const T* g = gh[n];
        r = sigmoid(load(x + j, k) + load(g + j, k));
        z = sigmoid(load(x + H + j, k) + load(g + H + j, k));
        r.store(rzr + j, k);
        z.store(rzr + H + j, k);
        nv = at::vec::fmadd(r, load(g + 2 * H + j, k), load(x + 2 * H + j, k)).tanh();
      } else {
        z = load(rzr + H + j, k);
        nv = load(nn[n] + j, k).tanh();
      }
      nv.store(nn[n] + j, k);
      const V<T> hp = load(h_prev[n] + j, k);
      V<T> h = at::vec::fmadd(z, hp - nv, nv);
      if (zh.on) h = lerp(h, hp, zh.at(n, j, k));
      const V<T> hn = kept ? h : hp;
      (kept ? h : V<T>(T(0))).store(out[n] + j, k);
      hn.store(h_now[n] + j, k);  // may be out itself: the same values when kept
      if (m) (hn * load(m[n] + j, k)).store(h_bar[n] + j, k);
    }
  });
}

void gru_step(const OptTensor& gx, const OptTensor& gh, const OptTensor& a,
              const Tensor& h_prev, const OptTensor& ln_hh, const OptTensor& b_hh,
              const OptTensor& zh, double zh_rate, const OptTensor& keep, const OptTensor& m,
              bool reset_after, const Tensor& rz, const Tensor& n, const Tensor& out,
              const Tensor& h_now, const OptTensor& h_bar, const OptTensor& mean_h,
              const OptTensor& rstd_h) {
  AT_DISPATCH_FLOATING_TYPES(h_prev.scalar_type(), "gru_step", [&] {
    gru_step_impl<scalar_t>(gx, gh, a, h_prev, ln_hh, b_hh, zh, zh_rate, keep, m, reset_after,
                            rz, n, out, h_now, h_bar, mean_h, rstd_h);
  });
}

// ======================================================================================
// GRU backward step (the part before the recurrent matmul)
//
//   δh_carry = r ⊙ m + e,  δh = (δout + δh_carry) [kept]
//   a^n = (1-d)(1-z)(1-n²),  a^z = (1-d)(h_prev - n) z(1-z),  ζ = d + (1-d) z
//   δn_pre = δh a^n,  e_next = ζ δh (+ the passed carry)
// reset after: δg^h = [δh a^n n̂ r(1-r), δh a^z, δh a^n r],  δa = 𝓑_h(δg^h) | δg^h
// reset before: only δz_pre = δh a^z (into dg's z block); the r part follows the matmul
//   δ(r h̄) = δn_pre W_hn on the Python side.
// ======================================================================================

template <typename T>
void gru_step_backward_impl(
    const Tensor& dout_t, const Tensor& r_t, const OptTensor& m_t, const OptTensor& e_t,
    const Tensor& rz_t, const Tensor& n_t, const OptTensor& n_hat_t, const Tensor& h_prev_t,
    const OptTensor& a_t, const OptTensor& mean_h_t, const OptTensor& rstd_h_t,
    const OptTensor& ln_hh_t, const OptTensor& zh_t, double zh_rate, const OptTensor& keep_t,
    bool reset_after, const Tensor& dg_t, const OptTensor& da_t, const Tensor& dn_t,
    const OptTensor& e_next_t) {
  const int64_t N = h_prev_t.size(0), H = h_prev_t.size(1), G = 3 * H;
  const auto dout = rows<const T>(dout_t, N, H, "dout");
  const auto r = rows<const T>(r_t, N, H, "r");
  const auto m = rows<const T>(m_t, N, H, "m");
  const auto e = rows<const T>(e_t, N, H, "e");
  const auto rz = rows<const T>(rz_t, N, 2 * H, "rz");
  const auto nn = rows<const T>(n_t, N, H, "n");
  const auto n_hat = rows<const T>(n_hat_t, N, H, "n_hat");
  const auto h_prev = rows<const T>(h_prev_t, N, H, "h_prev");
  const auto a = rows<const T>(a_t, N, G, "a");
  const auto mean_h = rows<const T>(mean_h_t, N, 1, "mean_h");
  const auto rstd_h = rows<const T>(rstd_h_t, N, 1, "rstd_h");
  const T* ln_hh = vector_of<T>(ln_hh_t, G, "ln_hh");
  const auto zh = zone<T>(zh_t, zh_rate, N, H, "zh");
  const auto keep = keep_rows(keep_t, N);
  const auto dg = rows<T>(dg_t, N, reset_after ? G : 2 * H, "dg");
  const auto da = rows<T>(da_t, N, G, "da");
  const auto dn = rows<T>(dn_t, N, H, "dn");
  const auto e_next = rows<T>(e_next_t, N, H, "e_next");
  TORCH_CHECK(!reset_after || n_hat, "gru_step_backward: the reset after needs n_hat");
  TORCH_CHECK(!ln_hh || (a && mean_h && rstd_h && da), "gru_step_backward: LN(h) inputs");
  TORCH_CHECK(e_next, "gru_step_backward: e_next is needed (ζ δh passes straight back)");

  const V<T> one(T(1)), zero(T(0));
  for_rows(N, G, [&](int64_t row) {
    const bool kept = !keep || keep[row][0];
    const T* rzr = rz[row];
    T* dgr = dg[row];
    LSTMKIT_FOR_CHUNKS(j, k, H) {
      V<T> carry = load(r[row] + j, k);
      if (m) carry = carry * load(m[row] + j, k);
      if (e) carry = carry + load(e[row] + j, k);
      const V<T> dh = kept ? load(dout[row] + j, k) + carry : zero;
      const V<T> z = load(rzr + H + j, k), nv = load(nn[row] + j, k);
      const V<T> hp = load(h_prev[row] + j, k);
      V<T> an = (one - z) * (one - nv * nv);
      V<T> az = (hp - nv) * z * (one - z);
      V<T> zeta = z;
      if (zh.on) {
        const V<T> d = zh.at(row, j, k), keep_h = one - d;
        an = an * keep_h;
        az = az * keep_h;
        zeta = at::vec::fmadd(keep_h, z, d);
      }
      const V<T> dnp = dh * an;
      dnp.store(dn[row] + j, k);
      (dh * az).store(dgr + H + j, k);
      if (reset_after) {
        const V<T> rv = load(rzr + j, k);
        (dnp * load(n_hat[row] + j, k) * rv * (one - rv)).store(dgr + j, k);
        (dnp * rv).store(dgr + 2 * H + j, k);
      }
      at::vec::fmadd(zeta, dh, kept ? zero : carry).store(e_next[row] + j, k);
    }
    if (ln_hh) {  // δa = 𝓑_h(δg^h) over the row of 3H
      const V<T> vmu(mean_h[row][0]), vrho(rstd_h[row][0]);
      const T* ar = a[row];
      V<T> a1(T(0)), a2(T(0));
      LSTMKIT_FOR_CHUNKS(j, k, G) {
        const V<T> dy = head(load(dgr + j, k) * load(ln_hh + j, k), k);
        a1 += dy;
        a2 = at::vec::fmadd(dy, (load(ar + j, k) - vmu) * vrho, a2);
      }
      const V<T> m1(static_cast<T>(hsum(a1) / G)), m2(static_cast<T>(hsum(a2) / G));
      T* dar = da[row];
      LSTMKIT_FOR_CHUNKS(j, k, G) {
        const V<T> dy = load(dgr + j, k) * load(ln_hh + j, k);
        const V<T> ahat = (load(ar + j, k) - vmu) * vrho;
        (vrho * (dy - m1 - ahat * m2)).store(dar + j, k);
      }
    }
  });
}

void gru_step_backward(const Tensor& dout, const Tensor& r, const OptTensor& m,
                       const OptTensor& e, const Tensor& rz, const Tensor& n,
                       const OptTensor& n_hat, const Tensor& h_prev, const OptTensor& a,
                       const OptTensor& mean_h, const OptTensor& rstd_h,
                       const OptTensor& ln_hh, const OptTensor& zh, double zh_rate,
                       const OptTensor& keep, bool reset_after, const Tensor& dg,
                       const OptTensor& da, const Tensor& dn, const OptTensor& e_next) {
  AT_DISPATCH_FLOATING_TYPES(h_prev.scalar_type(), "gru_step_backward", [&] {
    gru_step_backward_impl<scalar_t>(dout, r, m, e, rz, n, n_hat, h_prev, a, mean_h, rstd_h,
                                     ln_hh, zh, zh_rate, keep, reset_after, dg, da, dn,
                                     e_next);
  });
}

}  // namespace

TORCH_LIBRARY(lstmkit, lib) {
  lib.def(
      "lstm_step(Tensor rec, Tensor? gx, Tensor c_prev, Tensor h_prev, Tensor? w_ph, "
      "Tensor? ln_hh, Tensor? ln_c, Tensor? ln_c_bias, Tensor? zh, float zh_rate, Tensor? zc, "
      "float zc_rate, Tensor? keep, Tensor? m, Tensor(a!) gates, Tensor(b!) c_new, "
      "Tensor(c!) tau, Tensor(d!) out, Tensor(e!) h_now, Tensor(f!) c_now, "
      "Tensor(g!)? h_bar, Tensor(h!)? mean_h, Tensor(i!)? rstd_h, Tensor(j!)? mean_c, "
      "Tensor(k!)? rstd_c) -> ()");
  lib.def(
      "lstm_step_backward(Tensor dout, Tensor r, Tensor? m, Tensor? e, Tensor dc, "
      "Tensor gates, Tensor tau, Tensor c_prev, Tensor? c_new, Tensor? a, Tensor? mean_h, "
      "Tensor? rstd_h, Tensor? mean_c, Tensor? rstd_c, Tensor? w_ph, Tensor? ln_hh, "
      "Tensor? ln_c, Tensor? zh, float zh_rate, Tensor? zc, float zc_rate, Tensor? keep, "
      "Tensor(a!) dg, Tensor(b!)? da, Tensor(c!)? du, Tensor(d!) dc_next, "
      "Tensor(e!)? e_next) -> ()");
  lib.def(
      "gru_step(Tensor? gx, Tensor(a!)? gh, Tensor? a, Tensor h_prev, Tensor? ln_hh, "
      "Tensor? b_hh, Tensor? zh, float zh_rate, Tensor? keep, Tensor? m, bool reset_after, "
      "Tensor(b!) rz, Tensor(c!) n, Tensor(d!) out, Tensor(e!) h_now, Tensor(f!)? h_bar, "
      "Tensor(g!)? mean_h, Tensor(h!)? rstd_h) -> ()");
  lib.def(
      "gru_step_backward(Tensor dout, Tensor r, Tensor? m, Tensor? e, Tensor rz, Tensor n, "
      "Tensor? n_hat, Tensor h_prev, Tensor? a, Tensor? mean_h, Tensor? rstd_h, "
      "Tensor? ln_hh, Tensor? zh, float zh_rate, Tensor? keep, bool reset_after, "
      "Tensor(a!) dg, Tensor(b!)? da, Tensor(c!) dn, Tensor(d!)? e_next) -> ()");
}

TORCH_LIBRARY_IMPL(lstmkit, CPU, lib) {
  lib.impl("lstm_step", &lstm_step);
  lib.impl("lstm_step_backward", &lstm_step_backward);
  lib.impl("gru_step", &gru_step);
  lib.impl("gru_step_backward", &gru_step_backward);
}
