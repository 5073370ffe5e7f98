// CUDA regression losses: grid-stride loops, the rules in regression_loss.h (shared with the CPU loops).
#include "cuda/launch.cuh"
#include "regression_loss.h"

namespace gradcore {

namespace {

template <typename T>
__global__ void regression_loss_forward_kernel(const T* x, const T* t, T* loss, int64_t n, RegressionLoss kind,
                                               T param) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    loss[i] = regression_loss<T>(kind, x[i] - t[i], param);
}

// g_stride 1: g per element; 0: one g for all, times scale (the gradient of a mean or sum).
template <typename T>
__global__ void regression_loss_backward_kernel(const T* g, int64_t g_stride, T scale, const T* x, const T* t, T* dx,
                                                int64_t n, RegressionLoss kind, T param) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const T gi = g_stride ? g[i] : scale * g[0];
    dx[i] = regression_loss_gradient<T>(kind, gi, x[i] - t[i], param);
  }
}

}  // namespace

void regression_loss_forward_cuda(const Array& x, const Array& t, Array& loss, RegressionLoss kind, double param) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("regression_loss_forward_kernel", regression_loss_forward_kernel<T>, cuda::grid_for(n, 256), 256, s,
        x.data_as<T>(), t.data_as<T>(), loss.data_as<T>(), n, kind, (T)param);
  });
}

void regression_loss_backward_cuda(const Array& g, double scale, const Array& x, const Array& t, Array& dx,
                                   RegressionLoss kind, double param) {
  const int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(x);
  const int64_t g_stride = g.numel() == 1 ? 0 : 1;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("regression_loss_backward_kernel", regression_loss_backward_kernel<T>, cuda::grid_for(n, 256), 256,
        s, g.data_as<T>(), g_stride, (T)scale, x.data_as<T>(), t.data_as<T>(), dx.data_as<T>(), n, kind, (T)param);
  });
}

}  // namespace gradcore
