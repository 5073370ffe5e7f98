// Error checks for CUDA calls and kernel launches. A failure becomes std::runtime_error (Python RuntimeError)
// naming the kernel or call, the file and the line; running out of memory becomes std::bad_alloc (MemoryError).
//
// A kernel that faults (illegal address, device assert, ...) does so after its launch has returned: the error
// surfaces at the next call that waits for the device (a copy to the host, a synchronisation), which then reports
// itself, not the kernel. Such errors carry a hint, and with GRADCORE_CUDA_SYNC=1 (or CUDA_LAUNCH_BLOCKING=1) in the
// environment every GRADCORE_CHECK_LAUNCH waits for its kernel, so the error names the kernel that failed.
#pragma once
#include <cuda_runtime.h>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace gradcore::cuda {

// Errors a kernel raises while it runs (as opposed to errors of the call that reports them).
inline bool is_kernel_fault(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorIllegalInstruction:
    case cudaErrorHardwareStackError:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}

// GRADCORE_CUDA_SYNC=1 or CUDA_LAUNCH_BLOCKING=1: wait for every kernel at its launch check (debugging).
inline bool sync_after_launch() {
  static const bool on = [] {
    for (const char* name : {"GRADCORE_CUDA_SYNC", "CUDA_LAUNCH_BLOCKING"}) {
      const char* value = std::getenv(name);
      if (value && *value && std::strcmp(value, "0") != 0) return true;
    }
    return false;
  }();
  return on;
}

// names_kernel: `what` is a kernel whose own fault this error is (its launch check waited for it).
[[noreturn]] inline void raise_cuda_error(cudaError_t err, const char* what, const char* file, int line,
                                          bool names_kernel = false) {
  if (err == cudaErrorMemoryAllocation) throw std::bad_alloc();
  std::string message = std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                        "): " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
  if (!names_kernel && is_kernel_fault(err))
    message += " (raised by a kernel launched earlier, not necessarily by this call; run with GRADCORE_CUDA_SYNC=1 "
               "to report it at the kernel that failed)";
  throw std::runtime_error(message);
}

}  // namespace gradcore::cuda

#define GRADCORE_CUDA_CHECK(call)                                                        \
  do {                                                                                   \
    cudaError_t err_ = (call);                                                           \
    if (err_ != cudaSuccess) ::gradcore::cuda::raise_cuda_error(err_, #call, __FILE__, __LINE__); \
  } while (0)

// After every <<<...>>>: GRADCORE_CHECK_LAUNCH("conv2d_forward_kernel"). Reports launch errors (bad configuration,
// too many resources) and, with GRADCORE_CUDA_SYNC=1, the kernel's own faults (it waits for the current device,
// which cuda::stream_of has set to the kernel's).
#define GRADCORE_CHECK_LAUNCH(kernel_name)                                               \
  do {                                                                                   \
    cudaError_t err_ = cudaGetLastError();                                               \
    if (err_ == cudaSuccess && ::gradcore::cuda::sync_after_launch()) err_ = cudaDeviceSynchronize(); \
    if (err_ != cudaSuccess)                                                             \
      ::gradcore::cuda::raise_cuda_error(err_, kernel_name, __FILE__, __LINE__,          \
                                         ::gradcore::cuda::sync_after_launch());         \
  } while (0)
