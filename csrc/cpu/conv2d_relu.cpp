// The backward of the fused conv + ReLU's mask (the maths is in conv2d.h; the forward's epilogue is inside the
// convolution kernels, cpu/epilogue.h):
//   conv_relu_backward_cpu gm = relu_backward(gy, y) and db = sum of gm over (N, H, W), in one pass over gy and y
// The unfused pair runs the mask (one pass: read gy and y, write gm) and then _core.sum(gm, [0, 2, 3]) (a second
// read of gm); here each group of eight elements of gm is added to the sums while still in registers. db is summed in
// sum_cpu's exact order (reduce.cpp: chunks of kReduceChunk reduced elements, within a chunk each image's plane in
// eight fixed lanes, double accumulators, the chunks' partials added in order), so its bits are the unfused pair's.
// Four channels' stretches run side by side (mask_and_sum): their lane sums are independent chains of adds.
// Measured (1 thread, CPU-time minima, load ~7; ms, one channel at a time -> four): (25, 32, 28, 28) 0.144 -> 0.092,
// (25, 64, 14, 14) 0.070 -> 0.058, (25, 32, 14, 14) 0.039 -> 0.031, (25, 64, 7, 7) 0.021 -> 0.020, (256, 32, 28, 28)
// 4.5 -> 3.9; the mask alone (_core.binary relu_backward) takes 0.082 and the sum alone 0.067 on the first shape.
// Eight channels side by side: 0.107 (too many streams); two: 0.087-0.095, but 4.3 at B=256.
// Tried, not kept (issue 19, session 7, Intel Xeon host; branch relu-bitmask, commits 146d63d and 07fcb7f): the
// forward saving y's bits !(y <= 0) (1/32 of its bytes; _core.conv_relu_mask, an AVX-512 compare pass right after the
// convolution) and this pass reading them instead of y (16 elements per step: the bits into a mask register, a masked
// load of gy as the select; the same bits, CPU and CUDA). Seed step, per-call minima of 3 interleaved processes x 30
// steps (5 at B=256), 1 thread CPU time, load 5-7; the masks of dec2 / dec1 / enc2 / enc1 in ms:
//   B=25   backward .200 / .136 / .039 / .074 -> .139 / .121 / .041 / .070 (-0.08), forward pass +.115/.045/.007/.016
//   B=256  backward 4.5 / 3.1 / .76 / 1.5 -> 2.9 / 2.4 / .68 / 1.2 (-2.7), forward pass +2.5 / 1.5 / .28 / .55 (+5.0)
//   2 threads, wall, B=25: backward .134 / .115 / .033 / .048 -> .124 / .110 / .033 / .036, forward pass +0.14
// A net loss at both sizes: y is out of cache by the time the convolution returns (B=256: dec2's 25 MB come back at
// ~10 GB/s), and at B=25 reading y here was never the cost (this pass on y: .20 ms in the step, .18-.20 hot alone).
// Bits written by the kernels' own stores (from the relu_vec compare, no extra read) would gain at most the backward's
// part, ~0.8% of the B=25 step and ~2% at B=256, and need a layout whose words no two tasks share, in the GEMM,
// Winograd (both output transforms: 4-column tiles), few-channel and stride-decomposed stores. Also tried: this pass
// on y, 16 elements per step (the compare into a mask register): no change in the step (B=25 .26-.30 either way).
// At B=256 (issue 19, session 8; 1 thread, CPU-time minima in the step, load 5-7) the masks of dec2 / dec1 / enc1 take
// 3.5-4.2 / 2.5-2.9 / 1.25-1.38 ms: dec2's reads 51.4 MB (gy and y) and writes 25.7 MB in place, while one core
// reads a cold 25.7 MB in 1.63-1.79 ms (numpy's max or sum over it, ~15 GB/s): this pass runs at the memory's pace
// already, and only fewer passes over these tensors would shorten it (the mask applied where gy is made, e.g. dec3's
// input gradient, cpu/conv2d_few_channels.cpp, with y = dec3's saved input; that is a fusion across two autograd
// nodes).
#include <algorithm>
#include <cstring>
#include <vector>
#include "conv2d.h"
#include "reduce.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"
#include "cpu/sum_lanes.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace gradcore {

namespace {

using cpu::FixedVec;
using cpu::fold_lanes8;
using cpu::widen8;

// Channels whose stretches one call masks and sums side by side. A stretch's sum is one chain of dependent adds per
// lane (its order is sum_cpu's, fixed), so one channel at a time ran at the add latency (~3 cycles per 8 elements,
// as slow as the mask pass itself); four independent chains keep the adder busy. The order within each channel's
// lanes is unchanged: the same bits.
constexpr int kChains = 4;

// For CH channels at stride `plane` (gy g, saved output y, result m): m[j] = relu_backward(g[j], y[j]) for j in
// [0, take), and acc[c] += the stretch's sum in sum_cpu's order: eight lanes (element j into lane j % 8 for the
// whole groups of eight, the rest into lane 0 in order), combined as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)).
template <typename T, int CH>
inline void mask_and_sum(const T* g, const T* y, T* m, int64_t plane, int64_t take, SumAccumulator<T>* acc) {
  using Acc = SumAccumulator<T>;
  using V = FixedVec<T, 8>;
  using A = FixedVec<Acc, 8>;
  A lane[CH];
  for (int c = 0; c < CH; ++c) lane[c] = A{};
  const V zero{};
  int64_t j = 0;
  for (; j + 8 <= take; j += 8) {
#pragma GCC unroll 4
    for (int c = 0; c < CH; ++c) {
      const V gv = cpu::load_as<V>(g + c * plane + j), yv = cpu::load_as<V>(y + c * plane + j);
      const V mv = yv <= zero ? zero : gv;  // apply_binary's relu_backward: 0 where y <= 0, g elsewhere (NaN y too)
      std::memcpy(m + c * plane + j, &mv, sizeof mv);
      lane[c] += widen8(mv);
    }
  }
  for (int c = 0; c < CH; ++c) {
    Acc l[8];
    std::memcpy(l, &lane[c], sizeof l);
    for (int64_t t = j; t < take; ++t) {
      const T mv = apply_binary<BinaryOp::relu_backward, T>(g[c * plane + t], y[c * plane + t], T(0));
      m[c * plane + t] = mv;
      l[0] = sum_add(l[0], (Acc)mv);
    }
    acc[c] = sum_add(acc[c], fold_lanes8(l));
  }
}

}  // namespace

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
  const cpu::KeptBlocks kept = cpu::kept_blocks(C, chunks, threads, kBlock);
  const int64_t block = kept.block, blocks = kept.count;
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
          const int64_t off = (n * C + c0) * HW + q;
          int64_t i = 0;
          for (; i + kChains <= nc; i += kChains) mask_and_sum<T, kChains>(pg + off + i * HW, py + off + i * HW,
                                                                             pm + off + i * HW, HW, take, acc + i);
          for (; i < nc; ++i) mask_and_sum<T, 1>(pg + off + i * HW, py + off + i * HW, pm + off + i * HW, HW, take,
                                                 acc + i);
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
