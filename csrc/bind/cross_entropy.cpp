// Bindings for cross_entropy and nll_loss per position (cross_entropy.h); the reductions are in Python.
// Contract: input (C), (N, C) or (N, C, d1, ..., dk), float32/float64. target: class indices, int64, of input's
// shape without the class dimension ((), (N) or (N, d1, ..., dk)); or class probabilities of input's own shape and
// dtype (cross_entropy only). weight: (C) of input's dtype, or None. Everything on input's device.
//   cross_entropy_forward -> (loss, lse, position_weight): loss of target-shape (input's shape without C), lse the
//     same shape in float64 (saved for backward), position_weight (class indices: w_t, 0 where ignored) or None.
//   cross_entropy_backward -> (dx, dtarget): dx like input; dtarget like target when asked for (probabilities).
// A class index outside [0, C) that is not ignore_index raises ValueError naming its position and value.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <optional>
#include <string>
#include <tuple>
#include "cross_entropy.h"

namespace py = pybind11;
namespace gradcore {

namespace {

struct Checked {
  CrossEntropyParams p;
  CrossEntropyArrays arrays{};
  Shape position_shape;  // input's shape without the class dimension
};

Checked check(const Array& input, const Array& target, const std::optional<Array>& weight, int64_t ignore_index,
              double label_smoothing, bool nll) {
  const char* op = nll ? "nll_loss" : "cross_entropy";
  check_float(input, "input");
  if (input.ndim() < 1)
    throw ArgError(std::string("input: ") + op + " expected a (C), (N, C) or (N, C, d1, ...) input, got a 0-d tensor");
  check_same_device(input, "input", target, "target");
  Checked c;
  CrossEntropyParams& p = c.p;
  p.kind = nll ? ClassLoss::nll : ClassLoss::cross_entropy;
  const int class_dim = input.ndim() == 1 ? 0 : 1;
  p.classes = input.dim(class_dim);
  p.batch = input.ndim() == 1 ? 1 : input.dim(0);
  for (int d = 2; d < input.ndim(); ++d) p.spatial *= input.dim(d);
  for (int d = 0; d < input.ndim(); ++d)
    if (d != class_dim) c.position_shape.push_back(input.dim(d));
  p.ignore_index = ignore_index;
  p.label_smoothing = label_smoothing;
  if (target.shape() == input.shape() && is_floating(target.dtype()) && !nll) {
    check_same_dtype(input, "input", target, "target");
    if (ignore_index >= 0)
      throw ArgError("ignore_index: only class-index targets can be ignored; with class probabilities it must stay "
                     "negative (the default -100), got " + std::to_string(ignore_index));
    p.probability_target = true;
    c.arrays.probs = &target;
  } else {
    if (target.dtype() != DType::int64 || target.shape() != c.position_shape)
      throw ArgError(std::string("target: ") + op + " expected class indices (int64) of shape " +
                     shape_str(c.position_shape) +
                     (nll ? std::string() : ", or class probabilities of input's shape " + shape_str(input.shape()) +
                                                " and dtype " + dtype_name(input.dtype())) +
                     "; got shape " + shape_str(target.shape()) + " and dtype " + dtype_name(target.dtype()));
    c.arrays.labels = &target;
  }
  if (weight) {
    if (weight->ndim() != 1 || weight->dim(0) != p.classes)
      throw ArgError("weight: expected one weight per class, shape (" + std::to_string(p.classes) + "), got " +
                     shape_str(weight->shape()));
    check_same_dtype(input, "input", *weight, "weight");
    check_same_device(input, "input", *weight, "weight");
    c.arrays.weight = &*weight;
  }
  if (p.classes == 0 && p.positions() > 0)
    throw ArgError(std::string("input: ") + op + " expected at least one class, got shape " +
                   shape_str(input.shape()));
  c.arrays.x = &input;
  return c;
}

std::string position_str(const Shape& shape, int64_t flat) {
  std::vector<int64_t> index(shape.size());
  for (int d = (int)shape.size() - 1; d >= 0; --d) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  std::string s = "(";
  for (size_t d = 0; d < index.size(); ++d) s += (d ? ", " : "") + std::to_string(index[d]);
  return s + (index.size() == 1 ? ",)" : ")");
}

std::tuple<Array, Array, std::optional<Array>> forward(const Array& input, const Array& target,
                                                       std::optional<Array> weight, int64_t ignore_index,
                                                       double label_smoothing, bool nll) {
  Checked c = check(input, target, weight, ignore_index, label_smoothing, nll);
  c.arrays.weight = weight ? &*weight : nullptr;  // the optional lives here, not in check's copy
  Array loss = Array::empty(c.position_shape, input.dtype(), input.device());   // every position written
  Array lse = Array::empty(c.position_shape, DType::float64, input.device());   // every position written
  std::optional<Array> position_weight;
  if (!c.p.probability_target) position_weight = Array::empty(c.position_shape, input.dtype(), input.device());
  int64_t bad = -1;
  GRADCORE_ON_DEVICE(input, cross_entropy_forward, c.arrays, loss, lse, position_weight ? &*position_weight : nullptr,
                     bad, c.p);
  if (bad >= 0) {
    const Array labels = target.to(Device{});
    const int64_t value = static_cast<const int64_t*>(labels.data())[bad];
    throw ArgError("target: class index " + std::to_string(value) + " at position " +
                   position_str(c.position_shape, bad) + " is out of range for " + std::to_string(c.p.classes) +
                   " classes (expected 0 <= index < " + std::to_string(c.p.classes) + ", or ignore_index = " +
                   std::to_string(ignore_index) + ")");
  }
  return {loss, lse, position_weight};
}

std::tuple<Array, std::optional<Array>> backward(const Array& input, const Array& target, std::optional<Array> weight,
                                                 const Array& lse, const Array& grad, int64_t ignore_index,
                                                 double label_smoothing, bool nll, bool need_target) {
  Checked c = check(input, target, weight, ignore_index, label_smoothing, nll);
  c.arrays.weight = weight ? &*weight : nullptr;
  check_shape(lse, "lse", c.position_shape);
  if (lse.dtype() != DType::float64) throw ArgTypeError("lse: expected float64, as cross_entropy_forward returns it");
  if (grad.numel() != 1) check_shape(grad, "grad_output", c.position_shape);
  check_same_dtype(input, "input", grad, "grad_output");
  check_same_device(input, "input", grad, "grad_output");
  check_same_device(input, "input", lse, "lse");
  Array dx = Array::empty(input.shape(), input.dtype(), input.device());  // every class of every position written
  std::optional<Array> dtarget;
  if (need_target && c.p.probability_target) dtarget = Array::empty(input.shape(), input.dtype(), input.device());
  GRADCORE_ON_DEVICE(input, cross_entropy_backward, c.arrays, lse, grad, dx, dtarget ? &*dtarget : nullptr, c.p);
  return {dx, dtarget};
}

}  // namespace

void bind_cross_entropy(py::module_& m) {
  m.def("cross_entropy_forward", &forward, py::arg("input"), py::arg("target"), py::arg("weight"),
        py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("nll"),
        "(loss per position, lse (float64), position_weight or None): cross_entropy from logits, or nll_loss from "
        "log-probabilities (nll=True).",
        py::call_guard<py::gil_scoped_release>());
  m.def("cross_entropy_backward", &backward, py::arg("input"), py::arg("target"), py::arg("weight"), py::arg("lse"),
        py::arg("grad_output"), py::arg("ignore_index"), py::arg("label_smoothing"), py::arg("nll"),
        py::arg("need_target"),
        "(dx, dtarget or None): the fused softmax + cross-entropy (or nll) backward; grad_output per position or "
        "one value.",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
