// Device memory, streams and copies. See device_runtime.h for the contract.
#include <cuda_runtime.h>
#include <cstdint>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>
#include "cuda/check.cuh"
#include "device_runtime.h"

namespace gradcore::cuda {
namespace {

struct DeviceState {
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
  MemoryStats stats;
  uint64_t reserved_seen = 0;  // the pool's reserved bytes after the last allocation: growth beyond it counts
};

std::mutex state_mutex;
std::vector<DeviceState> states;

DeviceState& state(int device) {
  std::lock_guard<std::mutex> lock(state_mutex);
  if (states.empty()) states.resize(device_count());
  if (device < 0 || device >= (int)states.size())
    throw std::invalid_argument("device index " + std::to_string(device) + " out of range: " +
                                std::to_string(states.size()) + " CUDA device(s) present");
  DeviceState& s = states[device];
  if (!s.stream) {
    GRADCORE_CUDA_CHECK(cudaSetDevice(device));
    GRADCORE_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    GRADCORE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&s.pool, device));
    uint64_t keep_everything = UINT64_MAX;  // cache freed blocks instead of returning them at each sync
    GRADCORE_CUDA_CHECK(cudaMemPoolSetAttribute(s.pool, cudaMemPoolAttrReleaseThreshold, &keep_everything));
  }
  return s;
}

}  // namespace

bool compiled() { return true; }

bool emulated() {
#if defined(GRADCORE_CUDA_EMULATE)
  return true;
#else
  return false;
#endif
}

void set_emulated_thread_order(bool reversed) {
#if defined(GRADCORE_CUDA_EMULATE)
  emulation::set_thread_order(reversed);
#else
  (void)reversed;
  throw std::runtime_error("the thread order can only be set on the emulated CUDA device (GRADCORE_CUDA=EMULATE)");
#endif
}

bool emulated_thread_order_reversed() {
#if defined(GRADCORE_CUDA_EMULATE)
  return emulation::thread_order_reversed();
#else
  return false;
#endif
}

std::string device_name(int device) {
  state(device);  // validates the index
  cudaDeviceProp prop;
  GRADCORE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

int multiprocessor_count() {
  static std::mutex m;
  static std::vector<int> counts;  // by device index, queried once
  int device = 0;
  GRADCORE_CUDA_CHECK(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(m);
  if ((int)counts.size() <= device) counts.resize(device + 1, 0);
  if (counts[device] == 0)
    GRADCORE_CUDA_CHECK(cudaDeviceGetAttribute(&counts[device], cudaDevAttrMultiProcessorCount, device));
  return counts[device];
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the sticky error and report none
    return 0;
  }
  return n;
}

void* stream(int device) { return state(device).stream; }

void* allocate(size_t nbytes, int device) {
  DeviceState& s = state(device);
  GRADCORE_CUDA_CHECK(cudaSetDevice(device));
  void* ptr = nullptr;
  if (nbytes == 0) nbytes = 1;
  cudaError_t err = cudaMallocFromPoolAsync(&ptr, nbytes, s.pool, s.stream);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    throw std::bad_alloc();
  }
  GRADCORE_CUDA_CHECK(err);
  uint64_t reserved = 0;
  GRADCORE_CUDA_CHECK(cudaMemPoolGetAttribute(s.pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  std::lock_guard<std::mutex> lock(state_mutex);
  s.stats.requests += 1;
  if (reserved > s.reserved_seen) s.stats.allocations += 1;  // served by new device memory, not the cache
  s.reserved_seen = reserved;
  return ptr;
}

// Called from destructors: must not throw, so errors are dropped after clearing them.
void release(void* ptr, int device) {
  DeviceState& s = state(device);
  if (cudaSetDevice(device) != cudaSuccess || cudaFreeAsync(ptr, s.stream) != cudaSuccess) cudaGetLastError();
  std::lock_guard<std::mutex> lock(state_mutex);
  s.stats.frees += 1;
}

void memset_zero(void* ptr, size_t nbytes, int device) {
  DeviceState& s = state(device);
  GRADCORE_CUDA_CHECK(cudaSetDevice(device));
  GRADCORE_CUDA_CHECK(cudaMemsetAsync(ptr, 0, nbytes, s.stream));
}

void copy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device) {
  DeviceState& s = state(device);
  GRADCORE_CUDA_CHECK(cudaSetDevice(device));
  cudaMemcpyKind k = kind == CopyKind::host_to_device   ? cudaMemcpyHostToDevice
                     : kind == CopyKind::device_to_host ? cudaMemcpyDeviceToHost
                                                        : cudaMemcpyDeviceToDevice;
  GRADCORE_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, k, s.stream));
  // Host memory may be freed or read as soon as we return: host-side copies complete before returning.
  if (kind != CopyKind::device_to_device) GRADCORE_CUDA_CHECK(cudaStreamSynchronize(s.stream));
}

void synchronize(int device) { GRADCORE_CUDA_CHECK(cudaStreamSynchronize(state(device).stream)); }

void wait_for_device(int device) noexcept {
  if (cudaSetDevice(device) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) cudaGetLastError();
}

MemoryStats memory_stats(int device) {
  DeviceState& s = state(device);
  MemoryStats out;
  {
    std::lock_guard<std::mutex> lock(state_mutex);
    out = s.stats;
  }
  // Bytes freed are known to the pool, not to us (cudaFreeAsync takes no size): read the pool's counters.
  uint64_t used = 0, used_high = 0, reserved = 0, reserved_high = 0;
  GRADCORE_CUDA_CHECK(cudaMemPoolGetAttribute(s.pool, cudaMemPoolAttrUsedMemCurrent, &used));
  GRADCORE_CUDA_CHECK(cudaMemPoolGetAttribute(s.pool, cudaMemPoolAttrUsedMemHigh, &used_high));
  GRADCORE_CUDA_CHECK(cudaMemPoolGetAttribute(s.pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  GRADCORE_CUDA_CHECK(cudaMemPoolGetAttribute(s.pool, cudaMemPoolAttrReservedMemHigh, &reserved_high));
  out.allocated_bytes = (int64_t)used;
  out.peak_allocated_bytes = (int64_t)used_high;
  out.reserved_bytes = (int64_t)reserved;
  out.peak_reserved_bytes = (int64_t)reserved_high;
  return out;
}

void reset_peak_memory_stats(int device) {
  DeviceState& s = state(device);
  uint64_t zero = 0;
  GRADCORE_CUDA_CHECK(cudaMemPoolSetAttribute(s.pool, cudaMemPoolAttrUsedMemHigh, &zero));
  GRADCORE_CUDA_CHECK(cudaMemPoolSetAttribute(s.pool, cudaMemPoolAttrReservedMemHigh, &zero));
}

void empty_cache(int device) {
  DeviceState& s = state(device);
  GRADCORE_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  GRADCORE_CUDA_CHECK(cudaMemPoolTrimTo(s.pool, 0));
  uint64_t reserved = 0;
  GRADCORE_CUDA_CHECK(cudaMemPoolGetAttribute(s.pool, cudaMemPoolAttrReservedMemCurrent, &reserved));
  std::lock_guard<std::mutex> lock(state_mutex);
  s.reserved_seen = reserved;
}

void* event_create(int device) {
  state(device);
  GRADCORE_CUDA_CHECK(cudaSetDevice(device));
  cudaEvent_t event;
  GRADCORE_CUDA_CHECK(cudaEventCreate(&event));
  return event;
}

void event_record(void* event, int device) {
  GRADCORE_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), state(device).stream));
}

float event_elapsed_ms(void* start, void* end) {
  GRADCORE_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(end)));
  float ms = 0.f;
  GRADCORE_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
  return ms;
}

// Called from a finaliser: must not throw; a failure is cleared so that the next launch check does not report it.
void event_destroy(void* event) {
  if (cudaEventDestroy(static_cast<cudaEvent_t>(event)) != cudaSuccess) cudaGetLastError();
}

}  // namespace gradcore::cuda
