// The pieces of sum_cpu's fixed summation order that other kernels reuse to produce the same bits (conv_relu's
// bias gradient): eight lanes per stretch (element j into lane j % 8 for the whole groups of eight, the rest into
// lane 0 in order), combined as ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), and the blocks of kept elements per task.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include "reduce.h"
#include "cpu/simd.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gradcore::cpu {

// Eight lanes widened to the double accumulator, exactly: one AVX-512 conversion for float (GCC splits
// __builtin_convertvector's into two halves and an insert: 0.109 -> 0.096 ms on a (25, 32, 28, 28) mask + sum).
inline FixedVec<double, 8> widen8(FixedVec<double, 8> v) { return v; }
inline FixedVec<double, 8> widen8(FixedVec<float, 8> v) {
#if defined(__AVX512F__)
  __m256 h;
  std::memcpy(&h, &v, sizeof h);
  const __m512d d = _mm512_cvtps_pd(h);
  FixedVec<double, 8> out;
  std::memcpy(&out, &d, sizeof out);
  return out;
#else
  return __builtin_convertvector(v, FixedVec<double, 8>);
#endif
}

// The eight lanes of one stretch combined in the fixed tree order.
template <typename Acc> inline Acc fold_lanes8(const Acc* l) {
  return sum_add(sum_add(sum_add(l[0], l[1]), sum_add(l[2], l[3])), sum_add(sum_add(l[4], l[5]), sum_add(l[6], l[7])));
}

// Blocks of kept elements (channels) per task: about two tasks per thread with the reduced range's chunks, at most
// max_block kept elements each. The blocking never changes a bit: each kept element's accumulator receives the same
// additions in the same order whatever block it lands in.
struct KeptBlocks {
  int64_t block, count;
};
inline KeptBlocks kept_blocks(int64_t kept, int64_t chunks, int threads, int64_t max_block) {
  const int64_t wanted = (2 * threads + chunks - 1) / chunks;
  const int64_t block = std::clamp<int64_t>((kept + wanted - 1) / wanted, 1, max_block);
  return {block, (kept + block - 1) / block};
}

}  // namespace gradcore::cpu
