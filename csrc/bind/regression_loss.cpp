// Bindings for the per-element regression losses (regression_loss.h): l1, smooth_l1 (param = beta > 0), huber
// (param = delta > 0) and squared (mse_loss's term; param unused). Contract: input and target of one shape, dtype and device; forward returns the per-element
// loss, backward dL/dinput = grad_output * dloss/dd (the target's is its negative, taken in Python).
#include <pybind11/pybind11.h>
#include <string>
#include "regression_loss.h"

namespace py = pybind11;
namespace gradcore {

namespace {

void check_pair(const Array& x, const Array& t) {
  check_float(x, "input");
  check_shape(t, "target", x.shape());
  check_same_dtype(x, "input", t, "target");
  check_same_device(x, "input", t, "target");
}

Array forward(const Array& x, const Array& t, RegressionLoss kind, double param) {
  check_pair(x, t);
  Array loss = Array::empty(x.shape(), x.dtype(), x.device());  // every element written
  GRADCORE_ON_DEVICE(x, regression_loss_forward, x, t, loss, kind, param);
  return loss;
}

// grad_output: input's shape (scale 1), or one element, the gradient of the loss's mean (scale 1/n) or sum (1).
Array backward(const Array& g, const Array& x, const Array& t, RegressionLoss kind, double param, double scale) {
  check_pair(x, t);
  if (g.numel() != 1) {
    check_shape(g, "grad_output", x.shape());
    if (scale != 1.0) throw ArgError("scale: a gradient per element takes scale 1, got " + std::to_string(scale));
  }
  check_same_dtype(x, "input", g, "grad_output");
  check_same_device(x, "input", g, "grad_output");
  Array dx = Array::empty(x.shape(), x.dtype(), x.device());  // every element written
  GRADCORE_ON_DEVICE(x, regression_loss_backward, g, scale, x, t, dx, kind, param);
  return dx;
}

}  // namespace

void bind_regression_loss(py::module_& m) {
  py::enum_<RegressionLoss>(m, "RegressionLoss")
      .value("l1", RegressionLoss::l1)
      .value("smooth_l1", RegressionLoss::smooth_l1)
      .value("huber", RegressionLoss::huber)
      .value("squared", RegressionLoss::squared);
  m.def("regression_loss_forward", &forward, py::arg("input"), py::arg("target"), py::arg("kind"), py::arg("param"),
        "Per-element l1, smooth_l1 (param beta), huber (param delta) or squared loss of input - target.",
        py::call_guard<py::gil_scoped_release>());
  m.def("regression_loss_backward", &backward, py::arg("grad_output"), py::arg("input"), py::arg("target"),
        py::arg("kind"), py::arg("param"), py::arg("scale") = 1.0,
        "grad_output * dloss/dinput, per element; a one-element grad_output (the gradient of the loss's mean or "
        "sum) is broadcast, times scale.",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
