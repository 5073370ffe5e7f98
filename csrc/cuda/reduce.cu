// CUDA sum over axes. Stage 1: one block per (kept element, chunk of kReduceChunk reduced elements); each thread
// sums a fixed strided subset in double, then a fixed shared-memory tree combines the threads. Stage 2 (only when
// there is more than one chunk): one thread per kept element adds its chunks in order. Short reductions (at most
// kShortReduction elements per kept element, e.g. a column sum over a few rows) skip the blocks, most of whose
// threads would idle: one thread per kept element adds its elements in order. No atomics: the order is fixed by
// the shape, so results are bitwise reproducible. Each kernel accumulates in SumAccumulator<T> (double for floats,
// int64 for int64 and bool) and writes SumOutput<T>.
#include "cuda/launch.cuh"
#include "reduce.h"

namespace gradcore {

constexpr int kReduceThreads = 256;
constexpr int64_t kShortReduction = 64;

// grid: (chunks, kept elements folded into y and z). Writes partial[k * chunks + c] or, with one chunk, out[k].
template <typename T, typename Acc = SumAccumulator<T>, typename Out = SumOutput<T>>
__global__ void sum_chunks_kernel(const T* x, ReduceLayout layout, int64_t chunks, Acc* partial, Out* out) {
  __shared__ Acc shared[kReduceThreads];
  const int64_t c = blockIdx.x;
  for (int64_t k = blockIdx.y; k < layout.kept_numel; k += gridDim.y) {
    const T* base = x + kept_offset(layout, k);
    const int64_t begin = c * kReduceChunk;
    const int64_t end = min(layout.reduced_numel, begin + kReduceChunk);
    Acc acc = 0;
    for (int64_t r = begin + threadIdx.x; r < end; r += kReduceThreads)
      acc = sum_add(acc, (Acc)base[reduced_offset(layout, r)]);
    shared[threadIdx.x] = acc;
    __syncthreads();
    for (int width = kReduceThreads / 2; width > 0; width /= 2) {
      if (threadIdx.x < width) shared[threadIdx.x] = sum_add(shared[threadIdx.x], shared[threadIdx.x + width]);
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (chunks == 1) out[k] = (Out)shared[0];
      else partial[k * chunks + c] = shared[0];
    }
    __syncthreads();
  }
}

template <typename Acc, typename Out>
__global__ void sum_partials_kernel(const Acc* partial, int64_t kept, int64_t chunks, Out* out) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < kept; k += (int64_t)gridDim.x * blockDim.x) {
    Acc acc = 0;
    for (int64_t c = 0; c < chunks; ++c) acc = sum_add(acc, partial[k * chunks + c]);
    out[k] = (Out)acc;
  }
}

template <typename T, typename Acc = SumAccumulator<T>, typename Out = SumOutput<T>>
__global__ void sum_short_kernel(const T* x, ReduceLayout layout, Out* out) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < layout.kept_numel;
       k += (int64_t)gridDim.x * blockDim.x) {
    const T* base = x + kept_offset(layout, k);
    Acc acc = 0;
    for (int64_t r = 0; r < layout.reduced_numel; ++r) acc = sum_add(acc, (Acc)base[reduced_offset(layout, r)]);
    out[k] = (Out)acc;
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
    dispatch_all(x.dtype(), [&](auto zero) {
      using T = decltype(zero);
      cuda::launch("sum_short_kernel", sum_short_kernel<T>, cuda::grid_for(K, 256), 256, s, x.data_as<T>(), layout,
          out.data_as<SumOutput<T>>());
    });
    return;
  }
  const int64_t chunks = (R + kReduceChunk - 1) / kReduceChunk;
  const unsigned grid_y = (unsigned)std::min<int64_t>(K, 65535);
  dispatch_all(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using Acc = SumAccumulator<T>;
    using Out = SumOutput<T>;
    Array partial;  // fully written by stage 1
    if (chunks > 1)
      partial = Array::empty({K * chunks}, std::is_same_v<Acc, double> ? DType::float64 : DType::int64, x.device());
    cuda::launch("sum_chunks_kernel", sum_chunks_kernel<T>, dim3((unsigned)chunks, grid_y), kReduceThreads, s,
        x.data_as<T>(), layout, chunks, chunks > 1 ? partial.data_as<Acc>() : nullptr, out.data_as<Out>());
    if (chunks > 1) {
      cuda::launch("sum_partials_kernel", sum_partials_kernel<Acc, Out>, cuda::grid_for(K, 256), 256, s,
          partial.data_as<Acc>(), K, chunks, out.data_as<Out>());
    }
  });
}

}  // namespace gradcore
