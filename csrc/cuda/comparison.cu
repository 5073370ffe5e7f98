// CUDA twins of cpu/comparison.cpp: grid-stride loops; the rules are in comparison.h.
#include <type_traits>
#include "comparison.h"
#include "cuda/launch.cuh"

namespace gradcore {

template <CompareOp OP, typename T>
__global__ void compare_kernel(const T* a, const T* b, bool* out, BroadcastLayout layout) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < layout.numel;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t oa = i, ob = i;
    if (!layout.same_shape) broadcast_offsets(layout, i, oa, ob);
    out[i] = apply_compare<OP, T>(a[oa], b[ob]);
  }
}

template <typename T>
__global__ void where_kernel(const bool* cond, const T* a, const T* b, T* out, WhereLayout layout) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < layout.numel;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t oc, oa, ob;
    where_offsets(layout, i, oc, oa, ob);
    out[i] = cond[oc] ? a[oa] : b[ob];
  }
}

void compare_cuda(const Array& a, const Array& b, Array& out, CompareOp op, const BroadcastLayout& layout) {
  const int64_t n = layout.numel;
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(a);
  dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    dispatch_compare(op, [&](auto op_constant) {
      constexpr CompareOp OP = decltype(op_constant)::value;
      cuda::launch("compare_kernel", compare_kernel<OP, T>, cuda::grid_for(n, 256), 256, s, a.data_as<T>(),
          b.data_as<T>(), out.data_as<bool>(), layout);
    });
  });
}

void where_cuda(const Array& cond, const Array& a, const Array& b, Array& out, const WhereLayout& layout) {
  const int64_t n = layout.numel;
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(a);
  dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("where_kernel", where_kernel<T>, cuda::grid_for(n, 256), 256, s, cond.data_as<bool>(),
        a.data_as<T>(), b.data_as<T>(), out.data_as<T>(), layout);
  });
}

}  // namespace gradcore
