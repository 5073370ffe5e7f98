// A fused optimizer step: one pass over every element of every tensor of a multi-tensor table (multi_tensor.h),
// with the per-element maths in a rule functor, as apex's multi_tensor_apply does. The skeleton is written once per
// device and shared by every optimizer: cpu/multi_tensor_step_loop.h (an OpenMP loop over the chunks), cuda/
// multi_tensor.cuh (one launch, one block per chunk, 16-byte packs) and bind/multi_tensor_step_args.h (the binding's
// checks). Both skeletons skip the whole step when the non-finite flag of grad_norm.h is set, read each tensor's
// step counter and clip scale, and advance the step counters after every chunk has read them.
//
// An optimizer brings its hyperparameters (a Group per parameter group, in Params : StepParams<Group>), the
// per-tensor constants of a step (Scalars<T>, constructed from (params, group, step, grad_scale)) and a rule:
//   template <typename T, bool kFlag>                   // kFlag: the optimizer's one optional state column
//   struct Rule : StepRule<T, Params, Scalars<T>, columns> {   // columns: param, grad, then the state columns
//     using StepRule<...>::StepRule;
//     static constexpr const char* kernel_name;         // names the CUDA launch in errors
//     GRADCORE_HD bool reads(int column) const;         // false: this step writes the column without reading it
//     GRADCORE_HD void operator()(T (&x)[columns]) const;   // one element, updated in place, from this->s
//   };
// x[kParamColumn] is the parameter, x[kGradColumn] the gradient (never written back), x[2..] the state.
#pragma once
#include <cstdint>
#include "host_device.h"
#include "multi_tensor.h"

namespace gradcore {

constexpr int kMaxGroupsPerLaunch = 64;  // hyperparameters travel by value in the launch

// What every optimizer's Params holds besides its own flags.
template <typename Group>
struct StepParams {
  Group groups[kMaxGroupsPerLaunch];
  int n_groups = 0;
  bool clip_by_value = false;
  double clip_value = 0.0;
  int64_t scale_offset = 0;  // grad_scales[scale_offset + t] belongs to tensor t of this launch
};

// The part every rule shares: its types, its column count and the per-tensor constants s, built once per chunk.
template <typename T, typename ParamsT, typename ScalarsT, int kColumns>
struct StepRule {
  using Scalar = T;
  using Params = ParamsT;
  static constexpr int columns = kColumns;
  ScalarsT s;
  GRADCORE_HD StepRule(const Params& params, int group, double step, double grad_scale)
      : s(params, params.groups[group], step, grad_scale) {}
};

}  // namespace gradcore
