// Shared helpers for kernel launchers: the device's stream and grid sizing.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
#include "array.h"
#include "cuda/check.cuh"
#include "device_runtime.h"

namespace gradcore::cuda {

inline cudaStream_t stream_of(const Array& a) {
  GRADCORE_CUDA_CHECK(cudaSetDevice(a.device().index));
  return static_cast<cudaStream_t>(stream(a.device().index));
}

// Blocks for a grid-stride loop over n items: enough to fill the device, never more than the work.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = 132 * 32;  // 32 blocks per SM on the largest Hopper part
  if (blocks > cap) blocks = cap;
  return (unsigned)(blocks < 1 ? 1 : blocks);
}

}  // namespace gradcore::cuda
