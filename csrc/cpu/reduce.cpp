// CPU sum over axes; see reduce.h for the order of summation and the accumulator of each dtype.
#include "reduce.h"
#include <algorithm>
#include <vector>
#include "cpu/parallel.h"

namespace gradcore {

void sum_cpu(const Array& x, Array& out, const ReduceLayout& layout) {
  const int64_t K = layout.kept_numel, R = layout.reduced_numel;
  const int64_t chunks = R == 0 ? 1 : (R + kReduceChunk - 1) / kReduceChunk;
  // The innermost reduced dimension is walked as a strided run, the rest by offset arithmetic.
  const int64_t run = layout.reduced_ndim ? layout.reduced_shape[layout.reduced_ndim - 1] : 1;
  const int64_t run_stride = layout.reduced_ndim ? layout.reduced_stride[layout.reduced_ndim - 1] : 1;
  dispatch_all(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using Acc = SumAccumulator<T>;
    using Out = SumOutput<T>;
    const T* px = x.data_as<T>();
    Out* po = out.data_as<Out>();
    std::vector<Acc> partial((size_t)(K * chunks), Acc(0));
#pragma omp parallel for schedule(static) collapse(2) if (K * R >= cpu::kParallelThreshold)
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t c = 0; c < chunks; ++c) {
        const T* base = px + kept_offset(layout, k);
        const int64_t begin = c * kReduceChunk, end = std::min(R, begin + kReduceChunk);
        Acc acc = 0;
        int64_t r = begin;
        while (r < end) {
          const int64_t in_run = r % run, take = std::min(run - in_run, end - r);
          const T* p = base + reduced_offset(layout, r);
          if (run_stride == 1) {
            // Eight independent partial sums (a fixed interleave) hide the add latency; combined in fixed order.
            Acc lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int64_t j = 0;
            for (; j + 8 <= take; j += 8)
              for (int l = 0; l < 8; ++l) lane[l] = sum_add(lane[l], (Acc)p[j + l]);
            for (; j < take; ++j) lane[0] = sum_add(lane[0], (Acc)p[j]);
            acc = sum_add(acc, sum_add(sum_add(sum_add(lane[0], lane[1]), sum_add(lane[2], lane[3])),
                                       sum_add(sum_add(lane[4], lane[5]), sum_add(lane[6], lane[7]))));
          } else {
            for (int64_t j = 0; j < take; ++j) acc = sum_add(acc, (Acc)p[j * run_stride]);
          }
          r += take;
        }
        partial[(size_t)(k * chunks + c)] = acc;
      }
    }
    for (int64_t k = 0; k < K; ++k) {
      Acc acc = 0;
      for (int64_t c = 0; c < chunks; ++c) acc = sum_add(acc, partial[(size_t)(k * chunks + c)]);
      po[k] = (Out)acc;
    }
  });
}

}  // namespace gradcore
