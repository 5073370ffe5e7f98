// CUDA sum over axes. Stage 1: one block per (kept element, chunk of kReduceChunk reduced elements); each thread
// sums a fixed strided subset in double, then a fixed shared-memory tree combines the threads. Stage 2 (only when
// there is more than one chunk): one thread per kept element adds its chunks in order. Short reductions (at most
// kShortReduction elements per kept element, e.g. a column sum over a few rows) skip the blocks, most of whose
// threads would idle: one thread per kept element adds its elements in order. No atomics: the order is fixed by
// the shape, so results are bitwise reproducible.
#include "cuda/launch.cuh"
#include "reduce.h"

namespace gradcore {

constexpr int kReduceThreads = 256;
constexpr int64_t kShortReduction = 64;

// grid: (chunks, kept elements folded into y and z). Writes partial[k * chunks + c] or, with one chunk, out[k].
template <typename T>
__global__ void sum_chunks_kernel(const T* x, ReduceLayout layout, int64_t chunks, double* partial, T* out) {
  __shared__ double shared[kReduceThreads];
  const int64_t c = blockIdx.x;
  for (int64_t k = blockIdx.y; k < layout.kept_numel; k += gridDim.y) {
    const T* base = x + kept_offset(layout, k);
    const int64_t begin = c * kReduceChunk;
    const int64_t end = min(layout.reduced_numel, begin + kReduceChunk);
    double acc = 0.0;
    for (int64_t r = begin + threadIdx.x; r < end; r += kReduceThreads) acc += (double)base[reduced_offset(layout, r)];
    shared[threadIdx.x] = acc;
    __syncthreads();
    for (int width = kReduceThreads / 2; width > 0; width /= 2) {
      if (threadIdx.x < width) shared[threadIdx.x] += shared[threadIdx.x + width];
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (chunks == 1) out[k] = (T)shared[0];
      else partial[k * chunks + c] = shared[0];
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void sum_partials_kernel(const double* partial, int64_t kept, int64_t chunks, T* out) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < kept; k += (int64_t)gridDim.x * blockDim.x) {
    double acc = 0.0;
    for (int64_t c = 0; c < chunks; ++c) acc += partial[k * chunks + c];
    out[k] = (T)acc;
  }
}

template <typename T>
__global__ void sum_short_kernel(const T* x, ReduceLayout layout, T* out) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < layout.kept_numel;
       k += (int64_t)gridDim.x * blockDim.x) {
    const T* base = x + kept_offset(layout, k);
    double acc = 0.0;
    for (int64_t r = 0; r < layout.reduced_numel; ++r) acc += (double)base[reduced_offset(layout, r)];
    out[k] = (T)acc;
  }
}

void sum_cuda(const Array& x, Array& out, const ReduceLayout& layout) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel;
  if (K == 0) return;
  if (R == 0) {
    out.fill(0.0);
    return;
  }
  cudaStream_t s = cuda::stream_of(x);
  if (R <= kShortReduction) {
    dispatch_float(x.dtype(), [&](auto zero) {
      using T = decltype(zero);
      cuda::launch("sum_short_kernel", sum_short_kernel<T>, cuda::grid_for(K, 256), 256, s, x.data_as<T>(), layout,
          out.data_as<T>());
    });
    return;
  }
  const int64_t chunks = (R + kReduceChunk - 1) / kReduceChunk;
  Array partial;
  if (chunks > 1) partial = Array::empty({K * chunks}, DType::float64, x.device());  // fully written by stage 1
  const unsigned grid_y = (unsigned)std::min<int64_t>(K, 65535);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("sum_chunks_kernel", sum_chunks_kernel<T>, dim3((unsigned)chunks, grid_y), kReduceThreads, s,
        x.data_as<T>(), layout, chunks, chunks > 1 ? partial.data_as<double>() : nullptr, out.data_as<T>());
    if (chunks > 1) {
      cuda::launch("sum_partials_kernel", sum_partials_kernel<T>, cuda::grid_for(K, 256), 256, s,
          partial.data_as<double>(), K, chunks, out.data_as<T>());
    }
  });
}

}  // namespace gradcore
