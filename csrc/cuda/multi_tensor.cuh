// Device helpers shared by the multi-tensor kernels (grad_norm.cu, fused_adam.cu, fused_sgd.cu).
// Launch shape: one block of kMultiTensorThreads per chunk of the table (multi_tensor.h). Inside a chunk, threads
// walk 16-byte packs (4 floats or 2 doubles) when the tensor's buffers are 16-byte aligned, then the ragged tail
// element by element; chunk boundaries are multiples of the pack size, so a pack never straddles two chunks.
#pragma once
#include <cstdint>
#include "cuda/launch.cuh"
#include "multi_tensor.h"

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

}  // namespace gradcore
