// The CUDA runtime calls gradcore uses, implemented on host memory for the emulated device (see device.h).
// One device (index 0). Device memory is aligned host memory, filled with 0xFF bytes (NaN) at every allocation and
// freed for real when released, so AddressSanitizer sees out-of-bounds and use-after-free accesses. The memory pool
// is modelled by its counters: "used" is what is allocated now; "reserved" is what a pool that keeps freed blocks
// (our release threshold) would hold: the high-water mark of used since the last trim, as if any freed bytes could
// serve any later request. Streams are synchronous and in order; events record host time.
#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include "cuda/emulation/device.h"

namespace gradcore::cuda::emulation {

namespace {

constexpr size_t kAlignment = 256;                 // cudaMalloc's alignment
constexpr size_t kDeviceBytes = size_t(16) << 30;  // the emulated device's memory: larger requests fail as on a GPU
constexpr int kMultiprocessors = 2;                 // a small device: grid-stride loops launch few blocks

thread_local cudaError_t last_error = cudaSuccess;  // per host thread, as in the runtime

struct Pool {
  std::mutex m;
  std::map<void*, size_t> device_blocks;
  uint64_t used = 0, used_high = 0, reserved = 0, reserved_high = 0, release_threshold = 0;
};
Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: frees may come from destructors at exit
  return *p;
}
int dummy_pool_handle, dummy_stream_handle;

struct Event {
  bool recorded = false;
  bool timing = true;
  std::chrono::steady_clock::time_point time;
};

std::atomic<cudaError_t> sticky_error{cudaSuccess};  // a kernel's fault: every later call reports it

cudaError_t fail(cudaError_t err) {
  last_error = err;
  return err;
}
// After a kernel fault the context is unusable, as on a GPU: calls report the fault instead of doing their work.
#define GRADCORE_RETURN_IF_FAULTED()                                  \
  do {                                                              \
    const cudaError_t sticky_ = sticky_error.load();                \
    if (sticky_ != cudaSuccess) return fail(sticky_);               \
  } while (0)

cudaError_t allocate_device(void** ptr, size_t size) {
  if (!ptr) return fail(cudaErrorInvalidValue);
  *ptr = nullptr;
  Pool& p = pool();
  const size_t rounded = (size == 0 ? 1 : size + kAlignment - 1) / kAlignment * kAlignment;
  std::lock_guard<std::mutex> lock(p.m);
  if (size > kDeviceBytes || p.used + rounded > kDeviceBytes) return fail(cudaErrorMemoryAllocation);
  void* block = std::aligned_alloc(kAlignment, rounded);
  if (!block) return fail(cudaErrorMemoryAllocation);
  std::memset(block, 0xFF, rounded);  // fresh device memory reads as NaN until written
  p.device_blocks[block] = rounded;
  p.used += rounded;
  p.used_high = std::max(p.used_high, p.used);
  p.reserved = std::max(p.reserved, p.used);
  p.reserved_high = std::max(p.reserved_high, p.reserved);
  *ptr = block;
  return cudaSuccess;
}

cudaError_t free_device(void* ptr) {
  if (!ptr) return cudaSuccess;
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.m);
  auto it = p.device_blocks.find(ptr);
  if (it == p.device_blocks.end()) return fail(cudaErrorInvalidValue);
  p.used -= it->second;
  p.device_blocks.erase(it);
  std::free(ptr);
  return cudaSuccess;
}

bool valid_device(int device) { return device == 0; }

}  // namespace

void record_launch_error(cudaError_t err) { last_error = err; }
void record_kernel_fault(cudaError_t err) { sticky_error.store(err); }

}  // namespace gradcore::cuda::emulation

using namespace gradcore::cuda::emulation;

// Errors.
cudaError_t cudaGetLastError() {
  const cudaError_t err = last_error;
  last_error = cudaSuccess;
  return err;
}
cudaError_t cudaPeekAtLastError() { return last_error; }

const char* cudaGetErrorName(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t err) {
  switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    default: return "error on the emulated CUDA device";
  }
}

// Devices.
cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  GRADCORE_RETURN_IF_FAULTED();
  return valid_device(device) ? cudaSuccess : fail(cudaErrorInvalidDevice);
}
cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {  // every launch and copy has finished already
  GRADCORE_RETURN_IF_FAULTED();
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = kMultiprocessors; return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; return cudaSuccess;
    default: return fail(cudaErrorInvalidValue);
  }
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue);
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "gradcore emulated CUDA device (on the CPU)");
  prop->totalGlobalMem = kDeviceBytes;
  prop->multiProcessorCount = kMultiprocessors;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->sharedMemPerBlock = 48 * 1024;
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}

// Memory.
cudaError_t cudaMalloc(void** ptr, size_t size) {
  GRADCORE_RETURN_IF_FAULTED();
  return allocate_device(ptr, size);
}
cudaError_t cudaFree(void* ptr) {
  GRADCORE_RETURN_IF_FAULTED();
  return free_device(ptr);
}
cudaError_t cudaMallocAsync(void** ptr, size_t size, cudaStream_t) {
  GRADCORE_RETURN_IF_FAULTED();
  return allocate_device(ptr, size);
}
cudaError_t cudaMallocFromPoolAsync(void** ptr, size_t size, cudaMemPool_t, cudaStream_t) {
  GRADCORE_RETURN_IF_FAULTED();
  return allocate_device(ptr, size);
}
cudaError_t cudaFreeAsync(void* ptr, cudaStream_t) {
  GRADCORE_RETURN_IF_FAULTED();
  return free_device(ptr);
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  GRADCORE_RETURN_IF_FAULTED();
  if (!ptr) return fail(cudaErrorInvalidValue);
  *ptr = std::aligned_alloc(kAlignment, (size == 0 ? 1 : size + kAlignment - 1) / kAlignment * kAlignment);
  return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* handle, int device) {
  if (!handle) return fail(cudaErrorInvalidValue);
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  *handle = reinterpret_cast<cudaMemPool_t>(&dummy_pool_handle);
  return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr attr, void* value) {
  if (!value) return fail(cudaErrorInvalidValue);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.m);
  const uint64_t v = *static_cast<uint64_t*>(value);
  switch (attr) {
    case cudaMemPoolAttrReleaseThreshold: p.release_threshold = v; return cudaSuccess;
    case cudaMemPoolAttrUsedMemHigh: p.used_high = p.used; return cudaSuccess;          // only reset is allowed
    case cudaMemPoolAttrReservedMemHigh: p.reserved_high = p.reserved; return cudaSuccess;
    default: return fail(cudaErrorInvalidValue);
  }
}

cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t, cudaMemPoolAttr attr, void* value) {
  GRADCORE_RETURN_IF_FAULTED();
  if (!value) return fail(cudaErrorInvalidValue);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.m);
  uint64_t& out = *static_cast<uint64_t*>(value);
  switch (attr) {
    case cudaMemPoolAttrReleaseThreshold: out = p.release_threshold; return cudaSuccess;
    case cudaMemPoolAttrUsedMemCurrent: out = p.used; return cudaSuccess;
    case cudaMemPoolAttrUsedMemHigh: out = p.used_high; return cudaSuccess;
    case cudaMemPoolAttrReservedMemCurrent: out = p.reserved; return cudaSuccess;
    case cudaMemPoolAttrReservedMemHigh: out = p.reserved_high; return cudaSuccess;
    default: return fail(cudaErrorInvalidValue);
  }
}

cudaError_t cudaMemPoolTrimTo(cudaMemPool_t, size_t keep) {
  GRADCORE_RETURN_IF_FAULTED();
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.m);
  p.reserved = std::max<uint64_t>(p.used, std::min<uint64_t>(p.reserved, keep));
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind) {
  GRADCORE_RETURN_IF_FAULTED();
  if (count && (!dst || !src)) return fail(cudaErrorInvalidValue);
  if (count) std::memcpy(dst, src, count);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, count, kind);
}
cudaError_t cudaMemset(void* ptr, int value, size_t count) {
  GRADCORE_RETURN_IF_FAULTED();
  if (count && !ptr) return fail(cudaErrorInvalidValue);
  if (count) std::memset(ptr, value, count);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t) { return cudaMemset(ptr, value, count); }

// Streams: work is done when the call that queued it returns.
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  if (!stream) return fail(cudaErrorInvalidValue);
  *stream = reinterpret_cast<cudaStream_t>(&dummy_stream_handle);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) {
  GRADCORE_RETURN_IF_FAULTED();
  return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned int) { return cudaSuccess; }

// Events.
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (!event) return fail(cudaErrorInvalidValue);
  Event* e = new Event();
  e->timing = !(flags & cudaEventDisableTiming);
  *event = reinterpret_cast<cudaEvent_t>(e);
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  delete reinterpret_cast<Event*>(event);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  GRADCORE_RETURN_IF_FAULTED();
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  Event* e = reinterpret_cast<Event*>(event);
  e->recorded = true;
  e->time = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  GRADCORE_RETURN_IF_FAULTED();
  return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t event) { return event ? cudaSuccess : fail(cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms || !start || !end) return fail(cudaErrorInvalidResourceHandle);
  const Event* a = reinterpret_cast<Event*>(start);
  const Event* b = reinterpret_cast<Event*>(end);
  if (!a->timing || !b->timing) return fail(cudaErrorInvalidResourceHandle);
  if (!a->recorded || !b->recorded) return fail(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(b->time - a->time).count();
  return cudaSuccess;
}
