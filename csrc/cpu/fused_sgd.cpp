// CPU fused SGD: the multi-tensor skeleton (cpu/multi_tensor_step_loop.h) with fused_sgd.h's SgdRule.
#include "cpu/multi_tensor_step_loop.h"
#include "fused_sgd.h"

namespace gradcore {

void fused_sgd_cpu(const TensorTableView& table, const SgdParams& params, const Array& grad_scales,
                   const Array& nonfinite_state) {
  cpu::multi_tensor_step<SgdRule>(table, params, params.momentum, grad_scales, nonfinite_state);
}

}  // namespace gradcore
