// Error checks for CUDA calls and kernel launches. A failure becomes std::runtime_error (Python RuntimeError)
// naming the kernel or call, the file and the line; running out of memory becomes std::bad_alloc (MemoryError).
#pragma once
#include <cuda_runtime.h>
#include <new>
#include <stdexcept>
#include <string>

namespace gradcore::cuda {

[[noreturn]] inline void raise_cuda_error(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaErrorMemoryAllocation) throw std::bad_alloc();
  throw std::runtime_error(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                           "): " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}


}  // namespace gradcore::cuda

#define GRADCORE_CUDA_CHECK(call)                                                        \
  do {                                                                                   \
    cudaError_t err_ = (call);                                                           \
    if (err_ != cudaSuccess) ::gradcore::cuda::raise_cuda_error(err_, #call, __FILE__, __LINE__); \
  } while (0)

// After every <<<...>>>: GRADCORE_CHECK_LAUNCH("conv2d_forward_kernel");
#define GRADCORE_CHECK_LAUNCH(kernel_name)                                               \
  do {                                                                                   \
    cudaError_t err_ = cudaGetLastError();                                               \
    if (err_ != cudaSuccess) ::gradcore::cuda::raise_cuda_error(err_, kernel_name, __FILE__, __LINE__); \
  } while (0)
