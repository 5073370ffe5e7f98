// The fused conv + ReLU's ReLU halves on the CPU (the maths is in conv2d.h; the forward's relu itself is inside the
// convolution kernels' epilogues, cpu/epilogue.h):
//   conv_relu_mask_cpu       the bits !(y <= 0) of the forward's output y, 64 elements per word, written right after
//                            the convolution while y is still in the caches
//   conv_relu_backward_cpu   gm = bit ? gy : 0 (relu_backward(gy, y)) and db = sum of gm over (N, H, W), in one pass
//                            over gy and the bits
// The unfused pair runs the mask (one pass: read gy and y, write gm) and then _core.sum(gm, [0, 2, 3]) (a second
// read of gm); here each group of eight elements of gm is added to the sums while still in registers. db is summed in
// sum_cpu's exact order (reduce.cpp: chunks of kReduceChunk reduced elements, within a chunk each image's plane in
// eight fixed lanes, double accumulators, the chunks' partials added in order), so its bits are the unfused pair's.
// Four channels' stretches run side by side (mask_and_sum): their lane sums are independent chains of adds.
// Measured with y as the mask (1 thread, CPU-time minima, load ~7; ms, one channel at a time -> four): (25, 32, 28, 28)
// 0.144 -> 0.092, (25, 64, 14, 14) 0.070 -> 0.058, (25, 32, 14, 14) 0.039 -> 0.031, (25, 64, 7, 7) 0.021 -> 0.020,
// (256, 32, 28, 28) 4.5 -> 3.9; the mask alone (_core.binary relu_backward) takes 0.082 and the sum alone 0.067 on the
// first shape. Eight channels side by side: 0.107 (too many streams); two: 0.087-0.095, but 4.3 at B=256.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>
#include "conv2d.h"
#include "reduce.h"
#include "cpu/parallel.h"
#include "cpu/simd.h"
#include "cpu/sum_lanes.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__)
#include <immintrin.h>
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

// Mask bits of n <= 64 elements from y: bit k = !(y[k] <= 0), 1 where y[k] > 0 or is NaN (relu_backward passes the
// gradient of a NaN output); the bits from n on are 0.
template <typename T> inline uint64_t mask_bits(const T* y, int64_t n) {
  uint64_t word = 0;
  for (int64_t k = 0; k < n; ++k) word |= (uint64_t)!(y[k] <= T(0)) << k;
  return word;
}

// mask_bits of 64 elements: one compare per vector into a mask register (_CMP_NLE_UQ: not y <= 0, true for NaN).
// GCC leaves the scalar loop unvectorised (a compare, a set and a shift per element).
template <typename T> inline uint64_t mask_bits64(const T* y) {
#if defined(__AVX512F__)
  uint64_t word = 0;
  if constexpr (sizeof(T) == 4) {
    for (int k = 0; k < 4; ++k)
      word |= (uint64_t)_mm512_cmp_ps_mask(_mm512_loadu_ps(y + 16 * k), _mm512_setzero_ps(), _CMP_NLE_UQ) << 16 * k;
  } else {
    for (int k = 0; k < 8; ++k)
      word |= (uint64_t)_mm512_cmp_pd_mask(_mm512_loadu_pd(y + 8 * k), _mm512_setzero_pd(), _CMP_NLE_UQ) << 8 * k;
  }
  return word;
#else
  return mask_bits(y, 64);
#endif
}

// The mask bits of elements first .. first + 7 (all below numel, so every byte read holds written bits): one byte,
// or two bytes' bits shifted when first is not a multiple of 8.
inline unsigned mask_byte(const uint8_t* bits, int64_t first) {
  const uint8_t* b = bits + (first >> 3);
  const int shift = (int)(first & 7);
  return shift == 0 ? b[0] : ((b[0] | (unsigned)b[1] << 8) >> shift) & 0xFFu;
}

// The mask bits of elements first .. first + 15 (all below numel), as mask_byte's but two bytes' worth.
inline unsigned mask_bits16(const uint8_t* bits, int64_t first) {
  const uint8_t* b = bits + (first >> 3);
  const int shift = (int)(first & 7);
  const unsigned two = b[0] | (unsigned)b[1] << 8;
  return shift == 0 ? two : ((two | (unsigned)b[2] << 16) >> shift) & 0xFFFFu;
}

inline bool mask_bit(const uint8_t* bits, int64_t e) { return (bits[e >> 3] >> (e & 7)) & 1u; }

// For CH channels at stride `plane` (gy g, the mask bits from flat element `first` on, result m): m[j] = bit ? g[j] : 0
// for j in [0, take), and acc[c] += the stretch's sum in sum_cpu's order: eight lanes (element j into lane j % 8 for
// the whole groups of eight, the rest into lane 0 in order), combined as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)).
template <typename T, int CH>
inline void mask_and_sum(const T* g, const uint8_t* bits, int64_t first, T* m, int64_t plane, int64_t take,
                         SumAccumulator<T>* acc) {
  using Acc = SumAccumulator<T>;
  using V = FixedVec<T, 8>;
  using A = FixedVec<Acc, 8>;
  using Int = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;  // lanes as wide as T's, for the select
  using I = FixedVec<Int, 8>;
  const I lane_bit{1, 2, 4, 8, 16, 32, 64, 128};
  A lane[CH];
  for (int c = 0; c < CH; ++c) lane[c] = A{};
  const V zero{};
  int64_t j = 0;
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) {  // 16 bits straight into a mask register; the masked load is the select
    for (; j + 16 <= take; j += 16) {
#pragma GCC unroll 4
      for (int c = 0; c < CH; ++c) {
        const __mmask16 k = (__mmask16)mask_bits16(bits, first + c * plane + j);
        const __m512 mv = _mm512_maskz_loadu_ps(k, g + c * plane + j);
        _mm512_storeu_ps(m + c * plane + j, mv);
        const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(mv), 1));
        lane[c] += (A)_mm512_cvtps_pd(_mm512_castps512_ps256(mv));  // elements j .. j + 7, then j + 8 .. j + 15:
        lane[c] += (A)_mm512_cvtps_pd(high);                        // each lane's adds in the 8-wide loop's order
      }
    }
  }
#endif
  for (; j + 8 <= take; j += 8) {
#pragma GCC unroll 4
    for (int c = 0; c < CH; ++c) {
      const V gv = cpu::load_as<V>(g + c * plane + j);
      const I set = (I{} + (Int)mask_byte(bits, first + c * plane + j)) & lane_bit;
      const V mv = set != I{} ? gv : zero;  // relu_backward: +0 where y <= 0, g elsewhere (NaN y too)
      std::memcpy(m + c * plane + j, &mv, sizeof mv);
      lane[c] += widen8(mv);
    }
  }
  for (int c = 0; c < CH; ++c) {
    Acc l[8];
    std::memcpy(l, &lane[c], sizeof l);
    for (int64_t t = j; t < take; ++t) {
      const T mv = mask_bit(bits, first + c * plane + t) ? g[c * plane + t] : T(0);
      m[c * plane + t] = mv;
      l[0] = sum_add(l[0], (Acc)mv);
    }
    acc[c] = sum_add(acc[c], fold_lanes8(l));
  }
}

}  // namespace

void conv_relu_mask_cpu(const Array& y, Array& mask) {
  const int64_t n = y.numel(), whole = n / 64;
  uint64_t* words = reinterpret_cast<uint64_t*>(mask.data_as<int64_t>());  // (ceil(n / 64),)
  dispatch_float(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* py = y.data_as<T>();
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
    for (int64_t i = 0; i < whole; ++i) words[i] = mask_bits64(py + 64 * i);
    if (whole * 64 < n) words[whole] = mask_bits(py + 64 * whole, n - 64 * whole);
  });
}

void conv_relu_backward_cpu(const Array& gy, const Array& mask, Array& gm, Array& db) {
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
    const uint8_t* bits = reinterpret_cast<const uint8_t*>(mask.data_as<int64_t>());  // little-endian words: bit e
    T* pm = gm.data_as<T>();                                                               // is bit e % 8 of byte e / 8
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
          for (; i + kChains <= nc; i += kChains)
            mask_and_sum<T, kChains>(pg + off + i * HW, bits, off + i * HW, pm + off + i * HW, HW, take, acc + i);
          for (; i < nc; ++i) mask_and_sum<T, 1>(pg + off + i * HW, bits, off + i * HW, pm + off + i * HW, HW, take,
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
