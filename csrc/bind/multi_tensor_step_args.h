// What every fused optimizer's binding does around its rule (multi_tensor_step.h): check the group indices against
// group_hyper (one row of six numbers per hyperparameter group), fill the common StepParams, then build (or reuse)
// the table and check the grad_norm outputs the step reads. The binding adds its own columns and flags.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>
#include "grad_norm.h"
#include "multi_tensor_step.h"

namespace gradcore {

using GroupHyper = std::vector<std::array<double, 6>>;

// Params with groups[i] = make_group(group_hyper[i]) and the clip settings; throws ArgError naming group_hyper or
// groups[t] when a group index has no row.
template <typename Params, typename MakeGroup>
Params step_params(const std::vector<int32_t>& groups, const GroupHyper& group_hyper, std::optional<double> clip_value,
                   int64_t scale_offset, MakeGroup&& make_group) {
  if (group_hyper.empty() || group_hyper.size() > (size_t)kMaxGroupsPerLaunch)
    throw ArgError("group_hyper: expected 1 to " + std::to_string(kMaxGroupsPerLaunch) + " groups per launch, got " +
                   std::to_string(group_hyper.size()));
  for (size_t t = 0; t < groups.size(); ++t)
    if (groups[t] >= (int32_t)group_hyper.size())
      throw ArgError("groups[" + std::to_string(t) + "]: group " + std::to_string(groups[t]) + " is out of range");
  Params p;
  p.n_groups = (int)group_hyper.size();
  for (int i = 0; i < p.n_groups; ++i) p.groups[i] = make_group(group_hyper[i]);
  p.clip_by_value = clip_value.has_value();
  p.clip_value = clip_value.value_or(0.0);
  p.scale_offset = scale_offset;
  return p;
}

// The table of the step's columns (cached in `table`), after checking grad_scales and nonfinite_state against it.
inline TensorTableView step_table(TensorTable& table, const std::vector<const TensorList*>& columns,
                                  const char* const* column_names, const TensorList& steps,
                                  const std::vector<int32_t>& groups, const std::optional<Array>& grad_scales,
                                  int64_t scale_offset, const std::optional<Array>& nonfinite_state) {
  TensorTableView view = table.get(columns, column_names, steps, groups);
  check_step_inputs(view, grad_scales, scale_offset, nonfinite_state);
  return view;
}

}  // namespace gradcore
