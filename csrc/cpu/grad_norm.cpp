// CPU gradient norms and clipping over a multi-tensor table; see grad_norm.h for the maths and the order.
#include <algorithm>
#include <cmath>
#include <vector>
#include "cpu/parallel.h"
#include "grad_norm.h"

namespace gradcore {

using namespace grad_norm_math;

namespace {

// A chunk's partial, accumulated in kLanes interleaved lanes (lane j takes elements begin + j, begin + j + kLanes,
// ...) that are then combined in lane order, followed by the ragged tail: a fixed order that the compiler can
// vectorise. kKind: 2 for p = 2, 1 for p = 1 and p = inf (|g|; inf combines by max), 0 for any other p.
constexpr int kLanes = 8;

template <int kKind, typename T>
double chunk_partial(const T* g, int64_t begin, int64_t end, double p, bool inf_norm) {
  double lanes[kLanes] = {};
  auto contribution = [&](double x) {
    if (kKind == 2) return x * x;
    if (kKind == 1) return x != x ? x : (x < 0 ? -x : x);
    return power(x, p, inf_norm);
  };
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] = combine(lanes[j], contribution((double)g[i + j]), inf_norm);
  double acc = 0.0;
  for (int j = 0; j < kLanes; ++j) acc = combine(acc, lanes[j], inf_norm);
  for (; i < end; ++i) acc = combine(acc, contribution((double)g[i]), inf_norm);
  return acc;
}

}  // namespace

void grad_norm_cpu(const TensorTableView& table, const GradNormParams& params, Array& norm, Array& state,
                   Array& scales) {
  const bool inf_norm = std::isinf(params.norm_type);
  const double p = params.norm_type;
  const int64_t T = table.n_tensors, C = table.n_chunks;
  const int kind = (!inf_norm && p == 2.0) ? 2 : (inf_norm || p == 1.0) ? 1 : 0;
  std::vector<double> partial((size_t)C, 0.0);
  dispatch_float(table.dtype, [&](auto zero) {
    using T_ = decltype(zero);
#pragma omp parallel for schedule(static) if (table.total_numel >= cpu::kParallelThreshold)
    for (int64_t c = 0; c < C; ++c) {
      const ChunkEntry ch = table.chunks[c];
      const TensorEntry& e = table.tensors[ch.tensor];
      const T_* g = static_cast<const T_*>(e.column[kGradColumn]);
      const int64_t begin = (int64_t)ch.chunk * kTensorChunk, end = std::min(e.numel, begin + kTensorChunk);
      partial[(size_t)c] = kind == 2   ? chunk_partial<2>(g, begin, end, p, inf_norm)
                           : kind == 1 ? chunk_partial<1>(g, begin, end, p, inf_norm)
                                       : chunk_partial<0>(g, begin, end, p, inf_norm);
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
  // Non-finite as returned, in the gradients' dtype: a float32 norm above FLT_MAX is inf though the double sum is not.
  const bool nonfinite = dispatch_float(norm.dtype(), [&](auto zero) {
    using V = decltype(zero);
    norm.data_as<V>()[0] = (V)total_norm;
    return !std::isfinite(norm.data_as<V>()[0]);
  });
  st[kStateNorm] = total_norm;
  st[kStateScale] = total_scale;
  st[kStateNonfinite] = nonfinite ? 1.0 : 0.0;
  st[kStateNonfiniteCount] += nonfinite ? 1.0 : 0.0;
}

void grad_scale_cpu(const TensorTableView& table, const Array& scales) {
  const double* sc = scales.data_as<double>();
  dispatch_float(table.dtype, [&](auto zero) {
    using T_ = decltype(zero);
#pragma omp parallel for schedule(static) if (table.total_numel >= cpu::kParallelThreshold)
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
#pragma omp parallel for schedule(static) if (table.total_numel >= cpu::kParallelThreshold)
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
