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
