// im2col and col2im for the CPU convolutions (conv2d.h has the index maths). The forward's im2col never materialises
// a plain column matrix: it writes into the GEMM's packed B layout (gemm.h), one kKc block at a time so the block
// stays in cache, from stride phase planes (PhaseLayout) with precomputed masked loads and permutes (PixelChunk).
// The weight gradient gathers through a per-call tap table (TapTable, gather_taps) or by row runs (gather_rows).
// col2im adds a column matrix back into an image, tap by tap, in a fixed order.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
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

// Phase planes ("space to depth"), from which im2col is a copy of contiguous runs. For stride (s_h, s_w) the
// zero-padded input plane splits into s_h x s_w phase planes, phase (a, b) holding padded rows a, a + s_h, ... and
// columns b, b + s_w, ... Tap (kh, kw) of output pixel (oh, ow) reads padded row oh s_h + kh d_h = (oh + q_h) s_h + a
// with a = kh d_h mod s_h, q_h = kh d_h div s_h: row oh + q_h of phase a (columns likewise). So each im2col row is,
// per output row, W_out consecutive values of one phase plane: the padding and the stride are paid once per input
// pixel when the planes are built, not once per tap in the gather (which cost as much as the GEMM for the seed
// autoencoder's stride-2 layers). A stride-1 layer has one phase: the padded plane.
struct PhaseLayout {
  int64_t sh = 1, sw = 1;
  int64_t rows = 0, cols = 0;  // of each phase plane: H_out + max q_h, W_out + max q_w
  int64_t q_h_max = 0;
  std::vector<uint8_t> used_h, used_w;  // phases some tap reads (a 1x1 stride-2 kernel reads one of four)
  explicit PhaseLayout(const Conv2dParams& p)
      : sh(p.stride_h), sw(p.stride_w), used_h((size_t)p.stride_h), used_w((size_t)p.stride_w) {
    q_h_max = (p.kernel_h - 1) * p.dilation_h / sh;
    rows = p.out_h + q_h_max;
    cols = p.out_w + (p.kernel_w - 1) * p.dilation_w / sw;
    for (int64_t kh = 0; kh < p.kernel_h; ++kh) used_h[(size_t)(kh * p.dilation_h % sh)] = 1;
    for (int64_t kw = 0; kw < p.kernel_w; ++kw) used_w[(size_t)(kw * p.dilation_w % sw)] = 1;
  }
  int64_t phases() const { return sh * sw; }
};

#if defined(__AVX512F__)
// Lanes [lo, hi) of a 16-lane mask (empty when hi <= lo).
inline __mmask16 lane_range(int64_t lo, int64_t hi) {
  lo = std::clamp<int64_t>(lo, 0, 16), hi = std::clamp<int64_t>(hi, lo, 16);
  return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}
#endif

// How one row of a phase plane is read from a row of x: d[j] = x_row[first + j s] for j in [lo, hi), 0 for the other
// j in [0, cols). For float with AVX-512 and s <= 2, in chunks of 16 columns, each two masked loads of the 32 x
// values it spans and one permute (precomputed here once per call: the masks and indices are the same for every row),
// instead of an element loop: building the planes then costs a few instructions per row.
struct PlaneRowReader {
  int64_t first = 0, s = 1, lo = 0, hi = 0, cols = 0;
#if defined(__AVX512F__)
  struct Chunk {
    int64_t src = 0, dst = 0;  // x_row + src is source lane 0; d + dst is column lane 0
    __mmask16 load_low = 0, load_high = 0, valid = 0, store = 0;
    alignas(64) int32_t index[16] = {};
  };
  std::vector<Chunk> chunks;
#endif
  PlaneRowReader(int64_t first_, int64_t s_, int64_t lo_, int64_t hi_, int64_t cols_)
      : first(first_), s(s_), lo(lo_), hi(hi_), cols(cols_) {
#if defined(__AVX512F__)
    if (s > 2) return;
    for (int64_t j0 = 0; j0 < cols; j0 += 16) {
      Chunk c;
      c.dst = j0;
      c.store = lane_range(0, cols - j0);
      c.valid = lane_range(lo - j0, hi - j0);
      const int64_t a = std::max(lo, j0), b = std::min(hi, j0 + 16);  // the columns read
      c.src = first + (a < b ? a : j0) * s;
      const int64_t span = a < b ? (b - 1 - a) * s + 1 : 0;
      c.load_low = lane_range(0, span), c.load_high = lane_range(0, span - 16);
      for (int64_t l = 0; l < 16; ++l) c.index[l] = (int32_t)std::clamp<int64_t>((j0 + l - a) * s, 0, 31);
      chunks.push_back(c);
    }
#endif
  }
  // Rows i in [0, count): d + i d_step from x_row + i x_step. The chunk loop is outside the row loop, so each
  // chunk's masks and indices stay in registers.
  template <typename T> void read_rows(const T* x_row, int64_t x_step, T* d, int64_t d_step, int64_t count) const {
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      if (s <= 2) {
        for (const Chunk& c : chunks) {
          const __m512i index = _mm512_load_si512(c.index);
          const __mmask16 load_low = c.load_low, load_high = c.load_high, valid = c.valid, store = c.store;
          const float* x = x_row + c.src;
          float* o = d + c.dst;
          for (int64_t i = 0; i < count; ++i, x += x_step, o += d_step) {
            const __m512 low = _mm512_maskz_loadu_ps(load_low, x);
            const __m512 high = _mm512_maskz_loadu_ps(load_high, x + 16);
            _mm512_mask_storeu_ps(o, store, _mm512_maskz_permutex2var_ps(valid, low, index, high));
          }
        }
        return;
      }
    }
#endif
    for (int64_t i = 0; i < count; ++i) {
      const T* x = x_row + i * x_step;
      T* o = d + i * d_step;
      std::fill(o, o + lo, T(0));
      for (int64_t j = lo; j < hi; ++j) o[j] = x[first + j * s];
      std::fill(o + hi, o + cols, T(0));
    }
  }
};

// The readers of the column phases b in [0, s_w) (null for phases no tap reads): built once per call.
inline std::vector<std::unique_ptr<PlaneRowReader>> plane_row_readers(const Conv2dParams& p, const PhaseLayout& L) {
  std::vector<std::unique_ptr<PlaneRowReader>> readers((size_t)L.sw);
  for (int64_t b = 0; b < L.sw; ++b) {
    if (!L.used_w[(size_t)b]) continue;
    // phase b's column j reads x column j s_w + b - pad_left: inside the image for j in [lo, hi)
    const int64_t first = b - p.pad_left;
    const int64_t lo = std::min(L.cols, first >= 0 ? (int64_t)0 : (-first + L.sw - 1) / L.sw);
    const int64_t hi = std::clamp(p.in_w - first > 0 ? (p.in_w - first + L.sw - 1) / L.sw : (int64_t)0, lo, L.cols);
    readers[(size_t)b] = std::make_unique<PlaneRowReader>(first, L.sw, lo, hi, L.cols);
  }
  return readers;
}

// Phase planes of channels [c_lo, c_hi) of one image (x_group: (C_in/G, H, W)) into planes (c_hi - c_lo, s_h, s_w,
// rows, cols), writing plane rows [r_lo, r_hi) only (the rest are never read). Phases no tap reads are skipped.
template <typename T>
void build_phase_planes(const T* x_group, const Conv2dParams& p, const PhaseLayout& L,
                        const std::vector<std::unique_ptr<PlaneRowReader>>& readers, int64_t c_lo, int64_t c_hi,
                        int64_t r_lo, int64_t r_hi, T* planes) {
  const int64_t H = p.in_h, W = p.in_w, plane = L.rows * L.cols;
  for (int64_t a = 0; a < L.sh; ++a) {
    if (!L.used_h[(size_t)a]) continue;
    // plane row r reads x row r s_h + a - pad_top: inside the image for r in [in_lo, in_hi)
    const int64_t first = a - p.pad_top;
    const int64_t in_lo = std::clamp(first >= 0 ? (int64_t)0 : (-first + L.sh - 1) / L.sh, r_lo, r_hi);
    const int64_t in_hi = std::clamp(H - first > 0 ? (H - first + L.sh - 1) / L.sh : (int64_t)0, in_lo, r_hi);
    for (int64_t b = 0; b < L.sw; ++b) {
      const PlaneRowReader* reader = readers[(size_t)b].get();
      if (!reader) continue;
      for (int64_t c = c_lo; c < c_hi; ++c) {
        T* d = planes + (((c - c_lo) * L.sh + a) * L.sw + b) * plane;
        std::fill(d + r_lo * L.cols, d + in_lo * L.cols, T(0));
        reader->read_rows(x_group + c * H * W + (in_lo * L.sh + first) * W, L.sh * W, d + in_lo * L.cols, L.cols,
                          in_hi - in_lo);
        std::fill(d + in_hi * L.cols, d + r_hi * L.cols, T(0));
      }
    }
  }
}

// Where the output pixels [q0, q0 + n) of one image sit in its phase planes and in a packed B, worked out once per
// image and task and then used for every row of B: pixel q0 + j reads plane offset oh cols + ow (relative
// to the tap's plane position) and goes to packed column c0 + j. The pixels are cut into chunks that stay inside one
// half strip (16 columns) of the packed B; for float with AVX-512 a chunk is up to 16 pixels whose sources lie within
// 32 consecutive plane values (two loads and one permute per chunk and row of B, whatever the row boundaries inside
// it), otherwise a run contiguous in the plane (copied element by element).
struct PixelChunk {  // (no initialisers: a task fills thousands of them)
  int32_t src;           // plane offset of the chunk's first source value
  int32_t strip, lane;   // packed column strip * nr + lane
  int32_t count;         // columns
#if defined(__AVX512F__)
  __mmask16 load_low, load_high;  // the source values of the 32 that are read
  alignas(64) int32_t index[16];  // lane l takes source value src + index[l]
#endif
};

// Returns the number of chunks written to chunks[0 ..), which only grows (resizing it down and up again would
// zero-fill each chunk on every call).
template <typename T>
int64_t pixel_chunks(const PhaseLayout& L, int64_t Wo, int64_t q0, int64_t n, int64_t c0,
                     std::vector<PixelChunk>& chunks) {
  constexpr int64_t nr = nr_of<T>(), half = nr < 16 ? nr : 16;
  if (chunks.size() < (size_t)n) chunks.resize((size_t)n);  // at most one chunk per pixel
  int64_t count = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    // lane l of a chunk starting at output column ow reads plane offset l + (cols - Wo) * (rows it wraps), so the
    // index vector is the lane number plus one step per output row boundary inside the chunk
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32((int32_t)(L.cols - Wo)), limit = _mm512_set1_epi32(32);
    for (int64_t j = 0, oh = q0 / Wo, ow = q0 % Wo; j < n; ++count) {
      const int64_t col = c0 + j;
      __m512i index = lanes;
      for (int64_t wrap = Wo - ow; wrap < 16; wrap += Wo)
        index = _mm512_mask_add_epi32(index, _mm512_cmpge_epi32_mask(lanes, _mm512_set1_epi32((int32_t)wrap)), index,
                                      step);
      // the lanes whose source lies within the 32 values two loads bring (a prefix: the index grows)
      const int64_t fits = __builtin_popcount((unsigned)_mm512_cmplt_epi32_mask(index, limit));
      const int64_t m = std::min({n - j, half - col % half, fits});
      PixelChunk& chunk = chunks[(size_t)count];
      chunk.src = (int32_t)(oh * L.cols + ow), chunk.strip = (int32_t)(col / nr), chunk.lane = (int32_t)(col % nr);
      chunk.count = (int32_t)m;
      _mm512_store_si512(chunk.index, index);
      const int64_t span = chunk.index[m - 1] + 1;
      chunk.load_low = lane_range(0, span), chunk.load_high = lane_range(0, span - 16);
      j += m, ow += m;
      for (; ow >= Wo; ow -= Wo) ++oh;
    }
    return count;
  }
#endif
  // runs contiguous in the plane: the rest of an output row, up to the end of a half strip
  for (int64_t j = 0, oh = q0 / Wo, ow = q0 % Wo; j < n; ++count) {
    const int64_t col = c0 + j, m = std::min({n - j, half - col % half, Wo - ow});
    PixelChunk& chunk = chunks[(size_t)count];
    chunk.src = (int32_t)(oh * L.cols + ow), chunk.strip = (int32_t)(col / nr), chunk.lane = (int32_t)(col % nr);
    chunk.count = (int32_t)m;
    j += m, ow += m;
    if (ow == Wo) ow = 0, ++oh;
  }
  return count;
}

// The plane offset (from the first plane of channel c_lo) that tap k reads for output pixel (0, 0), for the rows
// [k0, k0 + kc) of B.
inline void tap_offsets(const Conv2dParams& p, const PhaseLayout& L, int64_t c_lo, int64_t k0, int64_t kc,
                        std::vector<int64_t>& offsets) {
  const int64_t taps = p.kernel_h * p.kernel_w, plane = L.rows * L.cols;
  offsets.resize((size_t)kc);
  for (int64_t k = k0; k < k0 + kc; ++k) {
    const int64_t ci = k / taps, h = k / p.kernel_w % p.kernel_h * p.dilation_h, w = k % p.kernel_w * p.dilation_w;
    offsets[(size_t)(k - k0)] =
        (((ci - c_lo) * L.sh + h % L.sh) * L.sw + w % L.sw) * plane + (h / L.sh) * L.cols + w / L.sw;
  }
}

// Rows [k0, k0 + kc) of the im2col of one image and group (chunks: the count pixel_chunks of its pixels, taps: tap_offsets
// of the rows) into one kKc block of a packed B (kc rows; its strips kc * nr apart), copied from that image's phase
// planes. B[k - k0, c0 + j] = x[ci, ih, iw] for k = (ci, kh, kw) and output pixel q0 + j (0 outside the image).
// The chunk loop is outside the row loop, so each chunk's masks and indices stay in registers.
template <typename T>
void im2col_from_phase_planes(const T* planes, const std::vector<int64_t>& taps, const PixelChunk* chunks,
                              int64_t count, T* packed) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t kc = (int64_t)taps.size(), strip = kc * nr;
  const int64_t* tap = taps.data();
  for (int64_t i = 0; i < count; ++i) {
    const PixelChunk& c = chunks[i];
    T* dst = packed + c.strip * strip + c.lane;
    const T* src = planes + c.src;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>) {
      // (locals: the masked store may alias anything, so members would be reloaded every row)
      const __m512i index = _mm512_load_si512(c.index);
      const __mmask16 store = lane_range(0, c.count), load_low = c.load_low, load_high = c.load_high;
      for (int64_t k = 0; k < kc; ++k, dst += nr) {
        const __m512 low = _mm512_maskz_loadu_ps(load_low, src + tap[k]);
        const __m512 high = _mm512_maskz_loadu_ps(load_high, src + tap[k] + 16);
        _mm512_mask_storeu_ps(dst, store, _mm512_permutex2var_ps(low, index, high));
      }
      continue;
    }
#endif
    for (int64_t k = 0; k < kc; ++k, dst += nr) std::copy(src + tap[k], src + tap[k] + c.count, dst);
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
