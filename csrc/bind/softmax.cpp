// Bindings for softmax and log_softmax (softmax.h). Contract: softmax_forward(x, dim, log) returns y of x's shape;
// softmax_backward(y, grad_output, dim, log) returns dx from the forward's output y. dim counts from the end when
// negative; a 0-d x is one row of one element (PyTorch's rule, dim 0 or -1).
#include <pybind11/pybind11.h>
#include "softmax.h"

namespace py = pybind11;
namespace gradcore {

namespace {

SoftmaxParams params_of(const Array& x, int64_t dim, bool log) {
  const int nd = x.ndim();
  const int64_t span = nd == 0 ? 1 : nd;
  if (dim < -span || dim >= span)
    throw ArgError("dim: " + std::to_string(dim) + " is out of range for a tensor of " + std::to_string(nd) +
                   " dimensions (shape " + shape_str(x.shape()) + ")");
  SoftmaxParams p;
  p.log = log;
  if (nd == 0) return p;
  const int d = (int)(dim < 0 ? dim + nd : dim);
  p.dim = x.dim(d);
  for (int k = 0; k < d; ++k) p.outer *= x.dim(k);
  for (int k = d + 1; k < nd; ++k) p.inner *= x.dim(k);
  return p;
}

Array forward(const Array& x, int64_t dim, bool log) {
  check_float(x, "input");
  const SoftmaxParams p = params_of(x, dim, log);
  Array y = Array::empty(x.shape(), x.dtype(), x.device());  // every row written whole
  GRADCORE_ON_DEVICE(x, softmax_forward, x, y, p);
  return y;
}

Array backward(const Array& y, const Array& grad_output, int64_t dim, bool log) {
  check_float(y, "y");
  check_shape(grad_output, "grad_output", y.shape());
  check_same_dtype(y, "y", grad_output, "grad_output");
  check_same_device(y, "y", grad_output, "grad_output");
  const SoftmaxParams p = params_of(y, dim, log);
  Array dx = Array::empty(y.shape(), y.dtype(), y.device());  // every row written whole
  GRADCORE_ON_DEVICE(y, softmax_backward, y, grad_output, dx, p);
  return dx;
}

}  // namespace

void bind_softmax(py::module_& m) {
  m.def("softmax_forward", &forward, py::arg("x"), py::arg("dim"), py::arg("log"),
        "softmax (log=False) or log_softmax (log=True) of x along dim.", py::call_guard<py::gil_scoped_release>());
  m.def("softmax_backward", &backward, py::arg("y"), py::arg("grad_output"), py::arg("dim"), py::arg("log"),
        "dx of softmax or log_softmax from its output y and grad_output.", py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
