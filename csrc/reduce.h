// sum over a set of axes: out[k] = sum over the reduced coordinates r of x[k, r] (kept coordinates k, in order).
// Sums accumulate in double whatever the dtype, and in an order fixed by the shape alone (fixed chunks of the
// reduced range, combined in chunk order), so results are bitwise identical run after run and for any thread count.
// mean is sum times 1/R, done by the caller.
#pragma once
#include <vector>
#include "array.h"

namespace gradcore {

constexpr int kMaxReduceDims = 8;  // dimensions of x (as elementwise ops' kMaxDims); reduce_layout checks it

// x viewed as alternating kept and reduced dimensions: what both devices' loops walk.
struct ReduceLayout {
  int kept_ndim = 0, reduced_ndim = 0;
  int64_t kept_shape[kMaxReduceDims] = {}, kept_stride[kMaxReduceDims] = {};
  int64_t reduced_shape[kMaxReduceDims] = {}, reduced_stride[kMaxReduceDims] = {};
  int64_t kept_numel = 1, reduced_numel = 1;
};
ReduceLayout reduce_layout(const Shape& shape, const std::vector<int>& axes);  // axes: sorted, unique, >= 0

constexpr int64_t kReduceChunk = 16384;  // reduced elements summed per partial

void sum_cpu(const Array& x, Array& out, const ReduceLayout& layout);
#ifdef GRADCORE_WITH_CUDA
void sum_cuda(const Array& x, Array& out, const ReduceLayout& layout);
#endif

}  // namespace gradcore
