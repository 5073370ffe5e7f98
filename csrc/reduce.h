// sum over a set of axes: out[k] = sum over the reduced coordinates r of x[k, r] (kept coordinates k, in order).
// Sums accumulate in double whatever the dtype, and in an order fixed by the shape alone (fixed chunks of the
// reduced range, combined in chunk order), so results are bitwise identical run after run and for any thread count.
// mean is sum times 1/R, done by the caller.
// int64 and bool arrays sum into int64 (PyTorch's rule: a count of true values is an int64), accumulated in int64
// with two's-complement wrap-around on overflow as PyTorch; integer addition is associative, so any order gives the
// same result.
#pragma once
#include <cstdint>
#include <type_traits>
#include "array.h"
#include "layout.h"  // ReduceLayout, its offsets and the check of kMaxDims

namespace gradcore {

// What a sum of T elements accumulates in and what it returns: double and T for floats, int64 for int64 and bool.
template <typename T> using SumAccumulator = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
template <typename T> using SumOutput = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;
inline DType sum_output_dtype(DType t) { return is_floating(t) ? t : DType::int64; }

// acc + x, wrapping on int64 overflow (signed overflow is undefined in C++; PyTorch wraps).
template <typename Acc> GRADCORE_HD Acc sum_add(Acc acc, Acc x) {
  if constexpr (std::is_same_v<Acc, int64_t>) return (int64_t)((uint64_t)acc + (uint64_t)x);
  else return acc + x;
}

constexpr int64_t kReduceChunk = 16384;  // reduced elements summed per partial

void sum_cpu(const Array& x, Array& out, const ReduceLayout& layout);
#ifdef GRADCORE_WITH_CUDA
void sum_cuda(const Array& x, Array& out, const ReduceLayout& layout);
#endif

}  // namespace gradcore

// The reductions beyond sum. Each keeps sum's ReduceLayout (kept element k, reduced coordinate r) and its rule:
// a fixed order of combination, no atomics, every output element written.
#include <cmath>

namespace gradcore {

// ---- max and min: amax, amin, max(dim), min(dim), argmax, argmin --------------------------------------------------
// values[k] = the largest (smallest) x[k, r] over the reduced coordinates r, indices[k] = the first r holding it
// (row-major over the reduced dimensions; for one reduced dimension, the index along it). A NaN beats any number,
// so a row holding a NaN gives NaN and the first NaN's index (PyTorch on the CPU). What is picked is the least
// element of a total order (NaN first, then the larger (smaller) value, then the smaller index), so the partial
// winners of any split of the range combine, in any order, to the element one sequential scan would pick: the
// CUDA blocks' trees and the CPU's chunks give the same bits for any thread count. The reduced range is non-empty
// (the binding refuses an empty one, as PyTorch).
// Gradients (reduce_extreme_backward): dL/dx[k, r] = g[k] / count[k] for each x[k, r] tied with values[k] (a NaN
// ties with a NaN), 0 elsewhere (split_ties: amax, amin, max() without dim, PyTorch's rule), or g[k] at the first
// tie only, the element indices[k] names (max(dim), min(dim)). Every element of dL/dx is written.
void reduce_extreme_cpu(const Array& x, Array& values, int64_t* indices, const ReduceLayout& layout, bool is_max);
void reduce_extreme_backward_cpu(const Array& x, const Array& values, const Array& grad, Array& gx,
                                 const ReduceLayout& layout, bool split_ties);
#ifdef GRADCORE_WITH_CUDA
void reduce_extreme_cuda(const Array& x, Array& values, int64_t* indices, const ReduceLayout& layout, bool is_max);
void reduce_extreme_backward_cuda(const Array& x, const Array& values, const Array& grad, Array& gx,
                                  const ReduceLayout& layout, bool split_ties);
#endif

// Does candidate (v, i) displace best (best_v, best_i)? An index < 0 marks "nothing yet" (a thread with no element).
template <typename T>
GRADCORE_HD bool extreme_better(T v, int64_t i, T best_v, int64_t best_i, bool is_max) {
  if (i < 0) return false;
  if (best_i < 0) return true;
  const bool nan = v != v, best_nan = best_v != best_v;
  if (nan || best_nan) return nan && (!best_nan || i < best_i);
  if (v == best_v) return i < best_i;
  return is_max ? v > best_v : v < best_v;
}

template <typename T> GRADCORE_HD bool extreme_tie(T x, T value) { return x == value || (x != x && value != value); }

// ---- vector norms: gradcore.linalg.vector_norm for finite ord ------------------------------------------------------
// out[k] = (sum_r |x[k, r]|^p)^(1/p), accumulated in double in the order of sum (fixed chunks, combined in order);
// p = 0 counts the non-zero elements (a NaN counts), p = 1 sums |x|, p = 2 is sqrt(sum x^2); p = +-inf is amax/amin
// of |x|, composed in Python. Gradient (PyTorch's, linalg_vector_norm_backward), with s = sgn(x), n = out[k]:
//   p = 0: 0;  p = 1: s g;  p = 2: x g / n;  p < 1: s |x|^(p-1) g n^(1-p) (0 where x = 0);
//   otherwise s |x|^(p-1) g / n^(p-1);  and 0 wherever n = 0 (the norm's gradient at zero is 0, as PyTorch).
void vector_norm_cpu(const Array& x, Array& out, const ReduceLayout& layout, double p);
void vector_norm_backward_cpu(const Array& x, const Array& norm, const Array& grad, Array& gx,
                              const ReduceLayout& layout, double p);
#ifdef GRADCORE_WITH_CUDA
void vector_norm_cuda(const Array& x, Array& out, const ReduceLayout& layout, double p);
void vector_norm_backward_cuda(const Array& x, const Array& norm, const Array& grad, Array& gx,
                               const ReduceLayout& layout, double p);
#endif

template <typename T> GRADCORE_HD double vector_norm_term(T x, double p) {
  const double a = fabs((double)x);
  if (p == 2.0) return a * a;
  if (p == 1.0) return a;
  if (p == 0.0) return x != T(0) ? 1.0 : 0.0;
  return pow(a, p);
}

GRADCORE_HD double vector_norm_finish(double acc, double p) {
  if (p == 2.0) return sqrt(acc);
  if (p == 1.0 || p == 0.0) return acc;
  return pow(acc, 1.0 / p);
}

template <typename T> GRADCORE_HD T vector_norm_grad(T x, T norm, T g, double p) {
  const double xd = (double)x, n = (double)norm, gd = (double)g;
  if (p == 0.0) return T(0);
  const double s = xd > 0 ? 1.0 : xd < 0 ? -1.0 : xd;  // sgn: 0 at 0, NaN at NaN
  if (p == 1.0) return (T)(s * gd);
  if (n == 0.0) return T(0);
  if (p == 2.0) return (T)(xd * (gd / n));
  const double a = fabs(xd);
  if (p < 1.0) return xd == 0.0 ? T(0) : (T)(s * pow(a, p - 1.0) * gd * pow(n, 1.0 - p));
  return (T)(s * pow(a, p - 1.0) * (gd / pow(n, p - 1.0)));
}

}  // namespace gradcore
