// CUDA gradient norm and clipping over a multi-tensor table; see grad_norm.h for the maths.
// Pass 1 (grad_norm_partials_kernel): one block per chunk; each thread accumulates its packs in double in a fixed
// order, then a fixed shared-memory tree gives the chunk's partial. Pass 2 (grad_norm_finalize_kernel, one block):
// per tensor, a warp combines its partials (fixed lane assignment and butterfly); then the tensors are combined by a
// fixed strided loop and tree. No atomics: bitwise reproducible. (The CPU's order differs; each is fixed.)
#include "cuda/multi_tensor.cuh"
#include "grad_norm.h"

namespace gradcore {

namespace {

using namespace grad_norm_math;

constexpr int kFinalizeThreads = 1024;

template <int kThreads>
__device__ double block_combine(double value, bool inf_norm, double* shared) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (int width = kThreads / 2; width > 0; width /= 2) {
    if (threadIdx.x < width) shared[threadIdx.x] = combine(shared[threadIdx.x], shared[threadIdx.x + width], inf_norm);
    __syncthreads();
  }
  const double result = shared[0];
  __syncthreads();
  return result;
}

template <typename T>
__global__ void __launch_bounds__(kMultiTensorThreads)
    grad_norm_partials_kernel(TensorTableView table, double p, bool inf_norm, double* partial) {
  __shared__ double shared[kMultiTensorThreads];
  const ChunkEntry ch = table.chunks[blockIdx.x];
  const TensorEntry e = table.tensors[ch.tensor];
  const T* __restrict__ g = static_cast<const T*>(e.column[kGradColumn]);
  const ChunkRange r = chunk_range<T>(e, ch);
  constexpr int P = Pack<T>::size;
  double acc = 0.0;
  for (int64_t i = r.begin + (int64_t)threadIdx.x * P; i < r.packed_end; i += (int64_t)kMultiTensorThreads * P) {
    const Pack<T> x = load_pack(g + i);
#pragma unroll
    for (int k = 0; k < P; ++k) acc = combine(acc, power((double)x.v[k], p, inf_norm), inf_norm);
  }
  for (int64_t i = r.packed_end + threadIdx.x; i < r.end; i += kMultiTensorThreads)
    acc = combine(acc, power((double)g[i], p, inf_norm), inf_norm);
  const double total = block_combine<kMultiTensorThreads>(acc, inf_norm, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// One block. Phase 1: warp w takes tensors w, w + warps, ...; lane l adds the tensor's chunks l, l + 32, ... and a
// fixed butterfly combines the lanes: S_t, stored after the chunk partials. Phase 2: the threads combine the S_t
// (strided, then a fixed tree) into the total. The order depends only on the table, never on timing.
template <typename T>
__global__ void __launch_bounds__(kFinalizeThreads)
    grad_norm_finalize_kernel(TensorTableView table, GradNormParams params, bool inf_norm, double* partial,
                              T* norm_out, double* state, double* scales) {
  __shared__ double shared[kFinalizeThreads];
  constexpr int kWarps = kFinalizeThreads / 32;
  const double p = params.norm_type;
  double* tensor_sums = partial + table.n_chunks;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int64_t t = warp; t < table.n_tensors; t += kWarps) {
    const TensorEntry& e = table.tensors[t];
    double s = 0.0;
    for (int64_t c = lane; c < e.chunks; c += 32) s = combine(s, partial[e.first_chunk + c], inf_norm);
    for (int offset = 16; offset > 0; offset /= 2) s = combine(s, __shfl_xor_sync(0xffffffffu, s, offset), inf_norm);
    if (lane == 0) {
      tensor_sums[t] = s;
      if (params.clip && params.per_tensor) scales[t] = clip_scale(root(s, p, inf_norm), params.max_norm);
    }
  }
  __syncthreads();  // the tensor sums, written to global memory by lane 0 of each warp, are visible to the block
  double acc = 0.0;
  for (int64_t t = threadIdx.x; t < table.n_tensors; t += kFinalizeThreads)
    acc = combine(acc, tensor_sums[t], inf_norm);
  const double total = block_combine<kFinalizeThreads>(acc, inf_norm, shared);
  const double total_norm = root(total, p, inf_norm);
  const double total_scale = params.clip ? clip_scale(total_norm, params.max_norm) : 1.0;
  if (params.clip && !params.per_tensor)
    for (int64_t t = threadIdx.x; t < table.n_tensors; t += kFinalizeThreads) scales[t] = total_scale;
  if (threadIdx.x == 0) {
    // Non-finite as returned, in the gradients' dtype (a float32 norm above FLT_MAX is inf; the double sum is not).
    const T norm_as_t = (T)total_norm;
    const bool nonfinite = !isfinite(norm_as_t);
    state[kStateNorm] = total_norm;
    state[kStateScale] = total_scale;
    state[kStateNonfinite] = nonfinite ? 1.0 : 0.0;
    state[kStateNonfiniteCount] += nonfinite ? 1.0 : 0.0;
    *norm_out = norm_as_t;
  }
}

template <typename T>
__global__ void __launch_bounds__(kMultiTensorThreads)
    grad_scale_kernel(TensorTableView table, const double* scales) {
  const ChunkEntry ch = table.chunks[blockIdx.x];
  const TensorEntry e = table.tensors[ch.tensor];
  T* __restrict__ g = static_cast<T*>(e.column[kGradColumn]);
  const T s = (T)scales[ch.tensor];
  const ChunkRange r = chunk_range<T>(e, ch);
  constexpr int P = Pack<T>::size;
  for (int64_t i = r.begin + (int64_t)threadIdx.x * P; i < r.packed_end; i += (int64_t)kMultiTensorThreads * P) {
    Pack<T> x = load_pack(g + i);
#pragma unroll
    for (int k = 0; k < P; ++k) x.v[k] *= s;
    store_pack(g + i, x);
  }
  for (int64_t i = r.packed_end + threadIdx.x; i < r.end; i += kMultiTensorThreads) g[i] *= s;
}

template <typename T>
__device__ __forceinline__ T clamp_value(T x, T hi) {
  return x < -hi ? -hi : (x > hi ? hi : x);
}

template <typename T>
__global__ void __launch_bounds__(kMultiTensorThreads)
    grad_clamp_kernel(TensorTableView table, T hi) {
  const ChunkEntry ch = table.chunks[blockIdx.x];
  const TensorEntry e = table.tensors[ch.tensor];
  T* __restrict__ g = static_cast<T*>(e.column[kGradColumn]);
  const ChunkRange r = chunk_range<T>(e, ch);
  constexpr int P = Pack<T>::size;
  for (int64_t i = r.begin + (int64_t)threadIdx.x * P; i < r.packed_end; i += (int64_t)kMultiTensorThreads * P) {
    Pack<T> x = load_pack(g + i);
#pragma unroll
    for (int k = 0; k < P; ++k) x.v[k] = clamp_value(x.v[k], hi);
    store_pack(g + i, x);
  }
  for (int64_t i = r.packed_end + threadIdx.x; i < r.end; i += kMultiTensorThreads) g[i] = clamp_value(g[i], hi);
}

}  // namespace

void grad_norm_cuda(const TensorTableView& table, const GradNormParams& params, Array& norm, Array& state,
                    Array& scales) {
  cudaStream_t s = table_stream(table);
  const bool inf_norm = isinf(params.norm_type);
  // One partial per chunk (written by pass 1), then one sum per tensor (written by pass 2 before it is read).
  Array partial = Array::empty({table.n_chunks + table.n_tensors + 1}, DType::float64, norm.device());
  dispatch_float(table.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (table.n_chunks > 0) {
      cuda::launch("grad_norm_partials_kernel", grad_norm_partials_kernel<T>, (unsigned)table.n_chunks,
          kMultiTensorThreads, s, table, params.norm_type, inf_norm, partial.data_as<double>());
    }
    cuda::launch("grad_norm_finalize_kernel", grad_norm_finalize_kernel<T>, 1, kFinalizeThreads, s, table, params,
        inf_norm, partial.data_as<double>(), norm.data_as<T>(), state.data_as<double>(),
        params.clip ? scales.data_as<double>() : nullptr);
  });
}

void grad_scale_cuda(const TensorTableView& table, const Array& scales) {
  if (table.n_chunks == 0) return;
  cudaStream_t s = table_stream(table);
  dispatch_float(table.dtype, [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("grad_scale_kernel", grad_scale_kernel<T>, (unsigned)table.n_chunks, kMultiTensorThreads, s, table,
        scales.data_as<double>());
  });
}

void grad_clamp_cuda(const TensorTableView& table, double clip_value) {
  if (table.n_chunks == 0) return;
  cudaStream_t s = table_stream(table);
  dispatch_float(table.dtype, [&](auto zero) {
    using T = decltype(zero);
    cuda::launch("grad_clamp_kernel", grad_clamp_kernel<T>, (unsigned)table.n_chunks, kMultiTensorThreads, s, table,
        (T)clip_value);
  });
}

}  // namespace gradcore
