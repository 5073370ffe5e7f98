// Bindings for the reductions beyond sum (reduce.h): max/min with the first index, their gradients, vector norms.
// Contract: `axes` lists the reduced dimensions (any order, negatives count from the end); the result has x's shape
// without them (the Python layer reshapes for keepdim). values/norm/grad passed to a backward hold one element per
// kept element of x, in order. Python (python/gradcore/ops/reduce.py) checks the user's arguments first and names
// them; the checks here guard the kernels against any call.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <algorithm>
#include <cmath>
#include "reduce.h"

namespace py = pybind11;
namespace gradcore {

namespace {

struct Reduction {
  ReduceLayout layout;
  Shape out_shape;  // x's shape without the reduced dimensions
};

Reduction reduction(const Array& x, std::vector<int> axes) {
  const int nd = x.ndim();
  for (int& ax : axes) {
    if (ax < -nd || ax >= nd)
      throw ArgError("dim: " + std::to_string(ax) + " is out of range for a tensor of " + std::to_string(nd) +
                     " dimensions");
    if (ax < 0) ax += nd;
  }
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  Reduction result{reduce_layout(x.shape(), axes), {}};
  for (int d = 0; d < nd; ++d)
    if (!std::binary_search(axes.begin(), axes.end(), d)) result.out_shape.push_back(x.shape()[d]);
  return result;
}

void check_per_kept(const Array& x, const Array& a, const char* name, const Reduction& red) {
  check_same_dtype(x, "x", a, name);
  check_same_device(x, "x", a, name);
  if (a.numel() != red.layout.kept_numel)
    throw ArgError(std::string(name) + ": expected " + std::to_string(red.layout.kept_numel) +
                   " elements (one per kept element of x), got shape " + shape_str(a.shape()));
}

// The reduction of max/min and their indices over x's axes: a float x, and no empty reduction with something kept
// (it has no identity to return, nor an index).
Reduction extreme_reduction(const Array& x, const std::vector<int>& axes, const char* op, const char* why) {
  check_float(x, "x");
  Reduction red = reduction(x, axes);
  if (red.layout.reduced_numel == 0 && red.layout.kept_numel > 0)
    throw ArgError(std::string(op) + ": the reduced dimensions of x's shape " + shape_str(x.shape()) +
                   " hold no elements (" + why + ")");
  return red;
}

Array amax_amin(const Array& x, const std::vector<int>& axes, bool is_max) {
  const Reduction red = extreme_reduction(x, axes, is_max ? "max" : "min", "the reduction has no identity");
  Array values = Array::empty(red.out_shape, x.dtype(), x.device());  // every element written
  GRADCORE_ON_DEVICE(x, reduce_extreme, x, values, nullptr, red.layout, is_max);
  return values;
}

// (values, indices) of max(dim)/min(dim), or the indices alone for argmax/argmin: int64, the first of ties.
std::pair<Array, Array> extreme_with_indices(const Array& x, const std::vector<int>& axes, bool is_max) {
  const Reduction red = extreme_reduction(x, axes, is_max ? "argmax" : "argmin", "there is no index to return");
  Array values = Array::empty(red.out_shape, x.dtype(), x.device());    // every element written
  Array indices = Array::empty(red.out_shape, DType::int64, x.device());  // every element written
  GRADCORE_ON_DEVICE(x, reduce_extreme, x, values, indices.data_as<int64_t>(), red.layout, is_max);
  return {values, indices};
}

Array extreme_backward(const Array& x, const Array& values, const Array& grad, const std::vector<int>& axes,
                       bool split_ties) {
  check_float(x, "x");
  const Reduction red = reduction(x, axes);
  check_per_kept(x, values, "values", red);
  check_per_kept(x, grad, "grad", red);
  Array gx = Array::empty(x.shape(), x.dtype(), x.device());  // every element written
  GRADCORE_ON_DEVICE(x, reduce_extreme_backward, x, values, grad, gx, red.layout, split_ties);
  return gx;
}

void check_order(double p) {
  if (std::isnan(p) || std::isinf(p))
    throw ArgError("ord: the kernels take a finite order (inf and -inf are amax/amin of |x|), got " +
                   std::to_string(p));
}

Array vector_norm(const Array& x, const std::vector<int>& axes, double p) {
  check_float(x, "x");
  check_order(p);
  const Reduction red = reduction(x, axes);
  Array out = Array::empty(red.out_shape, x.dtype(), x.device());  // every element written
  GRADCORE_ON_DEVICE(x, vector_norm, x, out, red.layout, p);
  return out;
}

Array vector_norm_backward(const Array& x, const Array& norm, const Array& grad, const std::vector<int>& axes,
                           double p) {
  check_float(x, "x");
  check_order(p);
  const Reduction red = reduction(x, axes);
  check_per_kept(x, norm, "norm", red);
  check_per_kept(x, grad, "grad", red);
  Array gx = Array::empty(x.shape(), x.dtype(), x.device());  // every element written
  GRADCORE_ON_DEVICE(x, vector_norm_backward, x, norm, grad, gx, red.layout, p);
  return gx;
}

}  // namespace

void bind_reduce(py::module_& m) {
  m.def("amax", [](const Array& x, const std::vector<int>& axes) { return amax_amin(x, axes, true); },
        py::arg("x"), py::arg("axes"), "Largest element over `axes` (NaN if any is NaN).",
        py::call_guard<py::gil_scoped_release>());
  m.def("amin", [](const Array& x, const std::vector<int>& axes) { return amax_amin(x, axes, false); },
        py::arg("x"), py::arg("axes"), "Smallest element over `axes` (NaN if any is NaN).",
        py::call_guard<py::gil_scoped_release>());
  m.def("extreme_with_indices", &extreme_with_indices, py::arg("x"), py::arg("axes"), py::arg("is_max"),
        "(values, int64 indices) of the largest (smallest) element over `axes`: the first of ties, the first NaN.",
        py::call_guard<py::gil_scoped_release>());
  m.def("extreme_backward", &extreme_backward, py::arg("x"), py::arg("values"), py::arg("grad"), py::arg("axes"),
        py::arg("split_ties"),
        "dL/dx of amax/amin (split_ties: g / count to every tie) or of max/min(dim) (g to the first tie only).",
        py::call_guard<py::gil_scoped_release>());
  m.def("vector_norm", &vector_norm, py::arg("x"), py::arg("axes"), py::arg("ord"),
        "(sum |x|^ord)^(1/ord) over `axes` for a finite ord (0 counts non-zeros), accumulated in double.",
        py::call_guard<py::gil_scoped_release>());
  m.def("vector_norm_backward", &vector_norm_backward, py::arg("x"), py::arg("norm"), py::arg("grad"),
        py::arg("axes"), py::arg("ord"), "dL/dx of vector_norm (0 where the norm is 0, as PyTorch).",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
