// Binding for fused Adam/AdamW (fused_adam.h).
// Contract: params, grads, exp_avgs, exp_avg_sqs (and max_exp_avg_sqs when amsgrad) are lists with one tensor per
// parameter, of one dtype on one device; steps holds one (1,) float64 counter per parameter on that device;
// groups[t] indexes group_hyper, whose rows are (lr, beta1, beta2, eps, weight_decay, maximize). grad_scales (T,)
// and nonfinite_state (4,) come from grad_norm and are read on the device. Everything is updated in place.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <array>
#include <optional>
#include "fused_adam.h"
#include "grad_norm.h"

namespace py = pybind11;
namespace gradcore {

namespace {

const char* const kAdamNames[] = {"params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"};

void fused_adam(TensorTable& table, const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const TensorList& steps,
                const std::vector<int32_t>& groups, const std::vector<std::array<double, 6>>& group_hyper,
                bool decoupled_weight_decay, std::optional<double> clip_value, std::optional<Array> grad_scales,
                int64_t scale_offset, std::optional<Array> nonfinite_state) {
  if (params.empty()) return;
  if (grads.empty() || exp_avgs.empty() || exp_avg_sqs.empty())
    throw ArgError("grads, exp_avgs, exp_avg_sqs: expected one tensor per parameter");
  if (group_hyper.empty() || group_hyper.size() > (size_t)kMaxGroupsPerLaunch)
    throw ArgError("group_hyper: expected 1 to " + std::to_string(kMaxGroupsPerLaunch) + " groups per launch, got " +
                   std::to_string(group_hyper.size()));
  for (size_t t = 0; t < groups.size(); ++t)
    if (groups[t] >= (int32_t)group_hyper.size())
      throw ArgError("groups[" + std::to_string(t) + "]: group " + std::to_string(groups[t]) + " is out of range");
  AdamParams p;
  p.n_groups = (int)group_hyper.size();
  for (int i = 0; i < p.n_groups; ++i) {
    const auto& h = group_hyper[i];
    p.groups[i] = AdamGroup{h[0], h[1], h[2], h[3], h[4], h[5] != 0.0 ? 1 : 0};
  }
  p.decoupled_weight_decay = decoupled_weight_decay;
  p.amsgrad = !max_exp_avg_sqs.empty();
  p.clip_by_value = clip_value.has_value();
  p.clip_value = clip_value.value_or(0.0);
  TensorTableView view =
      table.get({&params, &grads, &exp_avgs, &exp_avg_sqs, &max_exp_avg_sqs}, kAdamNames, steps, groups);
  p.scale_offset = scale_offset;
  check_step_inputs(view, grad_scales, scale_offset, nonfinite_state);
  GRADCORE_ON_DEVICE(params[0], fused_adam, view, p, grad_scales.value_or(Array()), nonfinite_state.value_or(Array()));
}

}  // namespace

void bind_fused_adam(py::module_& m) {
  m.def("fused_adam", &fused_adam, py::arg("table"), py::arg("params"), py::arg("grads"), py::arg("exp_avgs"),
        py::arg("exp_avg_sqs"), py::arg("max_exp_avg_sqs"), py::arg("steps"), py::arg("groups"),
        py::arg("group_hyper"), py::arg("decoupled_weight_decay"), py::arg("clip_value") = py::none(),
        py::arg("grad_scales") = py::none(), py::arg("scale_offset") = 0,
        py::arg("nonfinite_state") = py::none(),
        "One fused Adam (decoupled_weight_decay=False) or AdamW step over every tensor, in place.",
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace gradcore
