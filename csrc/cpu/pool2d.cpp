// CPU 2-d pooling; the maths, the window rules and the order of summation are in pool2d.h, shared with the CUDA
// kernels. OpenMP splits (plane, output row) pairs forward and (plane, input row) pairs backward, statically; each
// cell is computed by one thread from its own window, so the split never changes a bit.
#include "pool2d.h"
#include "cpu/parallel.h"

namespace gradcore {

void pool2d_forward_cpu(const Array& x, Array& y, int64_t* indices, const Pool2dParams& p) {
  const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
  if (p.planes * out_plane == 0) return;
  const int64_t window = p.kind == PoolKind::adaptive_avg ? (in_plane + out_plane - 1) / out_plane
                                                          : p.kernel_h * p.kernel_w;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data_as<T>();
    T* py = y.data_as<T>();
#pragma omp parallel for collapse(2) schedule(static) if (p.planes * out_plane * window >= cpu::kParallelThreshold)
    for (int64_t c = 0; c < p.planes; ++c)
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        const T* plane = px + c * in_plane;
        const int64_t row = c * out_plane + oh * p.out_w;
        for (int64_t ow = 0; ow < p.out_w; ++ow) {
          if (p.kind == PoolKind::max) max_window<T>(plane, p, oh, ow, py[row + ow], indices[row + ow]);
          else py[row + ow] = avg_window<T>(plane, p, oh, ow);
        }
      }
  });
}

void pool2d_backward_cpu(const Array& dy, const int64_t* indices, Array& dx, const Pool2dParams& p) {
  const int64_t in_plane = p.in_h * p.in_w, out_plane = p.out_h * p.out_w;
  if (p.planes * in_plane == 0) return;
  dispatch_float(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pdy = dy.data_as<T>();
    T* pdx = dx.data_as<T>();
#pragma omp parallel for collapse(2) schedule(static) if (p.planes * in_plane * 4 >= cpu::kParallelThreshold)
    for (int64_t c = 0; c < p.planes; ++c)
      for (int64_t h = 0; h < p.in_h; ++h) {
        const T* plane_dy = pdy + c * out_plane;
        const int64_t* plane_indices = indices ? indices + c * out_plane : nullptr;
        for (int64_t w = 0; w < p.in_w; ++w)
          pdx[c * in_plane + h * p.in_w + w] = pool_backward_cell<T>(plane_dy, plane_indices, p, h, w);
      }
  });
}

}  // namespace gradcore
