// sum over a set of axes: out[k] = sum over the reduced coordinates r of x[k, r] (kept coordinates k, in order).
// Sums accumulate in double whatever the dtype, and in an order fixed by the shape alone (fixed chunks of the
// reduced range, combined in chunk order), so results are bitwise identical run after run and for any thread count.
// mean is sum times 1/R, done by the caller.
#pragma once
#include "array.h"
#include "layout.h"  // ReduceLayout, its offsets and the check of kMaxDims

namespace gradcore {

constexpr int64_t kReduceChunk = 16384;  // reduced elements summed per partial

void sum_cpu(const Array& x, Array& out, const ReduceLayout& layout);
#ifdef GRADCORE_WITH_CUDA
void sum_cuda(const Array& x, Array& out, const ReduceLayout& layout);
#endif

}  // namespace gradcore
