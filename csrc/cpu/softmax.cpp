// CPU softmax and log_softmax; the maths and the order of summation are in softmax.h. Contiguous rows (inner == 1)
// are walked one at a time, their sums in eight interleaved double lanes combined in a fixed order. Strided rows
// (inner > 1) are walked as blocks of kColumns neighbouring rows, one pass over the D dimension per step, so the
// inner loops run over contiguous memory; each row's sums still run in index order. OpenMP splits rows (or blocks
// of them) statically, and no sum depends on the split: the same bits for any thread count.
#include "softmax.h"
#include <algorithm>
#include <cmath>
#include <limits>
#include "cpu/parallel.h"

namespace gradcore {

namespace {

constexpr int64_t kColumns = 64;  // strided rows handled together

// max that lets a NaN through (so a row with a NaN comes out NaN, as in PyTorch).
template <typename T> inline T nan_max(T a, T b) { return (b > a || b != b) ? b : a; }

template <typename T> inline double lanes_sum(const double* lane) {
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

// max over a contiguous row in eight lanes (independent chains the compiler vectorises), NaN-propagating.
template <typename T> inline T row_max(const T* x, int64_t D) {
  T m8[8];
  for (int l = 0; l < 8; ++l) m8[l] = -std::numeric_limits<T>::infinity();
  int64_t j = 0;
  for (; j + 8 <= D; j += 8)
    for (int l = 0; l < 8; ++l) m8[l] = nan_max(m8[l], x[j + l]);
  for (; j < D; ++j) m8[0] = nan_max(m8[0], x[j]);
  T m = m8[0];
  for (int l = 1; l < 8; ++l) m = nan_max(m, m8[l]);
  return m;
}

// sum of a contiguous row in eight interleaved double lanes, combined in a fixed order.
template <typename T> inline double row_sum(const T* v, int64_t D) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= D; j += 8)
    for (int l = 0; l < 8; ++l) lane[l] += (double)v[j + l];
  for (; j < D; ++j) lane[0] += (double)v[j];
  return lanes_sum<T>(lane);
}

// Three simple loops per row, each of which vectorises: softmax writes e^(x - m) into y, sums y, then scales it;
// log_softmax sums the exponentials through y as scratch, then writes (x - m) - log s.
template <typename T> void forward_row(const T* x, T* y, int64_t D, bool log) {
  const T m = row_max(x, D);
  for (int64_t j = 0; j < D; ++j) y[j] = softmax_exp<T>(x[j] - m);
  const double s = row_sum(y, D);
  if (log) {
    const T shift = (T)std::log(s);
    for (int64_t k = 0; k < D; ++k) y[k] = (x[k] - m) - shift;
  } else {
    const T inv = (T)(1.0 / s);
    for (int64_t k = 0; k < D; ++k) y[k] *= inv;
  }
}

template <typename T> void backward_row(const T* y, const T* g, T* dx, int64_t D, bool log) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  if (log) {
    for (; j + 8 <= D; j += 8)
      for (int l = 0; l < 8; ++l) lane[l] += (double)g[j + l];
    for (; j < D; ++j) lane[0] += (double)g[j];
    const T s = (T)lanes_sum<T>(lane);
    for (int64_t k = 0; k < D; ++k) dx[k] = g[k] - softmax_exp<T>(y[k]) * s;
  } else {
    for (; j + 8 <= D; j += 8)
      for (int l = 0; l < 8; ++l) lane[l] += (double)g[j + l] * (double)y[j + l];
    for (; j < D; ++j) lane[0] += (double)g[j] * (double)y[j];
    const T s = (T)lanes_sum<T>(lane);
    for (int64_t k = 0; k < D; ++k) dx[k] = y[k] * (g[k] - s);
  }
}

// Rows [i0, i0 + n) of outer index o, strided by inner; n <= kColumns.
template <typename T> void forward_columns(const T* x, T* y, int64_t D, int64_t inner, int64_t n, bool log) {
  T m[kColumns];
  double s[kColumns];
  for (int64_t c = 0; c < n; ++c) {
    m[c] = -std::numeric_limits<T>::infinity();
    s[c] = 0.0;
  }
  for (int64_t j = 0; j < D; ++j)
    for (int64_t c = 0; c < n; ++c) m[c] = nan_max(m[c], x[j * inner + c]);
  for (int64_t j = 0; j < D; ++j)
    for (int64_t c = 0; c < n; ++c) s[c] += (double)softmax_exp<T>(x[j * inner + c] - m[c]);
  T k[kColumns];
  for (int64_t c = 0; c < n; ++c) k[c] = log ? (T)std::log(s[c]) : (T)(1.0 / s[c]);
  for (int64_t j = 0; j < D; ++j)
    for (int64_t c = 0; c < n; ++c) {
      const T d = x[j * inner + c] - m[c];
      y[j * inner + c] = log ? d - k[c] : softmax_exp<T>(d) * k[c];
    }
}

template <typename T>
void backward_columns(const T* y, const T* g, T* dx, int64_t D, int64_t inner, int64_t n, bool log) {
  double s[kColumns];
  for (int64_t c = 0; c < n; ++c) s[c] = 0.0;
  for (int64_t j = 0; j < D; ++j)
    for (int64_t c = 0; c < n; ++c) {
      const int64_t o = j * inner + c;
      s[c] += log ? (double)g[o] : (double)g[o] * (double)y[o];
    }
  T k[kColumns];
  for (int64_t c = 0; c < n; ++c) k[c] = (T)s[c];
  for (int64_t j = 0; j < D; ++j)
    for (int64_t c = 0; c < n; ++c) {
      const int64_t o = j * inner + c;
      dx[o] = log ? g[o] - softmax_exp<T>(y[o]) * k[c] : y[o] * (g[o] - k[c]);
    }
}

// Calls row(offset) for each contiguous row, or columns(offset, n) for each block of strided rows.
template <typename Row, typename Columns> void for_each_row(const SoftmaxParams& p, Row row, Columns columns) {
  const int64_t work = p.outer * p.dim * p.inner;
  if (p.inner == 1) {
#pragma omp parallel for schedule(static) if (work >= cpu::kParallelThreshold)
    for (int64_t o = 0; o < p.outer; ++o) row(o * p.dim);
    return;
  }
  const int64_t blocks = (p.inner + kColumns - 1) / kColumns;
#pragma omp parallel for collapse(2) schedule(static) if (work >= cpu::kParallelThreshold)
  for (int64_t o = 0; o < p.outer; ++o)
    for (int64_t b = 0; b < blocks; ++b)
      columns(o * p.dim * p.inner + b * kColumns, std::min(kColumns, p.inner - b * kColumns));
}

}  // namespace

void softmax_forward_cpu(const Array& x, Array& y, const SoftmaxParams& p) {
  if (p.outer * p.dim * p.inner == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data_as<T>();
    T* py = y.data_as<T>();
    for_each_row(
        p, [&](int64_t off) { forward_row<T>(px + off, py + off, p.dim, p.log); },
        [&](int64_t off, int64_t n) { forward_columns<T>(px + off, py + off, p.dim, p.inner, n, p.log); });
  });
}

void softmax_backward_cpu(const Array& y, const Array& g, Array& dx, const SoftmaxParams& p) {
  if (p.outer * p.dim * p.inner == 0) return;
  dispatch_float(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *py = y.data_as<T>(), *pg = g.data_as<T>();
    T* pdx = dx.data_as<T>();
    for_each_row(
        p, [&](int64_t off) { backward_row<T>(py + off, pg + off, pdx + off, p.dim, p.log); },
        [&](int64_t off, int64_t n) {
          backward_columns<T>(py + off, pg + off, pdx + off, p.dim, p.inner, n, p.log);
        });
  });
}

}  // namespace gradcore
