// CPU fused Adam/AdamW: the multi-tensor skeleton (cpu/multi_tensor_step_loop.h) with fused_adam.h's AdamRule.
#include "cpu/multi_tensor_step_loop.h"
#include "fused_adam.h"

namespace gradcore {

void fused_adam_cpu(const TensorTableView& table, const AdamParams& params, const Array& grad_scales,
                    const Array& nonfinite_state) {
  cpu::multi_tensor_step<AdamRule>(table, params, params.amsgrad, grad_scales, nonfinite_state);
}

}  // namespace gradcore
