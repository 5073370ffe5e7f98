// CPU sum over axes; see reduce.h for the order of summation.
#include "reduce.h"
#include <algorithm>
#include <vector>

namespace gradcore {

ReduceLayout reduce_layout(const Shape& shape, const std::vector<int>& axes) {
  // The layout holds up to kMaxReduceDims kept and reduced runs; more dimensions would write past them.
  if (shape.size() > (size_t)kMaxReduceDims)
    throw ArgError("x: sum supports at most " + std::to_string(kMaxReduceDims) + " dimensions, got shape " +
                   shape_str(shape) + "; reshape it to fewer dimensions first");
  ReduceLayout layout;
  std::vector<bool> reduced(shape.size(), false);
  for (int a : axes) reduced[a] = true;
  std::vector<int64_t> stride(shape.size(), 1);
  for (int i = (int)shape.size() - 2; i >= 0; --i) stride[i] = stride[i + 1] * shape[i + 1];
  // Neighbouring dimensions of the same kind merge into one (x is contiguous), so that a bias gradient's sum over
  // (N, H, W) walks runs of H * W elements, not of W: the per-run offset arithmetic dominated for small images.
  for (size_t i = 0; i < shape.size(); ++i) {
    const bool merge = i > 0 && reduced[i] == reduced[i - 1];
    if (reduced[i]) {
      if (merge) {
        layout.reduced_shape[layout.reduced_ndim - 1] *= shape[i];
        layout.reduced_stride[layout.reduced_ndim - 1] = stride[i];
      } else {
        layout.reduced_shape[layout.reduced_ndim] = shape[i];
        layout.reduced_stride[layout.reduced_ndim++] = stride[i];
      }
      layout.reduced_numel *= shape[i];
    } else {
      if (merge) {
        layout.kept_shape[layout.kept_ndim - 1] *= shape[i];
        layout.kept_stride[layout.kept_ndim - 1] = stride[i];
      } else {
        layout.kept_shape[layout.kept_ndim] = shape[i];
        layout.kept_stride[layout.kept_ndim++] = stride[i];
      }
      layout.kept_numel *= shape[i];
    }
  }
  return layout;
}

// Offset of the r-th element of the reduced index space (row-major over the reduced dimensions).
static inline int64_t reduced_offset(const ReduceLayout& l, int64_t r) {
  int64_t off = 0;
  for (int d = l.reduced_ndim - 1; d >= 0; --d) {
    off += (r % l.reduced_shape[d]) * l.reduced_stride[d];
    r /= l.reduced_shape[d];
  }
  return off;
}

static inline int64_t kept_offset(const ReduceLayout& l, int64_t k) {
  int64_t off = 0;
  for (int d = l.kept_ndim - 1; d >= 0; --d) {
    off += (k % l.kept_shape[d]) * l.kept_stride[d];
    k /= l.kept_shape[d];
  }
  return off;
}

void sum_cpu(const Array& x, Array& out, const ReduceLayout& layout) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel;
  const int64_t chunks = R == 0 ? 1 : (R + kReduceChunk - 1) / kReduceChunk;
  // The innermost reduced dimension is walked as a strided run, the rest by offset arithmetic.
  const int64_t run = layout.reduced_ndim ? layout.reduced_shape[layout.reduced_ndim - 1] : 1;
  const int64_t run_stride = layout.reduced_ndim ? layout.reduced_stride[layout.reduced_ndim - 1] : 1;
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data_as<T>();
    T* po = out.data_as<T>();
    std::vector<double> partial((size_t)(K * chunks), 0.0);
#pragma omp parallel for schedule(static) collapse(2) if (K * R >= (1 << 15))
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t c = 0; c < chunks; ++c) {
        const T* base = px + kept_offset(layout, k);
        const int64_t begin = c * kReduceChunk, end = std::min(R, begin + kReduceChunk);
        double acc = 0.0;
        int64_t r = begin;
        while (r < end) {
          const int64_t in_run = r % run, take = std::min(run - in_run, end - r);
          const T* p = base + reduced_offset(layout, r);
          if (run_stride == 1) {
            // Eight independent partial sums (a fixed interleave) hide the add latency; combined in fixed order.
            double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int64_t j = 0;
            for (; j + 8 <= take; j += 8)
              for (int l = 0; l < 8; ++l) lane[l] += (double)p[j + l];
            for (; j < take; ++j) lane[0] += (double)p[j];
            acc += ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
          } else {
            for (int64_t j = 0; j < take; ++j) acc += (double)p[j * run_stride];
          }
          r += take;
        }
        partial[(size_t)(k * chunks + c)] = acc;
      }
    }
    for (int64_t k = 0; k < K; ++k) {
      double acc = 0.0;
      for (int64_t c = 0; c < chunks; ++c) acc += partial[(size_t)(k * chunks + c)];
      po[k] = (T)acc;
    }
  });
}

}  // namespace gradcore
