// Bindings for concat and split along one dimension (concat.h). Contract: concat(tensors, dim) returns a new array;
// split(x, sizes, dim) returns new arrays whose lengths along dim are `sizes` (summing to x's). Negative dims count
// from the end. Shapes, dtypes and devices are checked here, under the names gradcore.functional.cat/split use
// (tensors, x, dim), so a message never names a C++ parameter; the kernels only copy blocks.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include "concat.h"

namespace py = pybind11;
namespace gradcore {

namespace {

int normalize_axis(int axis, int ndim, const char* name) {
  if (axis < -ndim || axis >= ndim)
    throw ArgError(std::string(name) + ": " + std::to_string(axis) + " is out of range for tensors of " +
                   std::to_string(ndim) + " dimensions");
  return axis < 0 ? axis + ndim : axis;
}

// (outer, inner) of `shape` around `axis`.
std::pair<int64_t, int64_t> outer_inner(const Shape& shape, int axis) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  for (int d = axis + 1; d < (int)shape.size(); ++d) inner *= shape[d];
  return {outer, inner};
}

Array concat(const std::vector<Array>& arrays, int axis) {
  if (arrays.empty()) throw ArgError("tensors: expected at least one tensor to concatenate");
  const Array& first = arrays[0];
  const int nd = first.ndim();
  if (nd == 0) throw ArgError("tensors: zero-dimensional tensors cannot be concatenated");
  axis = normalize_axis(axis, nd, "dim");
  Shape out_shape = first.shape();
  out_shape[axis] = 0;
  for (size_t k = 0; k < arrays.size(); ++k) {
    const Array& a = arrays[k];
    const std::string name = "tensors[" + std::to_string(k) + "]";
    check_same_dtype(first, "tensors[0]", a, name.c_str());
    check_same_device(first, "tensors[0]", a, name.c_str());
    bool fits = a.ndim() == nd;
    for (int d = 0; fits && d < nd; ++d) fits = d == axis || a.dim(d) == first.dim(d);
    if (!fits)
      throw ArgError(name + ": shape " + shape_str(a.shape()) + " does not match tensors[0]'s shape " +
                     shape_str(first.shape()) + " outside dim " + std::to_string(axis));
    out_shape[axis] += a.dim(axis);
  }
  Array out = Array::empty(out_shape, first.dtype(), first.device());  // every element written by one piece
  const auto [outer, inner] = outer_inner(out_shape, axis);
  int64_t offset = 0;
  for (const Array& a : arrays) {
    BlockCopy copy;
    copy.rows = outer;
    copy.width = a.dim(axis) * inner;
    copy.src_row_stride = copy.width;
    copy.dst_row_stride = out_shape[axis] * inner;
    copy.dst_offset = offset * inner;
    GRADCORE_ON_DEVICE(a, block_copy, a, out, copy);
    offset += a.dim(axis);
  }
  return out;
}

std::vector<Array> split(const Array& x, const std::vector<int64_t>& sizes, int axis) {
  const int nd = x.ndim();
  if (nd == 0) throw ArgError("x: a zero-dimensional tensor cannot be split");
  axis = normalize_axis(axis, nd, "dim");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw ArgError("sizes: expected non-negative lengths, got " + std::to_string(s));
    total += s;
  }
  if (total != x.dim(axis))
    throw ArgError("sizes: lengths sum to " + std::to_string(total) + " but x has " + std::to_string(x.dim(axis)) +
                   " along dim " + std::to_string(axis));
  const auto [outer, inner] = outer_inner(x.shape(), axis);
  std::vector<Array> pieces;
  int64_t offset = 0;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape[axis] = s;
    Array piece = Array::empty(shape, x.dtype(), x.device());  // written whole below
    BlockCopy copy;
    copy.rows = outer;
    copy.width = s * inner;
    copy.src_row_stride = x.dim(axis) * inner;
    copy.dst_row_stride = copy.width;
    copy.src_offset = offset * inner;
    GRADCORE_ON_DEVICE(x, block_copy, x, piece, copy);
    pieces.push_back(piece);
    offset += s;
  }
  return pieces;
}

}  // namespace

void bind_concat(py::module_& m) {
  m.def("concat", &concat, py::arg("tensors"), py::arg("dim"), "Concatenation along `dim` into a new array.",
        py::call_guard<py::gil_scoped_release>());
  m.def("split", &split, py::arg("x"), py::arg("sizes"), py::arg("dim"),
        "Pieces of x along `dim` with the given lengths (new arrays).", py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
