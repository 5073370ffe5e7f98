// Bindings for comparisons and where (comparison.h). Contract: compare's operands share a dtype (any of the four)
// and a device, the result is a new bool array of the broadcast shape; where's condition is bool, input and other
// share a dtype and a device with it, the result is a new array of input's dtype and the three shapes' broadcast.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include "comparison.h"

namespace py = pybind11;
namespace gradcore {

namespace {

Array compare(const Array& a, const Array& b, CompareOp op) {
  check_same_dtype(a, "a", b, "b");
  check_same_device(a, "a", b, "b");
  BroadcastLayout layout = broadcast_layout(a.shape(), b.shape());
  Array out = Array::empty(Shape(layout.out_shape, layout.out_shape + layout.ndim), DType::boolean, a.device());
  GRADCORE_ON_DEVICE(a, compare, a, b, out, op, layout);  // every element written
  return out;
}

Array where(const Array& cond, const Array& a, const Array& b) {
  if (cond.dtype() != DType::boolean)
    throw ArgTypeError("condition: expected a bool tensor, got " + dtype_name(cond.dtype()));
  check_same_dtype(a, "input", b, "other");
  check_same_device(a, "input", cond, "condition");
  check_same_device(a, "input", b, "other");
  WhereLayout layout = where_layout(cond.shape(), a.shape(), b.shape());
  Array out = Array::empty(Shape(layout.out_shape, layout.out_shape + layout.ndim), a.dtype(), a.device());
  GRADCORE_ON_DEVICE(a, where, cond, a, b, out, layout);  // every element written
  return out;
}

}  // namespace

void bind_comparison(py::module_& m) {
  py::enum_<CompareOp>(m, "CompareOp")
      .value("eq", CompareOp::eq).value("ne", CompareOp::ne).value("lt", CompareOp::lt).value("le", CompareOp::le)
      .value("gt", CompareOp::gt).value("ge", CompareOp::ge).value("logical_and", CompareOp::logical_and)
      .value("logical_or", CompareOp::logical_or).value("logical_xor", CompareOp::logical_xor);
  m.def("compare", &compare, py::arg("a"), py::arg("b"), py::arg("op"),
        "op(a, b) elementwise with broadcasting, as a bool array.", py::call_guard<py::gil_scoped_release>());
  m.def("where", &where, py::arg("condition"), py::arg("input"), py::arg("other"),
        "condition ? input : other elementwise, the three broadcast together.",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
