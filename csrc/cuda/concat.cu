// CUDA block copy for concat/split (the maths is in concat.h): a grid-stride loop over rows * width elements;
// consecutive threads copy consecutive elements of a row, so loads and stores coalesce.
#include "concat.h"
#include "cuda/launch.cuh"

namespace gradcore {

template <typename T>
__global__ void block_copy_kernel(const T* src, T* dst, BlockCopy copy) {
  const int64_t total = copy.rows * copy.width;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = i / copy.width, j = i - r * copy.width;
    dst[copy.dst_offset + r * copy.dst_row_stride + j] = src[copy.src_offset + r * copy.src_row_stride + j];
  }
}

void block_copy_cuda(const Array& src, Array& dst, const BlockCopy& copy) {
  const int64_t total = copy.rows * copy.width;
  if (total == 0) return;
  cudaStream_t s = cuda::stream_of(src);
  dispatch_float(src.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("block_copy_kernel", block_copy_kernel<T>, cuda::grid_for(total, 256), 256, s, src.data_as<T>(),
        dst.data_as<T>(), copy);
  });
}

}  // namespace gradcore
