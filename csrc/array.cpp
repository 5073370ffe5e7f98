// Array storage, copies between devices, and the shared argument checks.
#include "array.h"
#include <cstdlib>
#include <cstring>
#include <new>
#include <map>
#include <mutex>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <sstream>
#include "device_runtime.h"
#include "fill_cast.h"

namespace gradcore {

Device Device::parse(const std::string& text) {
  if (text == "cpu") return {cpu, 0};
  if (text == "cuda") return {cuda, 0};
  if (text.rfind("cuda:", 0) == 0) {
    try {
      size_t used = 0;
      int index = std::stoi(text.substr(5), &used);
      if (used == text.size() - 5 && index >= 0) return {cuda, index};
    } catch (const std::exception&) {
    }
  }
  throw ArgError("device: expected \"cpu\", \"cuda\" or \"cuda:N\", got \"" + text + "\"");
}

DType dtype_parse(const std::string& name) {
  if (name == "float32") return DType::float32;
  if (name == "float64") return DType::float64;
  if (name == "int64") return DType::int64;
  if (name == "bool") return DType::boolean;
  throw ArgTypeError("dtype: expected \"float32\", \"float64\", \"int64\" or \"bool\", got \"" + name + "\"");
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << (shape.size() == 1 ? ",)" : ")");
  return out.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d == 0) return 0;
  // A wrapped product would give a tensor of the wrong size (2**62 + 1 by 4 "holds" 4 elements).
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n))
      throw ArgError("shape: " + shape_str(shape) + " holds more than 2**63 - 1 elements");
  return n;
}

// glibc serves blocks above its mmap threshold (128 KiB at first) with fresh mmaps and returns them on free, so
// every activation and gradient of a training step (~0.1-3 MiB each) page-faults its memory in again: ~1000 faults,
// ~10% of a small-batch step. Blocks up to 32 MiB from the heap, kept when freed (up to 128 MiB at its top), are
// reused without faults. Set once, before the first CPU array.
static void keep_freed_cpu_blocks() {
#if defined(__GLIBC__)
  static const bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
    return true;
  }();
  (void)done;
#endif
}

// Blocks above glibc's largest mmap threshold (32 MiB) are always mmapped afresh and unmapped on free: each one
// page-faults and zeroes its memory again, one fault per 4 KiB (a ConvLSTM step at the bench's shape, with 67 MiB
// gate arrays per time step, took ~480k faults and ~12% of its CPU time in the kernel). Those blocks are rounded
// to 2 MiB, asked for as transparent huge pages (512x fewer faults where THP is in "madvise" mode), and kept when
// freed, up to kLargeCacheBytes in all, for the next request of the same rounded size. A reused block holds old
// data, as any heap block does: kernels write every output element anyway.
constexpr size_t kLargeBlock = size_t(32) << 20;
constexpr size_t kLargeGranule = size_t(2) << 20;
constexpr size_t kLargeCacheBytes = size_t(1) << 30;

struct LargeBlockCache {
  std::mutex mutex;
  std::multimap<size_t, void*> blocks;  // rounded size -> free block
  size_t bytes = 0;
};

static LargeBlockCache& large_blocks() {
  static LargeBlockCache* cache = new LargeBlockCache();  // never destroyed: blocks may be freed at exit
  return *cache;
}

static std::shared_ptr<void> allocate_large_cpu_block(size_t nbytes) {
  const size_t size = (nbytes + kLargeGranule - 1) / kLargeGranule * kLargeGranule;
  LargeBlockCache& cache = large_blocks();
  void* ptr = nullptr;
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.blocks.find(size);
    if (it != cache.blocks.end()) {
      ptr = it->second;
      cache.blocks.erase(it);
      cache.bytes -= size;
    }
  }
  if (!ptr) {
    ptr = std::aligned_alloc(kLargeGranule, size);
    if (!ptr) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
    madvise(ptr, size, MADV_HUGEPAGE);  // advice only: a failure changes nothing but the speed
#endif
  }
  return std::shared_ptr<void>(ptr, [size](void* p) {
    LargeBlockCache& c = large_blocks();
    {
      std::lock_guard<std::mutex> lock(c.mutex);
      if (c.bytes + size <= kLargeCacheBytes) {
        c.blocks.emplace(size, p);
        c.bytes += size;
        return;
      }
    }
    std::free(p);
  });
}

CpuCacheStats cpu_cache_stats() {
  LargeBlockCache& cache = large_blocks();
  std::lock_guard<std::mutex> lock(cache.mutex);
  return {cache.bytes, cache.blocks.size()};
}

void cpu_empty_cache() {
  std::multimap<size_t, void*> blocks;
  {
    LargeBlockCache& cache = large_blocks();
    std::lock_guard<std::mutex> lock(cache.mutex);
    blocks.swap(cache.blocks);
    cache.bytes = 0;
  }
  for (auto& entry : blocks) std::free(entry.second);  // mmapped blocks: unmapped here
#if defined(__GLIBC__)
  malloc_trim(0);  // and the heap's free pages (kept up to M_TRIM_THRESHOLD above)
#endif
}

static std::shared_ptr<void> allocate_storage(size_t nbytes, Device device) {
  if (device.kind == Device::cpu) {
    keep_freed_cpu_blocks();
    size_t rounded = (nbytes + 63) / 64 * 64;  // 64-byte aligned so vector loads are aligned
    if (rounded >= kLargeBlock) return allocate_large_cpu_block(rounded);
    void* ptr = std::aligned_alloc(64, rounded ? rounded : 64);
    if (!ptr) throw std::bad_alloc();
    return std::shared_ptr<void>(ptr, [](void* p) { std::free(p); });
  }
  if (device.index >= cuda::device_count())
    throw ArgError("device: " + device.str() + " is not available (" + std::to_string(cuda::device_count()) +
                   " CUDA device(s) present, CUDA compiled: " + (cuda::compiled() ? "yes" : "no") + ")");
  int index = device.index;
  void* ptr = cuda::allocate(nbytes, index);
  return std::shared_ptr<void>(ptr, [index](void* p) { cuda::release(p, index); });
}

Array Array::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) throw ArgError("shape: dimensions must be >= 0, got " + shape_str(shape));
  // Bytes, rounded up to 64, must fit size_t and int64 alike.
  if (shape_numel(shape) > (INT64_MAX - 64) / (int64_t)dtype_size(dtype))
    throw ArgError("shape: " + shape_str(shape) + " is too large for a " + dtype_name(dtype) + " array (" +
                   std::to_string(shape_numel(shape)) + " elements of " + std::to_string(dtype_size(dtype)) +
                   " bytes overflow a 64-bit size)");
  Array a;
  a.shape_ = shape;
  a.dtype_ = dtype;
  a.device_ = device;
  try {
    a.storage_ = allocate_storage(a.nbytes(), device);
  } catch (const std::bad_alloc&) {
    throw OutOfMemory("out of memory: cannot allocate " + std::to_string(a.nbytes()) + " bytes for a " +
                      dtype_name(dtype) + " array of shape " + shape_str(shape) + " on " + device.str());
  }
  a.data_ = a.storage_.get();
  a.version_ = std::make_shared<std::atomic<int64_t>>(0);
  return a;
}

Array Array::zeros(const Shape& shape, DType dtype, Device device) {
  Array a = empty(shape, dtype, device);
  if (device.kind == Device::cpu)
    std::memset(a.data_, 0, a.nbytes());
  else if (a.nbytes())
    cuda::memset_zero(a.data_, a.nbytes(), device.index);
  return a;
}

Array Array::full(const Shape& shape, double value, DType dtype, Device device) {
  Array a = empty(shape, dtype, device);
  a.fill(value);
  return a;
}

Array Array::wrap(void* data, const Shape& shape, DType dtype, Device device, std::shared_ptr<void> owner) {
  Array a;
  a.shape_ = shape;
  a.dtype_ = dtype;
  a.device_ = device;
  a.storage_ = std::move(owner);
  a.version_ = std::make_shared<std::atomic<int64_t>>(0);
  a.data_ = data;
  return a;
}

Array Array::reshape(const Shape& shape) const {
  Shape resolved = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i] == -1) {
      if (infer >= 0) throw ArgError("shape: only one dimension may be -1, got " + shape_str(shape));
      infer = (int)i;
    } else if (resolved[i] < 0) {
      throw ArgError("shape: dimensions must be >= 0 or -1, got " + shape_str(shape));
    } else if (__builtin_mul_overflow(known, resolved[i], &known)) {
      throw ArgError("shape: " + shape_str(shape) + " holds more than 2**63 - 1 elements");
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel() % known != 0)
      throw ArgError("shape: cannot reshape " + shape_str(shape_) + " into " + shape_str(shape));
    resolved[infer] = numel() / known;
  }
  if (shape_numel(resolved) != numel())
    throw ArgError("shape: cannot reshape " + shape_str(shape_) + " (" + std::to_string(numel()) +
                   " elements) into " + shape_str(shape));
  Array out = *this;
  out.shape_ = resolved;
  return out;
}

void Array::copy_from(const Array& src) {
  if (src.shape_ != shape_) throw ArgError("src: expected shape " + shape_str(shape_) + ", got " + shape_str(src.shape_));
  if (src.dtype_ != dtype_) throw ArgTypeError("src: expected dtype " + dtype_name(dtype_) + ", got " + dtype_name(src.dtype_));
  bump_version();
  size_t n = nbytes();
  // Nothing to do for a copy onto itself (and memcpy/cudaMemcpy leave overlapping ranges undefined).
  if (n == 0 || (data_ == src.data_ && device_ == src.device_)) return;
  bool src_cuda = src.is_cuda(), dst_cuda = is_cuda();
  if (!src_cuda && !dst_cuda) {
    std::memcpy(data_, src.data_, n);
  } else if (src_cuda && dst_cuda) {
    if (src.device_ != device_) {
      // Through the host: rare, and keeps the runtime free of peer-access setup.
      Array staging = src.to(Device{});
      copy_from(staging);
      return;
    }
    cuda::copy(data_, src.data_, n, cuda::CopyKind::device_to_device, device_.index);
  } else if (dst_cuda) {
    cuda::copy(data_, src.data_, n, cuda::CopyKind::host_to_device, device_.index);
  } else {
    cuda::copy(data_, src.data_, n, cuda::CopyKind::device_to_host, src.device_.index);
  }
}

Array Array::to(Device device) const {
  if (device == device_) return *this;
  Array out = empty(shape_, dtype_, device);
  out.copy_from(*this);
  return out;
}

Array Array::clone() const {
  Array out = empty(shape_, dtype_, device_);
  out.copy_from(*this);
  return out;
}

Array Array::astype(DType dtype) const {
  if (dtype == dtype_) return *this;
  Array out = empty(shape_, dtype, device_);
  cast_into(*this, out);
  return out;
}

void Array::fill(double value) {
  bump_version();
  GRADCORE_ON_DEVICE(*this, fill_array, *this, value);
}

void fill_array(Array& a, double value) { GRADCORE_ON_DEVICE(a, fill_array, a, value); }
void cast_into(const Array& src, Array& dst) { GRADCORE_ON_DEVICE(src, cast_into, src, dst); }

void throw_no_cuda() {
  throw std::runtime_error("gradcore was built without CUDA (GRADCORE_CUDA=OFF or no nvcc at build time)");
}

void check_same_dtype(const Array& a, const char* a_name, const Array& b, const char* b_name) {
  if (a.dtype() != b.dtype())
    throw ArgTypeError(std::string(b_name) + ": expected dtype " + dtype_name(a.dtype()) + " (the dtype of " + a_name +
                       "), got " + dtype_name(b.dtype()));
}

void check_float(const Array& a, const char* name) {
  if (!is_floating(a.dtype()))
    throw ArgTypeError(std::string(name) + ": expected a float32 or float64 tensor, got " + dtype_name(a.dtype()));
}

void throw_not_float(DType t) {
  throw ArgTypeError("expected a float32 or float64 tensor, got " + dtype_name(t) +
                     " (this kernel computes in floating point; convert with .float() first)");
}

void check_same_device(const Array& a, const char* a_name, const Array& b, const char* b_name) {
  if (a.device() != b.device())
    throw ArgError(std::string(b_name) + ": expected device " + a.device().str() + " (the device of " + a_name +
                   "), got " + b.device().str());
}

void check_ndim(const Array& a, const char* name, int ndim, const char* layout) {
  if (a.ndim() != ndim)
    throw ArgError(std::string(name) + ": expected a " + std::to_string(ndim) + "-d array " + layout + ", got shape " +
                   shape_str(a.shape()));
}

void check_shape(const Array& a, const char* name, const Shape& expected) {
  if (a.shape() != expected)
    throw ArgError(std::string(name) + ": expected shape " + shape_str(expected) + ", got " + shape_str(a.shape()));
}

}  // namespace gradcore
