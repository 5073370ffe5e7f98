// conv2d's input gradient (= conv_transpose2d's forward) as a direct, stride-decomposed convolution: no column
// matrix, no col2im scatter-add, no packed copy of the big operand.
//
// The maths (conv2d.h's notation; gy is the (N, C_out, Ho, Wo) operand, gx the (N, C_in, H, W) result):
//   gx[n, ci, ih, iw] = sum_{co, kh, kw} w[co, ci, kh, kw] gy[n, co, (ih + pad_top - kh d_h) / s_h, (iw + ...) / s_w]
// over the taps where both divisions are exact and land inside gy. Exactness depends on ih only through
// a = ih mod s_h, so the output rows split into s_h phases (and the columns into s_w): phase (a_h, a_w) holds the
// pixels ih = a_h + s_h j, iw = a_w + s_w l, and on them the sum is an ordinary stride-1 correlation of gy with the
// sub-kernel of taps kh = a_h + pad_top (mod s_h) (likewise kw), each read at the fixed offset
//   gy row j + off_h,  off_h = (a_h + pad_top - kh d_h) / s_h     (gy column l + off_w likewise)
// For stride 2 and a 3x3 kernel the four phases have 2x2, 2x1, 1x2 and 1x1 taps: the 9 taps are each used once per
// output pixel, so the work is the GEMM path's, without its K x P column matrix and the col2im pass over it (which
// cost more than the GEMM for 7x7 inputs). Any stride, dilation and padding decomposes; a phase with no taps is bias.
//
// The kernel, per task (image, group, output-row phase a_h): gy's channels of the group are copied into
// zero-bordered planes, so every tap of every phase reads inside them (the border stands for reads past gy's edge).
// Each column phase is then a product of tiles of up to kMr phase pixels (rows) by two vectors of input channels ci
// (columns), over the reduction k = (co, tap): the pixels are broadcast from gy where they lie (a pixel's tap is at
// a fixed offset from the pixel) and the weights come from a small packed copy [k][ci], so nothing of the size of
// the data is packed. The tiles come out pixel-major; 16x16 register transposes make them channel-major, and each
// gx row is then written once, whole, its column phases interleaved (AVX-512 permutes for stride 2).
//
// Order of summation: gx[.., ci, ih, iw] = bias[ci] + the products over k = (co, kh, kw) in increasing order, one
// multiply-add at a time in one register lane; fixed by the shapes, whatever the threads (tasks own whole rows of gx).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>
#include "conv2d.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"
#include "cpu/simd.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gradcore::cpu {

// One dimension of the decomposition: for each phase a in [0, s), how many output positions it has and the taps
// (kernel index, offset into gy) that reach it.
struct PhaseAxis {
  struct Tap {
    int64_t k, offset;
  };
  std::vector<int64_t> count;            // [a]: positions a, a + s, ... below `size`
  std::vector<std::vector<Tap>> taps;    // [a]: kernel indices with an exact division that reach gy, in order
  int64_t border_before = 0, extent = 0;  // gy is read at [-border_before, extent) along this axis

  PhaseAxis(int64_t size, int64_t gy_size, int64_t stride, int64_t pad_before, int64_t kernel, int64_t dilation)
      : count(stride), taps(stride) {
    extent = gy_size;
    for (int64_t a = 0; a < stride; ++a) {
      count[a] = a < size ? (size - a + stride - 1) / stride : 0;
      for (int64_t k = 0; k < kernel; ++k) {
        const int64_t shifted = a + pad_before - k * dilation;
        if (shifted % stride != 0) continue;
        const int64_t offset = shifted / stride;  // exact
        // a tap that reads outside gy for every position of the phase adds nothing (the GEMM path's col2im skips
        // it too); leaving it out also bounds the zero border by the image size, whatever the padding
        if (offset >= gy_size || count[a] - 1 + offset < 0) continue;
        taps[a].push_back({k, offset});
        border_before = std::max(border_before, -offset);
        extent = std::max(extent, count[a] - 1 + offset + 1);
      }
    }
  }
  int64_t padded() const { return border_before + extent; }
};

// Where the stride-decomposed kernel runs instead of GEMM + col2im: enough input channels per group to fill at least
// half of its two vector columns (below that, as for the seed's 32 -> 1 and 1 -> 32 layers, the GEMM path's rows are
// the channels' taps and fill its tile better), a reduction long enough to outweigh storing each tile, and a stride
// above 1 (stride-1 layers were not measured against the GEMM path, whose col2im is contiguous there).
template <typename T> inline bool use_stride_decomposed(const Conv2dParams& p) {
  return p.in_per_group() >= Simd<T>::lanes && (p.stride_h > 1 || p.stride_w > 1) &&
         p.out_per_group() * p.kernel_h * p.kernel_w >= 16;
}

// A tile of ROWS phase pixels x nr channels: out[i][0..nr) = bias + sum_k gy_pad[koff[k] + pix[i]] * wk[k][0..nr),
// or relu of that (the activation epilogue, conv2d_epilogue.h).
template <typename T, int ROWS>
inline void stride_decomposed_tile(int64_t K, const int64_t* koff, const T* gy_pad, const int64_t* pix, const T* wk,
                                   const T* bias, T* out, bool relu) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes, NR = Simd<T>::nr;
  V acc0[ROWS], acc1[ROWS];
  const V bias0 = load_vec(bias), bias1 = load_vec(bias + L);
  for (int i = 0; i < ROWS; ++i) acc0[i] = bias0, acc1[i] = bias1;
  int64_t p[ROWS];
  for (int i = 0; i < ROWS; ++i) p[i] = pix[i];
  for (int64_t k = 0; k < K; ++k) {
    const V b0 = load_vec(wk + k * NR), b1 = load_vec(wk + k * NR + L);
    const T* base = gy_pad + koff[k];
    for (int i = 0; i < ROWS; ++i) {
      const V ai = broadcast<T>(base[p[i]]);
      acc0[i] += ai * b0;
      acc1[i] += ai * b1;
    }
  }
  for (int i = 0; i < ROWS; ++i) {
    store_vec(out + i * NR, relu ? relu_vec(acc0[i]) : acc0[i]);
    store_vec(out + i * NR + L, relu ? relu_vec(acc1[i]) : acc1[i]);
  }
}

// Pixels per tile for a phase of Q pixels: from kMr down to kMr - 3, the count wasting the fewest rows in the last
// tile (49 pixels, a 7x7 phase, go as 7 tiles of 7 rather than 7 tiles of 8 with 7 rows computed for nothing).
inline int tile_rows(int64_t Q) {
  int best = kMr;
  for (int r = kMr; r >= kMr - 3; --r)
    if (round_up(Q, r) - Q < round_up(Q, best) - Q) best = r;
  return best;
}

template <typename T>
inline void stride_decomposed_tile_rows(int rows, int64_t K, const int64_t* koff, const T* gy_pad, const int64_t* pix,
                                        const T* wk, const T* bias, T* out, bool relu) {
  switch (rows) {
    case kMr: return stride_decomposed_tile<T, kMr>(K, koff, gy_pad, pix, wk, bias, out, relu);
    case kMr - 1: return stride_decomposed_tile<T, kMr - 1>(K, koff, gy_pad, pix, wk, bias, out, relu);
    case kMr - 2: return stride_decomposed_tile<T, kMr - 2>(K, koff, gy_pad, pix, wk, bias, out, relu);
    default: return stride_decomposed_tile<T, kMr - 3>(K, koff, gy_pad, pix, wk, bias, out, relu);
  }
}

#if defined(__AVX512F__)
// r[i] (row i of a 16x16 block) becomes column i: unpack pairs, then 2x2 blocks within 128-bit lanes, then the four
// 128-bit lanes across rows.
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
    t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xDD);
    t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
    t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xDD);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xDD);
    r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xDD);
  }
}
#endif

// stage[c * ld + q] = tiles[q * nr + c] for the nr channels c of a block and pixels q in [0, q_pad), q_pad a multiple
// of 16 (pixel-major tiles to channel-major rows). Moving data only: no arithmetic, so no effect on any bit.
// Transposing 16x16 blocks in registers is what makes this cheap: the element-by-element copy cost a fifth of the
// whole layer (dec1, dec2).
template <typename T> inline void channel_major(const T* tiles, int64_t q_pad, T* stage, int64_t ld) {
  constexpr int64_t NR = Simd<T>::nr;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t h = 0; h < NR; h += 16)
      for (int64_t q0 = 0; q0 < q_pad; q0 += 16) {
        __m512 r[16];
        for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(tiles + (q0 + i) * NR + h);
        transpose16x16(r);
        for (int c = 0; c < 16; ++c) _mm512_storeu_ps(stage + (h + c) * ld + q0, r[c]);
      }
    return;
  }
#endif
  for (int64_t q = 0; q < q_pad; ++q)
    for (int64_t c = 0; c < NR; ++c) stage[c * ld + q] = tiles[q * NR + c];
}

// row[2 l] = s0[l] (l < J0), row[2 l + 1] = s1[l] (l < J1), with J0 - J1 in {0, 1}: the two column phases of a
// stride-2 row. For float with AVX-512, 16 pairs per two permutes and masked loads and stores: the scalar loop cost
// ~25 cycles per 14-pixel row, 15% of the layer (dec1).
template <typename T> inline void interleave_pair(const T* s0, int64_t J0, const T* s1, int64_t J1, T* row) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    auto mask = [](int64_t n) {
      return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
    };
    for (int64_t l0 = 0; l0 < J0; l0 += 16) {
      const __m512 a = _mm512_maskz_loadu_ps(mask(J0 - l0), s0 + l0);
      const __m512 b = _mm512_maskz_loadu_ps(mask(J1 - l0), s1 + l0);
      const int64_t out = J0 + J1 - 2 * l0;  // row elements from 2 l0 on
      _mm512_mask_storeu_ps(row + 2 * l0, mask(out), _mm512_permutex2var_ps(a, lo, b));
      _mm512_mask_storeu_ps(row + 2 * l0 + 16, mask(out - 16), _mm512_permutex2var_ps(a, hi, b));
    }
    return;
  }
#endif
  for (int64_t l = 0; l < J1; ++l) {
    row[2 * l] = s0[l];
    row[2 * l + 1] = s1[l];
  }
  if (J0 > J1) row[2 * J1] = s0[J1];
}

// gx (N, C_in, H, W) = bias + conv2d's input gradient of gy (N, C_out, Ho, Wo) with w (C_out, C_in/G, kH, kW).
// pb: C_in values or null. Every element of gx is written.
template <typename T>
void backward_input_stride_decomposed(const T* pg, const T* pw, const T* pb, T* px, const Conv2dParams& p,
                                      bool parallel) {
  constexpr int64_t NR = Simd<T>::nr;
  const int64_t G = p.groups, M = p.out_per_group(), Cg = p.in_per_group(), N = p.batch;
  const int64_t H = p.in_h, W = p.in_w, Ho = p.out_h, Wo = p.out_w, sh = p.stride_h, sw = p.stride_w;
  const int64_t taps_hw = p.kernel_h * p.kernel_w, blocks = (Cg + NR - 1) / NR;
  const PhaseAxis rows(H, Ho, sh, p.pad_top, p.kernel_h, p.dilation_h);
  const PhaseAxis cols(W, Wo, sw, p.pad_left, p.kernel_w, p.dilation_w);
  const int64_t Eh = rows.padded(), Ew = cols.padded(), plane = Eh * Ew;

  // Per column-phase-pair (a_h, a_w): the reduction k = (co, tap) and each step's offset in the padded planes;
  // and the weights packed [g][block][k][NR] (channels past Cg zero). Offsets are from the pixel's own position.
  struct Phase {
    int64_t K = 0;
    std::vector<int64_t> koff;
    int64_t weights = 0;  // offset of this phase's packed weights (g = 0, block 0)
  };
  std::vector<Phase> phases(sh * sw);
  int64_t packed_size = 0;
  for (int64_t ah = 0; ah < sh; ++ah)
    for (int64_t aw = 0; aw < sw; ++aw) {
      Phase& ph = phases[ah * sw + aw];
      const auto& th = rows.taps[ah];
      const auto& tw = cols.taps[aw];
      ph.K = M * (int64_t)(th.size() * tw.size());
      ph.koff.reserve(ph.K);
      for (int64_t co = 0; co < M; ++co)
        for (const auto& r : th)
          for (const auto& c : tw) ph.koff.push_back(co * plane + r.offset * Ew + c.offset);
      ph.weights = packed_size;
      packed_size += G * blocks * ph.K * NR;
    }
  AlignedBuffer<T> packed(packed_size + blocks * NR);
  T* zero_bias = packed.ptr + packed_size;  // NR * blocks zeros, when there is no bias
  std::fill(zero_bias, zero_bias + blocks * NR, T(0));
  for (int64_t ah = 0; ah < sh; ++ah)
    for (int64_t aw = 0; aw < sw; ++aw) {
      const Phase& ph = phases[ah * sw + aw];
      for (int64_t g = 0; g < G; ++g)
        for (int64_t b = 0; b < blocks; ++b) {
          T* dst = packed.ptr + ph.weights + (g * blocks + b) * ph.K * NR;
          for (int64_t co = 0; co < M; ++co)
            for (const auto& r : rows.taps[ah])
              for (const auto& c : cols.taps[aw]) {
                const T* src = pw + ((g * M + co) * Cg) * taps_hw + r.k * p.kernel_w + c.k;
                for (int64_t j = 0; j < NR; ++j) {
                  const int64_t ci = b * NR + j;
                  dst[j] = ci < Cg ? src[ci * taps_hw] : T(0);
                }
                dst += NR;
              }
        }
    }
  std::vector<T> bias_padded;  // per group and block, NR values
  if (pb) {
    bias_padded.assign(G * blocks * NR, T(0));
    for (int64_t g = 0; g < G; ++g)
      for (int64_t ci = 0; ci < Cg; ++ci) bias_padded[g * blocks * NR + ci] = pb[g * Cg + ci];
  }

  const int64_t tasks = N * G * sh;
  TaskShares shares(tasks, parallel);  // (parallel.h: outputs stay with one core)
#pragma omp parallel if (shares.parallel())
  shares.run([&](int64_t t) {
    const int64_t n = t / (G * sh), g = t / sh % G, ah = t % sh, Jh = rows.count[ah];
    if (Jh == 0) return;
    // gy's channels of this group, zero-bordered: (M, Eh, Ew)
    T* gy_pad = scratch_col.get<T>(M * plane);
    {
      GRADCORE_PHASE("conv2d_backward_input/pad");
      std::fill(gy_pad, gy_pad + M * plane, T(0));
      const T* src = pg + (n * p.out_channels + g * M) * Ho * Wo;
      for (int64_t co = 0; co < M; ++co)
        for (int64_t r = 0; r < Ho; ++r)
          std::memcpy(gy_pad + co * plane + (r + rows.border_before) * Ew + cols.border_before,
                      src + (co * Ho + r) * Wo, sizeof(T) * Wo);
    }
    // results of each column phase, pixel-major: [aw][block][q][NR], q = j * Jw + l, room for a padded last tile
    int64_t q_max = 0;
    for (int64_t aw = 0; aw < sw; ++aw) q_max = std::max(q_max, round_up(Jh * cols.count[aw], kMr));
    q_max = round_up(q_max, 16);  // channel_major's blocks
    T* tiles = scratch_packed_b.get<T>(2 * sw * blocks * q_max * NR);
    T* stage = tiles + sw * blocks * q_max * NR;  // [aw][ci][q]: the tiles channel-major
    {
      GRADCORE_PHASE("conv2d_backward_input/direct");
      std::vector<int64_t> pix(q_max);
      for (int64_t aw = 0; aw < sw; ++aw) {
        const Phase& ph = phases[ah * sw + aw];
        const int64_t Jw = cols.count[aw], Q = Jh * Jw;
        if (Q == 0) continue;
        const int rows_per_tile = tile_rows(Q);
        // pixel (j, l) sits at gy_pad[j + border, l + border]; a padded last tile repeats the last pixel (its extra
        // rows are never copied to gx)
        for (int64_t q = 0; q < round_up(Q, rows_per_tile); ++q) {
          const int64_t qq = std::min(q, Q - 1);
          pix[q] = (qq / Jw + rows.border_before) * Ew + qq % Jw + cols.border_before;
        }
        for (int64_t b = 0; b < blocks; ++b) {
          const T* wk = packed.ptr + ph.weights + (g * blocks + b) * ph.K * NR;
          const T* bias = pb ? bias_padded.data() + (g * blocks + b) * NR : zero_bias;
          T* out = tiles + (aw * blocks + b) * q_max * NR;
          for (int64_t q0 = 0; q0 < Q; q0 += rows_per_tile)
            stride_decomposed_tile_rows(rows_per_tile, ph.K, ph.koff.data(), gy_pad, pix.data() + q0, wk, bias,
                                        out + q0 * NR, p.activation == Activation::relu);
        }
      }
    }
    GRADCORE_PHASE("conv2d_backward_input/scatter");
    for (int64_t aw = 0; aw < sw; ++aw)
      for (int64_t b = 0; b < blocks; ++b)
        channel_major(tiles + (aw * blocks + b) * q_max * NR, round_up(Jh * cols.count[aw], 16),
                      stage + (aw * blocks + b) * NR * q_max, q_max);
    // gx rows ah, ah + sh, ...: column phase aw fills columns aw, aw + sw, ...
    const bool pairs = sw == 2 && cols.count[0] - cols.count[1] <= 1;  // cols.count[0] >= cols.count[1] always
    for (int64_t ci = 0; ci < Cg; ++ci) {
      T* gx_plane = px + (n * p.in_channels + g * Cg + ci) * H * W;
      for (int64_t j = 0; j < Jh; ++j) {
        T* row = gx_plane + (ah + sh * j) * W;
        if (pairs) {
          const int64_t J0 = cols.count[0], J1 = cols.count[1];
          const T* s0 = stage + ci * q_max + j * J0;
          interleave_pair(s0, J0, stage + (blocks * NR + ci) * q_max + j * J1, J1, row);
          continue;
        }
        for (int64_t aw = 0; aw < sw; ++aw) {
          const int64_t Jw = cols.count[aw];
          const T* src = stage + (aw * blocks * NR + ci) * q_max + j * Jw;
          for (int64_t l = 0; l < Jw; ++l) row[aw + sw * l] = src[l];
        }
      }
    }
  });
}

}  // namespace gradcore::cpu
