// CPU gradient norms and clipping over a multi-tensor table; see grad_norm.h for the maths and the order.
#include <algorithm>
#include <cmath>
#include <vector>
#include "grad_norm.h"

namespace gradcore {

using namespace grad_norm_math;

void grad_norm_cpu(const TensorTableView& table, const GradNormParams& params, Array& norm, Array& state,
                   Array& scales) {
  const bool inf_norm = std::isinf(params.norm_type);
  const double p = params.norm_type;
  const int64_t T = table.n_tensors, C = table.n_chunks;
  std::vector<double> partial((size_t)C, 0.0);
  dispatch_float(table.dtype, [&](auto zero) {
    using T_ = decltype(zero);
#pragma omp parallel for schedule(static) if (C > 1)
    for (int64_t c = 0; c < C; ++c) {
      const ChunkEntry ch = table.chunks[c];
      const TensorEntry& e = table.tensors[ch.tensor];
      const T_* g = static_cast<const T_*>(e.column[kGradColumn]);
      const int64_t begin = (int64_t)ch.chunk * kTensorChunk, end = std::min(e.numel, begin + kTensorChunk);
      double acc = 0.0;
      for (int64_t i = begin; i < end; ++i) acc = combine(acc, power((double)g[i], p, inf_norm), inf_norm);
      partial[(size_t)c] = acc;
    }
  });
  double* st = state.data_as<double>();
  double* sc = params.clip ? scales.data_as<double>() : nullptr;
  double total = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const TensorEntry& e = table.tensors[t];
    double s = 0.0;
    for (int64_t c = e.first_chunk; c < e.first_chunk + e.chunks; ++c) s = combine(s, partial[(size_t)c], inf_norm);
    if (sc && params.per_tensor) sc[t] = clip_scale(root(s, p, inf_norm), params.max_norm);
    total = combine(total, s, inf_norm);
  }
  const double total_norm = root(total, p, inf_norm);
  const double total_scale = params.clip ? clip_scale(total_norm, params.max_norm) : 1.0;
  if (sc && !params.per_tensor)
    for (int64_t t = 0; t < T; ++t) sc[t] = total_scale;
  const bool nonfinite = !std::isfinite(total_norm);
  st[kStateNorm] = total_norm;
  st[kStateScale] = total_scale;
  st[kStateNonfinite] = nonfinite ? 1.0 : 0.0;
  st[kStateNonfiniteCount] += nonfinite ? 1.0 : 0.0;
  dispatch_float(norm.dtype(), [&](auto zero) { norm.data_as<decltype(zero)>()[0] = (decltype(zero))total_norm; });
}

void grad_scale_cpu(const TensorTableView& table, const Array& scales) {
  const double* sc = scales.data_as<double>();
  dispatch_float(table.dtype, [&](auto zero) {
    using T_ = decltype(zero);
#pragma omp parallel for schedule(static) if (table.n_chunks > 1)
    for (int64_t c = 0; c < table.n_chunks; ++c) {
      const ChunkEntry ch = table.chunks[c];
      const TensorEntry& e = table.tensors[ch.tensor];
      T_* g = static_cast<T_*>(e.column[kGradColumn]);
      const T_ s = (T_)sc[ch.tensor];
      const int64_t begin = (int64_t)ch.chunk * kTensorChunk, end = std::min(e.numel, begin + kTensorChunk);
      for (int64_t i = begin; i < end; ++i) g[i] *= s;
    }
  });
}

void grad_clamp_cpu(const TensorTableView& table, double clip_value) {
  dispatch_float(table.dtype, [&](auto zero) {
    using T_ = decltype(zero);
    const T_ hi = (T_)clip_value, lo = -hi;
#pragma omp parallel for schedule(static) if (table.n_chunks > 1)
    for (int64_t c = 0; c < table.n_chunks; ++c) {
      const ChunkEntry ch = table.chunks[c];
      const TensorEntry& e = table.tensors[ch.tensor];
      T_* g = static_cast<T_*>(e.column[kGradColumn]);
      const int64_t begin = (int64_t)ch.chunk * kTensorChunk, end = std::min(e.numel, begin + kTensorChunk);
      for (int64_t i = begin; i < end; ++i) g[i] = g[i] < lo ? lo : (g[i] > hi ? hi : g[i]);
    }
  });
}

}  // namespace gradcore
