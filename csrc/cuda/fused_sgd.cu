// CUDA fused SGD: ONE launch of the multi-tensor skeleton (cuda/multi_tensor.cuh) with fused_sgd.h's SgdRule
// updates every element of every tensor of the table (one block per chunk). p, g (and the momentum buffer, not read
// on the first step) are read once with 16-byte loads and p (and the buffer) written once.
#include "cuda/multi_tensor.cuh"
#include "fused_sgd.h"

namespace gradcore {

void fused_sgd_cuda(const TensorTableView& table, const SgdParams& params, const Array& grad_scales,
                    const Array& nonfinite_state) {
  multi_tensor_step_cuda<SgdRule>(table, params, params.momentum, grad_scales, nonfinite_state);
}

}  // namespace gradcore
