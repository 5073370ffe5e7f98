// CUDA softmax and log_softmax; the maths is in softmax.h.
//   Contiguous rows (inner == 1): one warp per row. Lane l takes elements l, l + 32, ... in order; the max and the
//   sums are combined by a fixed shuffle tree, so each row's result depends on D alone (bitwise reproducible).
//   Strided rows (inner > 1): one thread per row, walking the D dimension in order; neighbouring threads own
//   neighbouring rows, so every step's loads coalesce.
// No atomics, no shared memory; every output element is written by the one warp or thread that owns its row.
#include <cmath>
#include "cuda/launch.cuh"
#include "softmax.h"

namespace gradcore {

namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

template <typename T> __device__ __forceinline__ T nan_max(T a, T b) { return (b > a || b != b) ? b : a; }

template <typename T> __device__ __forceinline__ T warp_max(T v) {
  for (int offset = 16; offset > 0; offset /= 2) v = nan_max(v, __shfl_down_sync(0xffffffffu, v, offset));
  return __shfl_sync(0xffffffffu, v, 0);
}

__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return __shfl_sync(0xffffffffu, v, 0);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) softmax_forward_rows_kernel(const T* x, T* y, int64_t rows, int64_t D,
                                                                        bool log) {
  const int lane = threadIdx.x % 32;
  const int64_t first = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  for (int64_t r = first; r < rows; r += (int64_t)gridDim.x * kWarpsPerBlock) {  // the same count for all lanes
    const T* xr = x + r * D;
    T* yr = y + r * D;
    T m = T(-INFINITY);
    for (int64_t j = lane; j < D; j += 32) m = nan_max(m, xr[j]);
    m = warp_max(m);
    double s = 0.0;
    for (int64_t j = lane; j < D; j += 32) s += (double)softmax_exp<T>(xr[j] - m);
    s = warp_sum(s);
    const T k = log ? (T)::log(s) : (T)(1.0 / s);
    for (int64_t j = lane; j < D; j += 32) {
      const T d = xr[j] - m;
      yr[j] = log ? d - k : softmax_exp<T>(d) * k;
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) softmax_backward_rows_kernel(const T* y, const T* g, T* dx, int64_t rows,
                                                                         int64_t D, bool log) {
  const int lane = threadIdx.x % 32;
  const int64_t first = (int64_t)blockIdx.x * kWarpsPerBlock + threadIdx.x / 32;
  for (int64_t r = first; r < rows; r += (int64_t)gridDim.x * kWarpsPerBlock) {
    const T *yr = y + r * D, *gr = g + r * D;
    T* dxr = dx + r * D;
    double s = 0.0;
    for (int64_t j = lane; j < D; j += 32) s += log ? (double)gr[j] : (double)gr[j] * (double)yr[j];
    const T k = (T)warp_sum(s);
    for (int64_t j = lane; j < D; j += 32)
      dxr[j] = log ? gr[j] - softmax_exp<T>(yr[j]) * k : yr[j] * (gr[j] - k);
  }
}

// One thread per strided row (o, i): elements at o * D * inner + j * inner + i.
template <typename T>
__global__ void __launch_bounds__(kThreads) softmax_forward_strided_kernel(const T* x, T* y, SoftmaxParams p) {
  const int64_t rows = p.outer * p.inner;
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x) {
    const int64_t o = r / p.inner, i = r - o * p.inner;
    const T* xr = x + o * p.dim * p.inner + i;
    T* yr = y + o * p.dim * p.inner + i;
    T m = T(-INFINITY);
    for (int64_t j = 0; j < p.dim; ++j) m = nan_max(m, xr[j * p.inner]);
    double s = 0.0;
    for (int64_t j = 0; j < p.dim; ++j) s += (double)softmax_exp<T>(xr[j * p.inner] - m);
    const T k = p.log ? (T)::log(s) : (T)(1.0 / s);
    for (int64_t j = 0; j < p.dim; ++j) {
      const T d = xr[j * p.inner] - m;
      yr[j * p.inner] = p.log ? d - k : softmax_exp<T>(d) * k;
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) softmax_backward_strided_kernel(const T* y, const T* g, T* dx,
                                                                            SoftmaxParams p) {
  const int64_t rows = p.outer * p.inner;
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x) {
    const int64_t o = r / p.inner, i = r - o * p.inner;
    const int64_t base = o * p.dim * p.inner + i;
    double s = 0.0;
    for (int64_t j = 0; j < p.dim; ++j) {
      const int64_t e = base + j * p.inner;
      s += p.log ? (double)g[e] : (double)g[e] * (double)y[e];
    }
    const T k = (T)s;
    for (int64_t j = 0; j < p.dim; ++j) {
      const int64_t e = base + j * p.inner;
      dx[e] = p.log ? g[e] - softmax_exp<T>(y[e]) * k : y[e] * (g[e] - k);
    }
  }
}

}  // namespace

void softmax_forward_cuda(const Array& x, Array& y, const SoftmaxParams& p) {
  if (p.outer * p.dim * p.inner == 0) return;
  cudaStream_t s = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (p.inner == 1)
      cuda::launch("softmax_forward_rows_kernel", softmax_forward_rows_kernel<T>,
          cuda::grid_for(p.outer * 32, kThreads), kThreads, s, x.data_as<T>(), y.data_as<T>(), p.outer, p.dim, p.log);
    else
      cuda::launch("softmax_forward_strided_kernel", softmax_forward_strided_kernel<T>,
          cuda::grid_for(p.outer * p.inner, kThreads), kThreads, s, x.data_as<T>(), y.data_as<T>(), p);
  });
}

void softmax_backward_cuda(const Array& y, const Array& g, Array& dx, const SoftmaxParams& p) {
  if (p.outer * p.dim * p.inner == 0) return;
  cudaStream_t s = cuda::stream_of(y);
  dispatch_float(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (p.inner == 1)
      cuda::launch("softmax_backward_rows_kernel", softmax_backward_rows_kernel<T>,
          cuda::grid_for(p.outer * 32, kThreads), kThreads, s, y.data_as<T>(), g.data_as<T>(), dx.data_as<T>(),
          p.outer, p.dim, p.log);
    else
      cuda::launch("softmax_backward_strided_kernel", softmax_backward_strided_kernel<T>,
          cuda::grid_for(p.outer * p.inner, kThreads), kThreads, s, y.data_as<T>(), g.data_as<T>(), dx.data_as<T>(),
          p);
  });
}

}  // namespace gradcore
