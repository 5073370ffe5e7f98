// Bindings for the gathers along one dimension (gather.h). Contract:
//   index_select(x, dim, index, wrap_negative) -> x's slices index[0], index[1], ... along dim (index: int64, 0-d or
//     1-d; negative values count from the end when wrap_negative (x[index]), else raise, as PyTorch's index_select)
//   gather(x, dim, index) -> out[..., j, ...] = x[..., index[..., j, ...], ...] (index: int64 of x's shape outside
//     dim; out has index's shape. PyTorch's shorter index is the Python layer's slice of x first: gather.h)
//   index_select_backward(g, index, x_shape, dim, wrap_negative), gather_backward(g, index, x_shape, dim) -> dx
// The index may live on any device: it is copied to the host, checked there (an IndexError naming `index` for a value
// out of range, before any kernel runs) and, for the backward pass, sorted into the per-row lists that make the sums
// deterministic. dims are already in [0, x.ndim) (the Python layer normalises them).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <string>
#include "gather.h"
#include "cpu/parallel.h"

namespace py = pybind11;
namespace gradcore {

namespace {

// x (and the output, of the same shape outside dim) as (outer, length, inner) and (outer, out_length, inner).
GatherLayout layout_around(const Shape& x_shape, const Shape& out_shape, int dim) {
  GatherLayout l;
  for (int d = 0; d < (int)x_shape.size(); ++d) {
    if (d < dim) l.outer *= x_shape[d];
    if (d > dim) l.inner *= x_shape[d];
  }
  l.length = x_shape.empty() ? 1 : x_shape[dim];
  l.out_length = out_shape.empty() ? 1 : out_shape[dim];
  return l;
}

void check_index_dtype(const Array& index) {
  if (index.dtype() != DType::int64)
    throw ArgTypeError("index: expected an int64 tensor of indices, got " + dtype_name(index.dtype()));
}

// index's values on the host, each in [0, n): negative ones wrapped when `wrap`, anything else out of range an
// IndexError. The result may be `index` itself (a CPU index needing no change).
Array checked_host_index(const Array& index, int64_t n, int dim, bool wrap) {
  Array host = index.is_cuda() ? index.to(Device{}) : index;
  const int64_t* v = host.data_as<int64_t>();
  const int64_t count = host.numel();
  bool negative = false;
  for (int64_t k = 0; k < count; ++k) {
    if (v[k] >= n || v[k] < (wrap ? -n : 0))
      throw py::index_error("index: " + std::to_string(v[k]) + " is out of bounds for dimension " +
                            std::to_string(dim) + " with size " + std::to_string(n) +
                            (v[k] < 0 && !wrap ? " (negative indices are not allowed here, as in PyTorch)" : ""));
    negative |= v[k] < 0;
  }
  if (!negative) return host;
  Array wrapped = index.is_cuda() ? host : host.clone();  // a host copy of our own, or the user's index copied
  int64_t* w = wrapped.data_as<int64_t>();
  for (int64_t k = 0; k < count; ++k)
    if (w[k] < 0) w[k] += n;
  return wrapped;
}

// The index as the kernels read it: on x's device, checked (and wrapped).
Array device_index(const Array& index, const Array& host, const Device& device) {
  if (host.data() == index.data() && index.device() == device) return index;
  return host.device() == device ? host : host.to(device);
}

// The stable counting sort of gather.h: for each fiber, the positions j reading each r, in increasing j.
IndexLists index_lists(const Array& host, const GatherLayout& l, const Device& device) {
  const int64_t fibers = l.per_element ? l.outer * l.inner : 1;
  const int64_t J = l.out_length, I = l.inner, n = l.length;
  IndexLists lists{Array::empty({fibers * J}, DType::int64, Device{}),
                   Array::zeros({fibers * (n + 1)}, DType::int64, Device{})};
  const int64_t* idx = host.data_as<int64_t>();
  int64_t* order = lists.order.data_as<int64_t>();
  int64_t* start_all = lists.start.data_as<int64_t>();
#pragma omp parallel for schedule(static) if (fibers * (J + n) >= cpu::kParallelThreshold)
  for (int64_t f = 0; f < fibers; ++f) {
    const int64_t o = f / I, i = f - o * I;
    auto value = [&](int64_t j) { return l.per_element ? idx[(o * J + j) * I + i] : idx[j]; };
    int64_t* start = start_all + f * (n + 1);
    for (int64_t j = 0; j < J; ++j) ++start[value(j) + 1];      // counts
    for (int64_t r = 0; r < n; ++r) start[r + 1] += start[r];    // start[r] = first slot of r
    for (int64_t j = 0; j < J; ++j) order[f * J + start[value(j)]++] = j;  // in increasing j: stable
    for (int64_t r = n; r > 0; --r) start[r] = start[r - 1];     // each start moved one list on: shift back
    start[0] = 0;
  }
  if (device.kind == Device::cuda) lists = IndexLists{lists.order.to(device), lists.start.to(device)};
  return lists;
}

Array index_select(const Array& x, int dim, const Array& index, bool wrap_negative) {
  check_index_dtype(index);
  if (index.ndim() > 1)
    throw ArgError("index: expected a 0-d or 1-d tensor of indices, got shape " + shape_str(index.shape()));
  if (x.ndim() == 0) throw ArgError("x: index_select needs a tensor of at least one dimension");
  Shape out_shape = x.shape();
  out_shape[dim] = index.numel();
  const Array host = checked_host_index(index, x.dim(dim), dim, wrap_negative);
  Array out = Array::empty(out_shape, x.dtype(), x.device());  // every element written
  GatherLayout l = layout_around(x.shape(), out_shape, dim);
  GRADCORE_ON_DEVICE(x, gather_forward, x, device_index(index, host, x.device()), out, l);
  return out;
}

Array index_select_backward(const Array& g, const Array& index, const Shape& x_shape, int dim, bool wrap_negative) {
  const Array host = checked_host_index(index, x_shape[dim], dim, wrap_negative);
  GatherLayout l = layout_around(x_shape, g.shape(), dim);
  Array dx = Array::empty(x_shape, g.dtype(), g.device());  // every element written
  GRADCORE_ON_DEVICE(g, gather_backward, g, index_lists(host, l, g.device()), dx, l);
  return dx;
}

// gather's index: x's number of dimensions (both may be 0-d) and x's lengths outside dim.
GatherLayout gather_layout(const Shape& x_shape, const Array& index, int dim) {
  check_index_dtype(index);
  if (index.ndim() != (int)x_shape.size())
    throw ArgError("index: expected " + std::to_string(x_shape.size()) + " dimensions (as x, of shape " +
                   shape_str(x_shape) + "), got shape " + shape_str(index.shape()));
  for (int d = 0; d < index.ndim(); ++d)
    if (d != dim && index.dim(d) != x_shape[d])
      throw ArgError("index: shape " + shape_str(index.shape()) + " differs from x's shape " + shape_str(x_shape) +
                     " at dimension " + std::to_string(d) + " (only dimension dim=" + std::to_string(dim) +
                     " may differ)");
  GatherLayout l = layout_around(x_shape, index.shape(), dim);
  l.per_element = true;
  return l;
}

Array gather(const Array& x, int dim, const Array& index) {
  GatherLayout l = gather_layout(x.shape(), index, dim);
  const Array host = checked_host_index(index, l.length, dim, false);
  Array out = Array::empty(index.shape(), x.dtype(), x.device());  // every element written
  GRADCORE_ON_DEVICE(x, gather_forward, x, device_index(index, host, x.device()), out, l);
  return out;
}

Array gather_backward(const Array& g, const Array& index, const Shape& x_shape, int dim) {
  GatherLayout l = gather_layout(x_shape, index, dim);
  const Array host = checked_host_index(index, l.length, dim, false);
  Array dx = Array::empty(x_shape, g.dtype(), g.device());  // every element written
  GRADCORE_ON_DEVICE(g, gather_backward, g, index_lists(host, l, g.device()), dx, l);
  return dx;
}

}  // namespace

void bind_gather(py::module_& m) {
  m.def("index_select", &index_select, py::arg("x"), py::arg("dim"), py::arg("index"), py::arg("wrap_negative"),
        "x's slices index[0], index[1], ... along dim (a new array).", py::call_guard<py::gil_scoped_release>());
  m.def("index_select_backward", &index_select_backward, py::arg("g"), py::arg("index"), py::arg("x_shape"),
        py::arg("dim"), py::arg("wrap_negative"),
        "dx: g's slices added back where they were read, repeated indices summed in index order.",
        py::call_guard<py::gil_scoped_release>());
  m.def("gather", &gather, py::arg("x"), py::arg("dim"), py::arg("index"),
        "out[..., j, ...] = x[..., index[..., j, ...], ...] along dim (a new array of index's shape).",
        py::call_guard<py::gil_scoped_release>());
  m.def("gather_backward", &gather_backward, py::arg("g"), py::arg("index"), py::arg("x_shape"), py::arg("dim"),
        "dx: g added back where each element was read, repeated indices summed in index order.",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
