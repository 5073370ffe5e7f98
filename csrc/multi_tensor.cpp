// Building, checking and caching multi-tensor tables; see multi_tensor.h.
#include "multi_tensor.h"
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

namespace gradcore {

namespace {

std::string item_name(const char* list, size_t i) { return std::string(list) + "[" + std::to_string(i) + "]"; }

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace

TensorTableView TensorTable::get(const std::vector<const TensorList*>& columns, const char* const* column_names,
                                 const TensorList& steps, const std::vector<int32_t>& groups) {
  if (columns.empty() || columns.size() > (size_t)kTableColumns)
    throw ArgError("columns: expected 1 to " + std::to_string(kTableColumns) + " tensor lists");
  // The reference column fixes the count, shapes, dtype and device of every other column.
  int ref = -1;
  for (size_t c = 0; c < columns.size() && ref < 0; ++c)
    if (!columns[c]->empty()) ref = (int)c;
  const size_t n = ref < 0 ? 0 : columns[ref]->size();
  const char* ref_name = ref < 0 ? "" : column_names[ref];

  // Key: every buffer's address, size, dtype and device, the step counters and the groups; equal keys mean the
  // cached table is valid. Each is a whole entry of its own: a cache hit skips the checks, so two different arrays
  // must never give one key (an address reused by the allocator for a buffer of another size or dtype would
  // otherwise be walked with the old size).
  auto buffer_kind = [](const Array& a) {
    return (uintptr_t)a.dtype() | ((uintptr_t)a.device().kind << 8) | ((uintptr_t)a.device().index << 16);
  };
  std::vector<uintptr_t> key;
  key.reserve(n * (3 * columns.size() + 4) + 4);
  key.push_back(n);
  for (size_t c = 0; c < columns.size(); ++c) {
    const TensorList& list = *columns[c];
    key.push_back(list.size());
    for (const Array& a : list) {
      key.push_back(reinterpret_cast<uintptr_t>(a.data()));
      key.push_back((uintptr_t)a.numel());
      key.push_back(buffer_kind(a));
    }
  }
  for (const Array& s : steps) {
    key.push_back(reinterpret_cast<uintptr_t>(s.data()));
    key.push_back((uintptr_t)s.numel());
    key.push_back(buffer_kind(s));
  }
  for (int32_t g : groups) key.push_back((uintptr_t)g);
  if (n > 0) {
    const Array& first = (*columns[ref])[0];
    key.push_back((uintptr_t)first.dtype());
    key.push_back((uintptr_t)(first.device().kind * 1024 + first.device().index));
  }
  if (!key_.empty() && key == key_) return view_;

  // Checks (only on a rebuild: a cache hit has the same buffers, already checked).
  for (size_t c = 0; c < columns.size(); ++c) {
    const TensorList& list = *columns[c];
    if (!list.empty() && list.size() != n)
      throw ArgError(std::string(column_names[c]) + ": expected " + std::to_string(n) + " tensors (one per entry of " +
                     ref_name + "), got " + std::to_string(list.size()));
  }
  if (!steps.empty() && steps.size() != n)
    throw ArgError("steps: expected " + std::to_string(n) + " step counters, got " + std::to_string(steps.size()));
  if (!groups.empty() && groups.size() != n)
    throw ArgError("groups: expected " + std::to_string(n) + " group indices, got " + std::to_string(groups.size()));
  if (n > (size_t)INT32_MAX) throw ArgError(std::string(ref_name) + ": too many tensors");
  for (size_t t = 0; t < n; ++t) {
    const Array& r = (*columns[ref])[t];
    const Array& first = (*columns[ref])[0];
    const std::string r_name = item_name(ref_name, t);
    if (t > 0) {
      check_same_dtype(first, item_name(ref_name, 0).c_str(), r, r_name.c_str());
      check_same_device(first, item_name(ref_name, 0).c_str(), r, r_name.c_str());
    }
    for (size_t c = 0; c < columns.size(); ++c) {
      if (columns[c]->empty() || (int)c == ref) continue;
      const Array& a = (*columns[c])[t];
      const std::string a_name = item_name(column_names[c], t);
      check_same_dtype(r, r_name.c_str(), a, a_name.c_str());
      check_same_device(r, r_name.c_str(), a, a_name.c_str());
      if (a.numel() != r.numel() || a.shape() != r.shape())
        throw ArgError(a_name + ": expected shape " + shape_str(r.shape()) + " like " + r_name + ", got " +
                       shape_str(a.shape()));
    }
    if (!steps.empty()) {
      const Array& s = steps[t];
      const std::string s_name = item_name("steps", t);
      if (s.dtype() != DType::float64 || s.numel() != 1)
        throw ArgError(s_name + ": expected a one-element float64 step counter");
      check_same_device(r, r_name.c_str(), s, s_name.c_str());
    }
    if (!groups.empty() && groups[t] < 0) throw ArgError(item_name("groups", t) + ": expected a group index >= 0");
  }

  // The buffers the kernels write (every column but the gradients, or the gradients of a table without parameters)
  // must be distinct: on CUDA two table entries over one buffer are two blocks read-modify-writing the same elements
  // at once, a race, where the CPU twin would apply both updates in turn.
  {
    const bool grads_written = columns.size() <= (size_t)kParamColumn || columns[kParamColumn]->empty();
    std::vector<std::pair<const void*, std::pair<size_t, size_t>>> written;  // (buffer, (column, tensor))
    for (size_t c = 0; c < columns.size(); ++c) {
      if ((int)c == kGradColumn && !grads_written) continue;
      for (size_t t = 0; t < columns[c]->size(); ++t) {
        const Array& a = (*columns[c])[t];
        if (a.numel() > 0) written.push_back({a.data(), {c, t}});
      }
    }
    std::sort(written.begin(), written.end());
    for (size_t i = 1; i < written.size(); ++i) {
      if (written[i].first != written[i - 1].first) continue;
      const auto first = std::min(written[i].second, written[i - 1].second);
      const auto second = std::max(written[i].second, written[i - 1].second);
      throw ArgError(item_name(column_names[second.first], second.second) + ": the same buffer as " +
                     item_name(column_names[first.first], first.second) +
                     "; every updated tensor needs its own buffer");
    }
  }

  // One counter per tensor: the CUDA kernels let the last block of each tensor store its step + 1, so two tensors
  // sharing a counter would race (one tensor's blocks reading the count the other's already advanced).
  if (!steps.empty()) {
    std::vector<std::pair<const void*, size_t>> owners;
    for (size_t t = 0; t < n; ++t) owners.emplace_back(steps[t].data(), t);
    std::sort(owners.begin(), owners.end());
    for (size_t i = 1; i < owners.size(); ++i) {
      if (owners[i].first != owners[i - 1].first) continue;
      const size_t first = std::min(owners[i].second, owners[i - 1].second);
      const size_t second = std::max(owners[i].second, owners[i - 1].second);
      throw ArgError(item_name("steps", second) + ": the same step counter as " + item_name("steps", first) +
                     "; every tensor needs its own");
    }
  }

  // Build.
  std::vector<TensorEntry> tensors(n);
  std::vector<ChunkEntry> chunks;
  int64_t first_chunk = 0;
  for (size_t t = 0; t < n; ++t) {
    TensorEntry& e = tensors[t];
    e = TensorEntry{};
    bool aligned = true;
    for (size_t c = 0; c < columns.size(); ++c) {
      if (columns[c]->empty()) continue;
      e.column[c] = (*columns[c])[t].data();
      aligned = aligned && aligned16(e.column[c]);
    }
    e.step = steps.empty() ? nullptr : steps[t].data_as<double>();
    e.numel = (*columns[ref])[t].numel();
    const int64_t k = (e.numel + kTensorChunk - 1) / kTensorChunk;
    if (k > INT32_MAX) throw ArgError(item_name(ref_name, t) + ": too many elements");
    e.chunks = (int32_t)k;
    e.first_chunk = first_chunk;
    e.group = groups.empty() ? 0 : groups[t];
    e.aligned = aligned ? 1 : 0;
    for (int64_t j = 0; j < k; ++j) chunks.push_back(ChunkEntry{(int32_t)t, (int32_t)j});
    first_chunk += k;
  }
  tensors_ = std::move(tensors);
  chunks_ = std::move(chunks);
  done_.assign(n, 0u);

  TensorTableView view;
  view.n_tensors = (int64_t)n;
  view.n_chunks = (int64_t)chunks_.size();
  for (const TensorEntry& e : tensors_) {
    view.has_empty_tensors = view.has_empty_tensors || e.numel == 0;
    view.total_numel += e.numel;
  }
  if (n > 0) {
    const Array& first = (*columns[ref])[0];
    view.dtype = first.dtype();
    view.device = first.device();
  }
  if (view.device.kind == Device::cuda && n > 0) {
#ifdef GRADCORE_WITH_CUDA
    // One device buffer: tensors, then chunks, then the done counters (each part 16-byte aligned).
    auto round16 = [](size_t b) { return (b + 15) / 16 * 16; };
    const size_t tensor_bytes = round16(tensors_.size() * sizeof(TensorEntry));
    const size_t chunk_bytes = round16(chunks_.size() * sizeof(ChunkEntry));
    const size_t done_bytes = round16(done_.size() * sizeof(uint32_t));
    std::vector<unsigned char> host(tensor_bytes + chunk_bytes + done_bytes, 0);
    std::memcpy(host.data(), tensors_.data(), tensors_.size() * sizeof(TensorEntry));
    std::memcpy(host.data() + tensor_bytes, chunks_.data(), chunks_.size() * sizeof(ChunkEntry));
    device_table_ = Array::empty({(int64_t)(host.size() / 8)}, DType::float64, view.device);  // written whole below
    upload_table_cuda(host.data(), host.size(), device_table_);
    auto* base = static_cast<unsigned char*>(device_table_.data());
    view.tensors = reinterpret_cast<const TensorEntry*>(base);
    view.chunks = reinterpret_cast<const ChunkEntry*>(base + tensor_bytes);
    view.done = reinterpret_cast<uint32_t*>(base + tensor_bytes + chunk_bytes);
#else
    throw_no_cuda();
#endif
  } else {
    device_table_ = Array();
    view.tensors = tensors_.data();
    view.chunks = chunks_.data();
    view.done = done_.data();
  }
  key_ = std::move(key);
  view_ = view;
  ++builds_;
  return view_;
}

}  // namespace gradcore
