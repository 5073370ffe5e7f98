// CUDA 2-d pooling; the maths, the window rules and the order of summation are in pool2d.h, shared with the CPU
// loops, so both devices compute every cell from the same terms in the same order. Forward: one thread per output
// cell; backward: one thread per input cell gathering the windows that hold it (no atomics). Grid-stride loops;
// neighbouring threads own neighbouring cells of a row, so loads and stores coalesce.
#include "cuda/launch.cuh"
#include "pool2d.h"

namespace gradcore {

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) pool2d_forward_kernel(const T* x, T* y, int64_t* indices,
                                                                  Pool2dParams p) {
  const int64_t out_plane = p.out_h * p.out_w, total = p.planes * out_plane;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = i / out_plane, r = i - c * out_plane, oh = r / p.out_w, ow = r - oh * p.out_w;
    const T* plane = x + c * p.in_h * p.in_w;
    if (p.kind == PoolKind::max) max_window<T>(plane, p, oh, ow, y[i], indices[i]);
    else y[i] = avg_window<T>(plane, p, oh, ow);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) pool2d_backward_kernel(const T* dy, const int64_t* indices, T* dx,
                                                                   Pool2dParams p) {
  const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w, total = p.planes * in_plane;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = i / in_plane, r = i - c * in_plane, h = r / p.in_w, w = r - h * p.in_w;
    dx[i] = pool_backward_cell<T>(dy + c * out_plane, indices ? indices + c * out_plane : nullptr, p, h, w);
  }
}

}  // namespace

void pool2d_forward_cuda(const Array& x, Array& y, int64_t* indices, const Pool2dParams& p) {
  const int64_t total = p.planes * p.out_h * p.out_w;
  if (total == 0) return;
  cudaStream_t s = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("pool2d_forward_kernel", pool2d_forward_kernel<T>, cuda::grid_for(total, kThreads), kThreads, s,
        x.data_as<T>(), y.data_as<T>(), indices, p);
  });
}

void pool2d_backward_cuda(const Array& dy, const int64_t* indices, Array& dx, const Pool2dParams& p) {
  const int64_t total = p.planes * p.in_h * p.in_w;
  if (total == 0) return;
  cudaStream_t s = cuda::stream_of(dy);
  dispatch_float(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("pool2d_backward_kernel", pool2d_backward_kernel<T>, cuda::grid_for(total, kThreads), kThreads, s,
        dy.data_as<T>(), indices, dx.data_as<T>(), p);
  });
}

}  // namespace gradcore
