// CUDA fused Adam/AdamW: ONE launch of the multi-tensor skeleton (cuda/multi_tensor.cuh) with fused_adam.h's
// AdamRule updates every element of every tensor of the table (one block per chunk). Each element's p, g, m, v
// (v_max) are read once with 16-byte loads and p, m, v (v_max) written once.
#include "cuda/multi_tensor.cuh"
#include "fused_adam.h"

namespace gradcore {

void fused_adam_cuda(const TensorTableView& table, const AdamParams& params, const Array& grad_scales,
                     const Array& nonfinite_state) {
  multi_tensor_step_cuda<AdamRule>(table, params, params.amsgrad, grad_scales, nonfinite_state);
}

}  // namespace gradcore
