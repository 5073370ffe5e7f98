// Bindings for elementwise ops and sums. Each returns a new Array unless `out` is given (in-place updates such as
// gradient accumulation pass out=a).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <algorithm>
#include "elementwise.h"
#include "reduce.h"

namespace py = pybind11;
namespace gradcore {

namespace {

Array unary(const Array& x, UnaryOp op, double a, double b, std::optional<Array> out) {
  check_float(x, "x");
  Array y = out ? *out : Array::empty(x.shape(), x.dtype(), x.device());
  if (out) {
    check_shape(y, "out", x.shape());
    check_same_dtype(x, "x", y, "out");
    check_same_device(x, "x", y, "out");
    y.bump_version();
  }
  GRADCORE_ON_DEVICE(x, unary, x, y, op, a, b);
  return y;
}

Array binary(const Array& a, const Array& b, BinaryOp op, double param, double param2, std::optional<Array> out) {
  // int64 operands: add, sub and mul (elementwise.h); every other op, and bool, computes in floating point.
  const bool int64_op = a.dtype() == DType::int64 && b.dtype() == DType::int64 && binary_supports_int64(op);
  if (!int64_op) {
    check_float(a, "a");
    check_float(b, "b");
  }
  check_same_dtype(a, "a", b, "b");
  check_same_device(a, "a", b, "b");
  BroadcastLayout layout = broadcast_layout(a.shape(), b.shape());
  Shape out_shape(layout.out_shape, layout.out_shape + layout.ndim);
  Array result = out ? *out : Array::empty(out_shape, a.dtype(), a.device());
  if (out) {
    check_shape(result, "out", out_shape);
    check_same_dtype(a, "a", result, "out");
    check_same_device(a, "a", result, "out");
    result.bump_version();
  }
  GRADCORE_ON_DEVICE(a, binary, a, b, result, op, param, param2, layout);
  return result;
}

Array sum(const Array& x, std::vector<int> axes) {
  const int nd = x.ndim();
  for (int& ax : axes) {
    if (ax < -nd || ax >= nd)
      throw ArgError("axis: " + std::to_string(ax) + " is out of range for an array of " + std::to_string(nd) + " dimensions");
    if (ax < 0) ax += nd;
  }
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  ReduceLayout layout = reduce_layout(x.shape(), axes);
  Shape out_shape;  // the kept dimensions of x (the layout merges neighbouring ones)
  for (int d = 0; d < nd; ++d)
    if (!std::binary_search(axes.begin(), axes.end(), d)) out_shape.push_back(x.shape()[d]);
  Array out = Array::empty(out_shape, sum_output_dtype(x.dtype()), x.device());  // every element written
  GRADCORE_ON_DEVICE(x, sum, x, out, layout);
  return out;
}

}  // namespace

void bind_elementwise(py::module_& m) {
  py::enum_<UnaryOp>(m, "UnaryOp")
      .value("affine", UnaryOp::affine).value("rdiv", UnaryOp::rdiv).value("pow", UnaryOp::pow)
      .value("exp", UnaryOp::exp).value("log", UnaryOp::log).value("sqrt", UnaryOp::sqrt).value("abs", UnaryOp::abs)
      .value("relu", UnaryOp::relu).value("leaky_relu", UnaryOp::leaky_relu).value("sigmoid", UnaryOp::sigmoid)
      .value("tanh", UnaryOp::tanh).value("cos", UnaryOp::cos).value("sin", UnaryOp::sin)
      .value("log1p", UnaryOp::log1p).value("expm1", UnaryOp::expm1).value("clamp", UnaryOp::clamp)
      .value("softplus", UnaryOp::softplus).value("gelu", UnaryOp::gelu).value("gelu_tanh", UnaryOp::gelu_tanh)
      .value("silu", UnaryOp::silu).value("elu", UnaryOp::elu);
  py::enum_<BinaryOp>(m, "BinaryOp")
      .value("add", BinaryOp::add).value("sub", BinaryOp::sub).value("mul", BinaryOp::mul).value("div", BinaryOp::div)
      .value("relu_backward", BinaryOp::relu_backward).value("leaky_relu_backward", BinaryOp::leaky_relu_backward)
      .value("sigmoid_backward", BinaryOp::sigmoid_backward).value("tanh_backward", BinaryOp::tanh_backward)
      .value("pow_backward", BinaryOp::pow_backward).value("bce", BinaryOp::bce)
      .value("bce_backward", BinaryOp::bce_backward).value("bce_with_logits", BinaryOp::bce_with_logits)
      .value("bce_with_logits_backward", BinaryOp::bce_with_logits_backward)
      .value("maximum", BinaryOp::maximum).value("minimum", BinaryOp::minimum)
      .value("cos_backward", BinaryOp::cos_backward).value("sin_backward", BinaryOp::sin_backward)
      .value("log1p_backward", BinaryOp::log1p_backward).value("expm1_backward", BinaryOp::expm1_backward)
      .value("softplus_backward", BinaryOp::softplus_backward).value("gelu_backward", BinaryOp::gelu_backward)
      .value("gelu_tanh_backward", BinaryOp::gelu_tanh_backward).value("silu_backward", BinaryOp::silu_backward)
      .value("elu_backward", BinaryOp::elu_backward);
  m.def("unary", &unary, py::arg("x"), py::arg("op"), py::arg("a") = 0.0, py::arg("b") = 0.0,
        py::arg("out") = py::none(), py::call_guard<py::gil_scoped_release>());
  m.def("binary", &binary, py::arg("a"), py::arg("b"), py::arg("op"), py::arg("param") = 0.0,
        py::arg("param2") = 0.0, py::arg("out") = py::none(), py::call_guard<py::gil_scoped_release>());
  m.def("sum", &sum, py::arg("x"), py::arg("axes"),
        "Sum over `axes` (dropped from the shape): floats accumulated in double, int64 and bool into int64.",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
