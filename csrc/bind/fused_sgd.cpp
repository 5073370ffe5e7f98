// Binding for fused SGD (fused_sgd.h).
// Contract: params, grads (and momentum_buffers when any group has momentum) are lists with one tensor per parameter,
// of one dtype on one device; steps holds one (1,) float64 counter per parameter; groups[t] indexes group_hyper,
// whose rows are (lr, momentum, dampening, weight_decay, nesterov, maximize). grad_scales (T,) and
// nonfinite_state (4,) come from grad_norm and are read on the device. Everything is updated in place.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <optional>
#include "bind/multi_tensor_step_args.h"
#include "fused_sgd.h"

namespace py = pybind11;
namespace gradcore {

namespace {

const char* const kSgdNames[] = {"params", "grads", "momentum_buffers"};

void fused_sgd(TensorTable& table, const TensorList& params, const TensorList& grads,
               const TensorList& momentum_buffers, const TensorList& steps, const std::vector<int32_t>& groups,
               const GroupHyper& group_hyper, std::optional<double> clip_value,
               std::optional<Array> grad_scales, int64_t scale_offset, std::optional<Array> nonfinite_state) {
  if (params.empty()) return;
  if (grads.empty()) throw ArgError("grads: expected one tensor per parameter");
  // Rows of group_hyper: (lr, momentum, dampening, weight_decay, nesterov, maximize).
  SgdParams p = step_params<SgdParams>(groups, group_hyper, clip_value, scale_offset, [](const auto& h) {
    return SgdGroup{h[0], h[1], h[2], h[3], h[4] != 0.0 ? 1 : 0, h[5] != 0.0 ? 1 : 0};
  });
  p.momentum = !momentum_buffers.empty();
  const TensorTableView view = step_table(table, {&params, &grads, &momentum_buffers}, kSgdNames, steps, groups,
                                          grad_scales, scale_offset, nonfinite_state);
  GRADCORE_ON_DEVICE(params[0], fused_sgd, view, p, grad_scales.value_or(Array()), nonfinite_state.value_or(Array()));
}

}  // namespace

void bind_fused_sgd(py::module_& m) {
  m.def("fused_sgd", &fused_sgd, py::arg("table"), py::arg("params"), py::arg("grads"), py::arg("momentum_buffers"),
        py::arg("steps"), py::arg("groups"), py::arg("group_hyper"), py::arg("clip_value") = py::none(),
        py::arg("grad_scales") = py::none(), py::arg("scale_offset") = 0,
        py::arg("nonfinite_state") = py::none(),
        "One fused SGD step over every tensor, in place.", py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
