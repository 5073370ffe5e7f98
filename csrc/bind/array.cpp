// Bindings for Array (buffer protocol, DLPack both ways) and the CUDA runtime queries.
// Contract: CPU arrays expose their memory to numpy without a copy; CUDA arrays are copied to the host by numpy().
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <omp.h>
#include "array.h"
#include "device_runtime.h"
#include "dlpack.h"

namespace py = pybind11;
namespace gradcore {
#if defined(GRADCORE_CUDA_EMULATE)
namespace cuda {
std::vector<double> run_emulation_self_test(const std::string& name);
}
#endif

namespace {

struct ExportedArray {  // what a DLPack capsule we hand out keeps alive
  Array array;
  Shape shape;
  DLManagedTensor managed;
};

// The consumer may still have kernels reading the memory queued on its own stream when it lets go: wait for them
// before our stream-ordered free hands the block to our next allocation.
void delete_exported(DLManagedTensor* self) {
  auto* ex = static_cast<ExportedArray*>(self->manager_ctx);
  if (ex->array.is_cuda()) cuda::wait_for_device(ex->array.device().index);
  delete ex;
}

// Owner of an imported tensor: returns it to the producer. For CUDA memory our kernels reading it may still be queued
// on our stream, and the producer's allocator may hand the block to its own stream at once: wait for them first.
template <typename Managed> std::shared_ptr<void> producer_owner(Managed* m, const Device& device) {
  return std::shared_ptr<void>(m, [device](void* p) {
    if (device.kind == Device::cuda) cuda::wait_for_device(device.index);
    auto* mt = static_cast<Managed*>(p);
    if (mt->deleter) mt->deleter(mt);
  });
}

DLDataType dl_dtype(DType t) {
  switch (t) {
    case DType::float32: return {kDLFloat, 32, 1};
    case DType::float64: return {kDLFloat, 64, 1};
    case DType::int64: return {kDLInt, 64, 1};
    default: return {kDLBool, 8, 1};
  }
}

DType dtype_from_dl(const DLDataType& t) {
  if (t.lanes == 1) {
    if (t.code == kDLFloat && t.bits == 32) return DType::float32;
    if (t.code == kDLFloat && t.bits == 64) return DType::float64;
    if (t.code == kDLInt && t.bits == 64) return DType::int64;
    if (t.code == kDLBool && t.bits == 8) return DType::boolean;
  }
  throw ArgTypeError("x: expected a float32, float64, int64 or bool tensor, got DLPack dtype code " +
                     std::to_string(t.code) + " with " + std::to_string(t.bits) + " bits and " +
                     std::to_string(t.lanes) + " lanes");
}

py::capsule to_dlpack(const Array& a) {
  if (a.is_cuda()) cuda::synchronize(a.device().index);  // the consumer may read on any stream
  auto* ex = new ExportedArray{a, a.shape(), {}};
  DLTensor& t = ex->managed.dl_tensor;
  t.data = a.data();
  t.device = {a.is_cuda() ? kDLCUDA : kDLCPU, a.device().index};
  t.ndim = a.ndim();
  t.dtype = dl_dtype(a.dtype());
  t.shape = ex->shape.data();
  t.strides = nullptr;
  t.byte_offset = 0;
  ex->managed.manager_ctx = ex;
  ex->managed.deleter = delete_exported;
  return py::capsule(&ex->managed, "dltensor", [](PyObject* capsule) {
    // Runs when the capsule dies; a consumer that took it renamed it to "used_dltensor" and owns it now.
    if (PyCapsule_IsValid(capsule, "dltensor")) {
      auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
      if (m && m->deleter) m->deleter(m);
    } else {
      PyErr_Clear();
    }
  });
}

Array array_from_dltensor(const DLTensor& t, std::shared_ptr<void> owner) {
  const DType dtype = dtype_from_dl(t.dtype);
  Device device;
  if (t.device.device_type == kDLCPU || t.device.device_type == kDLCUDAHost) device = {Device::cpu, 0};
  else if (t.device.device_type == kDLCUDA) device = {Device::cuda, t.device.device_id};
  else throw ArgError("x: DLPack device type " + std::to_string(t.device.device_type) + " is not supported");
  Shape shape(t.shape, t.shape + t.ndim);
  if (t.strides && shape_numel(shape) > 0) {  // only compact row-major strides (size-1 dims may carry any stride;
                                              // an empty tensor has nothing to lay out)
    int64_t expected = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && t.strides[i] != expected)
        throw ArgError("x: expected a contiguous (row-major) tensor; make it contiguous before from_dlpack");
      expected *= shape[i];
    }
  }
  char* data = static_cast<char*>(t.data) + t.byte_offset;
  // Every kernel loads whole elements (a CUDA load of a float at an address not a multiple of 4 faults).
  if (reinterpret_cast<uintptr_t>(data) % dtype_size(dtype) != 0 && shape_numel(shape) > 0)
    throw ArgError("x: the data pointer (with byte_offset) is not aligned to the " + std::to_string(dtype_size(dtype)) +
                   "-byte elements; copy the tensor before from_dlpack");
  return Array::wrap(data, shape, dtype, device, std::move(owner));
}

// The producer's tensor is owned (and its deleter due) only once the capsule is renamed "used_...": a tensor we
// reject stays with the capsule, whose own destructor frees it (owning it earlier would free it twice).
Array from_dlpack_capsule(py::capsule capsule) {
  PyObject* cap = capsule.ptr();
  if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, "dltensor_versioned"));
    if (m->version.major > 1) throw ArgError("x: DLPack version " + std::to_string(m->version.major) + " is too new");
    Array view = array_from_dltensor(m->dl_tensor, nullptr);  // validates before we take ownership
    std::shared_ptr<void> owner = producer_owner(m, view.device());
    PyCapsule_SetName(cap, "used_dltensor_versioned");
    return Array::wrap(view.data(), view.shape(), view.dtype(), view.device(), std::move(owner));
  }
  if (PyCapsule_IsValid(cap, "dltensor")) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
    Array view = array_from_dltensor(m->dl_tensor, nullptr);  // validates before we take ownership
    std::shared_ptr<void> owner = producer_owner(m, view.device());
    PyCapsule_SetName(cap, "used_dltensor");
    return Array::wrap(view.data(), view.shape(), view.dtype(), view.device(), std::move(owner));
  }
  throw ArgError("x: expected an unused DLPack capsule (\"dltensor\" or \"dltensor_versioned\")");
}

// Zero-copy view of a numpy array: the Array keeps the numpy object alive.
Array from_numpy(py::array arr) {
  if (!(arr.flags() & py::array::c_style))
    throw ArgError("array: expected a C-contiguous numpy array; use numpy.ascontiguousarray first");
  // Every kernel loads whole elements (as from_dlpack checks): an element straddling its alignment is undefined
  // behaviour on the host and a fault on a CUDA copy's source in some drivers.
  if (!(arr.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw ArgError("array: expected a numpy array whose elements are aligned (this one starts at an odd byte offset);"
                   " use gradcore.tensor to copy it");
  if (!arr.writeable())
    throw ArgError("array: expected a writeable numpy array (the tensor shares its memory); use gradcore.tensor "
                   "to copy a read-only one");
  // Compared by value, not identity: a dtype that went through pickle (multiprocessing, a saved object) is an equal
  // but distinct object.
  const py::dtype dt = arr.dtype();
  const bool native = dt.attr("isnative").cast<bool>();
  // By kind and size, not by type number: numpy's int64 is C long on Linux and long long on Windows.
  const char kind = dt.kind();
  const py::ssize_t size = dt.itemsize();
  DType dtype;
  if (native && kind == 'f' && size == 4) dtype = DType::float32;
  else if (native && kind == 'f' && size == 8) dtype = DType::float64;
  else if (native && kind == 'i' && size == 8) dtype = DType::int64;
  else if (kind == 'b' && size == 1) dtype = DType::boolean;
  else throw ArgTypeError("array: expected dtype float32, float64, int64 or bool in native byte order, got " +
                          std::string(py::str(py::repr(dt))));
  Shape shape(arr.shape(), arr.shape() + arr.ndim());
  auto* keep = new py::object(arr);
  std::shared_ptr<void> owner(keep, [](void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return Array::wrap(arr.mutable_data(), shape, dtype, Device{}, std::move(owner));
}

py::array to_numpy(const Array& a) {
  std::vector<py::ssize_t> shape(a.shape().begin(), a.shape().end());
  if (a.is_cuda()) {
    Array host = a.to(Device{});
    return to_numpy(host);
  }
  py::dtype dt(dtype_name(a.dtype()));  // numpy's names are ours
  // The base object keeps the storage alive while numpy uses it.
  auto* keep = new Array(a);
  py::capsule base(keep, [](void* p) { delete static_cast<Array*>(p); });
  return py::array(dt, shape, a.data(), base);
}

}  // namespace

void bind_array(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ArgTypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const ArgError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const OutOfMemory& e) {
      PyErr_SetString(PyExc_MemoryError, e.what());
    } catch (const std::bad_alloc&) {  // a scratch buffer inside a kernel: say what happened, not "std::bad_alloc"
      PyErr_SetString(PyExc_MemoryError, "out of memory: a working buffer of gradcore's kernels could not be "
                                         "allocated (reduce the batch or image size)");
    }
  });

  py::class_<Array>(m, "Array", "Contiguous float32/float64/int64/bool storage on the CPU or a CUDA device.")
      .def_property_readonly("shape", [](const Array& a) { return py::tuple(py::cast(a.shape())); })
      .def_property_readonly("dtype", [](const Array& a) { return dtype_name(a.dtype()); })
      .def_property_readonly("device", [](const Array& a) { return a.device().str(); })
      .def_property_readonly("ndim", &Array::ndim)
      .def_property_readonly("numel", &Array::numel)
      .def_property_readonly("nbytes", &Array::nbytes)
      .def_property_readonly("_version", &Array::version, "In-place writes to the storage so far.")
      .def("_bump_version", &Array::bump_version, "Records an in-place write made outside the Array's own methods.")
      .def_property_readonly("_storage_users", [](const Array& a) { return (int64_t)a.storage().use_count(); },
                             "How many Arrays (and numpy or DLPack views) hold this storage: 1 when this one alone "
                             "does (the autograd engine then may reuse a gradient's memory).")
      .def_property_readonly("data_ptr", [](const Array& a) { return reinterpret_cast<uintptr_t>(a.data()); })
      .def("reshape", &Array::reshape, py::arg("shape"))
      .def("to", [](const Array& a, const std::string& d) { return a.to(Device::parse(d)); }, py::arg("device"))
      .def("astype", [](const Array& a, const std::string& t) { return a.astype(dtype_parse(t)); }, py::arg("dtype"))
      .def("clone", &Array::clone)
      .def("copy_", [](Array& a, const Array& src) { a.copy_from(src); }, py::arg("src"))
      .def("fill_", &Array::fill, py::arg("value"))
      .def("numpy", &to_numpy, "A view for CPU arrays, a host copy for CUDA arrays.")
      .def("__dlpack__", [](const Array& a, py::kwargs) { return to_dlpack(a); })
      .def("__dlpack_device__", [](const Array& a) {
        return py::make_tuple(a.is_cuda() ? (int)kDLCUDA : (int)kDLCPU, a.device().index);
      });

  m.def("empty", [](const Shape& s, const std::string& t, const std::string& d) {
    return Array::empty(s, dtype_parse(t), Device::parse(d));
  }, py::arg("shape"), py::arg("dtype"), py::arg("device"), "Unwritten storage: only for outputs written whole.");
  m.def("zeros", [](const Shape& s, const std::string& t, const std::string& d) {
    return Array::zeros(s, dtype_parse(t), Device::parse(d));
  }, py::arg("shape"), py::arg("dtype"), py::arg("device"));
  m.def("full", [](const Shape& s, double v, const std::string& t, const std::string& d) {
    return Array::full(s, v, dtype_parse(t), Device::parse(d));
  }, py::arg("shape"), py::arg("value"), py::arg("dtype"), py::arg("device"));
  m.def("from_numpy", &from_numpy, py::arg("array"),
        "Zero-copy CPU Array over a C-contiguous float32/float64/int64/bool numpy array.");
  m.def("from_dlpack_capsule", &from_dlpack_capsule, py::arg("capsule"));

  m.def("cuda_compiled", &cuda::compiled);
  m.def("cuda_device_count", &cuda::device_count);
  m.def("cuda_emulated", &cuda::emulated);
  m.def("cuda_device_name", &cuda::device_name, py::arg("device") = 0);
#if defined(GRADCORE_CUDA_EMULATE)
  m.def("cuda_emulation_self_test", &cuda::run_emulation_self_test, py::arg("name"),
        "Runs one of the emulated device's self-test kernels (cuda/emulation/self_test.cu).");
#if defined(__SANITIZE_ADDRESS__)
  m.attr("address_sanitizer") = true;
#else
  m.attr("address_sanitizer") = false;
#endif
#endif
  m.def("cuda_set_emulated_thread_order", &cuda::set_emulated_thread_order, py::arg("reversed"));
  m.def("cuda_emulated_thread_order_reversed", &cuda::emulated_thread_order_reversed);
  m.def("cuda_synchronize", &cuda::synchronize, py::arg("device") = 0);
  m.def("cuda_stream", [](int d) { return reinterpret_cast<uintptr_t>(cuda::stream(d)); }, py::arg("device") = 0);
  m.def("cuda_memory_stats", [](int d) {
    cuda::MemoryStats s = cuda::memory_stats(d);
    py::dict out;
    out["allocated_bytes"] = s.allocated_bytes;
    out["peak_allocated_bytes"] = s.peak_allocated_bytes;
    out["reserved_bytes"] = s.reserved_bytes;
    out["peak_reserved_bytes"] = s.peak_reserved_bytes;
    out["allocations"] = s.allocations;
    out["requests"] = s.requests;
    out["frees"] = s.frees;
    return out;
  }, py::arg("device") = 0);
  m.def("cuda_reset_peak_memory_stats", &cuda::reset_peak_memory_stats, py::arg("device") = 0);
  m.def("cuda_empty_cache", &cuda::empty_cache, py::arg("device") = 0);
  m.def("cpu_memory_stats", [] {
    CpuCacheStats s = cpu_cache_stats();
    py::dict out;
    out["cached_bytes"] = s.cached_bytes;
    out["cached_blocks"] = s.cached_blocks;
    return out;
  });
  m.def("cpu_empty_cache", &cpu_empty_cache, py::call_guard<py::gil_scoped_release>());
  // The autograd engine's check of every gradient against its input, in one call: reading shape, dtype and device
  // as Python properties of both took ~6 us per gradient.
  m.def(
      "same_layout",
      [](const Array& a, const Array& b) {
        return a.shape() == b.shape() && a.dtype() == b.dtype() && a.device() == b.device();
      },
      py::arg("a"), py::arg("b"), "Whether a and b have the same shape, dtype and device.");

  struct CudaEvent {
    void* event;
    int device;
  };
  py::class_<CudaEvent>(m, "CudaEvent", "A CUDA event on the device's stream (benchmark timing).")
      .def(py::init([](int d) { return CudaEvent{cuda::event_create(d), d}; }), py::arg("device") = 0)
      .def("record", [](CudaEvent& e) { cuda::event_record(e.event, e.device); })
      .def("elapsed_ms", [](const CudaEvent& start, const CudaEvent& end) {
        return cuda::event_elapsed_ms(start.event, end.event);
      }, py::arg("end"))
      .def("__del__", [](CudaEvent& e) { if (e.event) cuda::event_destroy(e.event); e.event = nullptr; });

  m.def("set_num_threads", [](int n) {
    // Far more threads than any machine has cores makes OpenMP fail to start them, which crashes the process.
    if (n < 1 || n > 4096) throw ArgError("n: expected a thread count in [1, 4096], got " + std::to_string(n));
    omp_set_num_threads(n);
  }, py::arg("n"), "Threads for the CPU kernels (OpenMP).");
  m.def("get_num_threads", []() { return omp_get_max_threads(); });
}

}  // namespace gradcore
