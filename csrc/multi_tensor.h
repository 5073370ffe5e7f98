// Multi-tensor tables: one kernel launch (CUDA) or one loop (CPU) over every element of a list of tensors.
//
// A table lists, per tensor, pointers to up to kTableColumns buffers of the same shape (by convention column 0 is
// the parameter, column 1 its gradient, columns 2.. the optimizer's state), its size, the index of its
// hyperparameter group in the launch and an optional per-tensor step counter. Each tensor is cut into chunks of
// kTensorChunk elements; the chunk list maps a chunk (a CUDA block, a CPU task) to (tensor, chunk). Chunking fixes the
// order of every reduction over the list, so results do not depend on the grid or the thread count.
//
// TensorTable caches the built table: while the same buffers are passed (compared by address) it is not rebuilt and,
// on CUDA, not uploaded again. A rebuild on CUDA goes through a pinned staging ring, so even then the host does not
// wait for the device to drain.
#pragma once
#include <cstdint>
#include <vector>
#include "array.h"

#include "host_device.h"

namespace gradcore {

constexpr int kTableColumns = 5;          // param, grad and up to three state buffers
constexpr int kParamColumn = 0, kGradColumn = 1;
constexpr int64_t kTensorChunk = 32768;   // elements per chunk: one CUDA block, one CPU task

struct TensorEntry {
  void* column[kTableColumns];  // nullptr where a column is unused
  double* step;                 // (1,) float64 step count of this tensor, or nullptr
  int64_t numel;
  int64_t first_chunk;          // index of this tensor's first chunk in the chunk list
  int32_t chunks;               // number of chunks of this tensor
  int32_t group;                // index of the tensor's hyperparameter group within the launch
  int32_t aligned;              // every column 16-byte aligned: vector loads allowed
  int32_t reserved;
};

struct ChunkEntry {
  int32_t tensor;
  int32_t chunk;                // within the tensor
};

// What a kernel receives: host pointers for a CPU table, device pointers for a CUDA one.
struct TensorTableView {
  const TensorEntry* tensors = nullptr;
  const ChunkEntry* chunks = nullptr;
  uint32_t* done = nullptr;     // (n_tensors,) zeroed counters of finished chunks (CUDA step updates)
  int64_t n_tensors = 0, n_chunks = 0;
  int64_t total_numel = 0;         // elements over all tensors
  bool has_empty_tensors = false;  // some tensor has no elements, hence no chunk (its step still advances)
  DType dtype = DType::float32;
  Device device;
};

// One column of a table: a list of tensors, or empty when the column is unused.
using TensorList = std::vector<Array>;

class TensorTable {
 public:
  // columns[c] is empty or holds one Array per tensor, each of the shape of columns[0] (or of the grad column when
  // there is no parameter column); steps is empty or one (1,) float64 Array per tensor; groups is empty (all 0) or
  // one group index per tensor. The names in `column_names` are used in error messages.
  TensorTableView get(const std::vector<const TensorList*>& columns, const char* const* column_names,
                      const TensorList& steps, const std::vector<int32_t>& groups);
  int64_t builds() const { return builds_; }  // how many times the table was (re)built: a cache diagnostic

 private:
  std::vector<uintptr_t> key_;
  std::vector<TensorEntry> tensors_;
  std::vector<ChunkEntry> chunks_;
  std::vector<uint32_t> done_;
  Array device_table_;  // CUDA: tensors, chunks, then done counters, uploaded once per rebuild
  TensorTableView view_;
  int64_t builds_ = 0;
};

#ifdef GRADCORE_WITH_CUDA
// Copies `nbytes` of host memory into `dst` (device memory) on the device's stream without waiting for the device.
void upload_table_cuda(const void* host, size_t nbytes, const Array& dst);
#endif

}  // namespace gradcore
