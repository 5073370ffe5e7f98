// The backward of the fused conv + ReLU's mask (the maths is in conv2d.h; the forward's epilogue is inside the
// convolution kernels, cpu/epilogue.h):
//   conv_relu_backward_cpu gm = relu_backward(gy, y) and db = sum of gm over (N, H, W), in one pass over gy and y
// The unfused pair runs the mask (one pass: read gy and y, write gm) and then _core.sum(gm, [0, 2, 3]) (a second
// read of gm); here each stretch of gm is summed while it is still in registers. db is summed in sum_cpu's exact
// order (reduce.cpp: chunks of kReduceChunk reduced elements, within a chunk each image's plane in eight fixed
// lanes, double accumulators, the chunks' partials added in order), so its bits are the unfused pair's.
#include <algorithm>
#include <vector>
#include "conv2d.h"
#include "reduce.h"
#include "cpu/parallel.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradcore {

void conv_relu_backward_cpu(const Array& gy, const Array& y, Array& gm, Array& db) {
  const int64_t N = gy.dim(0), C = gy.dim(1), HW = gy.dim(2) * gy.dim(3);
  const int64_t R = N * HW, chunks = R == 0 ? 1 : (R + kReduceChunk - 1) / kReduceChunk;
  const bool want_db = db.ndim() == 1 && db.dim(0) == C;
  const bool parallel = C * R >= cpu::kParallelThreshold;
  int threads = 1;
#ifdef _OPENMP
  if (parallel) threads = omp_get_max_threads();
#endif
  // Blocks of channels per task as sum_cpu makes them (the blocking never changes a bit: each channel's
  // accumulator receives the same additions in the same order).
  constexpr int64_t kBlock = 64;
  const int64_t blocks_wanted = (2 * threads + chunks - 1) / chunks;
  const int64_t block = std::clamp<int64_t>((C + blocks_wanted - 1) / blocks_wanted, 1, kBlock);
  const int64_t blocks = (C + block - 1) / block;
  dispatch_float(gy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    using Acc = SumAccumulator<T>;
    const T* pg = gy.data_as<T>();
    const T* py = y.data_as<T>();
    T* pm = gm.data_as<T>();
    std::vector<Acc> partial((size_t)(C * chunks), Acc(0));
#pragma omp parallel for schedule(static) collapse(2) if (parallel)
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t c0 = b * block, nc = std::min(block, C - c0);
        Acc acc[kBlock];
        for (int64_t i = 0; i < nc; ++i) acc[i] = 0;
        const int64_t begin = ch * kReduceChunk, end = std::min(R, begin + kReduceChunk);
        for (int64_t r = begin; r < end;) {
          const int64_t n = r / HW, q = r % HW, take = std::min(HW - q, end - r);
          for (int64_t i = 0; i < nc; ++i) {
            const int64_t off = (n * C + c0 + i) * HW + q;
            const T* __restrict g = pg + off;
            const T* __restrict s = py + off;
            T* __restrict m = pm + off;
            // the mask first, as its own loop (vectorised like binary_cpu's; fused with the sums below it compiled to
            // a branch per element, 7x slower), then the sum over the stretch of gm just written, still in L1
            for (int64_t j = 0; j < take; ++j) m[j] = apply_binary<BinaryOp::relu_backward, T>(g[j], s[j], T(0));
            Acc lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int64_t j = 0;
            for (; j + 8 <= take; j += 8)
              for (int l = 0; l < 8; ++l) lane[l] = sum_add(lane[l], (Acc)m[j + l]);
            for (; j < take; ++j) lane[0] = sum_add(lane[0], (Acc)m[j]);
            acc[i] = sum_add(acc[i], sum_add(sum_add(sum_add(lane[0], lane[1]), sum_add(lane[2], lane[3])),
                                             sum_add(sum_add(lane[4], lane[5]), sum_add(lane[6], lane[7]))));
          }
          r += take;
        }
        for (int64_t i = 0; i < nc; ++i) partial[(size_t)((c0 + i) * chunks + ch)] = acc[i];
      }
    }
    if (!want_db) return;
    T* pd = db.data_as<T>();
    for (int64_t c = 0; c < C; ++c) {
      Acc acc = 0;
      for (int64_t ch = 0; ch < chunks; ++ch) acc = sum_add(acc, partial[(size_t)(c * chunks + ch)]);
      pd[c] = (T)acc;
    }
  });
}

}  // namespace gradcore
