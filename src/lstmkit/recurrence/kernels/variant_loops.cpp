// The time loops of the cell variants (docs/variants.md), forward and backward, for one
// direction: lstmkit's own CPU kernels, compiled on first use by lstmkit.recurrence.kernels
// and called by lstm_variants.py / gru_variants.py in place of their python steps.
//
// Per step a loop runs the recurrent matmul (BLAS, see product()) and then one pass over each
// row doing what the python steps do in ten to twenty torch calls: the gate
// nonlinearities, the layer norms of the row (statistics, normalisation, backward),
// peepholes, zoneout, the length mask and recurrent dropout. Everything before and after
// the loop (the input projection, the weight gradients over all steps) stays in Python.
// The equations and their derivatives are those of the module docstrings of
// lstm_variants.py and gru_variants.py; the tests check these loops against the reference
// backend (autograd over the cell functions) and the python steps.
//
// Layout. Per-step buffers are (S, N, K) with S = T (kept for the backward) or 1 (a
// scratch row reused by every step); rows are contiguous. A carried state lives in a
// store: (T+1, N, K) with the initial state at the "previous" end when kept (step t
// writes row t+1, or row t in the reverse direction), else (2, N, K) rows taking turns.
// Gate order i, f, g, o (LSTM) and r, z, n (GRU), as torch.nn. float and double.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

// -- rows of a matrix, steps of a buffer -----------------------------------------------

template <typename T>
struct Rows {  // an (N, K) matrix with contiguous rows
  T* p = nullptr;
  int64_t s = 0;
  Rows() = default;
  Rows(T* p, int64_t s) : p(p), s(s) {}
  template <typename U, typename = std::enable_if_t<std::is_same_v<const U, T>>>
  Rows(const Rows<U>& w) : p(w.p), s(w.s) {}  // the same rows, read only
  T* operator[](int64_t n) const { return p + n * s; }
  explicit operator bool() const { return p != nullptr; }
};

template <typename T>
constexpr c10::ScalarType dtype_of() {
  return c10::CppTypeToScalarType<std::remove_const_t<T>>::value;
}

void check_cpu(const Tensor& t, c10::ScalarType dtype, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, ": expected a CPU tensor, got ", t.device());
  TORCH_CHECK(t.scalar_type() == dtype, name, ": expected dtype ", dtype, ", got ",
              t.scalar_type());
}

template <typename T>
Rows<T> rows(const Tensor& t, int64_t n, int64_t k, const char* name) {
  check_cpu(t, dtype_of<T>(), name);
  TORCH_CHECK(t.dim() == 2 && t.size(0) == n && t.size(1) == k, name, ": expected shape (", n,
              ", ", k, "), got ", t.sizes());
  TORCH_CHECK(k == 1 || t.stride(1) == 1, name, ": expected contiguous rows, got strides ",
              t.strides());
  return {static_cast<T*>(t.data_ptr()), t.stride(0)};
}

template <typename T>
struct Steps {  // an (S, N, K) buffer: S = T, or 1 for a row every step reuses
  T* p = nullptr;
  int64_t step = 0, row = 0, count = 0;
  Rows<T> at(int64_t t) const { return {p + (count == 1 ? 0 : t) * step, row}; }
  explicit operator bool() const { return p != nullptr; }
};

template <typename T>
Steps<T> steps(const Tensor& t, int64_t s, int64_t n, int64_t k, const char* name) {
  check_cpu(t, dtype_of<T>(), name);
  TORCH_CHECK(t.dim() == 3 && (t.size(0) == s || t.size(0) == 1) && t.size(1) == n &&
                  t.size(2) == k,
              name, ": expected shape (", s, " or 1, ", n, ", ", k, "), got ", t.sizes());
  TORCH_CHECK(k == 1 || t.stride(2) == 1, name, ": expected contiguous rows, got strides ",
              t.strides());
  return {static_cast<T*>(t.data_ptr()), t.stride(0), t.stride(1), t.size(0)};
}

template <typename T>
Steps<T> steps(const OptTensor& t, int64_t s, int64_t n, int64_t k, const char* name) {
  return t ? steps<T>(*t, s, n, k, name) : Steps<T>{};
}

template <typename T>
const T* vector_of(const OptTensor& t, int64_t k, const char* name) {
  if (!t) return nullptr;
  check_cpu(*t, dtype_of<T>(), name);
  TORCH_CHECK(t->dim() == 1 && t->size(0) == k && t->is_contiguous(), name,
              ": expected a contiguous vector of ", k, ", got ", t->sizes());
  return t->data_ptr<T>();
}

// A carried state: the initial one, then a store of (T+1, N, K) rows (kept) or two rows
// in turns. now(k, t) is what the k-th step processed (time t) writes, before(k, t) what
// it reads.
template <typename T>
struct Carried {
  Rows<T> first;
  Steps<T> store;
  bool kept = false, reverse = false;
  Rows<T> now(int64_t k, int64_t t) const {
    return kept ? store.at(reverse ? t : t + 1) : store.at(k % 2);
  }
  Rows<T> before(int64_t k, int64_t t) const {
    if (k == 0) return first;
    return kept ? store.at(reverse ? t + 1 : t) : store.at((k - 1) % 2);
  }
};

template <typename T>
Carried<T> carried(const Tensor& first, const Tensor& store, bool kept, bool reverse,
                   int64_t T_, const char* name) {
  const int64_t n = first.size(0), k = first.size(1);
  const Rows<T> initial = rows<T>(first, n, k, name);
  TORCH_CHECK(store.dim() == 3 && store.size(0) == (kept ? T_ + 1 : 2), name,
              ": expected a store of ", kept ? T_ + 1 : 2, " rows, got ", store.sizes());
  return {initial, steps<T>(store, store.size(0), n, k, name), kept, reverse};
}

// row i of a (2, N, K) pair of buffers that take turns
template <typename T>
Rows<T> turn(const Tensor& pair, int64_t i) {
  return {static_cast<T*>(pair.data_ptr()) + i * pair.stride(0), pair.stride(1)};
}

// -- the per-step products ----------------------------------------------------------------
// c = a b, or c += a b, for the row-major blocks of one step — a (m, k), b (k, n), c (m, n),
// each a pointer and a row stride — by BLAS's sgemm_/dgemm_ straight on the pointers where
// torch's library exports them (MKL on x86-64 Linux; looked up once and checked on a 2x3 by
// 3x2 product, which also rules out 64-bit BLAS integers), else by ATen's mm on views. An
// ATen call per step cost its dispatch, a view per operand and its checks: ~2 µs, a tenth of
// a step at hidden 64. Row-major c = a b is column-major cᵀ = bᵀ aᵀ: BLAS gets b first.

template <typename T>
using Gemm = void (*)(const char*, const char*, const int*, const int*, const int*, const T*,
                      const T*, const int*, const T*, const int*, const T*, T*, const int*);

template <typename T>
Gemm<T> blas_gemm() {
  static const Gemm<T> found = [] {
    const char* choice = std::getenv("LSTMKIT_PRODUCTS");  // "aten": the fallback (tests)
    if (choice && std::string(choice) == "aten") return Gemm<T>{};
    Dl_info info;
    if (!dladdr(reinterpret_cast<void*>(&at::get_num_threads), &info)) return Gemm<T>{};
    void* lib = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (!lib) return Gemm<T>{};
    auto f = reinterpret_cast<Gemm<T>>(
        dlsym(lib, std::is_same_v<T, float> ? "sgemm_" : "dgemm_"));
    dlclose(lib);  // NOLOAD took a reference to a library torch keeps loaded
    if (!f) return Gemm<T>{};
    // [[1 2 3] [4 5 6]] · [[1 2] [3 4] [5 6]] = [[22 28] [49 64]], row-major
    const T a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 2, 3, 4, 5, 6};
    T c[4] = {0, 0, 0, 0};
    const int m = 2, n = 2, k = 3, lda = 3, ldb = 2, ldc = 2;
    const T one = 1, zero = 0;
    f("N", "N", &n, &m, &k, &one, b, &ldb, a, &lda, &zero, c, &ldc);
    const bool right = c[0] == 22 && c[1] == 28 && c[2] == 49 && c[3] == 64;
    return right ? f : Gemm<T>{};
  }();
  return found;
}

template <typename T>
void product(int64_t m, int64_t n, int64_t k, Rows<const T> a, Rows<const T> b, Rows<T> c,
             bool accumulate) {
  // BLAS wants each row stride at least the row's width; a lone row's stride is any
  // (a (1, K) tensor counts as contiguous whatever it is), rows repeated by a stride of 0
  // (an expanded state) go to ATen
  const auto lead = [](int64_t rows, int64_t stride, int64_t width) {
    return rows == 1 ? std::max(stride, width) : stride;
  };
  const int64_t la = lead(m, a.s, k), lb = lead(k, b.s, n), lc = lead(m, c.s, n);
  const auto gemm = blas_gemm<T>();
  const int64_t most = std::numeric_limits<int>::max();
  if (gemm && la >= k && lb >= n && lc >= n && std::max({m, n, k, la, lb, lc}) <= most) {
    const int mi = m, ni = n, ki = k, lda = la, ldb = lb, ldc = lc;
    const T one = 1, beta = accumulate ? 1 : 0;
    gemm("N", "N", &ni, &mi, &ki, &one, b.p, &ldb, a.p, &lda, &beta, c.p, &ldc);
    return;
  }
  const auto opts = at::TensorOptions().dtype(c10::CppTypeToScalarType<T>::value);
  const Tensor at_ = at::from_blob(const_cast<T*>(a.p), {m, k}, {a.s, 1}, opts);
  const Tensor bt = at::from_blob(const_cast<T*>(b.p), {k, n}, {b.s, 1}, opts);
  Tensor ct = at::from_blob(c.p, {m, n}, {c.s, 1}, opts);
  if (accumulate) {
    ct.addmm_(at_, bt);
  } else {
    at::mm_out(ct, at_, bt);
  }
}

// -- blocks of the batch ----------------------------------------------------------------
// Every sequence of a batch runs its own recurrence. With more than one thread the batch
// is cut into blocks of rows and each block's whole time loop runs on its own thread, its
// matmuls on its own rows: one fork and join per call, none per step (a step at hidden 64
// is tens of microseconds, which a parallel region per step would eat). A block is the
// same loop on narrower tensors (every helper above reads strides), so it computes what
// the whole batch would, row for row. kBlockRows: the fewest rows a block gets.
constexpr int64_t kBlockRows = 8;

struct Block {
  int64_t begin = 0, size = 0;
  bool whole = true;
  // the block's rows of a batch tensor: (S, N, K) buffers along N, (N, K) matrices along N
  Tensor operator()(const Tensor& t) const {
    return whole ? t : t.narrow(t.dim() == 3 ? 1 : 0, begin, size);
  }
  OptTensor operator()(const OptTensor& t) const { return t ? OptTensor((*this)(*t)) : t; }
};

// body(T(0), B) for the op's dtype T (float or double), on each block B of the rows of
// the batch (batch.size(0) of them)
template <typename F>
void on_blocks(const char* op, const Tensor& like, const Tensor& batch, const F& body) {
  const auto run = [&](auto type) {
    const int64_t n = batch.size(0);
    if (n < 2 * kBlockRows || at::get_num_threads() < 2 || at::in_parallel_region()) {
      body(type, Block{});
      return;
    }
    // the calling thread's state (grad mode off inside autograd's forward and backward,
    // inference mode, dispatch keys) goes to every thread: OpenMP's do not inherit it
    const at::ThreadLocalState state;
    at::parallel_for(0, n, kBlockRows, [&](int64_t begin, int64_t end) {
      const at::ThreadLocalStateGuard guard(state);
      body(type, Block{begin, end - begin, false});
    });
  };
  const auto dtype = like.scalar_type();
  if (dtype == at::kDouble) return run(0.0);
  if (dtype == at::kFloat) return run(0.0f);
  TORCH_CHECK_NOT_IMPLEMENTED(false, '"', op, "\" not implemented for '", c10::toString(dtype),
                              "'");  // AT_DISPATCH_FLOATING_TYPES's message
}

// -- vector helpers ---------------------------------------------------------------------

template <typename T>
using V = at::vec::Vectorized<T>;

template <typename T>
inline V<T> load(const T* p, int64_t k) {
  return V<T>::loadu(p, k);
}

// e^x: for float torch's exp_u20 (a degree-5 polynomial, within 20 ULP: the gates then
// differ from torch.nn's by about 1e-7, as its own kernels do from each other), for double
// the correctly rounded one
template <typename T>
inline V<T> fast_exp(const V<T>& x) {
  if constexpr (std::is_same_v<T, float>) {
    return x.exp_u20();
  } else {
    return x.exp();
  }
}

template <typename T>
inline V<T> sigmoid(const V<T>& x) {
  return (V<T>(T(1)) + fast_exp(x.neg())).reciprocal();
}

// tanh x = 2 σ(2x) - 1 for float (saturating at ±1 at both ends), the library's for double
template <typename T>
inline V<T> tanh_of(const V<T>& x) {
  if constexpr (std::is_same_v<T, float>) {
    return V<T>(T(2)) * sigmoid(x + x) - V<T>(T(1));
  } else {
    return x.tanh();
  }
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

#define LSTMKIT_FOR_CHUNKS(j, k, len)                                      \
  for (int64_t j = 0, k = std::min<int64_t>(V<T>::size(), len); j < (len); \
       j += V<T>::size(), k = std::min<int64_t>(V<T>::size(), (len) - j))

constexpr double kEps = 1e-5;  // lstmkit.cells.norm.EPS

// (mean, 1/sqrt(var + eps)) of a row of length len, biased variance, two passes; written
// to *mean_out and *rstd_out too (the step's saved statistics)
template <typename T>
inline std::pair<T, T> moments(const T* x, int64_t len, T* mean_out, T* rstd_out) {
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
  *mean_out = mean;
  *rstd_out = static_cast<T>(1.0 / std::sqrt(var + kEps));
  return {mean, *rstd_out};
}

// 𝓑(δy) = ρ (δy γ - mean(δy γ) - v̂ mean(δy γ v̂)): the layer-norm backward of one row
template <typename T>
inline void norm_backward_row(const T* dy, const T* v, T mu, T rho, const T* gain,
                              int64_t len, T* dv) {
  const V<T> vmu(mu), vrho(rho);
  V<T> a1(T(0)), a2(T(0));
  LSTMKIT_FOR_CHUNKS(j, k, len) {
    const V<T> g = head(load(dy + j, k) * load(gain + j, k), k);
    a1 += g;
    a2 = at::vec::fmadd(g, (load(v + j, k) - vmu) * vrho, a2);
  }
  const V<T> m1(static_cast<T>(hsum(a1) / len)), m2(static_cast<T>(hsum(a2) / len));
  LSTMKIT_FOR_CHUNKS(j, k, len) {
    const V<T> g = load(dy + j, k) * load(gain + j, k);
    const V<T> vhat = (load(v + j, k) - vmu) * vrho;
    (vrho * (g - m1 - vhat * m2)).store(dv + j, k);
  }
}

// A zoneout mask: per element (training), one rate (evaluation), or off.
template <typename T>
struct Zone {
  Steps<const T> d;
  T rate = 0;
  bool on = false;
  V<T> at(int64_t t, int64_t n, int64_t j, int64_t k) const {
    return d ? load(d.at(t)[n] + j, k) : V<T>(rate);
  }
};

template <typename T>
Zone<T> zone(const OptTensor& d, double rate, int64_t s, int64_t n, int64_t k,
             const char* name) {
  if (d) TORCH_CHECK(d->size(0) == s, name, ": expected ", s, " steps, got ", d->sizes());
  const auto each = steps<const T>(d, s, n, k, name);
  return {each, static_cast<T>(rate), static_cast<bool>(each) || rate > 0};
}

// the length mask: (T, N, 1) bool, true on the real steps
struct Keep {
  const bool* p = nullptr;
  int64_t step = 0, row = 0;
  bool at(int64_t t, int64_t n) const { return !p || p[t * step + n * row]; }
  explicit operator bool() const { return p != nullptr; }
};

Keep keep_of(const OptTensor& keep, int64_t s, int64_t n) {
  if (!keep) return {};
  TORCH_CHECK(keep->scalar_type() == at::kBool && keep->dim() == 3 && keep->size(0) == s &&
                  keep->size(1) == n && keep->size(2) == 1,
              "keep: expected a (", s, ", ", n, ", 1) bool mask, got ", keep->sizes(), " ",
              keep->scalar_type());
  return {keep->data_ptr<bool>(), keep->stride(0), keep->stride(1)};
}

// The rows step k (time t) of a forward loop reads and writes for h, and put(): h̃ of a
// chunk → zoneout towards h_prev, the length mask (out gets 0 past a sequence's end, the
// carried h the previous one), h̄ = h ⊙ m for the next matmul.
template <typename T>
struct HiddenStep {
  Rows<T> prev, now, out, bar;
  Rows<const T> m;
  int64_t t = 0;
  void put(V<T> h, const V<T>& hp, const Zone<T>& zh, bool kept, int64_t n, int64_t j,
           int64_t kk) const {
    if (zh.on) h = lerp(h, hp, zh.at(t, n, j, kk));
    const V<T> hn = kept ? h : hp;
    (kept ? h : V<T>(T(0))).store(out[n] + j, kk);
    hn.store(now[n] + j, kk);  // may be out itself: the same values when kept
    if (m) (hn * load(m[n] + j, kk)).store(bar[n] + j, kk);
  }
};

// The carried h of a forward loop — in out itself without a length mask, else in its own
// store — and h̄ = h ⊙ m (recurrent dropout) for the next matmul, two rows in turns.
template <typename T>
struct Hidden {
  Carried<T> hs;
  bool stored = false, reverse = false;
  Steps<T> out;
  Rows<T> first;
  Rows<const T> m;
  Tensor bars;
  Rows<T> now(int64_t k, int64_t t) const { return stored ? hs.now(k, t) : out.at(t); }
  Rows<T> before(int64_t k, int64_t t) const {
    if (stored) return hs.before(k, t);
    if (k == 0) return first;
    return out.at(reverse ? t + 1 : t - 1);
  }
  // what step k multiplies by W_hh: h̄ of the step before, or that step's h itself
  Rows<const T> matmul_rows(int64_t k, int64_t t) const {
    return bars.defined() ? turn<T>(bars, (k + 1) % 2) : before(k, t);
  }
  HiddenStep<T> step(int64_t k, int64_t t) const {
    const Rows<T> bar = bars.defined() ? turn<T>(bars, k % 2) : Rows<T>{};  // where h̄ goes
    return {before(k, t), now(k, t), out.at(t), bar, m, t};
  }
};

template <typename T>
Hidden<T> hidden_of(const Tensor& h0, const Steps<T>& out, const OptTensor& store,
                    const OptTensor& m, bool save, bool reverse, int64_t T_) {
  const int64_t N = h0.size(0), H = h0.size(1);
  Hidden<T> h;
  h.first = rows<T>(h0, N, H, "h0");
  h.out = out;
  h.reverse = reverse;
  h.stored = store.has_value();
  if (store) h.hs = carried<T>(h0, *store, save, reverse, T_, "h_store");
  if (m) {
    h.m = rows<const T>(*m, N, H, "m");
    h.bars = at::empty({2, N, H}, h0.options());
    Tensor first = h.bars[1];
    at::mul_out(first, h0, *m);
  }
  return h;
}

// What reaches h of a step from the step after it (a backward loop's carry): the
// recurrent matmul's r, times the dropout mask m after the first step, plus e (the share
// that passes straight back: zoneout and the length mask's padding). Into the first step
// processed: δh_n alone.
template <typename T>
struct Incoming {
  Rows<const T> r, m, e;
  V<T> at(int64_t n, int64_t j, int64_t k) const {
    V<T> carry = load(r[n] + j, k);
    if (m) carry = carry * load(m[n] + j, k);
    if (e) carry = carry + load(e[n] + j, k);
    return carry;
  }
};

// into step k: δh_n, else r ⊙ m + e with e the step before's row of carries (if defined)
template <typename T>
Incoming<T> incoming(int64_t k, Rows<const T> dh_n, Rows<const T> r, Rows<const T> m,
                     const Tensor& carries) {
  if (k == 0) return {dh_n, {}, {}};
  return {r, m, carries.defined() ? turn<const T>(carries, (k + 1) % 2) : Rows<const T>{}};
}

template <typename F>
void for_rows(int64_t n, int64_t width, const F& f) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(width, 1));
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) f(r);
  });
}

inline int64_t time_of(int64_t k, int64_t T_, bool reverse) { return reverse ? T_ - 1 - k : k; }

// ======================================================================================
// LSTM forward
//
//   pre = gx + h̄ W_hh^T | gx + LN(h̄ W_hh^T) γ_hh       (+ b when given: the biases, which
//                                                      gx then leaves out)
//   i = σ(pre_i + p_i C), f = σ(pre_f + p_f C), g = tanh(pre_g)
//   C̃ = f C + i g,  o = σ(pre_o + p_o C̃),  τ = tanh(LN(C̃) γ_c + β_c | C̃),  h̃ = o τ
//   h = lerp(h̃, h_prev, d^h),  C = lerp(C̃, C_prev, d^c),  then the length mask
//   h̄_next = h m (recurrent dropout)
// With a projection (the plain cell only): h̃ = (o τ) W_hr^T, P wide, by a matmul after
// the step's pass over the rows, then the length mask on it.
// ======================================================================================

void lstm_forward(const Tensor& gx_t, const Tensor& h0_t, const Tensor& c0_t, const Tensor& w_hh_t,
                  const OptTensor& b_t, const OptTensor& w_hr_t, const OptTensor& w_ph_t,
                  const OptTensor& ln_hh_t, const OptTensor& ln_c_t, const OptTensor& ln_c_bias_t,
                  const OptTensor& zh_t, double zh_rate, const OptTensor& zc_t, double zc_rate,
                  const OptTensor& keep_t, const OptTensor& m_t, bool reverse, bool save,
                  const Tensor& gates_t, const Tensor& taus_t, const OptTensor& a_t,
                  const Tensor& c_store_t, const Tensor& out_t, const OptTensor& h_store_t,
                  const OptTensor& new_c_t, const OptTensor& mean_h_t, const OptTensor& rstd_h_t,
                  const OptTensor& mean_c_t, const OptTensor& rstd_c_t) {
  on_blocks("lstm_forward", gx_t, h0_t, [&](auto type, const Block& B) {
    using T = decltype(type);
    // H: the cell's width; P: h's, the projection's size with one (W_hr^T (H, P)), else H
    const int64_t T_ = gx_t.size(0), N = B(h0_t).size(0), G = gx_t.size(2), H = G / 4;
    const int64_t P = h0_t.size(1);
    const bool proj = w_hr_t.has_value();
    const auto gx = steps<T>(B(gx_t), T_, N, G, "gx");  // written: pre-activations over it
    const T* b = vector_of<T>(b_t, G, "b");
    const T* w_ph = vector_of<T>(w_ph_t, 3 * H, "w_ph");
    const T* ln_hh = vector_of<T>(ln_hh_t, G, "ln_hh");
    const T* ln_c = vector_of<T>(ln_c_t, H, "ln_c");
    const T* ln_c_bias = vector_of<T>(ln_c_bias_t, H, "ln_c_bias");
    const auto zh = zone<T>(B(zh_t), zh_rate, T_, N, H, "zh");
    const auto zc = zone<T>(B(zc_t), zc_rate, T_, N, H, "zc");
    const auto keep = keep_of(B(keep_t), T_, N);
    const auto gates = steps<T>(B(gates_t), T_, N, G, "gates");
    const auto taus = steps<T>(B(taus_t), T_, N, H, "taus");
    const auto a = steps<T>(B(a_t), T_, N, G, "a");
    const auto out = steps<T>(B(out_t), T_, N, P, "out");
    const auto new_c = steps<T>(B(new_c_t), T_, N, H, "new_c");
    const auto mean_h = steps<T>(B(mean_h_t), T_, N, 1, "mean_h");
    const auto rstd_h = steps<T>(B(rstd_h_t), T_, N, 1, "rstd_h");
    const auto mean_c = steps<T>(B(mean_c_t), T_, N, 1, "mean_c");
    const auto rstd_c = steps<T>(B(rstd_c_t), T_, N, 1, "rstd_c");
    const auto cs = carried<T>(B(c0_t), B(c_store_t), save, reverse, T_, "c_store");
    const auto hidden = hidden_of<T>(B(h0_t), out, B(h_store_t), B(m_t), save, reverse, T_);
    TORCH_CHECK(!ln_hh || (a && mean_h && rstd_h), "lstm_forward: LN(h) needs a, mean_h, rstd_h");
    TORCH_CHECK(!ln_c == !ln_c_bias, "lstm_forward: ln_c and ln_c_bias go together");
    TORCH_CHECK(!ln_c || (mean_c && rstd_c), "lstm_forward: LN(C) needs mean_c, rstd_c");
    TORCH_CHECK(!keep || h_store_t, "lstm_forward: a length mask needs h_store");
    TORCH_CHECK(!(keep || zc.on) || new_c_t, "lstm_forward: zoneout of C or a mask needs new_c");
    TORCH_CHECK(proj || P == H, "lstm_forward: h0 is ", P, " wide without a projection, C ", H);
    const auto w_hh = rows<const T>(w_hh_t, P, G, "w_hh_t");
    TORCH_CHECK(!proj || !(w_ph || ln_hh || ln_c || zh.on || zc.on || hidden.m),
                "lstm_forward: the projection is for the plain cell only");
    // with a projection: o ⊙ τ of the step, then h = (o ⊙ τ) W_hr^T (N, P) by a matmul
    const Tensor raw_t = proj ? at::empty({N, H}, gx_t.options()) : Tensor();
    const Tensor h_new_t = proj && keep ? at::empty({N, P}, gx_t.options()) : Tensor();
    const Rows<T> raw = proj ? rows<T>(raw_t, N, H, "raw") : Rows<T>{};
    const auto w_hr = proj ? rows<const T>(*w_hr_t, H, P, "w_hr_t") : Rows<const T>{};

    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = time_of(k, T_, reverse);
      const Rows<const T> h_bar = hidden.matmul_rows(k, t);
      const auto gxr = gx.at(t);
      if (ln_hh) {
        product<T>(N, G, P, h_bar, w_hh, a.at(t), false);
      } else {  // pre = gx + h̄ W_hh^T into gx's own row: no copy of gx first
        product<T>(N, G, P, h_bar, w_hh, gxr, true);
      }
      const Rows<const T> r = ln_hh ? a.at(t) : gxr;
      const auto c_prev = cs.before(k, t), c_now = cs.now(k, t);
      const auto step = hidden.step(k, t);
      const auto g_rows = gates.at(t), tau = taus.at(t);
      const auto cn_rows = new_c ? new_c.at(t) : c_now;
      for_rows(N, G, [&](int64_t n) {
        const T* rr = r[n];
        T mu_h = 0, rho_h = 1;
        if (ln_hh) std::tie(mu_h, rho_h) = moments(rr, G, mean_h.at(t)[n], rstd_h.at(t)[n]);
        const V<T> vmu_h(mu_h), vrho_h(rho_h);
        auto pre = [&](int64_t gate, int64_t j, int64_t kk) {
          const int64_t at = gate * H + j;
          const V<T> p = ln_hh ? at::vec::fmadd((load(rr + at, kk) - vmu_h) * vrho_h,
                                                load(ln_hh + at, kk), load(gxr[n] + at, kk))
                               : load(rr + at, kk);
          return b ? p + load(b + at, kk) : p;
        };
        T* gr = g_rows[n];
        const bool kept = keep.at(t, n);
        auto finish = [&](int64_t j, int64_t kk, const V<T>& cn, const V<T>& tv) {
          V<T> po = pre(3, j, kk);
          if (w_ph) po = at::vec::fmadd(load(w_ph + 2 * H + j, kk), cn, po);
          const V<T> o = sigmoid(po);
          o.store(gr + 3 * H + j, kk);
          tv.store(tau[n] + j, kk);
          const V<T> h = o * tv;
          const V<T> cp = load(c_prev[n] + j, kk);
          const V<T> c = zc.on ? lerp(cn, cp, zc.at(t, n, j, kk)) : cn;
          (kept ? c : cp).store(c_now[n] + j, kk);  // may be C̃'s own row: the same values
          if (proj) {
            h.store(raw[n] + j, kk);  // h after the matmul below
          } else {
            step.put(h, load(step.prev[n] + j, kk), zh, kept, n, j, kk);
          }
        };
        LSTMKIT_FOR_CHUNKS(j, kk, H) {
          const V<T> cp = load(c_prev[n] + j, kk);
          V<T> pi = pre(0, j, kk), pf = pre(1, j, kk);
          if (w_ph) {
            pi = at::vec::fmadd(load(w_ph + j, kk), cp, pi);
            pf = at::vec::fmadd(load(w_ph + H + j, kk), cp, pf);
          }
          const V<T> i = sigmoid(pi), f = sigmoid(pf), g = tanh_of(pre(2, j, kk));
          i.store(gr + j, kk);
          f.store(gr + H + j, kk);
          g.store(gr + 2 * H + j, kk);
          const V<T> cn = at::vec::fmadd(f, cp, i * g);
          cn.store(cn_rows[n] + j, kk);
          if (!ln_c) finish(j, kk, cn, tanh_of(cn));
        }
        if (ln_c) {
          const T* cn_row = cn_rows[n];
          const auto [mu_c, rho_c] = moments(cn_row, H, mean_c.at(t)[n], rstd_c.at(t)[n]);
          const V<T> vmu(mu_c), vrho(rho_c);
          LSTMKIT_FOR_CHUNKS(j, kk, H) {
            const V<T> cn = load(cn_row + j, kk);
            const V<T> u =
                at::vec::fmadd((cn - vmu) * vrho, load(ln_c + j, kk), load(ln_c_bias + j, kk));
            finish(j, kk, cn, tanh_of(u));
          }
        }
      });
      if (!proj) continue;
      // h = (o ⊙ τ) W_hr^T, straight into out (the carried h) without a length mask
      const auto hn_rows = keep ? rows<T>(h_new_t, N, P, "h_new") : step.out;
      product<T>(N, P, H, raw, w_hr, hn_rows, false);
      if (!keep) continue;
      for_rows(N, P, [&](int64_t n) {  // the length mask on h
        const bool kept = keep.at(t, n);
        LSTMKIT_FOR_CHUNKS(j, kk, P) {
          step.put(load(hn_rows[n] + j, kk), load(step.prev[n] + j, kk), zh, kept, n, j, kk);
        }
      });
    }
  });
}

// ======================================================================================
// LSTM backward, in the reverse of the processing order
//
//   δh_carry = r ⊙ m + e        (r = δa_{next} W_hh from the matmul, e: what passes back
//                                 straight: d^h δh_{next} and the carry through padding)
//   δh = (δout + δh_carry) [kept]
//   A_o = (1-d^h) τ o (1-o),  K = (1-d^h) o (1-τ²),  δu = δh K
//   δC̃ = (1-d^c) δC + δh (K + A_o p_o)              without LN(C̃)
//       | (1-d^c) δC + 𝓑_c(δu) + δh A_o p_o          with it
//   δG = [δC̃ g i(1-i), δC̃ C_{t-1} f(1-f), δC̃ i(1-g²), δh A_o],  δa = 𝓑_h(δG) | δG
//   δC_prev = δC̃ (f + p_i A_i + p_f A_f) + d^c δC,  e_next = d^h δh (+ the passed carry)
// With a projection (the plain cell only): δh (P wide, kept in dh_store for ∂W_hr) in a
// first pass over the rows, then δh W_hr (N, H) by a matmul takes δh's place above.
// ======================================================================================

void lstm_backward(const Tensor& dout_t, const Tensor& dh_n_t, const Tensor& dc_n_t,
                   const Tensor& w_hh, const OptTensor& w_hr_t, const Tensor& gates_t,
                   const Tensor& taus_t, const Tensor& c_prev_t, const OptTensor& c_new_t,
                   const OptTensor& a_t, const OptTensor& mean_h_t, const OptTensor& rstd_h_t,
                   const OptTensor& mean_c_t, const OptTensor& rstd_c_t, const OptTensor& w_ph_t,
                   const OptTensor& ln_hh_t, const OptTensor& ln_c_t, const OptTensor& zh_t,
                   double zh_rate, const OptTensor& zc_t, double zc_rate, const OptTensor& keep_t,
                   const OptTensor& m_t, bool reverse, const Tensor& grad_t,
                   const OptTensor& grad_a_t, const OptTensor& du_t, const Tensor& dh0_t,
                   const Tensor& dc0_t, const OptTensor& dh_store_t) {
  on_blocks("lstm_backward", gates_t, dh_n_t, [&](auto type, const Block& B) {
    using T = decltype(type);
    const int64_t T_ = gates_t.size(0), N = B(gates_t).size(1), H = taus_t.size(2), G = 4 * H;
    const int64_t P = dh_n_t.size(1);  // h's width: the projection's size with one, else H
    const bool proj = w_hr_t.has_value();
    const auto dout = steps<const T>(B(dout_t), T_, N, P, "dout");
    const auto gates = steps<const T>(B(gates_t), T_, N, G, "gates");
    const auto taus = steps<const T>(B(taus_t), T_, N, H, "taus");
    const auto c_prev = steps<const T>(B(c_prev_t), T_, N, H, "c_prev");
    const auto c_new = steps<const T>(B(c_new_t), T_, N, H, "c_new");
    const auto a = steps<const T>(B(a_t), T_, N, G, "a");
    const auto mean_h = steps<const T>(B(mean_h_t), T_, N, 1, "mean_h");
    const auto rstd_h = steps<const T>(B(rstd_h_t), T_, N, 1, "rstd_h");
    const auto mean_c = steps<const T>(B(mean_c_t), T_, N, 1, "mean_c");
    const auto rstd_c = steps<const T>(B(rstd_c_t), T_, N, 1, "rstd_c");
    const T* w_ph = vector_of<T>(w_ph_t, 3 * H, "w_ph");
    const T* ln_hh = vector_of<T>(ln_hh_t, G, "ln_hh");
    const T* ln_c = vector_of<T>(ln_c_t, H, "ln_c");
    const auto zh = zone<T>(B(zh_t), zh_rate, T_, N, H, "zh");
    const auto zc = zone<T>(B(zc_t), zc_rate, T_, N, H, "zc");
    const auto keep = keep_of(B(keep_t), T_, N);
    const auto m = m_t ? rows<const T>(*B(m_t), N, P, "m") : Rows<const T>{};
    const auto grad = steps<T>(B(grad_t), T_, N, G, "grad");
    const auto grad_a = steps<T>(B(grad_a_t), T_, N, G, "grad_a");
    const auto du = steps<T>(B(du_t), T_, N, H, "du");
    TORCH_CHECK(!ln_hh || (a && mean_h && rstd_h && grad_a), "lstm_backward: LN(h) inputs");
    TORCH_CHECK(!ln_c || (c_new && mean_c && rstd_c && du), "lstm_backward: LN(C) inputs");
    TORCH_CHECK(gates.count == T_ && taus.count == T_, "lstm_backward: expected saved steps");
    TORCH_CHECK(proj == dh_store_t.has_value(), "lstm_backward: w_hr and dh_store go together");
    TORCH_CHECK(proj || P == H, "lstm_backward: h is ", P, " wide without a projection, C ", H);
    TORCH_CHECK(!proj || !(w_ph || ln_hh || ln_c || zh.on || zc.on || m),
                "lstm_backward: the projection is for the plain cell only");
    const auto dh_store = steps<T>(B(dh_store_t), T_, N, P, "dh_store");

    const auto opts = gates_t.options();
    const bool passes = zh.on || keep;
    Tensor r = at::empty({N, P}, opts);              // δa W_hh, written by the matmul
    const Tensor dcs = at::empty({2, N, H}, opts);  // δC carried, in turns
    const Tensor carries = passes ? at::empty({2, N, P}, opts) : Tensor();  // e, in turns
    // with a projection: δh of the step (P wide, kept in dh_store), then δh W_hr (N, H)
    const Tensor dh_raw_t = proj ? at::empty({N, H}, opts) : Tensor();
    const Rows<T> dh_raw = proj ? rows<T>(dh_raw_t, N, H, "dh_raw") : Rows<T>{};
    const auto w_hr = proj ? rows<const T>(*w_hr_t, P, H, "w_hr") : Rows<const T>{};
    const Rows<const T> dh_n = rows<const T>(B(dh_n_t), N, P, "dh_n");
    const Rows<const T> dc_n = rows<const T>(B(dc_n_t), N, H, "dc_n");
    const Rows<T> r_rows = rows<T>(r, N, P, "r");
    const auto w_hh_rows = rows<const T>(w_hh, G, P, "w_hh");
    const V<T> one(T(1)), zero(T(0));
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = time_of(T_ - 1 - k, T_, reverse);  // the reverse of the forward order
      const auto in = incoming<T>(k, dh_n, r_rows, m, carries);
      const Rows<const T> dcin = k == 0 ? dc_n : turn<T>(dcs, (k + 1) % 2);
      const auto dc_out = turn<T>(dcs, k % 2);
      const auto e_out = passes ? turn<T>(carries, k % 2) : Rows<T>{};
      const auto tau = taus.at(t), cp_rows = c_prev.at(t);
      const auto dg_rows = grad.at(t), do_rows = dout.at(t);
      if (proj) {  // δh (P wide) and what passes through padding, then δh W_hr
        const auto dh_rows = dh_store.at(t);
        for_rows(N, P, [&](int64_t n) {
          const bool kept = keep.at(t, n);
          LSTMKIT_FOR_CHUNKS(j, kk, P) {
            const V<T> carry = in.at(n, j, kk);  // no m with a projection
            (kept ? load(do_rows[n] + j, kk) + carry : zero).store(dh_rows[n] + j, kk);
            if (passes) (kept ? zero : carry).store(e_out[n] + j, kk);
          }
        });
        product<T>(N, H, P, dh_rows, w_hr, dh_raw, false);
      }
      for_rows(N, G, [&](int64_t n) {
        const T* gr = gates.at(t)[n];
        const bool kept = keep.at(t, n);
        auto dh_at = [&](int64_t j, int64_t kk, V<T>& passed) {
          if (proj) return load(dh_raw[n] + j, kk);  // 0 past the end: δh was
          const V<T> carry = in.at(n, j, kk);
          passed = kept ? zero : carry;
          return kept ? load(do_rows[n] + j, kk) + carry : zero;
        };
        auto a_o_k = [&](int64_t j, int64_t kk, V<T>& kv) {
          const V<T> o = load(gr + 3 * H + j, kk), tv = load(tau[n] + j, kk);
          V<T> ao = tv * o * (one - o);
          kv = o * (one - tv * tv);
          if (zh.on) {
            const V<T> keep_h = one - zh.at(t, n, j, kk);
            ao = ao * keep_h;
            kv = kv * keep_h;
          }
          return ao;
        };
        double s1 = 0, s2 = 0;
        T mu_c = 0, rho_c = 1;
        if (ln_c) {  // the sums of 𝓑_c over the row first
          mu_c = mean_c.at(t)[n][0];
          rho_c = rstd_c.at(t)[n][0];
          const V<T> vmu(mu_c), vrho(rho_c);
          V<T> a1(T(0)), a2(T(0));
          LSTMKIT_FOR_CHUNKS(j, kk, H) {
            V<T> passed, kv;
            const V<T> dh = dh_at(j, kk, passed);
            a_o_k(j, kk, kv);
            const V<T> u = dh * kv;
            u.store(du.at(t)[n] + j, kk);
            const V<T> dy = head(u * load(ln_c + j, kk), kk);
            a1 += dy;
            a2 = at::vec::fmadd(dy, (load(c_new.at(t)[n] + j, kk) - vmu) * vrho, a2);
          }
          s1 = hsum(a1) / H;
          s2 = hsum(a2) / H;
        }
        const V<T> vs1(static_cast<T>(s1)), vs2(static_cast<T>(s2));
        const V<T> vmu_c(mu_c), vrho_c(rho_c);
        T* dgr = dg_rows[n];
        LSTMKIT_FOR_CHUNKS(j, kk, H) {
          V<T> passed, kv;
          const V<T> dh = dh_at(j, kk, passed);
          const V<T> ao = a_o_k(j, kk, kv);
          const V<T> dc_carry = load(dcin[n] + j, kk);
          const V<T> dc_kept = kept ? dc_carry : zero;
          V<T> dct = zc.on ? dc_kept * (one - zc.at(t, n, j, kk)) : dc_kept;
          if (ln_c) {
            const V<T> chat = (load(c_new.at(t)[n] + j, kk) - vmu_c) * vrho_c;
            const V<T> dy = load(du.at(t)[n] + j, kk) * load(ln_c + j, kk);
            dct = dct + vrho_c * (dy - vs1 - chat * vs2);
            if (w_ph) dct = at::vec::fmadd(dh * ao, load(w_ph + 2 * H + j, kk), dct);
          } else {
            if (w_ph) kv = at::vec::fmadd(ao, load(w_ph + 2 * H + j, kk), kv);
            dct = at::vec::fmadd(dh, kv, dct);
          }
          const V<T> i = load(gr + j, kk), f = load(gr + H + j, kk), g = load(gr + 2 * H + j, kk);
          const V<T> cp = load(cp_rows[n] + j, kk);
          const V<T> ai = g * i * (one - i), af = cp * f * (one - f);
          (dct * ai).store(dgr + j, kk);
          (dct * af).store(dgr + H + j, kk);
          (dct * i * (one - g * g)).store(dgr + 2 * H + j, kk);
          (dh * ao).store(dgr + 3 * H + j, kk);
          V<T> ft = f;
          if (w_ph) {
            ft = at::vec::fmadd(load(w_ph + j, kk), ai, ft);
            ft = at::vec::fmadd(load(w_ph + H + j, kk), af, ft);
          }
          V<T> dcn = dct * ft;
          if (zc.on) dcn = at::vec::fmadd(zc.at(t, n, j, kk), dc_kept, dcn);
          (kept ? dcn : dc_carry).store(dc_out[n] + j, kk);
          if (passes && !proj) {
            V<T> en = passed;
            if (zh.on) en = at::vec::fmadd(zh.at(t, n, j, kk), dh, en);
            en.store(e_out[n] + j, kk);
          }
        }
        if (ln_hh) {
          norm_backward_row(dgr, a.at(t)[n], mean_h.at(t)[n][0], rstd_h.at(t)[n][0], ln_hh, G,
                            grad_a.at(t)[n]);
        }
      });
      const Rows<T> dg = (ln_hh ? grad_a : grad).at(t);
      product<T>(N, P, G, dg, w_hh_rows, r_rows, false);
    }
    // what reaches h0 and c0
    Tensor dh0 = m ? r * *B(m_t) : r;
    if (passes) dh0 = dh0 + carries[(T_ - 1) % 2];
    B(dh0_t).copy_(dh0);
    B(dc0_t).copy_(dcs[(T_ - 1) % 2]);
  });
}

// ======================================================================================
// GRU forward
//
// reset after the matmul (torch.nn, cuDNN): g^h = h̄ W_hh^T + b_hh, or with layer norm
// LN(a) γ_hh + b_hh from a = h̄ W_hh^T (written into g^h, which the backward reads);
//   r = σ(g^x_r + g^h_r),  z = σ(g^x_z + g^h_z),  n = tanh(g^x_n + r ⊙ g^h_n)
// reset before (Cho et al.): [r, z] = σ(g^x_rz + h̄ W_rz^T),  n̂ = r ⊙ h̄,
//   n = tanh(g^x_n + n̂ W_hn^T)
// then h̃ = n + z (h_prev - n), h = lerp(h̃, h_prev, d^h), the length mask, h̄ = h m.
// ======================================================================================

void gru_forward(const Tensor& gx_t, const Tensor& h0_t, const Tensor& w_hh_t,
                 const OptTensor& b_hh_t, const OptTensor& ln_hh_t, const OptTensor& zh_t,
                 double zh_rate, const OptTensor& keep_t, const OptTensor& m_t, bool reset_after,
                 bool reverse, bool save, const Tensor& rz_t, const Tensor& n_t,
                 const OptTensor& n_hat_t, const OptTensor& gh_t, const OptTensor& a_t,
                 const Tensor& out_t, const OptTensor& h_store_t, const OptTensor& mean_h_t,
                 const OptTensor& rstd_h_t) {
  on_blocks("gru_forward", gx_t, h0_t, [&](auto type, const Block& B) {
    using T = decltype(type);
    const int64_t T_ = gx_t.size(0), N = B(h0_t).size(0), H = h0_t.size(1), G = 3 * H;
    const auto gx = steps<const T>(B(gx_t), T_, N, G, "gx");
    const T* b_hh = vector_of<T>(b_hh_t, G, "b_hh");
    const T* ln_hh = vector_of<T>(ln_hh_t, G, "ln_hh");
    const auto zh = zone<T>(B(zh_t), zh_rate, T_, N, H, "zh");
    const auto keep = keep_of(B(keep_t), T_, N);
    const auto rz = steps<T>(B(rz_t), T_, N, 2 * H, "rz");
    const auto nn = steps<T>(B(n_t), T_, N, H, "n");
    const auto n_hat = steps<T>(B(n_hat_t), T_, N, H, "n_hat");
    const auto gh = steps<T>(B(gh_t), T_, N, G, "gh");
    const auto a = steps<T>(B(a_t), T_, N, G, "a");
    const auto out = steps<T>(B(out_t), T_, N, H, "out");
    const auto mean_h = steps<T>(B(mean_h_t), T_, N, 1, "mean_h");
    const auto rstd_h = steps<T>(B(rstd_h_t), T_, N, 1, "rstd_h");
    const auto hidden = hidden_of<T>(B(h0_t), out, B(h_store_t), B(m_t), save, reverse, T_);
    TORCH_CHECK(reset_after ? static_cast<bool>(gh) : static_cast<bool>(n_hat),
                "gru_forward: the reset after needs gh, before it n_hat");
    TORCH_CHECK(!ln_hh || (reset_after && a && mean_h && rstd_h), "gru_forward: LN(h) inputs");
    TORCH_CHECK(!keep || h_store_t, "gru_forward: a length mask needs h_store");

    // W_hh^T (H, 3H) and its [r, z] and n column blocks, rows of 3H
    const auto w_hh = rows<const T>(w_hh_t, H, G, "w_hh_t");
    const Rows<const T> w_rz{w_hh.p, w_hh.s}, w_n{w_hh.p + 2 * H, w_hh.s};
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = time_of(k, T_, reverse);
      const Rows<const T> h_bar = hidden.matmul_rows(k, t);
      const auto step = hidden.step(k, t);
      const auto rz_rows = rz.at(t), n_rows = nn.at(t), gxr = gx.at(t);
      if (reset_after) {  // g^h = h̄ W_hh^T: into a for LN, else into gh (b_hh in the pass)
        product<T>(N, G, H, h_bar, w_hh, ln_hh ? a.at(t) : gh.at(t), false);
      } else {  // [r, z] = σ(gx + h̄ W_rz^T), n̂ = r ⊙ h̄, then n_pre = n̂ W_n^T (gx in the pass)
        product<T>(N, 2 * H, H, h_bar, w_rz, rz_rows, false);
        const auto nh = n_hat.at(t);
        for_rows(N, 2 * H, [&](int64_t n) {
          T* rzr = rz_rows[n];
          LSTMKIT_FOR_CHUNKS(j, kk, 2 * H) {
            sigmoid(load(rzr + j, kk) + load(gxr[n] + j, kk)).store(rzr + j, kk);
          }
          LSTMKIT_FOR_CHUNKS(j, kk, H) {
            (load(rzr + j, kk) * load(h_bar[n] + j, kk)).store(nh[n] + j, kk);
          }
        });
        product<T>(N, H, H, nh, w_n, n_rows, false);
      }
      const auto ghr = gh ? gh.at(t) : Rows<T>{};
      for_rows(N, G, [&](int64_t n) {
        if (ln_hh) {  // g^h = LN(a) γ_hh (+ b_hh), written for the backward
          const T* ar = a.at(t)[n];
          const auto [mu, rho] = moments(ar, G, mean_h.at(t)[n], rstd_h.at(t)[n]);
          const V<T> vmu(mu), vrho(rho);
          LSTMKIT_FOR_CHUNKS(j, kk, G) {
            V<T> v = (load(ar + j, kk) - vmu) * vrho * load(ln_hh + j, kk);
            if (b_hh) v = v + load(b_hh + j, kk);
            v.store(ghr[n] + j, kk);
          }
        } else if (reset_after && b_hh) {  // g^h + b_hh, written for the backward
          T* g = ghr[n];
          LSTMKIT_FOR_CHUNKS(j, kk, G) { (load(g + j, kk) + load(b_hh + j, kk)).store(g + j, kk); }
        }
        const bool kept = keep.at(t, n);
        T* rzr = rz_rows[n];
        LSTMKIT_FOR_CHUNKS(j, kk, H) {
          V<T> z, nv;
          if (reset_after) {
            const T* x = gxr[n];
            const T* g = ghr[n];
            const V<T> r = sigmoid(load(x + j, kk) + load(g + j, kk));
            z = sigmoid(load(x + H + j, kk) + load(g + H + j, kk));
            r.store(rzr + j, kk);
            z.store(rzr + H + j, kk);
            nv = tanh_of(at::vec::fmadd(r, load(g + 2 * H + j, kk), load(x + 2 * H + j, kk)));
          } else {
            z = load(rzr + H + j, kk);
            nv = tanh_of(load(n_rows[n] + j, kk) + load(gxr[n] + 2 * H + j, kk));
          }
          nv.store(n_rows[n] + j, kk);
          const V<T> hp = load(step.prev[n] + j, kk);
          step.put(at::vec::fmadd(z, hp - nv, nv), hp, zh, kept, n, j, kk);
        }
      });
    }
  });
}

// ======================================================================================
// GRU backward, in the reverse of the processing order
//
//   δh_carry = r ⊙ m + e,  δh = (δout + δh_carry) [kept]
//   a^n = (1-d)(1-z)(1-n²),  a^z = (1-d)(h_prev - n) z(1-z),  ζ = d + (1-d) z
//   δn_pre = δh a^n,  e_next = ζ δh (+ the passed carry)
// reset after: δg^h = [δh a^n n̂ r(1-r), δh a^z, δh a^n r],  δa = 𝓑_h(δg^h) | δg^h,
//   r_next = δa W_hh
// reset before: δz_pre = δh a^z;  δ(r h̄) = δn_pre W_hn;  δr_pre = δ(r h̄) h̄_prev r(1-r);
//   r_next = δ(r h̄) r + [δr_pre, δz_pre] W_rz
// ======================================================================================

void gru_backward(const Tensor& dout_t, const Tensor& dh_n_t, const Tensor& h0_t,
                  const Tensor& w_hh, const Tensor& rz_t, const Tensor& n_t,
                  const OptTensor& n_hat_t, const Tensor& hs_t, const OptTensor& a_t,
                  const OptTensor& mean_h_t, const OptTensor& rstd_h_t, const OptTensor& ln_hh_t,
                  const OptTensor& zh_t, double zh_rate, const OptTensor& keep_t,
                  const OptTensor& m_t, bool reset_after, bool reverse, const Tensor& dg_t,
                  const OptTensor& grad_a_t, const Tensor& dn_t, const Tensor& dh0_t) {
  on_blocks("gru_backward", rz_t, dh_n_t, [&](auto type, const Block& B) {
    using T = decltype(type);
    const int64_t T_ = rz_t.size(0), N = B(rz_t).size(1), H = n_t.size(2), G = 3 * H;
    const auto dout = steps<const T>(B(dout_t), T_, N, H, "dout");
    const auto rz = steps<const T>(B(rz_t), T_, N, 2 * H, "rz");
    const auto nn = steps<const T>(B(n_t), T_, N, H, "n");
    const auto n_hat = steps<const T>(B(n_hat_t), T_, N, H, "n_hat");
    const auto hs = steps<const T>(B(hs_t), T_, N, H, "hs");
    const auto h0 = rows<const T>(B(h0_t), N, H, "h0");
    const auto a = steps<const T>(B(a_t), T_, N, G, "a");
    const auto mean_h = steps<const T>(B(mean_h_t), T_, N, 1, "mean_h");
    const auto rstd_h = steps<const T>(B(rstd_h_t), T_, N, 1, "rstd_h");
    const T* ln_hh = vector_of<T>(ln_hh_t, G, "ln_hh");
    const auto zh = zone<T>(B(zh_t), zh_rate, T_, N, H, "zh");
    const auto keep = keep_of(B(keep_t), T_, N);
    const auto m = m_t ? rows<const T>(*B(m_t), N, H, "m") : Rows<const T>{};
    const auto dg = steps<T>(B(dg_t), T_, N, G, "dg");
    const auto grad_a = steps<T>(B(grad_a_t), T_, N, G, "grad_a");
    const auto dn = steps<T>(B(dn_t), T_, N, H, "dn");
    TORCH_CHECK(!reset_after || n_hat, "gru_backward: the reset after needs n_hat");
    TORCH_CHECK(!ln_hh || (a && mean_h && rstd_h && grad_a), "gru_backward: LN(h) inputs");

    const auto opts = rz_t.options();
    const Tensor r = at::empty({N, H}, opts);  // δa W_hh, written by the matmuls
    const Tensor carries = at::empty({2, N, H}, opts);
    const Tensor drh = reset_after ? Tensor() : at::empty({N, H}, opts);
    const auto r_rows = rows<T>(r, N, H, "r");
    const auto d_rh = reset_after ? Rows<T>{} : rows<T>(drh, N, H, "drh");
    // W_hh (3H, H) and its [r, z] and n row blocks: δ(r h̄) = δn_pre W_hn
    const auto w = rows<const T>(w_hh, G, H, "w_hh");
    const Rows<const T> w_rz{w.p, w.s}, w_n{w.p + 2 * H * w.s, w.s};
    const auto dh_n = rows<const T>(B(dh_n_t), N, H, "dh_n");
    const V<T> one(T(1)), zero(T(0));
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = time_of(T_ - 1 - k, T_, reverse);
      const auto in = incoming<T>(k, dh_n, r_rows, m, carries);
      const auto e_out = turn<T>(carries, k % 2);
      // the state step t read in the forward: h0 at the forward's first step (our last)
      const auto hp_rows = k == T_ - 1 ? h0 : hs.at(reverse ? t + 1 : t - 1);
      for_rows(N, G, [&](int64_t row) {
        const bool kept = keep.at(t, row);
        const T* rzr = rz.at(t)[row];
        T* dgr = dg.at(t)[row];
        LSTMKIT_FOR_CHUNKS(j, kk, H) {
          const V<T> carry = in.at(row, j, kk);
          const V<T> dh = kept ? load(dout.at(t)[row] + j, kk) + carry : zero;
          const V<T> z = load(rzr + H + j, kk), nv = load(nn.at(t)[row] + j, kk);
          const V<T> hp = load(hp_rows[row] + j, kk);
          V<T> an = (one - z) * (one - nv * nv);
          V<T> az = (hp - nv) * z * (one - z);
          V<T> zeta = z;
          if (zh.on) {
            const V<T> d = zh.at(t, row, j, kk), keep_h = one - d;
            an = an * keep_h;
            az = az * keep_h;
            zeta = at::vec::fmadd(keep_h, z, d);
          }
          const V<T> dnp = dh * an;
          dnp.store(dn.at(t)[row] + j, kk);
          (dh * az).store(dgr + H + j, kk);
          if (reset_after) {
            const V<T> rv = load(rzr + j, kk);
            (dnp * load(n_hat.at(t)[row] + j, kk) * rv * (one - rv)).store(dgr + j, kk);
            (dnp * rv).store(dgr + 2 * H + j, kk);
          }
          at::vec::fmadd(zeta, dh, kept ? zero : carry).store(e_out[row] + j, kk);
        }
        if (ln_hh) {
          norm_backward_row(dgr, a.at(t)[row], mean_h.at(t)[row][0], rstd_h.at(t)[row][0], ln_hh,
                            G, grad_a.at(t)[row]);
        }
      });
      if (reset_after) {
        const auto d = ln_hh ? grad_a.at(t) : dg.at(t);
        product<T>(N, H, G, d, w, r_rows, false);
      } else {
        const auto dnr = dn.at(t);
        product<T>(N, H, H, dnr, w_n, d_rh, false);  // δ(r ⊙ h̄_{t-1})
        for_rows(N, 2 * H, [&](int64_t row) {  // δr_pre and the r part of r_next
          const T* rzr = rz.at(t)[row];
          T* dgr = dg.at(t)[row];
          LSTMKIT_FOR_CHUNKS(j, kk, H) {
            const V<T> rv = load(rzr + j, kk), d = load(d_rh[row] + j, kk);
            V<T> hb = load(hp_rows[row] + j, kk);
            if (m) hb = hb * load(m[row] + j, kk);
            (d * hb * rv * (one - rv)).store(dgr + j, kk);
            (d * rv).store(r_rows[row] + j, kk);
          }
        });
        const auto dgr = dg.at(t);
        product<T>(N, H, 2 * H, dgr, w_rz, r_rows, true);
      }
    }
    Tensor dh0 = m ? r * *B(m_t) : r;
    B(dh0_t).copy_(dh0 + carries[(T_ - 1) % 2]);
  });
}


// ======================================================================================
// A population of plain LSTMs over one input: the weight-space WOA's whales, P weight
// sets (lstmkit.woa.weights). Whale p's direction is the loop above without saving:
//   gx_p = x W_ih,p^T (T, N, 4H),  b_p = b_ih,p + b_hh,p added in the loop,
// and its h after the last step processed is row p of the result (P, N, H). The whales
// run on threads, each its whole loop (one fork and join per call).
// ======================================================================================

Tensor lstm_population(const Tensor& x, const Tensor& w_ih, const Tensor& w_hh_t,
                       const Tensor& b, bool reverse) {
  TORCH_CHECK(x.dim() == 3 && w_ih.dim() == 3 && w_ih.size(2) == x.size(2),
              "lstm_population: expected x (T, N, D) and w_ih (P, 4H, D), got ", x.sizes(),
              " and ", w_ih.sizes());
  const int64_t T_ = x.size(0), N = x.size(1), P = w_ih.size(0), G = w_ih.size(1), H = G / 4;
  TORCH_CHECK(w_hh_t.dim() == 3 && w_hh_t.size(0) == P && b.dim() == 2 && b.size(0) == P,
              "lstm_population: expected w_hh_t (P, H, 4H) and b (P, 4H) for ", P,
              " whales, got ", w_hh_t.sizes(), " and ", b.sizes());
  const Tensor inputs = x.reshape({T_ * N, x.size(2)});
  Tensor finals = at::empty({P, N, H}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_population", [&] {
    const at::ThreadLocalState state;
    at::parallel_for(0, P, 1, [&](int64_t begin, int64_t end) {
      const at::ThreadLocalStateGuard guard(state);
      const Tensor zeros = at::zeros({N, H}, x.options());
      const Tensor gates = at::empty({1, N, G}, x.options());
      const Tensor taus = at::empty({1, N, H}, x.options());
      const Tensor c_store = at::empty({2, N, H}, x.options());
      const Tensor out = at::empty({T_, N, H}, x.options());
      for (int64_t p = begin; p < end; ++p) {
        const Tensor gx = at::mm(inputs, w_ih[p].t()).view({T_, N, G});
        lstm_forward(gx, zeros, zeros, w_hh_t[p], b[p], {}, {}, {}, {}, {}, {}, 0.0, {}, 0.0, {},
                     {}, reverse, false, gates, taus, {}, c_store, out, {}, {}, {}, {}, {}, {});
        finals[p].copy_(out[reverse ? 0 : T_ - 1]);
      }
    });
  });
  return finals;
}

}  // namespace

TORCH_LIBRARY(lstmkit, lib) {
  lib.def(
      "lstm_forward(Tensor(z!) gx, Tensor h0, Tensor c0, Tensor w_hh_t, Tensor? b, Tensor? w_hr_t, "
      "Tensor? w_ph, Tensor? ln_hh, Tensor? ln_c, Tensor? ln_c_bias, Tensor? zh, float zh_rate, "
      "Tensor? zc, float zc_rate, Tensor? keep, Tensor? m, bool reverse, bool save, "
      "Tensor(a!) gates, Tensor(b!) taus, Tensor(c!)? a, Tensor(d!) c_store, Tensor(e!) out, "
      "Tensor(f!)? h_store, Tensor(g!)? new_c, Tensor(h!)? mean_h, Tensor(i!)? rstd_h, "
      "Tensor(j!)? mean_c, Tensor(k!)? rstd_c) -> ()");
  lib.def(
      "lstm_backward(Tensor dout, Tensor dh_n, Tensor dc_n, Tensor w_hh, Tensor? w_hr, "
      "Tensor gates, Tensor taus, Tensor c_prev, Tensor? c_new, Tensor? a, Tensor? mean_h, "
      "Tensor? rstd_h, Tensor? mean_c, Tensor? rstd_c, Tensor? w_ph, Tensor? ln_hh, Tensor? ln_c, "
      "Tensor? zh, float zh_rate, Tensor? zc, float zc_rate, Tensor? keep, Tensor? m, "
      "bool reverse, Tensor(a!) grad, Tensor(b!)? grad_a, Tensor(c!)? du, Tensor(d!) dh0, "
      "Tensor(e!) dc0, Tensor(f!)? dh_store) -> ()");
  lib.def(
      "gru_forward(Tensor gx, Tensor h0, Tensor w_hh_t, Tensor? b_hh, Tensor? ln_hh, Tensor? zh, "
      "float zh_rate, Tensor? keep, Tensor? m, bool reset_after, bool reverse, bool save, "
      "Tensor(a!) rz, Tensor(b!) n, Tensor(c!)? n_hat, Tensor(d!)? gh, Tensor(e!)? a, "
      "Tensor(f!) out, Tensor(g!)? h_store, Tensor(h!)? mean_h, Tensor(i!)? rstd_h) -> ()");
  lib.def(
      "gru_backward(Tensor dout, Tensor dh_n, Tensor h0, Tensor w_hh, Tensor rz, Tensor n, "
      "Tensor? n_hat, Tensor hs, Tensor? a, Tensor? mean_h, Tensor? rstd_h, Tensor? ln_hh, "
      "Tensor? zh, float zh_rate, Tensor? keep, Tensor? m, bool reset_after, bool reverse, "
      "Tensor(a!) dg, Tensor(b!)? grad_a, Tensor(c!) dn, Tensor(d!) dh0) -> ()");
  lib.def(
      "lstm_population(Tensor x, Tensor w_ih, Tensor w_hh_t, Tensor b, bool reverse) -> Tensor");
}

TORCH_LIBRARY_IMPL(lstmkit, CPU, lib) {
  lib.impl("lstm_forward", &lstm_forward);
  lib.impl("lstm_backward", &lstm_backward);
  lib.impl("gru_forward", &gru_forward);
  lib.impl("gru_backward", &gru_backward);
  lib.impl("lstm_population", &lstm_population);
}
