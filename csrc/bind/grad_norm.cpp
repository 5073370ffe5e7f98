// Bindings for the multi-tensor gradient norm and clipping (grad_norm.h).
// Contract: every list holds tensors of one dtype on one device; state and scales are float64 on that device and
// are written on the device (no synchronisation); the returned norm is a 0-d Array of the gradients' dtype.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <cmath>
#include <optional>
#include "grad_norm.h"

namespace py = pybind11;
namespace gradcore {

namespace {

const char* const kGradNames[] = {"params", "grads"};

TensorTableView grads_table(TensorTable& table, const TensorList& grads) {
  if (grads.empty()) throw ArgError("grads: expected at least one gradient");
  static const TensorList none;
  return table.get({&none, &grads}, kGradNames, none, {});
}

void check_float64_vector(const Array& a, const char* name, int64_t n, const TensorTableView& table) {
  if (a.dtype() != DType::float64 || a.ndim() != 1 || a.dim(0) != n)
    throw ArgError(std::string(name) + ": expected a float64 array of shape (" + std::to_string(n) + ",), got " +
                   dtype_name(a.dtype()) + " " + shape_str(a.shape()));
  if (a.device() != table.device)
    throw ArgError(std::string(name) + ": expected an array on " + table.device.str() + ", got " + a.device().str());
}

Array grad_norm(TensorTable& table, const TensorList& grads, double norm_type, std::optional<double> max_norm,
                bool per_tensor, Array state, std::optional<Array> scales) {
  if (!(norm_type > 0))
    throw ArgError("norm_type: expected a positive number or inf, got " + std::to_string(norm_type));
  TensorTableView view = grads_table(table, grads);
  check_float64_vector(state, "state", kStateSize, view);
  GradNormParams params;
  params.norm_type = norm_type;
  params.clip = max_norm.has_value();
  params.max_norm = max_norm.value_or(0.0);
  params.per_tensor = per_tensor;
  Array scale_array;
  if (params.clip) {
    if (!scales) throw ArgError("scales: needed when max_norm is given");
    check_float64_vector(*scales, "scales", view.n_tensors, view);
    scale_array = *scales;
  }
  Array norm = Array::empty({}, view.dtype, view.device);  // written by the kernel
  GRADCORE_ON_DEVICE(grads[0], grad_norm, view, params, norm, state, scale_array);
  return norm;
}

void grad_scale_(TensorTable& table, const TensorList& grads, const Array& scales) {
  TensorTableView view = grads_table(table, grads);
  check_float64_vector(scales, "scales", view.n_tensors, view);
  GRADCORE_ON_DEVICE(grads[0], grad_scale, view, scales);
}

void grad_clamp_(TensorTable& table, const TensorList& grads, double clip_value) {
  if (!(clip_value >= 0)) throw ArgError("clip_value: expected a number >= 0, got " + std::to_string(clip_value));
  TensorTableView view = grads_table(table, grads);
  GRADCORE_ON_DEVICE(grads[0], grad_clamp, view, clip_value);
}

}  // namespace

void check_step_inputs(const TensorTableView& view, const std::optional<Array>& grad_scales, int64_t scale_offset,
                       const std::optional<Array>& nonfinite_state) {
  auto check = [&](const Array& a, const char* name, int64_t n) {
    if (a.dtype() != DType::float64 || a.ndim() != 1 || a.dim(0) < n)
      throw ArgError(std::string(name) + ": expected a 1-d float64 array of at least " + std::to_string(n) +
                     " elements, got " + dtype_name(a.dtype()) + " " + shape_str(a.shape()));
    if (a.device() != view.device)
      throw ArgError(std::string(name) + ": expected an array on " + view.device.str() + ", got " + a.device().str());
  };
  if (scale_offset < 0) throw ArgError("scale_offset: expected >= 0, got " + std::to_string(scale_offset));
  if (grad_scales) check(*grad_scales, "grad_scales", scale_offset + view.n_tensors);
  if (nonfinite_state) check(*nonfinite_state, "nonfinite_state", kStateSize);
}

void bind_grad_norm(py::module_& m) {
  m.def("grad_norm", &grad_norm, py::arg("table"), py::arg("grads"), py::arg("norm_type"), py::arg("max_norm"),
        py::arg("per_tensor"), py::arg("state"), py::arg("scales"),
        "The norm of all gradients in one deterministic pass (0-d, the gradients' dtype); writes state (4,) "
        "[norm, scale, non-finite, non-finite count += non-finite] and, when max_norm is given, the per-tensor "
        "scales (T,).",
        py::call_guard<py::gil_scoped_release>());
  m.def("grad_scale_", &grad_scale_, py::arg("table"), py::arg("grads"), py::arg("scales"),
        "grads[t] *= scales[t], in place.", py::call_guard<py::gil_scoped_release>());
  m.def("grad_clamp_", &grad_clamp_, py::arg("table"), py::arg("grads"), py::arg("clip_value"),
        "Clamps every gradient to [-clip_value, clip_value], in place.", py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
