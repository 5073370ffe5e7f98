// CUDA twins of cpu/elementwise.cpp: grid-stride loops; the maths is in elementwise.h.
#include <type_traits>
#include "cuda/launch.cuh"
#include "elementwise.h"

namespace gradcore {

template <UnaryOp OP, typename T>
__global__ void unary_kernel(const T* x, T* y, int64_t n, T a, T b) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = apply_unary<OP, T>(x[i], a, b);
}

template <BinaryOp OP, typename T>
__global__ void binary_same_shape_kernel(const T* a, const T* b, T* out, int64_t n, T param, T param2) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = binary_element<OP, T>(a[i], b[i], param, param2);
}

template <BinaryOp OP, typename T>
__global__ void binary_broadcast_kernel(const T* a, const T* b, T* out, BroadcastLayout layout, T param, T param2) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < layout.numel;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t oa, ob;
    broadcast_offsets(layout, i, oa, ob);
    out[i] = binary_element<OP, T>(a[oa], b[ob], param, param2);
  }
}

void unary_cuda(const Array& x, Array& y, UnaryOp op, double a, double b) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    dispatch_unary(op, [&](auto op_constant) {
      constexpr UnaryOp OP = decltype(op_constant)::value;
      cuda::launch("unary_kernel", unary_kernel<OP, T>, cuda::grid_for(n, 256), 256, s, x.data_as<T>(), y.data_as<T>(),
          n, (T)a, (T)b);
    });
  });
}

void binary_cuda(const Array& a, const Array& b, Array& out, BinaryOp op, double param, double param2,
                 const BroadcastLayout& layout) {
  const int64_t n = layout.numel;
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(a);
  dispatch_binary_typed(a.dtype(), op, [&](auto zero, auto op_constant) {
    using T = decltype(zero);
    constexpr BinaryOp OP = decltype(op_constant)::value;
    if (layout.same_shape)
      cuda::launch("binary_same_shape_kernel", binary_same_shape_kernel<OP, T>, cuda::grid_for(n, 256), 256, s,
          a.data_as<T>(), b.data_as<T>(), out.data_as<T>(), n, (T)param, (T)param2);
    else
      cuda::launch("binary_broadcast_kernel", binary_broadcast_kernel<OP, T>, cuda::grid_for(n, 256), 256, s,
          a.data_as<T>(), b.data_as<T>(), out.data_as<T>(), layout, (T)param, (T)param2);
  });
}

}  // namespace gradcore
