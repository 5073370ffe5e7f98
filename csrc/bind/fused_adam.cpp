// Binding for fused Adam/AdamW (fused_adam.h).
// Contract: params, grads, exp_avgs, exp_avg_sqs (and max_exp_avg_sqs when amsgrad) are lists with one tensor per
// parameter, of one dtype on one device; steps holds one (1,) float64 counter per parameter on that device;
// groups[t] indexes group_hyper, whose rows are (lr, beta1, beta2, eps, weight_decay, maximize). grad_scales (T,)
// and nonfinite_state (4,) come from grad_norm and are read on the device. Everything is updated in place.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <optional>
#include "bind/multi_tensor_step_args.h"
#include "fused_adam.h"

namespace py = pybind11;
namespace gradcore {

namespace {

const char* const kAdamNames[] = {"params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"};

void fused_adam(TensorTable& table, const TensorList& params, const TensorList& grads, const TensorList& exp_avgs,
                const TensorList& exp_avg_sqs, const TensorList& max_exp_avg_sqs, const TensorList& steps,
                const std::vector<int32_t>& groups, const GroupHyper& group_hyper,
                bool decoupled_weight_decay, std::optional<double> clip_value, std::optional<Array> grad_scales,
                int64_t scale_offset, std::optional<Array> nonfinite_state) {
  if (params.empty()) return;
  if (grads.empty() || exp_avgs.empty() || exp_avg_sqs.empty())
    throw ArgError("grads, exp_avgs, exp_avg_sqs: expected one tensor per parameter");
  // Rows of group_hyper: (lr, beta1, beta2, eps, weight_decay, maximize).
  AdamParams p = step_params<AdamParams>(groups, group_hyper, clip_value, scale_offset, [](const auto& h) {
    return AdamGroup{h[0], h[1], h[2], h[3], h[4], h[5] != 0.0 ? 1 : 0};
  });
  p.decoupled_weight_decay = decoupled_weight_decay;
  p.amsgrad = !max_exp_avg_sqs.empty();
  const TensorTableView view = step_table(table, {&params, &grads, &exp_avgs, &exp_avg_sqs, &max_exp_avg_sqs},
                                          kAdamNames, steps, groups, grad_scales, scale_offset, nonfinite_state);
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
