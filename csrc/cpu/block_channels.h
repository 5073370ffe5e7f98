// Channels innermost: blocks of an image's channel planes copied as [pixel][channel] rows, the layout the weight
// gradient's kernels stream gy (and x) in (conv2d_backward_weight.cpp, conv2d_backward_weight_winograd.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gradcore::cpu {

// dst[q][c] = image[c0 + c][q] for the channels c < width of block b (zero past `channels`, planes of P values),
// q in [0, count).
#if defined(__AVX512F__)
// r[i] = column i of the 16 x 16 matrix whose rows were r[0..15]: 32-bit, 64-bit and two 128-bit interleaves.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  __m512 u[16];  // u[4 b + j], 128-bit lane k: rows 4 b .. 4 b + 3 of column 4 k + j
  for (int b = 0; b < 16; b += 4) {
    const __m512d t0 = _mm512_castps_pd(t[b]), t1 = _mm512_castps_pd(t[b + 1]);
    const __m512d t2 = _mm512_castps_pd(t[b + 2]), t3 = _mm512_castps_pd(t[b + 3]);
    u[b] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    u[b + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    u[b + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    u[b + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  for (int j = 0; j < 4; ++j) {
    const __m512 v_lo = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), v_hi = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
    const __m512 w_lo = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 w_hi = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_f32x4(v_lo, w_lo, 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(v_lo, w_lo, 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(v_hi, w_hi, 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(v_hi, w_hi, 0xdd);
  }
}
#endif

template <typename T>
inline void block_channels(const T* image, int64_t channels, int64_t P, int64_t count, int64_t b, int64_t width, T* dst) {
  const int64_t c0 = b * width, valid = std::clamp<int64_t>(channels - c0, 0, width);
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (width % 8 == 0) {  // 16 x 16 squares transposed in registers: the scalar loop's scattered stores cost 3x more
      for (int64_t h = 0; h < width; h += 16) {
        // a last group of 8 channels (width 40, 56, ...): the square's first 8 columns, stored under a mask
        const __mmask16 columns = width - h >= 16 ? (__mmask16)0xFFFF : (__mmask16)0x00FF;
        for (int64_t q0 = 0; q0 < count; q0 += 16) {
          const int64_t n = std::min<int64_t>(16, count - q0);
          const __mmask16 lanes = (__mmask16)((1u << n) - 1);
          __m512 r[16];
          for (int64_t c = 0; c < 16; ++c)
            r[c] = h + c < valid ? _mm512_maskz_loadu_ps(lanes, image + (c0 + h + c) * P + q0) : _mm512_setzero_ps();
          transpose16(r);
          for (int64_t q = 0; q < n; ++q) _mm512_mask_storeu_ps(dst + (q0 + q) * width + h, columns, r[q]);
        }
      }
      return;
    }
  }
#endif
  for (int64_t c = 0; c < valid; ++c) {
    const T* s = image + (c0 + c) * P;
    for (int64_t q = 0; q < count; ++q) dst[q * width + c] = s[q];
  }
  if (valid < width)
    for (int64_t q = 0; q < count; ++q) std::fill(dst + q * width + valid, dst + (q + 1) * width, T(0));
}

}  // namespace gradcore::cpu
