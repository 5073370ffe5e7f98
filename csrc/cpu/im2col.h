// im2col and col2im for the CPU convolutions (conv2d.h has the index maths). im2col never materialises a plain
// column matrix: it writes into the GEMM's packed B layout (gemm.h), one kKc block at a time so the block stays in
// cache, copying row runs for wide outputs and gathering through a per-call tap table for narrow ones. col2im adds
// a column matrix back into an image, tap by tap, in a fixed order.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>
#include "conv2d.h"
#include "cpu/gemm.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gradcore::cpu {

constexpr int64_t kRowRunMinWidth = 16;  // output width from which im2col copies row runs instead of gathering

// Images per GEMM for forward and backward_input: the count (at most ~512 columns, keeping at least 8 tasks) whose
// n * P columns waste the least of their last strip. From the shapes only.
inline int64_t images_per_gemm(int64_t P, int64_t N, int64_t G, int64_t nr) {
  int64_t limit = std::clamp<int64_t>(512 / std::max<int64_t>(P, 1), 1, std::max<int64_t>(N, 1));
  while (limit > 1 && (N + limit - 1) / limit * G < 8) --limit;
  int64_t best = 1;
  double best_waste = 1.0;
  for (int64_t n = 1; n <= limit; ++n) {
    const double waste = 1.0 - (double)(n * P) / (double)round_up(n * P, nr);
    if (waste < best_waste - 0.02) best = n, best_waste = waste;
  }
  return best;
}

// The columns of one output row oh that read inside the image through kernel column kw: ow in [ow_lo, ow_hi),
// reading x column iw0 + ow * sw.
struct RowWindow {
  int64_t iw0 = 0, ow_lo = 0, ow_hi = 0;
  RowWindow() = default;
  RowWindow(const Conv2dParams& p, int64_t kw) {
    const int64_t sw = p.stride_w, Wo = p.out_w;
    iw0 = kw * p.dilation_w - p.pad_left;
    ow_lo = std::min(Wo, iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw);
    ow_hi = std::max(ow_lo, std::min(Wo, p.in_w - iw0 > 0 ? (p.in_w - iw0 + sw - 1) / sw : 0));
  }
};

// windows[kw]: the RowWindow of each kernel column, computed once per call.
inline std::vector<RowWindow> row_windows(const Conv2dParams& p) {
  std::vector<RowWindow> windows;
  for (int64_t kw = 0; kw < p.kernel_w; ++kw) windows.emplace_back(p, kw);
  return windows;
}

// For each kernel tap t = (kh, kw) and output pixel q = (oh, ow): the offset ih * W + iw of the input pixel the tap
// reads, or -1 where that pixel is padding. Built once per call; im2col is then a gather through this table, with
// no per-row bookkeeping (which dominates for small images).
class TapTable {
 public:
  explicit TapTable(const Conv2dParams& p) : pixels_(p.out_pixels()) {
    offsets_.resize((size_t)(p.kernel_h * p.kernel_w * pixels_));
    int32_t* o = offsets_.data();
    for (int64_t kh = 0; kh < p.kernel_h; ++kh)
      for (int64_t kw = 0; kw < p.kernel_w; ++kw)
        for (int64_t oh = 0; oh < p.out_h; ++oh)
          for (int64_t ow = 0; ow < p.out_w; ++ow) {
            const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
            const int64_t iw = ow * p.stride_w - p.pad_left + kw * p.dilation_w;
            *o++ = (ih >= 0 && ih < p.in_h && iw >= 0 && iw < p.in_w) ? (int32_t)(ih * p.in_w + iw) : -1;
          }
  }
  const int32_t* tap(int64_t t) const { return offsets_.data() + t * pixels_; }

 private:
  int64_t pixels_;
  std::vector<int32_t> offsets_;
};

// dst[j * step] = plane[offset[j]] (0 where offset is -1), j in [0, n).
// For float with AVX-512, 16 lanes per masked gather (padding lanes are masked off and read as 0) instead of a
// load, a test and a branch per element: this gather cost as much as the GEMM for the 7x7 and 14x14 outputs.
template <typename T>
inline void gather_taps(const T* plane, const int32_t* offset, int64_t n, T* dst, int64_t step) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512i none = _mm512_setzero_si512();
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 lanes = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
      const __m512i o = _mm512_maskz_loadu_epi32(lanes, offset + j);
      const __mmask16 inside = _mm512_mask_cmpge_epi32_mask(lanes, o, none);
      const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), inside, o, plane, 4);
      if (step == 1) {
        _mm512_mask_storeu_ps(dst + j, lanes, v);
      } else {
        alignas(64) float lane[16];
        _mm512_store_ps(lane, v);
        for (int64_t l = 0, m = std::min<int64_t>(16, n - j); l < m; ++l) dst[(j + l) * step] = lane[l];
      }
    }
    return;
  }
#endif
  for (int64_t j = 0; j < n; ++j) {
    const int32_t o = offset[j];
    dst[j * step] = o >= 0 ? plane[o] : T(0);
  }
}

// dst[j * step] = the input pixel that tap (kh, window) reads for output pixels pixel .. pixel + n - 1 of a plane
// (0 where that is padding), walking output rows: a zero run, a copy (strided when sw > 1), a zero run per row.
// For wide outputs this is cheaper than the tap table's per-element offsets.
template <typename T>
inline void gather_rows(const T* plane, const Conv2dParams& p, int64_t kh, const RowWindow& win, int64_t pixel,
                        int64_t n, T* dst, int64_t step) {
  const int64_t Wo = p.out_w, sw = p.stride_w;
  for (int64_t done = 0; done < n;) {
    const int64_t oh = (pixel + done) / Wo, ow0 = (pixel + done) % Wo, run = std::min(Wo - ow0, n - done);
    const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
    T* d = dst + done * step;
    if (ih < 0 || ih >= p.in_h) {
      for (int64_t j = 0; j < run; ++j) d[j * step] = T(0);
    } else {
      const T* x_row = plane + ih * p.in_w;
      const int64_t lo = std::clamp(win.ow_lo - ow0, (int64_t)0, run), hi = std::clamp(win.ow_hi - ow0, lo, run);
      const int64_t base = win.iw0 + ow0 * sw;  // x column of j = 0; only j in [lo, hi) is read
      for (int64_t j = 0; j < lo; ++j) d[j * step] = T(0);
      for (int64_t j = lo; j < hi; ++j) d[j * step] = x_row[base + j * sw];
      for (int64_t j = hi; j < run; ++j) d[j * step] = T(0);
    }
    done += run;
  }
}

// Rows [k_begin, k_begin + kc) of the im2col of one image and group, as one kKc block of a packed B, at columns
// [c0, c0 + P): B[k - k_begin, c0 + (oh, ow)] = x[ci, ih, iw] for k = (ci, kh, kw) (0 outside the image).
// x_group: (C_in/G, H, W).
// Wide outputs go row by row (each output row of a tap is a zero run, a strided or contiguous copy, a zero run);
// narrow ones, where that per-row bookkeeping would dominate, gather through the tap table.
template <typename T>
void im2col_packed_b(const T* x_group, const Conv2dParams& p, const TapTable& taps, const RowWindow* windows,
                     int64_t k_begin, int64_t kc, int64_t c0, int64_t cols_pad, T* packed) {
  const int64_t taps_per_channel = p.kernel_h * p.kernel_w, P = p.out_pixels();
  const int64_t Wo = p.out_w, sw = p.stride_w;
  for (int64_t k = k_begin; k < k_begin + kc; ++k) {
    const T* plane = x_group + (k / taps_per_channel) * p.in_pixels();
    if (Wo < kRowRunMinWidth) {
      const int32_t* offset = taps.tap(k % taps_per_channel);
      packed_b_row_runs(packed, k - k_begin, c0, P, cols_pad, kc, [&](T* dst, int64_t first, int64_t run) {
        gather_taps(plane, offset + first, run, dst, (int64_t)1);
      });
      continue;
    }
    const int64_t kh = k / p.kernel_w % p.kernel_h;
    const RowWindow& win = windows[k % p.kernel_w];
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
      const bool inside = ih >= 0 && ih < p.in_h;
      const T* x_row = plane + (inside ? ih : 0) * p.in_w;
      packed_b_row_runs(packed, k - k_begin, c0 + oh * Wo, Wo, cols_pad, kc, [&](T* dst, int64_t ow0, int64_t run) {
        const int64_t lo = inside ? std::clamp(win.ow_lo - ow0, (int64_t)0, run) : run;
        const int64_t hi = inside ? std::clamp(win.ow_hi - ow0, lo, run) : run;
        const int64_t base = win.iw0 + ow0 * sw;  // x column of j = 0; only j in [lo, hi) is read
        for (int64_t j = 0; j < lo; ++j) dst[j] = T(0);
        if (sw == 1) {
          for (int64_t j = lo; j < hi; ++j) dst[j] = x_row[base + j];
        } else {
          for (int64_t j = lo; j < hi; ++j) dst[j] = x_row[base + j * sw];
        }
        for (int64_t j = hi; j < run; ++j) dst[j] = T(0);
      });
    }
  }
}

// dst[2 j] += src[j], j in [0, n), for float with AVX-512: 8 values expanded into the even lanes and added under a
// mask (the odd lanes are not touched, so every element gets the one add it gets in the scalar loop: same bits).
// Returns false where it does not apply. The scalar stride-2 scatter was col2im's whole cost for stride-2 layers.
template <typename T> inline bool add_stride2(const T* src, int64_t n, T* dst) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t j = 0; j < n; j += 8) {
      const int64_t m = std::min<int64_t>(8, n - j);
      const __mmask16 even = (__mmask16)(0x5555u & ((1u << (2 * m - 1)) - 1));
      const __m512 v = _mm512_maskz_expandloadu_ps(even, src + j);
      const __m512 d = _mm512_maskz_loadu_ps(even, dst + 2 * j);
      _mm512_mask_storeu_ps(dst + 2 * j, even, _mm512_mask_add_ps(d, even, d, v));
    }
    return true;
  }
#endif
  (void)src, (void)n, (void)dst;
  return false;
}

// dx_group[ci, ih, iw] += dcol[(ci, kh, kw), (oh, ow)] for every in-range (ih, iw); dcol rows have stride ld.
template <typename T> void col2im_add(const T* dcol, int64_t ld, const Conv2dParams& p, T* dx_group) {
  const int64_t H = p.in_h, W = p.in_w, Wo = p.out_w, sw = p.stride_w;
  for (int64_t k = 0; k < p.gemm_k(); ++k) {
    const int64_t ci = k / (p.kernel_h * p.kernel_w), kh = k / p.kernel_w % p.kernel_h, kw = k % p.kernel_w;
    const RowWindow win(p, kw);
    T* plane = dx_group + ci * H * W;
    const T* src = dcol + k * ld;
    for (int64_t oh = 0; oh < p.out_h; ++oh) {
      const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
      if (ih < 0 || ih >= H) continue;
      T* row = plane + ih * W;
      const T* s = src + oh * Wo;
      if (sw == 1) {
        for (int64_t ow = win.ow_lo; ow < win.ow_hi; ++ow) row[win.iw0 + ow] += s[ow];
      } else if (sw == 2 && add_stride2(s + win.ow_lo, win.ow_hi - win.ow_lo, row + win.iw0 + 2 * win.ow_lo)) {
      } else {
        for (int64_t ow = win.ow_lo; ow < win.ow_hi; ++ow) row[win.iw0 + ow * sw] += s[ow];
      }
    }
  }
}

}  // namespace gradcore::cpu
