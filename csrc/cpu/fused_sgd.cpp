// CPU fused SGD: one OpenMP loop over the chunks of every tensor; see fused_sgd.h for the rule.
#include <algorithm>
#include "fused_sgd.h"
#include "grad_norm.h"
#include "cpu/parallel.h"

namespace gradcore {

void fused_sgd_cpu(const TensorTableView& table, const SgdParams& params, const Array& grad_scales,
                   const Array& nonfinite_state) {
  if (nonfinite_state.data() && nonfinite_state.data_as<double>()[kStateNonfinite] != 0.0) return;  // skipped
  const double* scales = grad_scales.data() ? grad_scales.data_as<double>() + params.scale_offset : nullptr;
  dispatch_float(table.dtype, [&](auto zero) {
    using T = decltype(zero);
#pragma omp parallel for schedule(static) if (table.total_numel >= cpu::kParallelThreshold)
    for (int64_t c = 0; c < table.n_chunks; ++c) {
      const ChunkEntry ch = table.chunks[c];
      const TensorEntry& e = table.tensors[ch.tensor];
      const SgdScalars<T> s = sgd_scalars<T>(params, params.groups[e.group], e.step ? *e.step : 0.0,
                                             scales ? scales[ch.tensor] : 1.0);
      T* p = static_cast<T*>(e.column[kParamColumn]);
      const T* g = static_cast<const T*>(e.column[kGradColumn]);
      T* b = params.momentum ? static_cast<T*>(e.column[kSgdColumnMomentum]) : nullptr;
      const int64_t begin = (int64_t)ch.chunk * kTensorChunk, end = std::min(e.numel, begin + kTensorChunk);
      if (b) {
        for (int64_t i = begin; i < end; ++i) sgd_element<T, true>(p[i], g[i], b[i], s);
      } else {
        for (int64_t i = begin; i < end; ++i) {
          T unused = T(0);
          sgd_element<T, false>(p[i], g[i], unused, s);
        }
      }
    }
  });
  for (int64_t t = 0; t < table.n_tensors; ++t)
    if (table.tensors[t].step) *table.tensors[t].step += 1.0;
}

}  // namespace gradcore
