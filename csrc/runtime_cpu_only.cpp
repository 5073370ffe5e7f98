// CPU-only builds: the CUDA runtime entry points report "not compiled" instead of linking CUDA.
#ifndef GRADCORE_WITH_CUDA
#include <stdexcept>
#include "device_runtime.h"

namespace gradcore::cuda {
namespace {
[[noreturn]] void not_compiled() {
  throw std::runtime_error("gradcore was built without CUDA (GRADCORE_CUDA=OFF or no nvcc at build time)");
}
}  // namespace
bool compiled() { return false; }
bool emulated() { return false; }
int device_count() { return 0; }
std::string device_name(int) { not_compiled(); }
int multiprocessor_count() { not_compiled(); }
void set_emulated_thread_order(bool) { not_compiled(); }
bool emulated_thread_order_reversed() { return false; }
void* allocate(size_t, int) { not_compiled(); }
void release(void*, int) {}
void memset_zero(void*, size_t, int) { not_compiled(); }
void copy(void*, const void*, size_t, CopyKind, int) { not_compiled(); }
void synchronize(int) { not_compiled(); }
void wait_for_device(int) noexcept {}
void* stream(int) { not_compiled(); }
MemoryStats memory_stats(int) { not_compiled(); }
void reset_peak_memory_stats(int) { not_compiled(); }
void empty_cache(int) { not_compiled(); }
void* event_create(int) { not_compiled(); }
void event_record(void*, int) { not_compiled(); }
float event_elapsed_ms(void*, void*) { not_compiled(); }
void event_destroy(void*) {}
}  // namespace gradcore::cuda
#endif
