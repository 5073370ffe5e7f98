// CUDA strided copy and strided write (the maths is in strided_copy.h): a grid-stride loop over the contiguous
// side; consecutive threads take consecutive elements, so that side's accesses coalesce (and the strided side's
// too along a merged run of stride 1). Each element is moved by one thread: no ordering between threads matters.
#include "cuda/launch.cuh"
#include "element_bits.h"
#include "strided_copy.h"

namespace gradcore {

template <bool kScatter, typename T>
__global__ void strided_copy_kernel(T* strided, T* contiguous, StridedCopy l) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < l.numel; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t at = l.offset + strided_offset(i, l.ndim, l.shape, l.stride);
    if (kScatter) strided[at] = contiguous[i];
    else contiguous[i] = strided[at];
  }
}

void strided_copy_cuda(const Array& src, Array& out, const StridedCopy& layout) {
  if (layout.numel == 0) return;
  cudaStream_t s = cuda::stream_of(src);
  dispatch_bits(src.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("strided_copy_kernel", strided_copy_kernel<false, T>, cuda::grid_for(layout.numel, 256), 256, s,
        src.data_as<T>(), out.data_as<T>(), layout);
  });
}

void strided_scatter_cuda(const Array& g, Array& dst, const StridedCopy& layout) {
  if (layout.numel == 0) return;
  cudaStream_t s = cuda::stream_of(g);
  dispatch_bits(g.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("strided_scatter_kernel", strided_copy_kernel<true, T>, cuda::grid_for(layout.numel, 256), 256, s,
        dst.data_as<T>(), g.data_as<T>(), layout);
  });
}

}  // namespace gradcore
