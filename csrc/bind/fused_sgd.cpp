// Binding for fused SGD (fused_sgd.h).
// Contract: params, grads (and momentum_buffers when any group has momentum) are lists with one tensor per parameter,
// of one dtype on one device; steps holds one (1,) float64 counter per parameter; groups[t] indexes group_hyper,
// whose rows are (lr, momentum, dampening, weight_decay, nesterov, maximize). grad_scales (T,) and
// nonfinite_state (4,) come from grad_norm and are read on the device. Everything is updated in place.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <array>
#include <optional>
#include "fused_sgd.h"
#include "grad_norm.h"

namespace py = pybind11;
namespace gradcore {

namespace {

const char* const kSgdNames[] = {"params", "grads", "momentum_buffers"};

void fused_sgd(TensorTable& table, const TensorList& params, const TensorList& grads,
               const TensorList& momentum_buffers, const TensorList& steps, const std::vector<int32_t>& groups,
               const std::vector<std::array<double, 6>>& group_hyper, std::optional<double> clip_value,
               std::optional<Array> grad_scales, int64_t scale_offset, std::optional<Array> nonfinite_state) {
  if (params.empty()) return;
  if (grads.empty()) throw ArgError("grads: expected one tensor per parameter");
  if (group_hyper.empty() || group_hyper.size() > (size_t)kMaxGroupsPerLaunch)
    throw ArgError("group_hyper: expected 1 to " + std::to_string(kMaxGroupsPerLaunch) + " groups per launch, got " +
                   std::to_string(group_hyper.size()));
  for (size_t t = 0; t < groups.size(); ++t)
    if (groups[t] >= (int32_t)group_hyper.size())
      throw ArgError("groups[" + std::to_string(t) + "]: group " + std::to_string(groups[t]) + " is out of range");
  SgdParams p;
  p.n_groups = (int)group_hyper.size();
  for (int i = 0; i < p.n_groups; ++i) {
    const auto& h = group_hyper[i];
    p.groups[i] = SgdGroup{h[0], h[1], h[2], h[3], h[4] != 0.0 ? 1 : 0, h[5] != 0.0 ? 1 : 0};
  }
  p.momentum = !momentum_buffers.empty();
  p.clip_by_value = clip_value.has_value();
  p.clip_value = clip_value.value_or(0.0);
  TensorTableView view = table.get({&params, &grads, &momentum_buffers}, kSgdNames, steps, groups);
  p.scale_offset = scale_offset;
  check_step_inputs(view, grad_scales, scale_offset, nonfinite_state);
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
