// CUDA twins of cpu/fill_cast.cpp; the conversion rule is fill_cast.h's convert_element.
#include "cuda/launch.cuh"
#include "fill_cast.h"

namespace gradcore {

template <typename T>
__global__ void fill_kernel(T* a, int64_t n, T value) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    a[i] = value;
}

template <typename S, typename D>
__global__ void cast_kernel(const S* src, D* dst, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = convert_element<D>(src[i]);
}

void fill_array_cuda(Array& a, double value) {
  const int64_t n = a.numel();
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(a);
  dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("fill_kernel", fill_kernel<T>, cuda::grid_for(n, 256), 256, s, a.data_as<T>(), n,
        convert_element<T>(value));
  });
}

void cast_into_cuda(const Array& src, Array& dst) {
  const int64_t n = src.numel();
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(src);
  dispatch_all(src.dtype(), [&](auto src_zero) {
    using S = decltype(src_zero);
    dispatch_all(dst.dtype(), [&](auto dst_zero) {
      using D = decltype(dst_zero);
      cuda::launch("cast_kernel", cast_kernel<S, D>, cuda::grid_for(n, 256), 256, s, src.data_as<S>(),
          dst.data_as<D>(), n);
    });
  });
}

}  // namespace gradcore
