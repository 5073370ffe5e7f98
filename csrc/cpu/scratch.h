// Scratch memory for the CPU kernels: 64-byte aligned, so vector loads from it are aligned.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace gradcore::cpu {

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Per-thread scratch that only grows: OpenMP keeps its threads, so steady-state calls allocate nothing.
class Scratch {
 public:
  ~Scratch() { std::free(ptr_); }
  template <typename T> T* get(int64_t count) {
    const size_t bytes = (size_t)round_up(std::max<int64_t>(count, 1) * (int64_t)sizeof(T), 64);
    if (bytes > bytes_) {
      std::free(ptr_);
      ptr_ = std::aligned_alloc(64, bytes);
      if (!ptr_) throw std::bad_alloc();
      bytes_ = bytes;
    }
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};
// The two per-thread buffers the convolution kernels use (one for columns or padded planes, one for a packed B).
inline thread_local Scratch scratch_col, scratch_packed_b;

template <typename T> struct AlignedBuffer {  // heap block shared by the threads of one call
  explicit AlignedBuffer(int64_t count) {
    ptr = static_cast<T*>(std::aligned_alloc(64, (size_t)round_up(std::max<int64_t>(count, 1) * (int64_t)sizeof(T), 64)));
    if (!ptr) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(ptr); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T* ptr;
};

}  // namespace gradcore::cpu
