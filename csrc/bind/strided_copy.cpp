// Bindings for the strided copy and its adjoint (strided_copy.h). Contract: strided_copy(x, shape, strides, offset)
// returns a new contiguous array of `shape` holding x's elements at offset + sum_k i_k strides[k] (an as_strided
// view of x, made contiguous); strided_scatter(g, x_shape, strides, offset) returns zeros of x_shape with g written
// at those places, which must be distinct (the adjoint of the copy for slices and permutations). The Python view ops
// (gradcore/ops/views.py, indexing.py) compute the strides; these checks keep any mistake there from reading or
// writing outside the array.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <algorithm>
#include <utility>
#include "strided_copy.h"

namespace py = pybind11;
namespace gradcore {

namespace {

// Throws ArgError unless every element of the view lies inside an array of `numel` elements.
void check_view(const Shape& shape, const std::vector<int64_t>& strides, int64_t offset, int64_t numel) {
  if (strides.size() != shape.size())
    throw ArgError("strides: expected " + std::to_string(shape.size()) + " strides for shape " + shape_str(shape) +
                   ", got " + std::to_string(strides.size()));
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] < 0) throw ArgError("shape: expected non-negative lengths, got " + shape_str(shape));
    if (strides[k] < 0) throw ArgError("strides: expected non-negative strides, got " + shape_str(strides));
  }
  if (shape_numel(shape) == 0) return;
  int64_t last = offset;  // offset of the view's last element
  bool fits = offset >= 0;
  for (size_t k = 0; fits && k < shape.size(); ++k) {
    int64_t reach = 0;
    fits = !__builtin_mul_overflow(shape[k] - 1, strides[k], &reach) && !__builtin_add_overflow(last, reach, &last);
  }
  if (!fits || last >= numel)
    throw ArgError("strides: the view of shape " + shape_str(shape) + ", strides " + shape_str(strides) +
                   " and offset " + std::to_string(offset) + " reaches outside x's " + std::to_string(numel) +
                   " elements");
}

Array strided_copy(const Array& x, const Shape& shape, const std::vector<int64_t>& strides, int64_t offset) {
  check_view(shape, strides, offset, x.numel());
  const StridedCopy layout = strided_copy_layout(shape, strides, offset, "x");
  Array out = Array::empty(shape, x.dtype(), x.device());  // every element written
  GRADCORE_ON_DEVICE(x, strided_copy, x, out, layout);
  return out;
}

Array strided_scatter(const Array& g, const Shape& x_shape, const std::vector<int64_t>& strides, int64_t offset) {
  check_view(g.shape(), strides, offset, shape_numel(x_shape));
  // Distinct places: with the dimensions of length > 1 sorted by stride, each stride must exceed the reach of all
  // smaller ones (a sufficient condition; slices and permutations meet it).
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, length)
  for (int k = 0; k < g.ndim(); ++k)
    if (g.dim(k) > 1) dims.push_back({strides[k], g.dim(k)});
  std::sort(dims.begin(), dims.end());
  int64_t reach = 0;
  for (const auto& [stride, length] : dims) {
    if (stride <= reach)
      throw ArgError("strides: " + shape_str(strides) + " map two elements of shape " + shape_str(g.shape()) +
                     " to one place");
    reach += (length - 1) * stride;  // no overflow: check_view bounded it by x's size
  }
  const StridedCopy layout = strided_copy_layout(g.shape(), strides, offset, "g");
  Array dst = Array::zeros(x_shape, g.dtype(), g.device());  // places outside the view stay zero
  GRADCORE_ON_DEVICE(g, strided_scatter, g, dst, layout);
  return dst;
}

}  // namespace

void bind_strided_copy(py::module_& m) {
  m.def("strided_copy", &strided_copy, py::arg("x"), py::arg("shape"), py::arg("strides"), py::arg("offset"),
        "x's elements at offset + sum_k i_k strides[k], as a new contiguous array of `shape`.",
        py::call_guard<py::gil_scoped_release>());
  m.def("strided_scatter", &strided_scatter, py::arg("g"), py::arg("x_shape"), py::arg("strides"), py::arg("offset"),
        "Zeros of x_shape with g written at offset + sum_k i_k strides[k] (places must be distinct).",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
