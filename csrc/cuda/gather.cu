// CUDA gathers along one dimension and their gradient (the maths and the order of summation are in gather.h):
// one thread per output element (forward) or per dx element (backward), consecutive threads on consecutive
// elements, so the inner dimension's reads and writes coalesce. No atomics: each dx element sums its own list.
#include "cuda/launch.cuh"
#include "element_bits.h"
#include "gather.h"

namespace gradcore {

template <typename T>
__global__ void gather_forward_kernel(const T* x, const int64_t* index, T* out, GatherLayout l) {
  const int64_t total = l.outer * l.out_length * l.inner;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e % l.inner, row = e / l.inner;
    const int64_t o = row / l.out_length, j = row - o * l.out_length;
    const int64_t r = l.per_element ? index[e] : index[j];
    out[e] = x[(o * l.length + r) * l.inner + i];
  }
}

template <typename T>
__global__ void gather_backward_kernel(const T* g, const int64_t* order, const int64_t* start, T* dx,
                                       GatherLayout l) {
  const int64_t total = l.outer * l.length * l.inner, n = l.length, J = l.out_length, I = l.inner;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t i = e % I, row = e / I;
    const int64_t o = row / n, r = row - o * n;
    const int64_t f = l.per_element ? o * I + i : 0;
    const int64_t* s = start + f * (n + 1) + r;
    T acc = 0;
    for (int64_t k = s[0]; k < s[1]; ++k) acc += g[(o * J + order[f * J + k]) * I + i];
    dx[e] = acc;
  }
}

void gather_forward_cuda(const Array& x, const Array& index, Array& out, const GatherLayout& l) {
  const int64_t total = l.outer * l.out_length * l.inner;
  if (total == 0) return;
  cudaStream_t s = cuda::stream_of(x);
  dispatch_bits(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("gather_forward_kernel", gather_forward_kernel<T>, cuda::grid_for(total, 256), 256, s,
        x.data_as<T>(), index.data_as<int64_t>(), out.data_as<T>(), l);
  });
}

void gather_backward_cuda(const Array& dout, const IndexLists& lists, Array& dx, const GatherLayout& l) {
  const int64_t total = l.outer * l.length * l.inner;
  if (total == 0) return;
  cudaStream_t s = cuda::stream_of(dout);
  dispatch_float(dout.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("gather_backward_kernel", gather_backward_kernel<T>, cuda::grid_for(total, 256), 256, s,
        dout.data_as<T>(), lists.order.data_as<int64_t>(), lists.start.data_as<int64_t>(), dx.data_as<T>(), l);
  });
}

}  // namespace gradcore
