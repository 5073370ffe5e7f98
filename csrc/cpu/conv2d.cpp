// CPU conv2d: im2col written straight into our own blocked GEMM's packed layouts; the maths is in conv2d.h.
//
// GEMM: C (M x N) = A (M x K) * B (K x N), from A and B packed into the layout the micro-kernel streams:
//   A: for each block of kKc reduction steps, panels of kMr rows, each panel k-major ([k][kMr]);
//   B: for each block of kKc reduction steps, strips of nr columns, each strip k-major ([k][nr]).
// Edges are zero-padded in the packed copies, so the micro-kernel always runs a full kMr x nr tile and only the
// store looks at the edge. The micro-kernel keeps the tile of C in registers (GCC vector extensions, so
// gcc -O3 -march=native emits AVX-512/AVX2 FMAs without intrinsics) and streams one A panel and one B strip.
// im2col never materialises a plain column matrix: it writes into the packed layout, one kKc block at a time so the
// block stays in cache, copying row runs for wide outputs and gathering through a per-call tap table for narrow ones.
//
//   forward          Y (C_out/G x n*P)    = W_g (packed once)  * im2col of n images side by side (packed B)
//   backward_input   dcol (K x n*P)       = W_g^T (packed once) * gy of n images side by side, then col2im
//   backward_weight  dW_g (C_out/G x K) = gy (packed A panels) * im2col^T (packed B strips), over the flattened
//                    (image, pixel) reduction in chunks; for a short im2col (2K <= C_out/G) the same product as
//                    register-blocked dot products over gy's own rows instead.
// Several small images share one GEMM so that its columns fill whole strips; how many depends on the shapes only.
// Stride-1 forwards with wide outputs run on an extended pixel grid where every im2col row is a plain copy.
// Depthwise convolutions (one input and one output channel per group) skip the GEMM: stride 1 runs one long
// unit-stride loop per kernel tap over a zero-bordered copy of the plane, other strides direct row loops.
//
// Threads and determinism: forward and backward_input run one (block of images, group) per task, each writing its
// own slice of the output. In backward_weight every dW element belongs to one task (a strip of im2col rows, a block
// of gy rows, or a depthwise channel) that sums its reduction in an order fixed by the shapes. Results are the same for any thread
// count; tests/test_conv2d.py checks 1, 2 and 3 threads bit for bit.
#include "conv2d.h"
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gradcore {

namespace {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
constexpr int kMr = 8;  // 8 rows x 2 vectors = 16 of the 32 vector registers hold the C tile
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
constexpr int kMr = 6;  // 12 of 16 registers
#else
constexpr int kVectorBytes = 16;
constexpr int kMr = 6;
#endif
constexpr int64_t kKc = 256;             // reduction steps per packed block: an A panel and a B strip stay in L1/L2
constexpr int64_t kRowRunMinWidth = 16;  // output width from which im2col copies row runs instead of gathering

template <typename T> struct Simd {
  typedef T vec __attribute__((vector_size(kVectorBytes)));
  static constexpr int lanes = kVectorBytes / (int)sizeof(T);
  static constexpr int nr = 2 * lanes;  // columns per B strip: two vectors
};

// All lanes = s, written as an initializer list so the compiler emits one broadcast (from memory when s is loaded),
// not "0 + s" (a scalar add it may not drop because of signed zeros) followed by a broadcast.
template <typename T, size_t... I> inline typename Simd<T>::vec broadcast_impl(T s, std::index_sequence<I...>) {
  return typename Simd<T>::vec{((void)I, s)...};
}
template <typename T> inline typename Simd<T>::vec broadcast(T s) {
  return broadcast_impl<T>(s, std::make_index_sequence<Simd<T>::lanes>{});
}

template <typename T> inline typename Simd<T>::vec load_vec(const T* p) {
  typename Simd<T>::vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T> inline void store_vec(T* p, typename Simd<T>::vec v) { std::memcpy(p, &v, sizeof(v)); }

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// Per-thread scratch that only grows: OpenMP keeps its threads, so steady-state calls allocate nothing.
class Scratch {
 public:
  ~Scratch() { std::free(ptr_); }
  template <typename T> T* get(int64_t count) {
    const size_t bytes = (size_t)round_up(std::max<int64_t>(count, 1) * (int64_t)sizeof(T), 64);
    if (bytes > bytes_) {
      std::free(ptr_);
      ptr_ = std::aligned_alloc(64, bytes);
      if (!ptr_) throw std::bad_alloc();
      bytes_ = bytes;
    }
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};
thread_local Scratch scratch_col, scratch_packed_b;

template <typename T> struct AlignedBuffer {  // heap block shared by the threads of one call
  explicit AlignedBuffer(int64_t count) {
    ptr = static_cast<T*>(std::aligned_alloc(64, (size_t)round_up(std::max<int64_t>(count, 1) * (int64_t)sizeof(T), 64)));
    if (!ptr) throw std::bad_alloc();
  }
  ~AlignedBuffer() { std::free(ptr); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T* ptr;
};

template <typename T> constexpr int64_t nr_of() { return Simd<T>::nr; }

// A (M x K), element (m, k) at src[m * rs + k * cs], packed whole.
template <typename T> void pack_a(const T* src, int64_t rs, int64_t cs, int64_t M, int64_t K, T* dst) {
  const int64_t m_pad = round_up(M, kMr);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    T* block = dst + k0 * m_pad;
    for (int64_t i0 = 0; i0 < m_pad; i0 += kMr) {
      T* panel = block + i0 * kc;
      const int64_t rows = std::min<int64_t>(kMr, M - i0);
      for (int64_t k = 0; k < kc; ++k) {
        const T* s = src + i0 * rs + (k0 + k) * cs;
        T* d = panel + k * kMr;
        int64_t i = 0;
        for (; i < rows; ++i) d[i] = s[i * rs];
        for (; i < kMr; ++i) d[i] = T(0);
      }
    }
  }
}

// Calls fn(dst, first, count) for the runs of columns [c0, c0 + n) of reduction row d of a packed B (cols_pad
// columns, `depth` rows) that are contiguous: dst[j] is column c0 + first + j.
template <typename T, typename Fn>
inline void packed_b_row_runs(T* packed, int64_t d, int64_t c0, int64_t n, int64_t cols_pad, int64_t depth, Fn&& fn) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t blk = d / kKc * kKc, kc = std::min(kKc, depth - blk);
  T* row = packed + blk * cols_pad + (d - blk) * nr;
  for (int64_t done = 0; done < n;) {
    const int64_t c = c0 + done, lane = c % nr, run = std::min(nr - lane, n - done);
    fn(row + (c / nr) * (kc * nr) + lane, done, run);
    done += run;
  }
}

// Zeroes columns [cols, cols_pad) of every reduction row of a packed B.
template <typename T> void zero_packed_b_tail(T* packed, int64_t cols, int64_t cols_pad, int64_t depth) {
  if (cols == cols_pad) return;
  for (int64_t d = 0; d < depth; ++d)
    packed_b_row_runs(packed, d, cols, cols_pad - cols, cols_pad, depth, [](T* dst, int64_t, int64_t run) {
      std::fill(dst, dst + run, T(0));
    });
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

// src (rows x n, row stride rs) into reduction rows [0, rows) and columns [c0, c0 + n) of a packed B.
template <typename T>
void rows_packed_b(const T* src, int64_t rs, int64_t rows, int64_t n, int64_t c0, int64_t cols_pad, T* packed) {
  for (int64_t d = 0; d < rows; ++d) {
    const T* s = src + d * rs;
    packed_b_row_runs(packed, d, c0, n, cols_pad, rows, [&](T* dst, int64_t first, int64_t run) {
      for (int64_t j = 0; j < run; ++j) dst[j] = s[first + j];
    });
  }
}

// C tile (ROWS x nr, ROWS <= kMr) = [C +] bias + A panel * B strip over kc steps; only n_valid columns are stored.
template <typename T, int ROWS>
inline void micro_kernel(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t n_valid, bool accumulate,
                         const T* bias) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes, NR = Simd<T>::nr;
  V acc0[ROWS], acc1[ROWS];
  for (int i = 0; i < ROWS; ++i) {
    acc0[i] = broadcast<T>(bias ? bias[i] : T(0));
    acc1[i] = acc0[i];
  }
  for (int64_t k = 0; k < kc; ++k) {
    const V b0 = load_vec(b + k * NR), b1 = load_vec(b + k * NR + L);
    const T* ak = a + k * kMr;
    for (int i = 0; i < ROWS; ++i) {
      const V ai = broadcast<T>(ak[i]);
      acc0[i] += ai * b0;
      acc1[i] += ai * b1;
    }
  }
  for (int i = 0; i < ROWS; ++i) {
    T* row = c + i * ldc;
    if (n_valid == NR) {
      if (accumulate) {
        acc0[i] += load_vec(row);
        acc1[i] += load_vec(row + L);
      }
      store_vec(row, acc0[i]);
      store_vec(row + L, acc1[i]);
    } else {
      alignas(64) T tile[NR];
      store_vec(tile, acc0[i]);
      store_vec(tile + L, acc1[i]);
      for (int64_t j = 0; j < n_valid; ++j) row[j] = accumulate ? row[j] + tile[j] : tile[j];
    }
  }
}

template <typename T, int ROWS>
void micro_kernel_rows(int64_t rows, int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t n_valid,
                       bool accumulate, const T* bias) {
  if constexpr (ROWS > 1) {
    if (rows < ROWS) return micro_kernel_rows<T, ROWS - 1>(rows, kc, a, b, c, ldc, n_valid, accumulate, bias);
  }
  micro_kernel<T, ROWS>(kc, a, b, c, ldc, n_valid, accumulate, bias);
}

// C (M x N, row stride ldc) = [C +] row_bias + A * B from packed A and B, restricted to the row panels
// [i_begin, i_end) and column strips [j_begin, j_end) (element indices, multiples of kMr and nr). row_bias: M values
// or null.
template <typename T>
void gemm_packed(int64_t M, int64_t N, int64_t K, const T* ap, const T* bp, T* c, int64_t ldc, bool accumulate,
                 const T* row_bias, int64_t i_begin = 0, int64_t i_end = -1, int64_t j_begin = 0, int64_t j_end = -1) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t m_pad = round_up(M, kMr), n_pad = round_up(N, nr);
  i_end = i_end < 0 ? M : std::min(i_end, M);
  j_end = j_end < 0 ? N : std::min(j_end, N);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    const T* a_block = ap + k0 * m_pad;
    const T* b_block = bp + k0 * n_pad;
    const bool acc = accumulate || k0 > 0;
    const T* bias = k0 == 0 ? row_bias : nullptr;
    for (int64_t j0 = j_begin; j0 < j_end; j0 += nr) {
      const T* strip = b_block + j0 * kc;
      const int64_t n_valid = std::min<int64_t>(nr, N - j0);
      for (int64_t i0 = i_begin; i0 < i_end; i0 += kMr) {
        micro_kernel_rows<T, kMr>(M - i0, kc, a_block + i0 * kc, strip, c + i0 * ldc + j0, ldc, n_valid, acc,
                                  bias ? bias + i0 : nullptr);
      }
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

// Images per GEMM for forward and backward_input: the count (at most ~512 columns, keeping at least 8 tasks) whose
// n * P columns waste the least of their last strip. From the shapes only.
int64_t images_per_gemm(int64_t P, int64_t N, int64_t G, int64_t nr) {
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

bool is_depthwise(const Conv2dParams& p) { return p.in_per_group() == 1 && p.out_per_group() == 1; }

// ---- depthwise: direct loops over one (image, channel) plane ------------------------------------------------------
// windows[kw]: the RowWindow of each kernel column, computed once per call.
std::vector<RowWindow> row_windows(const Conv2dParams& p) {
  std::vector<RowWindow> windows;
  for (int64_t kw = 0; kw < p.kernel_w; ++kw) windows.emplace_back(p, kw);
  return windows;
}

// Stride 1: the plane is copied into a zero-bordered buffer of row length E_w, after which every kernel tap is one
// long unit-stride AXPY over the flattened rows (z[i] += w_t * padded[i + offset_t]); the E_w - width extra columns
// per row are computed and dropped. This beats row-by-row loops on small planes.
//   forward:        padded = x with (pad_top, pad_left) before it;  offset_t = kh d_h E_w + kw d_w
//   backward_input: padded = gy placed at (R, S) = (d_h (kH - 1), d_w (kW - 1));
//                   offset_t = (pad_top + R - kh d_h) E_w + (pad_left + S - kw d_w)
template <typename T>
void depthwise_stride1_plane(const T* src, int64_t src_h, int64_t src_w, int64_t top, int64_t left, int64_t rows,
                             int64_t cols, int64_t ext_h, int64_t ext_w, const int64_t* offsets, const T* w, int64_t taps,
                             T bias, T* out) {
  T* padded = scratch_col.get<T>(ext_h * ext_w);
  std::fill(padded, padded + ext_h * ext_w, T(0));
  for (int64_t r = 0; r < src_h; ++r) std::memcpy(padded + (r + top) * ext_w + left, src + r * src_w, sizeof(T) * src_w);
  const int64_t length = (rows - 1) * ext_w + cols;
  T* z = scratch_packed_b.get<T>(length);
  std::fill(z, z + length, bias);
  for (int64_t t = 0; t < taps; ++t) {
    const T wt = w[t];
    const T* in = padded + offsets[t];
    for (int64_t i = 0; i < length; ++i) z[i] += wt * in[i];
  }
  for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * cols, z + r * ext_w, sizeof(T) * cols);
}

// Stride-1 depthwise weight gradient of one plane: gw[t] += sum_i gy_spread[i] * padded_x[i + offset_t], where
// gy_spread holds gy with rows of length E_w (zeros in the extra columns). A fixed-order vector dot per tap.
template <typename T>
void depthwise_stride1_weight_plane(const T* x, const T* gy, const Conv2dParams& p, int64_t ext_h, int64_t ext_w,
                                    const int64_t* offsets, T* gw) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  T* padded = scratch_col.get<T>(ext_h * ext_w);
  std::fill(padded, padded + ext_h * ext_w, T(0));
  for (int64_t r = 0; r < p.in_h; ++r)
    std::memcpy(padded + (r + p.pad_top) * ext_w + p.pad_left, x + r * p.in_w, sizeof(T) * p.in_w);
  const int64_t length = (p.out_h - 1) * ext_w + p.out_w;
  T* spread = scratch_packed_b.get<T>(length);
  std::fill(spread, spread + length, T(0));
  for (int64_t r = 0; r < p.out_h; ++r) std::memcpy(spread + r * ext_w, gy + r * p.out_w, sizeof(T) * p.out_w);
  for (int64_t t = 0; t < p.kernel_h * p.kernel_w; ++t) {
    const T* in = padded + offsets[t];
    V acc = V{};
    int64_t i = 0;
    for (; i + L <= length; i += L) acc += load_vec(spread + i) * load_vec(in + i);
    T sum = T(0);
    for (int l = 0; l < L; ++l) sum += acc[l];
    for (; i < length; ++i) sum += spread[i] * in[i];
    gw[t] += sum;
  }
}

// y_plane[oh, ow] = bias + sum_{kh, kw} w[kh, kw] x_plane[ih, iw]
template <typename T>
void depthwise_forward_plane(const T* x, const T* w, T bias, const Conv2dParams& p, const RowWindow* windows, T* y) {
  const int64_t Wo = p.out_w;
  for (int64_t oh = 0; oh < p.out_h; ++oh) {
    T* yr = y + oh * Wo;
    for (int64_t ow = 0; ow < Wo; ++ow) yr[ow] = bias;
    for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
      const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
      if (ih < 0 || ih >= p.in_h) continue;
      const T* xr = x + ih * p.in_w;
      for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
        const RowWindow& win = windows[kw];
        const T wv = w[kh * p.kernel_w + kw];
        if (p.stride_w == 1) {
          for (int64_t ow = win.ow_lo; ow < win.ow_hi; ++ow) yr[ow] += wv * xr[win.iw0 + ow];
        } else {
          for (int64_t ow = win.ow_lo; ow < win.ow_hi; ++ow) yr[ow] += wv * xr[win.iw0 + ow * p.stride_w];
        }
      }
    }
  }
}

// gx_plane[ih, iw] = bias + sum over (oh, ow, kh, kw) reading (ih, iw) of w[kh, kw] gy[oh, ow]
template <typename T>
void depthwise_backward_input_plane(const T* gy, const T* w, T bias, const Conv2dParams& p, const RowWindow* windows,
                                    T* gx) {
  std::fill(gx, gx + p.in_pixels(), bias);
  const int64_t Wo = p.out_w;
  for (int64_t oh = 0; oh < p.out_h; ++oh) {
    const T* gr = gy + oh * Wo;
    for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
      const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
      if (ih < 0 || ih >= p.in_h) continue;
      T* xr = gx + ih * p.in_w;
      for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
        const RowWindow& win = windows[kw];
        const T wv = w[kh * p.kernel_w + kw];
        if (p.stride_w == 1) {
          for (int64_t ow = win.ow_lo; ow < win.ow_hi; ++ow) xr[win.iw0 + ow] += wv * gr[ow];
        } else {
          for (int64_t ow = win.ow_lo; ow < win.ow_hi; ++ow) xr[win.iw0 + ow * p.stride_w] += wv * gr[ow];
        }
      }
    }
  }
}

// gw[kh, kw] += sum_{oh, ow} gy[oh, ow] x[ih, iw], in a fixed order: vector lanes accumulate across the whole plane
// (stride 1), then the lanes and the scalar remainder are added.
template <typename T>
void depthwise_backward_weight_plane(const T* x, const T* gy, const Conv2dParams& p, const RowWindow* windows, T* gw) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  const int64_t Wo = p.out_w;
  for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
    for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
      const RowWindow& win = windows[kw];
      V vacc = V{};
      T acc = T(0);
      for (int64_t oh = 0; oh < p.out_h; ++oh) {
        const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
        if (ih < 0 || ih >= p.in_h) continue;
        const T* xr = x + ih * p.in_w;
        const T* gr = gy + oh * Wo;
        int64_t ow = win.ow_lo;
        if (p.stride_w == 1)
          for (; ow + L <= win.ow_hi; ow += L) vacc += load_vec(gr + ow) * load_vec(xr + win.iw0 + ow);
        for (; ow < win.ow_hi; ++ow) acc += gr[ow] * xr[win.iw0 + ow * p.stride_w];
      }
      for (int l = 0; l < L; ++l) acc += vacc[l];
      gw[kh * p.kernel_w + kw] += acc;
    }
  }
}

// Forward for stride 1 and wide outputs, on the extended grid: each input channel is copied once into a zero-bordered
// plane of row length E_w = W + pad_left + pad_right, and the GEMM runs over Ho x E_w columns instead of Ho x Wo.
// Then every im2col row is one contiguous slice of a padded plane (at offset kh d_h E_w + kw d_w), copied without
// any per-pixel bookkeeping; the E_w - Wo extra columns per output row ((kW - 1) d_w of them) are computed and
// dropped when the result is copied out.
template <typename T>
void forward_extended_grid(const T* px, const T* packed_w, int64_t a_size, const T* pb, T* py, const Conv2dParams& p,
                           bool parallel) {
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cg = p.in_per_group(), HW = p.in_pixels(), Wo = p.out_w, Ho = p.out_h;
  const int64_t ext_h = p.in_h + p.pad_top + p.pad_bottom, ext_w = p.in_w + p.pad_left + p.pad_right;
  const int64_t plane = ext_h * ext_w, cols = Ho * ext_w, cols_pad = round_up(cols, nr_of<T>());
  const int64_t slack = (p.kernel_w - 1) * p.dilation_w;  // the last plane's dropped columns read this far past it
  const int64_t taps_per_channel = p.kernel_h * p.kernel_w;
#pragma omp parallel for schedule(dynamic, 1) if (parallel && N * G > 1)
  for (int64_t t = 0; t < N * G; ++t) {
    const int64_t n = t / G, g = t % G;
    T* padded = scratch_col.get<T>(Cg * plane + slack + M * cols);
    T* c = padded + Cg * plane + slack;  // (M x cols) result on the extended grid
    std::fill(padded, padded + Cg * plane + slack, T(0));
    const T* x_group = px + (n * p.in_channels + g * Cg) * HW;
    for (int64_t ci = 0; ci < Cg; ++ci)
      for (int64_t r = 0; r < p.in_h; ++r)
        std::memcpy(padded + ci * plane + (r + p.pad_top) * ext_w + p.pad_left, x_group + ci * HW + r * p.in_w,
                    sizeof(T) * p.in_w);
    T* packed = scratch_packed_b.get<T>(std::min(K, kKc) * cols_pad);
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {
      const int64_t kc = std::min(kKc, K - k0);
      for (int64_t k = k0; k < k0 + kc; ++k) {
        const int64_t ci = k / taps_per_channel, kh = k / p.kernel_w % p.kernel_h, kw = k % p.kernel_w;
        const T* src = padded + ci * plane + kh * p.dilation_h * ext_w + kw * p.dilation_w;
        packed_b_row_runs(packed, k - k0, (int64_t)0, cols, cols_pad, kc, [&](T* dst, int64_t first, int64_t run) {
          for (int64_t j = 0; j < run; ++j) dst[j] = src[first + j];
        });
      }
      zero_packed_b_tail(packed, cols, cols_pad, kc);
      gemm_packed(M, cols, kc, packed_w + g * a_size + k0 * round_up(M, kMr), packed, c, cols, k0 > 0,
                  k0 == 0 && pb ? pb + g * M : nullptr);
    }
    T* y_group = py + (n * p.out_channels + g * M) * P;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < Ho; ++oh)
        std::memcpy(y_group + m * P + oh * Wo, c + m * cols + oh * ext_w, sizeof(T) * Wo);
  }
}

template <typename T> void forward(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels();
  const T* px = x.data_as<T>();
  const T* pw = w.data_as<T>();
  const T* pb = bias.numel() ? bias.data_as<T>() : nullptr;
  T* py = y.data_as<T>();
  const bool parallel = N * Cout * P * K >= (1 << 16);
  if (is_depthwise(p) && p.stride_h == 1 && p.stride_w == 1) {
    const int64_t ext_h = p.in_h + p.pad_top + p.pad_bottom, ext_w = p.in_w + p.pad_left + p.pad_right;
    std::vector<int64_t> offsets;
    for (int64_t kh = 0; kh < p.kernel_h; ++kh)
      for (int64_t kw = 0; kw < p.kernel_w; ++kw) offsets.push_back(kh * p.dilation_h * ext_w + kw * p.dilation_w);
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t t = 0; t < N * Cout; ++t) {
      const int64_t c = t % Cout;
      depthwise_stride1_plane(px + t * HW, p.in_h, p.in_w, p.pad_top, p.pad_left, p.out_h, p.out_w, ext_h, ext_w,
                              offsets.data(), pw + c * K, K, pb ? pb[c] : T(0), py + t * P);
    }
    return;
  }
  if (is_depthwise(p)) {
    const std::vector<RowWindow> windows = row_windows(p);
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t t = 0; t < N * Cout; ++t) {
      const int64_t c = t % Cout;
      depthwise_forward_plane(px + t * HW, pw + c * K, pb ? pb[c] : T(0), p, windows.data(), py + t * P);
    }
    return;
  }
  const int64_t a_size = round_up(M, kMr) * K;
  AlignedBuffer<T> packed_w(G * a_size);  // each group's weight, packed once for every image
  for (int64_t g = 0; g < G; ++g) pack_a(pw + g * M * K, K, (int64_t)1, M, K, packed_w.ptr + g * a_size);
  if (p.stride_h == 1 && p.stride_w == 1 && p.out_w >= kRowRunMinWidth && !p.is_pointwise()) {
    forward_extended_grid(px, packed_w.ptr, a_size, pb, py, p, parallel);
    return;
  }
  const TapTable taps(p);
  const std::vector<RowWindow> windows = row_windows(p);
  const int64_t per_gemm = images_per_gemm(P, N, G, nr_of<T>()), blocks = (N + per_gemm - 1) / per_gemm;
#pragma omp parallel for schedule(dynamic, 1) if (parallel && blocks * G > 1)
  for (int64_t t = 0; t < blocks * G; ++t) {
    const int64_t b = t / G, g = t % G, n0 = b * per_gemm, count = std::min(per_gemm, N - n0);
    const int64_t cols = count * P, cols_pad = round_up(cols, nr_of<T>());
    T* packed = scratch_packed_b.get<T>(std::min(K, kKc) * cols_pad);
    T* c = count == 1 ? py + (n0 * Cout + g * M) * P : scratch_col.get<T>(M * cols);
    const int64_t ldc = count == 1 ? P : cols;
    for (int64_t k0 = 0; k0 < K; k0 += kKc) {  // one kKc block of B at a time, so it stays in cache
      const int64_t kc = std::min(kKc, K - k0);
      for (int64_t i = 0; i < count; ++i)
        im2col_packed_b(px + ((n0 + i) * Cin + g * p.in_per_group()) * HW, p, taps, windows.data(), k0, kc, i * P,
                        cols_pad, packed);
      zero_packed_b_tail(packed, cols, cols_pad, kc);
      gemm_packed(M, cols, kc, packed_w.ptr + g * a_size + k0 * round_up(M, kMr), packed, c, ldc, k0 > 0,
                  k0 == 0 && pb ? pb + g * M : nullptr);
    }
    if (count == 1) continue;
    for (int64_t i = 0; i < count; ++i)
      for (int64_t m = 0; m < M; ++m)
        std::memcpy(py + ((n0 + i) * Cout + g * M + m) * P, c + m * cols + i * P, sizeof(T) * P);
  }
}

template <typename T>
void backward_input(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p) {
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels(), Cg = p.in_per_group();
  const T* pg = gy.data_as<T>();
  const T* pw = w.data_as<T>();
  const T* pb = bias.numel() ? bias.data_as<T>() : nullptr;
  T* px = gx.data_as<T>();
  const bool parallel = N * Cout * P * K >= (1 << 16);
  if (is_depthwise(p) && p.stride_h == 1 && p.stride_w == 1) {
    const int64_t R = p.dilation_h * (p.kernel_h - 1), S = p.dilation_w * (p.kernel_w - 1);
    const int64_t ext_h = std::max(p.in_h + p.pad_top, p.out_h) + R, ext_w = std::max(p.in_w + p.pad_left, p.out_w) + S;
    std::vector<int64_t> offsets;
    for (int64_t kh = 0; kh < p.kernel_h; ++kh)
      for (int64_t kw = 0; kw < p.kernel_w; ++kw)
        offsets.push_back((p.pad_top + R - kh * p.dilation_h) * ext_w + (p.pad_left + S - kw * p.dilation_w));
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t t = 0; t < N * Cin; ++t) {
      const int64_t c = t % Cin;
      depthwise_stride1_plane(pg + t * P, p.out_h, p.out_w, R, S, p.in_h, p.in_w, ext_h, ext_w, offsets.data(),
                              pw + c * K, K, pb ? pb[c] : T(0), px + t * HW);
    }
    return;
  }
  if (is_depthwise(p)) {
    const std::vector<RowWindow> windows = row_windows(p);
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t t = 0; t < N * Cin; ++t) {
      const int64_t c = t % Cin;
      depthwise_backward_input_plane(pg + t * P, pw + c * K, pb ? pb[c] : T(0), p, windows.data(), px + t * HW);
    }
    return;
  }
  // A = W_g^T (K x M): element (k, m) at w_g[m * K + k].
  const int64_t a_size = round_up(K, kMr) * M;
  AlignedBuffer<T> packed_wt(G * a_size);
  for (int64_t g = 0; g < G; ++g) pack_a(pw + g * M * K, (int64_t)1, K, K, M, packed_wt.ptr + g * a_size);
  const int64_t per_gemm = images_per_gemm(P, N, G, nr_of<T>()), blocks = (N + per_gemm - 1) / per_gemm;
#pragma omp parallel for schedule(dynamic, 1) if (parallel && blocks * G > 1)
  for (int64_t t = 0; t < blocks * G; ++t) {
    const int64_t b = t / G, g = t % G, n0 = b * per_gemm, count = std::min(per_gemm, N - n0);
    const int64_t cols = count * P, cols_pad = round_up(cols, nr_of<T>());
    T* packed = scratch_packed_b.get<T>(std::min(M, kKc) * cols_pad);
    const bool direct = p.is_pointwise() && count == 1;  // dcol is gx itself
    T* dcol = direct ? px + (n0 * Cin + g * Cg) * HW : scratch_col.get<T>(K * cols);
    for (int64_t m0 = 0; m0 < M; m0 += kKc) {  // one kKc block of B (gy rows) at a time
      const int64_t mc = std::min(kKc, M - m0);
      for (int64_t i = 0; i < count; ++i)
        rows_packed_b(pg + ((n0 + i) * Cout + g * M + m0) * P, P, mc, P, i * P, cols_pad, packed);
      zero_packed_b_tail(packed, cols, cols_pad, mc);
      gemm_packed(K, cols, mc, packed_wt.ptr + g * a_size + m0 * round_up(K, kMr), packed, dcol, cols, m0 > 0,
                  (const T*)nullptr);
    }
    if (!direct) {
      for (int64_t i = 0; i < count; ++i) {
        T* gx_group = px + ((n0 + i) * Cin + g * Cg) * HW;
        if (p.is_pointwise()) {
          for (int64_t k = 0; k < K; ++k) std::memcpy(gx_group + k * HW, dcol + k * cols + i * P, sizeof(T) * P);
        } else {
          std::memset(gx_group, 0, sizeof(T) * Cg * HW);
          col2im_add(dcol + i * P, cols, p, gx_group);
        }
      }
    }
    if (pb) {
      for (int64_t i = 0; i < count; ++i) {
        for (int64_t c = 0; c < Cg; ++c) {
          const T bv = pb[g * Cg + c];
          T* plane = px + ((n0 + i) * Cin + g * Cg + c) * HW;
          for (int64_t e = 0; e < HW; ++e) plane[e] += bv;
        }
      }
    }
  }
}

// Weight gradient for a short im2col (K much smaller than C_out/G, e.g. a first layer with one input channel):
// dW_g (M x K) = sum_n gy_{n,g} (M x P) col_{n,g}^T (P x K), where gy's rows are already contiguous along the pixels,
// so nothing of gy is packed. im2col goes to plain rows (K x P per image and group); then 4 x 4 blocks of dW are
// dot products over the pixels, in vector lanes, summed into dW image by image in order.
template <typename T>
void backward_weight_dots(const T* px, const T* pg, T* pw, const Conv2dParams& p, bool parallel) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  constexpr int64_t B = 4;  // dW block: B rows of gy against B rows of col
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels(), Cg = p.in_per_group();
  const int64_t taps_per_channel = p.kernel_h * p.kernel_w;
  const TapTable taps(p);
  const int64_t per_chunk = std::clamp<int64_t>((int64_t)((16u << 20) / sizeof(T)) / std::max<int64_t>(G * K * P, 1),
                                                1, N);
  AlignedBuffer<T> col(per_chunk * G * K * P);
  const int64_t m_blocks = (M + B - 1) / B;
  for (int64_t n0 = 0; n0 < N; n0 += per_chunk) {
    const int64_t count = std::min(per_chunk, N - n0);
#pragma omp parallel for schedule(static) if (parallel && count * G > 1)
    for (int64_t t = 0; t < count * G; ++t) {
      const int64_t i = t / G, g = t % G;
      const T* x_group = px + ((n0 + i) * Cin + g * Cg) * HW;
      for (int64_t k = 0; k < K; ++k)
        gather_taps(x_group + (k / taps_per_channel) * HW, taps.tap(k % taps_per_channel), P,
                    col.ptr + (t * K + k) * P, (int64_t)1);
    }
#pragma omp parallel for schedule(static) if (parallel && G * m_blocks > 1)
    for (int64_t t = 0; t < G * m_blocks; ++t) {
      const int64_t g = t / m_blocks, m0 = t % m_blocks * B, mb = std::min(B, M - m0);
      for (int64_t k0 = 0; k0 < K; k0 += B) {
        const int64_t kb = std::min(B, K - k0);
        for (int64_t i = 0; i < count; ++i) {
          const T* a[B];
          const T* c[B];
          for (int64_t r = 0; r < B; ++r) {  // rows past the edge repeat the last row; their sums are dropped
            a[r] = pg + ((n0 + i) * Cout + g * M + m0 + std::min(r, mb - 1)) * P;
            c[r] = col.ptr + ((i * G + g) * K + k0 + std::min(r, kb - 1)) * P;
          }
          V acc[B][B];
          for (int64_t r = 0; r < B; ++r)
            for (int64_t s = 0; s < B; ++s) acc[r][s] = V{};
          int64_t q = 0;
          for (; q + L <= P; q += L) {
            V av[B], cv[B];
            for (int64_t r = 0; r < B; ++r) {
              av[r] = load_vec(a[r] + q);
              cv[r] = load_vec(c[r] + q);
            }
            for (int64_t r = 0; r < B; ++r)
              for (int64_t s = 0; s < B; ++s) acc[r][s] += av[r] * cv[s];
          }
          for (int64_t r = 0; r < mb; ++r) {
            for (int64_t s = 0; s < kb; ++s) {
              T sum = T(0);
              for (int l = 0; l < L; ++l) sum += acc[r][s][l];
              for (int64_t tail = q; tail < P; ++tail) sum += a[r][tail] * c[s][tail];
              T& dw = pw[(g * M + m0 + r) * K + k0 + s];
              dw = (n0 + i == 0) ? sum : dw + sum;
            }
          }
        }
      }
    }
  }
}

// Weight gradient with dW itself as the GEMM output: dW_g (M x K) = gy_g (M x N*P) * col_g^T (N*P x K), over the
// flattened (image, pixel) reduction in chunks of several kKc blocks. Per chunk, gy is packed once as A panels
// (threads split its rows; one barrier); then each task takes a strip of nr im2col rows, packs it kKc steps at a
// time into an L1-sized B strip and runs every gy panel against it, so the streamed operand is the narrow A panel.
// Every dW element belongs to one strip and is summed block after block: the order is fixed by the shapes.
template <typename T>
void backward_weight_strips(const T* px, const T* pg, T* pw, const Conv2dParams& p, bool parallel) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels(), Cg = p.in_per_group();
  const int64_t m_pad = round_up(M, kMr), strips = (K + nr - 1) / nr, Q = N * P;
  // Blocks per chunk: at most ~8 chunks (each costs two barriers, which a busy machine makes expensive), with the
  // packed gy chunk kept under ~4 MB.
  const int64_t blocks = (Q + kKc - 1) / kKc;
  const int64_t memory_blocks = std::max<int64_t>(8, (int64_t)((4u << 20) / sizeof(T)) / (G * m_pad * kKc));
  const int64_t chunk = std::clamp<int64_t>((blocks + 7) / 8, 8, memory_blocks) * kKc;
  const int64_t taps_per_channel = p.kernel_h * p.kernel_w;
  const TapTable taps(p);
  const std::vector<RowWindow> windows = row_windows(p);
  AlignedBuffer<T> packed_gy(G * m_pad * chunk);
#pragma omp parallel if (parallel)
  {
    T* b_strip = scratch_packed_b.get<T>(nr * kKc);
    for (int64_t c0 = 0; c0 < Q; c0 += chunk) {
      const int64_t depth = std::min(chunk, Q - c0);
      // gy chunk as packed A (kKc blocks of kMr-row panels): A[m, q] = gy[n, g*M + m, pixel], c0 + q = n * P + pixel.
#pragma omp for schedule(static)
      for (int64_t t = 0; t < G * m_pad; ++t) {
        const int64_t g = t / m_pad, m = t % m_pad;
        for (int64_t b0 = 0; b0 < depth; b0 += kKc) {
          const int64_t kc = std::min(kKc, depth - b0);
          T* dst = packed_gy.ptr + g * m_pad * chunk + b0 * m_pad + (m / kMr) * (kc * kMr) + m % kMr;
          if (m >= M) {
            for (int64_t q = 0; q < kc; ++q) dst[q * kMr] = T(0);
            continue;
          }
          for (int64_t q = 0; q < kc;) {
            const int64_t flat = c0 + b0 + q, n = flat / P, pixel = flat % P, run = std::min(kc - q, P - pixel);
            const T* src = pg + (n * Cout + g * M + m) * P + pixel;
            for (int64_t j = 0; j < run; ++j) dst[(q + j) * kMr] = src[j];
            q += run;
          }
        }
      }
#pragma omp for schedule(static)
      for (int64_t t = 0; t < G * strips; ++t) {
        const int64_t g = t / strips, k0 = t % strips * nr, cols = std::min(nr, K - k0);
        for (int64_t b0 = 0; b0 < depth; b0 += kKc) {
          const int64_t kc = std::min(kKc, depth - b0);
          for (int64_t r = 0; r < nr; ++r) {  // im2col rows k0 .. k0 + nr - 1 of this block as one B strip ([q][nr])
            if (r >= cols) {
              for (int64_t q = 0; q < kc; ++q) b_strip[q * nr + r] = T(0);
              continue;
            }
            const int64_t k = k0 + r, ci = k / taps_per_channel;
            const int32_t* offset = taps.tap(k % taps_per_channel);
            const int64_t kh = k / p.kernel_w % p.kernel_h;
            const RowWindow& win = windows[k % p.kernel_w];
            for (int64_t q = 0; q < kc;) {
              const int64_t flat = c0 + b0 + q, n = flat / P, pixel = flat % P, run = std::min(kc - q, P - pixel);
              const T* plane = px + (n * Cin + g * Cg + ci) * HW;
              if (p.out_w >= kRowRunMinWidth)
                gather_rows(plane, p, kh, win, pixel, run, b_strip + q * nr + r, nr);
              else
                gather_taps(plane, offset + pixel, run, b_strip + q * nr + r, nr);
              q += run;
            }
          }
          const T* gy_block = packed_gy.ptr + g * m_pad * chunk + b0 * m_pad;
          for (int64_t i0 = 0; i0 < M; i0 += kMr)
            micro_kernel_rows<T, kMr>(M - i0, kc, gy_block + i0 * kc, b_strip, pw + (g * M + i0) * K + k0, K, cols,
                                      c0 + b0 > 0, (const T*)nullptr);
        }
      }
    }
  }
}

template <typename T> void backward_weight(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels();
  const T* px = x.data_as<T>();
  const T* pg = gy.data_as<T>();
  T* pw = gw.data_as<T>();
  std::memset(pw, 0, sizeof(T) * G * M * K);
  if (N == 0) return;
  const bool parallel = N * Cout * P * K >= (1 << 16);
  if (is_depthwise(p) && p.stride_h == 1 && p.stride_w == 1) {  // one thread per channel, images in order
    const int64_t ext_h = p.in_h + p.pad_top + p.pad_bottom, ext_w = p.in_w + p.pad_left + p.pad_right;
    std::vector<int64_t> offsets;
    for (int64_t kh = 0; kh < p.kernel_h; ++kh)
      for (int64_t kw = 0; kw < p.kernel_w; ++kw) offsets.push_back(kh * p.dilation_h * ext_w + kw * p.dilation_w);
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t c = 0; c < Cout; ++c)
      for (int64_t n = 0; n < N; ++n)
        depthwise_stride1_weight_plane(px + (n * Cin + c) * HW, pg + (n * Cout + c) * P, p, ext_h, ext_w,
                                       offsets.data(), pw + c * K);
    return;
  }
  if (is_depthwise(p)) {  // one thread per channel, images in order
    const std::vector<RowWindow> windows = row_windows(p);
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t c = 0; c < Cout; ++c)
      for (int64_t n = 0; n < N; ++n)
        depthwise_backward_weight_plane(px + (n * Cin + c) * HW, pg + (n * Cout + c) * P, p, windows.data(),
                                        pw + c * K);
    return;
  }
  if (2 * K <= M) {
    backward_weight_dots(px, pg, pw, p, parallel);
    return;
  }
  backward_weight_strips(px, pg, pw, p, parallel);
}

}  // namespace

void conv2d_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  if (y.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) { forward<decltype(zero)>(x, w, bias, y, p); });
}

void conv2d_backward_input_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p) {
  if (gx.numel() == 0) return;
  dispatch_float(gy.dtype(), [&](auto zero) { backward_input<decltype(zero)>(gy, w, bias, gx, p); });
}

void conv2d_backward_weight_cpu(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  if (gw.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) { backward_weight<decltype(zero)>(x, gy, gw, p); });
}

}  // namespace gradcore
