// The CUDA side of the runtime, implemented in cuda/runtime.cu (or as CPU-only fallbacks in runtime_cpu_only.cpp).
// (Not named cuda_runtime.h: that would shadow the CUDA toolkit header of the same name.)
// Memory is stream-ordered (cudaMallocAsync) from each device's default pool, whose release threshold is raised so
// freed blocks stay cached: after warm-up a training step performs no cudaMalloc. One stream per device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace gradcore::cuda {

bool compiled();
bool emulated();                    // the kernels run on the emulated device (GRADCORE_CUDA=EMULATE), not a GPU
int device_count();                 // 0 without a driver or a device; never throws
std::string device_name(int device);
int multiprocessor_count();         // of the current device: sizes grid-stride launches
// The emulated device only: run each block's threads, and the blocks, in reverse order between barriers (a kernel
// whose results change has a race). Throws on a real GPU build.
void set_emulated_thread_order(bool reversed);
bool emulated_thread_order_reversed();
void* allocate(size_t nbytes, int device);    // throws std::bad_alloc when the pool cannot grow
void release(void* ptr, int device);
void memset_zero(void* ptr, size_t nbytes, int device);
enum class CopyKind { host_to_device, device_to_host, device_to_device };
void copy(void* dst, const void* src, size_t nbytes, CopyKind kind, int device);  // synchronous for device_to_host
void synchronize(int device);
// Waits for all work on the device, on every stream (other libraries' included), dropping errors: for deleters of
// memory shared through DLPack, which the other side may still be using on a stream we do not know. Never throws.
void wait_for_device(int device) noexcept;
void* stream(int device);           // the device's cudaStream_t
struct MemoryStats {
  int64_t allocated_bytes = 0, peak_allocated_bytes = 0;
  int64_t reserved_bytes = 0, peak_reserved_bytes = 0;  // held by the pool, including cached free blocks
  int64_t allocations = 0;  // requests the cached blocks could not serve: the pool grew (a cudaMalloc's worth)
  int64_t requests = 0, frees = 0;  // every allocate() and release(), served from the cache or not
};
MemoryStats memory_stats(int device);
void reset_peak_memory_stats(int device);
void empty_cache(int device);       // returns cached blocks to the driver

// CUDA events on the device's stream, for benchmarks: record two, read the milliseconds between them.
void* event_create(int device);
void event_record(void* event, int device);
float event_elapsed_ms(void* start, void* end);  // waits for `end`
void event_destroy(void* event);

}  // namespace gradcore::cuda
