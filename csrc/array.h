// Array: the one tensor type below the autograd layer.
// Refcounted storage + shape + dtype + device. Always contiguous row-major (NCHW for images): every kernel may
// assume it. reshape shares storage; anything needing strides makes a contiguous copy in the layer above.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace gradcore {

// float32/float64 carry values and gradients; int64 holds labels and indices; boolean holds comparison results (one
// byte per element, 0 or 1, as numpy's and PyTorch's bool). Only the float dtypes reach the float kernels.
enum class DType { float32, float64, int64, boolean };

struct Device {
  enum Kind { cpu, cuda } kind = cpu;
  int index = 0;
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const { return kind == cpu ? "cpu" : "cuda:" + std::to_string(index); }
  static Device parse(const std::string& text);  // "cpu", "cuda", "cuda:1"
};

using Shape = std::vector<int64_t>;

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::float32: return 4;
    case DType::boolean: return 1;
    default: return 8;
  }
}
inline std::string dtype_name(DType t) {
  switch (t) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::int64: return "int64";
    default: return "bool";
  }
}
inline bool is_floating(DType t) { return t == DType::float32 || t == DType::float64; }
DType dtype_parse(const std::string& name);  // float32, float64, int64, bool
std::string shape_str(const Shape& shape);
int64_t shape_numel(const Shape& shape);  // throws ArgError when the count does not fit int64

// The CPU allocator's cache of freed blocks of 32 MiB and more (array.cpp): what it holds, and a way to give it,
// and the heap's free pages, back to the OS (torch.cuda.empty_cache's counterpart, gradcore.cpu.empty_cache).
struct CpuCacheStats {
  size_t cached_bytes;
  size_t cached_blocks;
};
CpuCacheStats cpu_cache_stats();
void cpu_empty_cache();

class Array {
 public:
  Array() = default;
  // Fresh storage. `empty` leaves it unwritten: only for outputs a kernel writes completely.
  static Array empty(const Shape& shape, DType dtype, Device device);
  static Array zeros(const Shape& shape, DType dtype, Device device);
  static Array full(const Shape& shape, double value, DType dtype, Device device);
  // Wraps memory someone else owns; `owner` is released when the last Array using it goes.
  static Array wrap(void* data, const Shape& shape, DType dtype, Device device, std::shared_ptr<void> owner);

  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? i + (int)shape_.size() : i]; }
  int ndim() const { return (int)shape_.size(); }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return (size_t)numel() * dtype_size(dtype_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  bool is_cuda() const { return device_.kind == Device::cuda; }
  void* data() const { return data_; }
  template <typename T> T* data_as() const { return static_cast<T*>(data_); }
  const std::shared_ptr<void>& storage() const { return storage_; }
  // Counts in-place writes to the storage (shared by every Array over it, reshapes included), so that autograd can
  // tell that a value saved for backward was overwritten since (PyTorch's version counter).
  int64_t version() const { return version_ ? version_->load(std::memory_order_relaxed) : 0; }
  void bump_version() const {
    if (version_) version_->fetch_add(1, std::memory_order_relaxed);
  }

  Array reshape(const Shape& shape) const;       // shares storage
  Array to(Device device) const;                  // copy (or self when already there)
  Array astype(DType dtype) const;                // copy (or self when the same)
  Array clone() const;
  void copy_from(const Array& src);               // same shape and dtype, any devices
  void fill(double value);

 private:
  std::shared_ptr<void> storage_;
  std::shared_ptr<std::atomic<int64_t>> version_;
  void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::float32;
  Device device_;
};

// Argument checks shared by every binding: they raise ValueError/TypeError naming the argument.
struct ArgError : std::invalid_argument { using std::invalid_argument::invalid_argument; };
struct ArgTypeError : std::invalid_argument { using std::invalid_argument::invalid_argument; };
// An allocation that failed, with what was asked for (MemoryError in Python; std::bad_alloc says nothing).
struct OutOfMemory : std::bad_alloc {
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }
 private:
  std::string message_;
};
void check_same_dtype(const Array& a, const char* a_name, const Array& b, const char* b_name);
void check_same_device(const Array& a, const char* a_name, const Array& b, const char* b_name);
void check_ndim(const Array& a, const char* name, int ndim, const char* layout);
void check_shape(const Array& a, const char* name, const Shape& expected);

// Raises TypeError "<name>: expected a float32 or float64 tensor, got int64" for a non-float array.
void check_float(const Array& a, const char* name);

// Calls fn(float{}) or fn(double{}) depending on dtype: one line of dispatch per kernel entry point. A float kernel
// never reinterprets the bits of an int64 or bool array: the Python layer (_checks.tensor) and the bindings reject
// those under the argument's name first, and this is the last line of defence for a path that forgot to.
[[noreturn]] void throw_not_float(DType t);
template <typename Fn> auto dispatch_float(DType t, Fn&& fn) {
  if (t == DType::float32) return fn(float{});
  if (t != DType::float64) throw_not_float(t);
  return fn(double{});
}

// Calls fn(T{}) for every dtype: float, double, int64_t or bool (fills, casts, comparisons, copies).
template <typename Fn> auto dispatch_all(DType t, Fn&& fn) {
  switch (t) {
    case DType::float32: return fn(float{});
    case DType::float64: return fn(double{});
    case DType::int64: return fn(int64_t{});
    default: return fn(bool{});
  }
}

[[noreturn]] void throw_no_cuda();

}  // namespace gradcore

// Runs name_cpu(...) or name_cuda(...) by the device of `array`; CPU-only builds raise for CUDA arrays.
// Every op's entry point dispatches with this one line, e.g. GRADCORE_ON_DEVICE(x, conv2d_forward, x, w, y, p);
#ifdef GRADCORE_WITH_CUDA
#define GRADCORE_ON_DEVICE(array, name, ...) \
  ((array).is_cuda() ? name##_cuda(__VA_ARGS__) : name##_cpu(__VA_ARGS__))
#else
#define GRADCORE_ON_DEVICE(array, name, ...) \
  ((array).is_cuda() ? ::gradcore::throw_no_cuda() : name##_cpu(__VA_ARGS__))
#endif
