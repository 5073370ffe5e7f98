// Uploading multi-tensor tables (see multi_tensor.h) without a device-to-host synchronisation.
// The host bytes go through a small ring of pinned staging buffers: cudaMemcpyAsync from pinned memory returns at
// once, and a staging buffer is refilled only after the copy that last used it has finished (an event per buffer),
// which in practice was several table rebuilds ago.
#include <cstring>
#include <map>
#include <mutex>
#include "cuda/launch.cuh"
#include "multi_tensor.h"

namespace gradcore {

namespace {

constexpr int kStagingSlots = 4;

struct StagingSlot {
  void* host = nullptr;
  size_t capacity = 0;
  cudaEvent_t copied = nullptr;
  bool in_flight = false;
};

struct StagingRing {
  StagingSlot slots[kStagingSlots];
  int next = 0;
};

std::mutex staging_mutex;
std::map<int, StagingRing> staging_rings;  // by device index; kept for the life of the process

}  // namespace

void upload_table_cuda(const void* host, size_t nbytes, const Array& dst) {
  if (nbytes == 0) return;
  if (dst.nbytes() < nbytes) throw ArgError("table: the device buffer is smaller than the table");
  cudaStream_t s = cuda::stream_of(dst);
  std::lock_guard<std::mutex> lock(staging_mutex);
  StagingRing& ring = staging_rings[dst.device().index];
  StagingSlot& slot = ring.slots[ring.next];
  ring.next = (ring.next + 1) % kStagingSlots;
  if (slot.in_flight) GRADCORE_CUDA_CHECK(cudaEventSynchronize(slot.copied));
  slot.in_flight = false;
  if (slot.capacity < nbytes) {
    if (slot.host) GRADCORE_CUDA_CHECK(cudaFreeHost(slot.host));
    slot.host = nullptr;
    slot.capacity = 0;
    const size_t capacity = nbytes * 2;
    GRADCORE_CUDA_CHECK(cudaMallocHost(&slot.host, capacity));
    slot.capacity = capacity;
  }
  if (!slot.copied) GRADCORE_CUDA_CHECK(cudaEventCreateWithFlags(&slot.copied, cudaEventDisableTiming));
  std::memcpy(slot.host, host, nbytes);
  GRADCORE_CUDA_CHECK(cudaMemcpyAsync(dst.data(), slot.host, nbytes, cudaMemcpyHostToDevice, s));
  GRADCORE_CUDA_CHECK(cudaEventRecord(slot.copied, s));
  slot.in_flight = true;
}

}  // namespace gradcore
