// The CPU skeleton of a fused optimizer step (see multi_tensor_step.h for the rule it applies): one OpenMP loop over
// the chunks of every tensor of the table, each element loaded into registers, updated by the rule and stored back.
// Each chunk belongs to one task and every element is updated on its own, so results are the same for any thread
// count.
#pragma once
#include <algorithm>
#include "array.h"
#include "cpu/parallel.h"
#include "grad_norm.h"
#include "multi_tensor_step.h"

namespace gradcore::cpu {

template <typename Rule>
void multi_tensor_step(const TensorTableView& table, const typename Rule::Params& params, const double* grad_scales) {
  using T = typename Rule::Scalar;
  constexpr int C = Rule::columns;
#pragma omp parallel for schedule(static) if (table.total_numel >= kParallelThreshold)
  for (int64_t c = 0; c < table.n_chunks; ++c) {
    const ChunkEntry ch = table.chunks[c];
    const TensorEntry& e = table.tensors[ch.tensor];
    const Rule rule(params, e.group, e.step ? *e.step : 0.0, grad_scales ? grad_scales[ch.tensor] : 1.0);
    T* column[C];
    bool read[C];
    for (int k = 0; k < C; ++k) {
      column[k] = static_cast<T*>(e.column[k]);
      read[k] = rule.reads(k);
    }
    const int64_t begin = (int64_t)ch.chunk * kTensorChunk, end = std::min(e.numel, begin + kTensorChunk);
    for (int64_t i = begin; i < end; ++i) {
      T x[C];
      for (int k = 0; k < C; ++k) x[k] = read[k] ? column[k][i] : T(0);
      rule(x);
      for (int k = 0; k < C; ++k)
        if (k != kGradColumn) column[k][i] = x[k];
    }
  }
}

// Rule<T, flag> over every element of the table (T: the table's dtype). grad_scales: (T,) float64 or empty;
// nonfinite_state: (4,) float64 of grad_norm.h or empty (set: nothing is written, the step counters included).
template <template <typename, bool> class Rule, typename Params>
void multi_tensor_step(const TensorTableView& table, const Params& params, bool flag, const Array& grad_scales,
                       const Array& nonfinite_state) {
  if (nonfinite_state.data() && nonfinite_state.data_as<double>()[kStateNonfinite] != 0.0) return;  // skipped
  const double* scales = grad_scales.data() ? grad_scales.data_as<double>() + params.scale_offset : nullptr;
  dispatch_float(table.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (flag) multi_tensor_step<Rule<T, true>>(table, params, scales);
    else multi_tensor_step<Rule<T, false>>(table, params, scales);
  });
  // The step counters advance after every chunk has read them.
  for (int64_t t = 0; t < table.n_tensors; ++t)
    if (table.tensors[t].step) *table.tensors[t].step += 1.0;
}

}  // namespace gradcore::cpu
