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

// ---- max and min, vector norms (see reduce.h for the rules) ------------------------------------------------------
// max/min: the shape of sum's kernels, with (value, index) pairs in place of double sums: one block per (chunk,
// kept element) whose threads scan strided subsets and combine in a shared-memory tree by extreme_better (a total
// order, so the tree's shape cannot change the pick); chunks combine in a second kernel; short reductions run one
// thread per kept element. Backward: one block per kept element counts the ties and finds the first (integer sums
// and minima: exact), then writes every element of its slice; short reductions again one thread per kept element.
// Norms: sum's kernels with |x|^p in place of x and the root taken last; the gradient is elementwise.
namespace gradcore {

namespace {

// Scratch for per-chunk indices, every one written by the chunk kernel before it is read.
Array index_scratch(int64_t n, Device device) { return Array::empty({n}, DType::int64, device); }

template <typename T>
__global__ void extreme_short_kernel(const T* x, ReduceLayout layout, bool is_max, T* values, int64_t* indices) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < layout.kept_numel;
       k += (int64_t)gridDim.x * blockDim.x) {
    const T* base = x + kept_offset(layout, k);
    T best = T(0);
    int64_t at = -1;
    for (int64_t r = 0; r < layout.reduced_numel; ++r) {
      const T v = base[reduced_offset(layout, r)];
      if (extreme_better(v, r, best, at, is_max)) {
        best = v;
        at = r;
      }
    }
    values[k] = best;
    if (indices) indices[k] = at;
  }
}

// grid: (chunks, kept elements folded into y). With one chunk it writes values/indices, else the partials.
template <typename T>
__global__ void extreme_chunks_kernel(const T* x, ReduceLayout layout, bool is_max, int64_t chunks,
                                      T* partial_value, int64_t* partial_index, T* values, int64_t* indices) {
  __shared__ T shared_value[kReduceThreads];
  __shared__ int64_t shared_index[kReduceThreads];
  const int64_t c = blockIdx.x;
  for (int64_t k = blockIdx.y; k < layout.kept_numel; k += gridDim.y) {
    const T* base = x + kept_offset(layout, k);
    const int64_t begin = c * kReduceChunk;
    const int64_t end = min(layout.reduced_numel, begin + kReduceChunk);
    T best = T(0);
    int64_t at = -1;
    for (int64_t r = begin + threadIdx.x; r < end; r += kReduceThreads) {
      const T v = base[reduced_offset(layout, r)];
      if (extreme_better(v, r, best, at, is_max)) {
        best = v;
        at = r;
      }
    }
    shared_value[threadIdx.x] = best;
    shared_index[threadIdx.x] = at;
    __syncthreads();
    for (int width = kReduceThreads / 2; width > 0; width /= 2) {
      if (threadIdx.x < width) {
        const int other = threadIdx.x + width;
        if (extreme_better(shared_value[other], shared_index[other], shared_value[threadIdx.x],
                           shared_index[threadIdx.x], is_max)) {
          shared_value[threadIdx.x] = shared_value[other];
          shared_index[threadIdx.x] = shared_index[other];
        }
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (chunks == 1) {
        values[k] = shared_value[0];
        if (indices) indices[k] = shared_index[0];
      } else {
        partial_value[k * chunks + c] = shared_value[0];
        partial_index[k * chunks + c] = shared_index[0];
      }
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void extreme_partials_kernel(const T* partial_value, const int64_t* partial_index, int64_t kept,
                                        int64_t chunks, bool is_max, T* values, int64_t* indices) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < kept; k += (int64_t)gridDim.x * blockDim.x) {
    T best = T(0);
    int64_t at = -1;
    for (int64_t c = 0; c < chunks; ++c) {
      if (extreme_better(partial_value[k * chunks + c], partial_index[k * chunks + c], best, at, is_max)) {
        best = partial_value[k * chunks + c];
        at = partial_index[k * chunks + c];
      }
    }
    values[k] = best;
    if (indices) indices[k] = at;
  }
}

template <typename T>
__global__ void extreme_backward_short_kernel(const T* x, const T* values, const T* grad, ReduceLayout layout,
                                              bool split_ties, T* gx) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < layout.kept_numel;
       k += (int64_t)gridDim.x * blockDim.x) {
    const int64_t base = kept_offset(layout, k);
    const T value = values[k];
    int64_t count = 0, first = -1;
    for (int64_t r = 0; r < layout.reduced_numel; ++r) {
      if (extreme_tie(x[base + reduced_offset(layout, r)], value)) {
        if (first < 0) first = r;
        ++count;
      }
    }
    const T share = count ? (T)(grad[k] / (T)count) : T(0);
    for (int64_t r = 0; r < layout.reduced_numel; ++r) {
      const int64_t off = base + reduced_offset(layout, r);
      gx[off] = split_ties ? (extreme_tie(x[off], value) ? share : T(0)) : (r == first ? grad[k] : T(0));
    }
  }
}

// One block per kept element (grid-stride over them).
template <typename T>
__global__ void extreme_backward_kernel(const T* x, const T* values, const T* grad, ReduceLayout layout,
                                        bool split_ties, T* gx) {
  __shared__ int64_t shared_count[kReduceThreads];
  __shared__ int64_t shared_first[kReduceThreads];
  const int64_t R = layout.reduced_numel;
  for (int64_t k = blockIdx.x; k < layout.kept_numel; k += gridDim.x) {
    const int64_t base = kept_offset(layout, k);
    const T value = values[k];
    int64_t count = 0, first = R;  // R: no tie (yet)
    for (int64_t r = threadIdx.x; r < R; r += kReduceThreads) {
      if (extreme_tie(x[base + reduced_offset(layout, r)], value)) {
        if (first == R) first = r;
        ++count;
      }
    }
    shared_count[threadIdx.x] = count;
    shared_first[threadIdx.x] = first;
    __syncthreads();
    for (int width = kReduceThreads / 2; width > 0; width /= 2) {
      if (threadIdx.x < width) {
        shared_count[threadIdx.x] += shared_count[threadIdx.x + width];
        shared_first[threadIdx.x] = min(shared_first[threadIdx.x], shared_first[threadIdx.x + width]);
      }
      __syncthreads();
    }
    const int64_t total = shared_count[0], first_tie = shared_first[0];
    __syncthreads();  // every thread has read the totals before the next kept element overwrites them
    const T share = total ? (T)(grad[k] / (T)total) : T(0);
    for (int64_t r = threadIdx.x; r < R; r += kReduceThreads) {
      const int64_t off = base + reduced_offset(layout, r);
      gx[off] = split_ties ? (extreme_tie(x[off], value) ? share : T(0)) : (r == first_tie ? grad[k] : T(0));
    }
  }
}

template <typename T>
__global__ void norm_short_kernel(const T* x, ReduceLayout layout, double p, T* out) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < layout.kept_numel;
       k += (int64_t)gridDim.x * blockDim.x) {
    const T* base = x + kept_offset(layout, k);
    double acc = 0.0;
    for (int64_t r = 0; r < layout.reduced_numel; ++r) acc += vector_norm_term(base[reduced_offset(layout, r)], p);
    out[k] = (T)vector_norm_finish(acc, p);
  }
}

template <typename T>
__global__ void norm_chunks_kernel(const T* x, ReduceLayout layout, double p, int64_t chunks, double* partial,
                                   T* out) {
  __shared__ double shared[kReduceThreads];
  const int64_t c = blockIdx.x;
  for (int64_t k = blockIdx.y; k < layout.kept_numel; k += gridDim.y) {
    const T* base = x + kept_offset(layout, k);
    const int64_t begin = c * kReduceChunk;
    const int64_t end = min(layout.reduced_numel, begin + kReduceChunk);
    double acc = 0.0;
    for (int64_t r = begin + threadIdx.x; r < end; r += kReduceThreads)
      acc += vector_norm_term(base[reduced_offset(layout, r)], p);
    shared[threadIdx.x] = acc;
    __syncthreads();
    for (int width = kReduceThreads / 2; width > 0; width /= 2) {
      if (threadIdx.x < width) shared[threadIdx.x] += shared[threadIdx.x + width];
      __syncthreads();
    }
    if (threadIdx.x == 0) {
      if (chunks == 1) out[k] = (T)vector_norm_finish(shared[0], p);
      else partial[k * chunks + c] = shared[0];
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void norm_partials_kernel(const double* partial, int64_t kept, int64_t chunks, double p, T* out) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < kept; k += (int64_t)gridDim.x * blockDim.x) {
    double acc = 0.0;
    for (int64_t c = 0; c < chunks; ++c) acc += partial[k * chunks + c];
    out[k] = (T)vector_norm_finish(acc, p);
  }
}

template <typename T>
__global__ void norm_backward_kernel(const T* x, const T* norm, const T* grad, ReduceLayout layout, double p, T* gx) {
  const int64_t R = layout.reduced_numel, n = layout.kept_numel * R;
  for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < n; j += (int64_t)gridDim.x * blockDim.x) {
    const int64_t k = j / R, off = kept_offset(layout, k) + reduced_offset(layout, j % R);
    gx[off] = vector_norm_grad(x[off], norm[k], grad[k], p);
  }
}

}  // namespace

void reduce_extreme_cuda(const Array& x, Array& values, int64_t* indices, const ReduceLayout& layout, bool is_max) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel;
  if (K == 0) return;
  cudaStream_t s = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (R <= kShortReduction) {
      cuda::launch("extreme_short_kernel", extreme_short_kernel<T>, cuda::grid_for(K, 256), 256, s, x.data_as<T>(),
          layout, is_max, values.data_as<T>(), indices);
      return;
    }
    const int64_t chunks = (R + kReduceChunk - 1) / kReduceChunk;
    Array partial_value, partial_index;
    if (chunks > 1) {  // fully written by the chunk kernel
      partial_value = Array::empty({K * chunks}, x.dtype(), x.device());
      partial_index = index_scratch(K * chunks, x.device());
    }
    T* pv = chunks > 1 ? partial_value.data_as<T>() : nullptr;
    int64_t* pi = chunks > 1 ? partial_index.data_as<int64_t>() : nullptr;
    const unsigned grid_y = (unsigned)std::min<int64_t>(K, 65535);
    cuda::launch("extreme_chunks_kernel", extreme_chunks_kernel<T>, dim3((unsigned)chunks, grid_y), kReduceThreads,
        s, x.data_as<T>(), layout, is_max, chunks, pv, pi, values.data_as<T>(), indices);
    if (chunks > 1) {
      cuda::launch("extreme_partials_kernel", extreme_partials_kernel<T>, cuda::grid_for(K, 256), 256, s,
          (const T*)pv, (const int64_t*)pi, K, chunks, is_max, values.data_as<T>(), indices);
    }
  });
}

void reduce_extreme_backward_cuda(const Array& x, const Array& values, const Array& grad, Array& gx,
                                  const ReduceLayout& layout, bool split_ties) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel;
  if (K == 0 || R == 0) return;  // no element of gx
  cudaStream_t s = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (R <= kShortReduction) {
      cuda::launch("extreme_backward_short_kernel", extreme_backward_short_kernel<T>, cuda::grid_for(K, 256), 256,
          s, x.data_as<T>(), values.data_as<T>(), grad.data_as<T>(), layout, split_ties, gx.data_as<T>());
    } else {
      cuda::launch("extreme_backward_kernel", extreme_backward_kernel<T>, (unsigned)std::min<int64_t>(K, 65535),
          kReduceThreads, s, x.data_as<T>(), values.data_as<T>(), grad.data_as<T>(), layout, split_ties,
          gx.data_as<T>());
    }
  });
}

void vector_norm_cuda(const Array& x, Array& out, const ReduceLayout& layout, double p) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel;
  if (K == 0) return;
  cudaStream_t s = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (R <= kShortReduction) {  // R == 0 included: the empty sum, finished (0 for every order p > 0)
      cuda::launch("norm_short_kernel", norm_short_kernel<T>, cuda::grid_for(K, 256), 256, s, x.data_as<T>(),
          layout, p, out.data_as<T>());
      return;
    }
    const int64_t chunks = (R + kReduceChunk - 1) / kReduceChunk;
    Array partial;
    if (chunks > 1) partial = Array::empty({K * chunks}, DType::float64, x.device());  // fully written by stage 1
    const unsigned grid_y = (unsigned)std::min<int64_t>(K, 65535);
    cuda::launch("norm_chunks_kernel", norm_chunks_kernel<T>, dim3((unsigned)chunks, grid_y), kReduceThreads, s,
        x.data_as<T>(), layout, p, chunks, chunks > 1 ? partial.data_as<double>() : nullptr, out.data_as<T>());
    if (chunks > 1) {
      cuda::launch("norm_partials_kernel", norm_partials_kernel<T>, cuda::grid_for(K, 256), 256, s,
          (const double*)partial.data_as<double>(), K, chunks, p, out.data_as<T>());
    }
  });
}

void vector_norm_backward_cuda(const Array& x, const Array& norm, const Array& grad, Array& gx,
                               const ReduceLayout& layout, double p) {
  const int64_t n = layout.kept_numel * layout.reduced_numel;
  if (n == 0) return;
  cudaStream_t s = cuda::stream_of(x);
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("norm_backward_kernel", norm_backward_kernel<T>, cuda::grid_for(n, 256), 256, s, x.data_as<T>(),
        norm.data_as<T>(), grad.data_as<T>(), layout, p, gx.data_as<T>());
  });
}

}  // namespace gradcore
