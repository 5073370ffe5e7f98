// Bindings for batch normalisation (maths in batch_norm.h). Contract: x is (N, C, H, W); weight, bias and the
// running statistics are (C) vectors of x's dtype on x's device, each optional where PyTorch allows it (None).
// Training forward returns (y, save_mean, save_invstd) with the saved statistics in float64 and updates the running
// statistics in place; the backward entry points return (dx, dweight, dbias) with None for what is not asked for.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <optional>
#include <tuple>
#include "batch_norm.h"

namespace py = pybind11;
namespace gradcore {

namespace {

using Grads = std::tuple<std::optional<Array>, std::optional<Array>, std::optional<Array>>;

BatchNormParams params_of(const Array& x, double eps, double momentum) {
  check_ndim(x, "x", 4, "(N, C, H, W)");
  BatchNormParams p;
  p.batch = x.dim(0);
  p.channels = x.dim(1);
  p.spatial = x.dim(2) * x.dim(3);
  p.eps = eps;
  p.momentum = momentum;
  return p;
}

// A per-channel vector: shape (C), x's dtype and device.
void check_channel_vector(const Array& x, const Array& v, const char* name) {
  if (v.ndim() != 1 || v.dim(0) != x.dim(1))
    throw ArgError(std::string(name) + ": expected shape (" + std::to_string(x.dim(1)) +
                   "), one value per channel of x (shape " + shape_str(x.shape()) + "), got " + shape_str(v.shape()));
  check_same_dtype(x, "x", v, name);
  check_same_device(x, "x", v, name);
}

const Array* checked_optional(const Array& x, const std::optional<Array>& v, const char* name) {
  if (!v) return nullptr;
  check_channel_vector(x, *v, name);
  return &*v;
}

// The saved batch statistics: (C) float64 on x's device, as batch_norm_forward_train returned them.
void check_saved(const Array& x, const Array& v, const char* name) {
  if (v.ndim() != 1 || v.dim(0) != x.dim(1))
    throw ArgError(std::string(name) + ": expected shape (" + std::to_string(x.dim(1)) + "), got " +
                   shape_str(v.shape()));
  if (v.dtype() != DType::float64)
    throw ArgTypeError(std::string(name) + ": expected float64 (as batch_norm_forward_train saves it), got " +
                       dtype_name(v.dtype()));
  check_same_device(x, "x", v, name);
}

void check_grad_output(const Array& x, const Array& dy) {
  check_shape(dy, "grad_output", x.shape());
  check_same_dtype(x, "x", dy, "grad_output");
  check_same_device(x, "x", dy, "grad_output");
}

std::tuple<Array, Array, Array> forward_train(const Array& x, std::optional<Array> weight, std::optional<Array> bias,
                                              std::optional<Array> running_mean, std::optional<Array> running_var,
                                              double momentum, double eps, const std::string& activation) {
  BatchNormParams p = params_of(x, eps, momentum);
  p.activation = activation_of(activation);
  if (p.per_channel() <= 1)
    throw ArgError("x: expected more than 1 value per channel when training, got shape " + shape_str(x.shape()) +
                   " (N*H*W = " + std::to_string(p.per_channel()) + ")");
  const Array* w = checked_optional(x, weight, "weight");
  const Array* b = checked_optional(x, bias, "bias");
  Array* rm = running_mean ? &*running_mean : nullptr;
  Array* rv = running_var ? &*running_var : nullptr;
  if (!rm != !rv) throw ArgError(std::string(rm ? "running_var" : "running_mean") +
                                 ": expected a tensor, since the other running statistic is given (or both None)");
  if (rm) {
    check_channel_vector(x, *rm, "running_mean");
    check_channel_vector(x, *rv, "running_var");
  }
  Array y = Array::empty(x.shape(), x.dtype(), x.device());                     // written whole
  Array save_mean = Array::empty({p.channels}, DType::float64, x.device());     // written whole
  Array save_invstd = Array::empty({p.channels}, DType::float64, x.device());   // written whole
  GRADCORE_ON_DEVICE(x, batch_norm_forward_train, x, w, b, rm, rv, y, save_mean, save_invstd, p);
  return {y, save_mean, save_invstd};
}

Array forward_eval(const Array& x, const Array& running_mean, const Array& running_var, std::optional<Array> weight,
                   std::optional<Array> bias, double eps, const std::string& activation) {
  BatchNormParams p = params_of(x, eps, 0.0);
  p.activation = activation_of(activation);
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  const Array* w = checked_optional(x, weight, "weight");
  const Array* b = checked_optional(x, bias, "bias");
  Array y = Array::empty(x.shape(), x.dtype(), x.device());  // written whole
  GRADCORE_ON_DEVICE(x, batch_norm_forward_eval, x, running_mean, running_var, w, b, y, p);
  return y;
}

// Outputs for the gradients asked for: dx like x, dweight and dbias (C). All written whole.
struct GradOutputs {
  std::optional<Array> dx, dweight, dbias;
  GradOutputs(const Array& x, bool need_x, bool need_weight, bool need_bias) {
    if (need_x) dx = Array::empty(x.shape(), x.dtype(), x.device());
    if (need_weight) dweight = Array::empty({x.dim(1)}, x.dtype(), x.device());
    if (need_bias) dbias = Array::empty({x.dim(1)}, x.dtype(), x.device());
  }
  Array* ptr(std::optional<Array>& a) { return a ? &*a : nullptr; }
};

// y: the fused batch_norm + ReLU's output, whose mask relu_backward(grad_output, y) the kernels apply as they read
// grad_output (batch_norm.h); like x, or None for plain batch_norm.
const Array* checked_relu_output(const Array& x, const std::optional<Array>& y) {
  if (!y) return nullptr;
  check_shape(*y, "y", x.shape());
  check_same_dtype(x, "x", *y, "y");
  check_same_device(x, "x", *y, "y");
  return &*y;
}

Grads backward_train(const Array& grad_output, const Array& x, std::optional<Array> weight, const Array& save_mean,
                     const Array& save_invstd, bool need_x, bool need_weight, bool need_bias,
                     const std::optional<Array>& y) {
  BatchNormParams p = params_of(x, 0.0, 0.0);
  check_grad_output(x, grad_output);
  const Array* relu_y = checked_relu_output(x, y);
  const Array* w = checked_optional(x, weight, "weight");
  check_saved(x, save_mean, "save_mean");
  check_saved(x, save_invstd, "save_invstd");
  GradOutputs g(x, need_x, need_weight, need_bias);
  if (need_x || need_weight || need_bias)
    GRADCORE_ON_DEVICE(x, batch_norm_backward_train, grad_output, relu_y, x, w, save_mean, save_invstd, g.ptr(g.dx),
                       g.ptr(g.dweight), g.ptr(g.dbias), p);
  return {g.dx, g.dweight, g.dbias};
}

Grads backward_eval(const Array& grad_output, const Array& x, const Array& running_mean, const Array& running_var,
                    std::optional<Array> weight, double eps, bool need_x, bool need_weight, bool need_bias,
                    const std::optional<Array>& y) {
  BatchNormParams p = params_of(x, eps, 0.0);
  check_grad_output(x, grad_output);
  const Array* relu_y = checked_relu_output(x, y);
  check_channel_vector(x, running_mean, "running_mean");
  check_channel_vector(x, running_var, "running_var");
  const Array* w = checked_optional(x, weight, "weight");
  GradOutputs g(x, need_x, need_weight, need_bias);
  if (need_x || need_weight || need_bias)
    GRADCORE_ON_DEVICE(x, batch_norm_backward_eval, grad_output, relu_y, x, running_mean, running_var, w, g.ptr(g.dx),
                       g.ptr(g.dweight), g.ptr(g.dbias), p);
  return {g.dx, g.dweight, g.dbias};
}

}  // namespace

void bind_batch_norm(py::module_& m) {
  m.def("batch_norm_forward_train", &forward_train, py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("running_mean"), py::arg("running_var"), py::arg("momentum"), py::arg("eps"),
        py::arg("activation") = "none",
        "Batch statistics: returns (y, save_mean, save_invstd), y = act(normalised), act \"none\" or \"relu\"; "
        "updates running_mean/running_var in place.",
        py::call_guard<py::gil_scoped_release>());
  m.def("batch_norm_forward_eval", &forward_eval, py::arg("x"), py::arg("running_mean"), py::arg("running_var"),
        py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("activation") = "none",
        "Normalises with the running statistics (then act, \"none\" or \"relu\").",
        py::call_guard<py::gil_scoped_release>());
  m.def("batch_norm_backward_train", &backward_train, py::arg("grad_output"), py::arg("x"), py::arg("weight"),
        py::arg("save_mean"), py::arg("save_invstd"), py::arg("need_x") = true, py::arg("need_weight") = true,
        py::arg("need_bias") = true, py::arg("y") = py::none(),
        "(dx, dweight, dbias) through the batch statistics; None where not asked for. y: the fused ReLU's output, "
        "whose mask relu_backward(grad_output, y) applies to grad_output, or None.",
        py::call_guard<py::gil_scoped_release>());
  m.def("batch_norm_backward_eval", &backward_eval, py::arg("grad_output"), py::arg("x"), py::arg("running_mean"),
        py::arg("running_var"), py::arg("weight"), py::arg("eps"), py::arg("need_x") = true,
        py::arg("need_weight") = true, py::arg("need_bias") = true, py::arg("y") = py::none(),
        "(dx, dweight, dbias) with the running statistics held constant; None where not asked for. y: the fused "
        "ReLU's output, whose mask applies to grad_output, or None.",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
