// Device helpers shared by the multi-tensor kernels (grad_norm.cu, fused_adam.cu, fused_sgd.cu), and the CUDA
// skeleton of a fused optimizer step (multi_tensor_step.h), which fused_adam.cu and fused_sgd.cu run with their rules.
// Launch shape: one block of kMultiTensorThreads per chunk of the table (multi_tensor.h). Inside a chunk, threads
// walk 16-byte packs (4 floats or 2 doubles) when the tensor's buffers are 16-byte aligned, then the ragged tail
// element by element; chunk boundaries are multiples of the pack size, so a pack never straddles two chunks.
#pragma once
#include <cstdint>
#include "cuda/launch.cuh"
#include "grad_norm.h"
#include "multi_tensor.h"
#include "multi_tensor_step.h"

namespace gradcore {

constexpr int kMultiTensorThreads = 256;

template <typename T>
struct alignas(16) Pack {
  static constexpr int size = 16 / sizeof(T);
  T v[size];
};
static_assert(kTensorChunk % 4 == 0, "chunks must hold whole packs");

template <typename T>
__device__ __forceinline__ Pack<T> load_pack(const T* p) {
  return *reinterpret_cast<const Pack<T>*>(p);
}

template <typename T>
__device__ __forceinline__ void store_pack(T* p, const Pack<T>& x) {
  *reinterpret_cast<Pack<T>*>(p) = x;
}

// The element range [begin, end) of this block's chunk and where its pack-aligned body ends.
struct ChunkRange {
  int64_t begin, end, packed_end;
};

template <typename T>
__device__ __forceinline__ ChunkRange chunk_range(const TensorEntry& e, const ChunkEntry& ch) {
  ChunkRange r;
  r.begin = (int64_t)ch.chunk * kTensorChunk;
  r.end = min(e.numel, r.begin + kTensorChunk);
  r.packed_end = e.aligned ? r.begin + (r.end - r.begin) / Pack<T>::size * Pack<T>::size : r.begin;
  return r;
}

// Advances the step counter of each tensor once all of its chunks have read it: every block of the tensor counts
// itself done (after its threads have read the step), and the last one writes step + 1 and resets the counter.
// Integer atomics only; the result is exact and independent of block order.
__device__ __forceinline__ void finish_chunk_and_advance_step(const TensorTableView& table, const TensorEntry& e,
                                                              int tensor, double step) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    const unsigned prev = atomicAdd(&table.done[tensor], 1u);
    if (prev == (unsigned)e.chunks - 1) {
      *e.step = step + 1.0;
      table.done[tensor] = 0u;
    }
  }
}

// Tensors without elements have no block: block 0 advances their steps (nothing else reads them in this launch).
__device__ __forceinline__ void advance_steps_of_empty_tensors(const TensorTableView& table) {
  if (!table.has_empty_tensors || blockIdx.x != 0) return;
  for (int64_t t = threadIdx.x; t < table.n_tensors; t += blockDim.x) {
    const TensorEntry& e = table.tensors[t];
    if (e.numel == 0 && e.step) *e.step += 1.0;
  }
}

// The stream of the table's device (every multi-tensor kernel runs there, after the table's upload).
inline cudaStream_t table_stream(const TensorTableView& table) {
  GRADCORE_CUDA_CHECK(cudaSetDevice(table.device.index));
  return static_cast<cudaStream_t>(cuda::stream(table.device.index));
}

inline unsigned multi_tensor_grid(const TensorTableView& table) {
  return (unsigned)(table.n_chunks > 0 ? table.n_chunks : 1);
}

// One block per chunk: every column's elements are read once (with 16-byte packs where aligned), updated by the rule
// and written once (the grad column is never written). Step counters, clip scales and the non-finite flag are read
// on the device, so the launch needs no synchronisation with the host.
template <typename Rule>
__global__ void __launch_bounds__(kMultiTensorThreads)
    multi_tensor_step_kernel(TensorTableView table, typename Rule::Params params, const double* grad_scales,
                             const double* nonfinite_state) {
  using T = typename Rule::Scalar;
  constexpr int C = Rule::columns;
  if (nonfinite_state && nonfinite_state[kStateNonfinite] != 0.0) return;  // the whole step is skipped
  advance_steps_of_empty_tensors(table);
  if (blockIdx.x >= table.n_chunks) return;
  const ChunkEntry ch = table.chunks[blockIdx.x];
  const TensorEntry e = table.tensors[ch.tensor];
  const double step = e.step ? *e.step : 0.0;
  const double scale = grad_scales ? grad_scales[params.scale_offset + ch.tensor] : 1.0;
  const Rule rule(params, e.group, step, scale);
  T* column[C];
  bool read[C];
#pragma unroll
  for (int k = 0; k < C; ++k) {
    column[k] = static_cast<T*>(e.column[k]);
    read[k] = rule.reads(k);
  }
  const ChunkRange r = chunk_range<T>(e, ch);
  constexpr int P = Pack<T>::size;
  for (int64_t i = r.begin + (int64_t)threadIdx.x * P; i < r.packed_end; i += (int64_t)kMultiTensorThreads * P) {
    Pack<T> pack[C];
#pragma unroll
    for (int k = 0; k < C; ++k)
      if (read[k]) pack[k] = load_pack(column[k] + i);
#pragma unroll
    for (int j = 0; j < P; ++j) {
      T x[C];
#pragma unroll
      for (int k = 0; k < C; ++k) x[k] = read[k] ? pack[k].v[j] : T(0);
      rule(x);
#pragma unroll
      for (int k = 0; k < C; ++k) pack[k].v[j] = x[k];
    }
#pragma unroll
    for (int k = 0; k < C; ++k)
      if (k != kGradColumn) store_pack(column[k] + i, pack[k]);
  }
  for (int64_t i = r.packed_end + threadIdx.x; i < r.end; i += kMultiTensorThreads) {
    T x[C];
#pragma unroll
    for (int k = 0; k < C; ++k) x[k] = read[k] ? column[k][i] : T(0);
    rule(x);
#pragma unroll
    for (int k = 0; k < C; ++k)
      if (k != kGradColumn) column[k][i] = x[k];
  }
  if (e.step) finish_chunk_and_advance_step(table, e, ch.tensor, step);
}

template <typename Rule>
void launch_multi_tensor_step(const TensorTableView& table, const typename Rule::Params& params,
                              const double* grad_scales, const double* nonfinite_state, cudaStream_t stream) {
  cuda::launch(Rule::kernel_name, multi_tensor_step_kernel<Rule>, multi_tensor_grid(table), kMultiTensorThreads,
               stream, table, params, grad_scales, nonfinite_state);
}

// Rule<T, flag> over every element of the table in one launch (T: the table's dtype); see multi_tensor_step.h.
template <template <typename, bool> class Rule, typename Params>
void multi_tensor_step_cuda(const TensorTableView& table, const Params& params, bool flag, const Array& grad_scales,
                            const Array& nonfinite_state) {
  if (table.n_tensors == 0) return;
  cudaStream_t s = table_stream(table);
  const double* scales = grad_scales.data() ? grad_scales.data_as<double>() : nullptr;
  const double* skip = nonfinite_state.data() ? nonfinite_state.data_as<double>() : nullptr;
  dispatch_float(table.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (flag) launch_multi_tensor_step<Rule<T, true>>(table, params, scales, skip, s);
    else launch_multi_tensor_step<Rule<T, false>>(table, params, scales, skip, s);
  });
}

}  // namespace gradcore
