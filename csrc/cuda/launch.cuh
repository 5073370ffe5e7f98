// Shared helpers for kernel launchers: the device's stream, grid sizing, and the one way a kernel is launched.
#pragma once
#include <cuda_runtime.h>
#include <cstdint>
#include <utility>
#include "array.h"
#include "cuda/check.cuh"
#include "device_runtime.h"

#if defined(GRADCORE_CUDA_EMULATE)
#define GRADCORE_DYNAMIC_SHARED(type, name) \
  type* name = static_cast<type*>(::gradcore::cuda::emulation::dynamic_shared_memory())
#else
#define GRADCORE_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

namespace gradcore::cuda {

inline cudaStream_t stream_of(const Array& a) {
  GRADCORE_CUDA_CHECK(cudaSetDevice(a.device().index));
  return static_cast<cudaStream_t>(stream(a.device().index));
}

// Blocks for a grid-stride loop over n items: enough to fill the current device (32 blocks per multiprocessor),
// never more than the work.
inline unsigned grid_for(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = 32 * (int64_t)multiprocessor_count();
  if (blocks > cap) blocks = cap;
  return (unsigned)(blocks < 1 ? 1 : blocks);
}

// Every kernel is launched here: kernel<<<grid, block, shared_bytes, stream>>>(args...) and the launch check naming
// it (GRADCORE_CHECK_LAUNCH). In the emulated build (GRADCORE_CUDA=EMULATE) the same kernel runs on the emulated
// device (cuda/emulation/), which is why no launcher writes <<<>>> itself. shared_bytes sizes the kernel's dynamic
// shared memory, which it declares as GRADCORE_DYNAMIC_SHARED(type, name).
template <typename... Params, typename... Args>
void launch_with_shared_memory(const char* kernel_name, void (*kernel)(Params...), dim3 grid, dim3 block,
                               size_t shared_bytes, cudaStream_t stream, Args&&... args) {
#if defined(GRADCORE_CUDA_EMULATE)
  (void)stream;  // the emulated device's streams are synchronous and in order
  emulation::launch_kernel(kernel_name, kernel, grid, block, shared_bytes, std::forward<Args>(args)...);
#else
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
#endif
  GRADCORE_CHECK_LAUNCH(kernel_name);
}

template <typename... Params, typename... Args>
void launch(const char* kernel_name, void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
            Args&&... args) {
  launch_with_shared_memory(kernel_name, kernel, grid, block, 0, stream, std::forward<Args>(args)...);
}

}  // namespace gradcore::cuda
