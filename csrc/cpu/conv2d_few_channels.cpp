// conv2d forward and input gradient at stride 1 with a short reduction (K = C_in * kH * kW <= kFewChannelsMaxK,
// groups 1): the seed autoencoder's last layer's input gradient (conv_transpose2d 32 -> 1, i.e. conv2d 1 -> 32,
// K = 9), first layers on 1-3 channel images. The maths is conv2d.h's forward; the method:
//
//   For each input channel c and kernel column kw, a column-shifted copy of a band of the image with the output's
//   row length:  S[c][kw][r][ow] = x[c][oh0 - pad_top + r][ow + kw * dilation_w - pad_left]  (0 outside the image)
//   Then tap (c, kh, kw) of output pixel q = (oh - oh0) * W_out + ow is S[c][kw] at flat offset q + kh * dilation_h *
//   W_out: every tap of a run of consecutive output pixels, across row ends included, is one contiguous vector load.
//   y tile (8 channels x 2 vectors of pixels) = bias + sum over k of w[:, k] * (tap k's vector), in registers.
//
// This is the im2col GEMM (conv2d.cpp) without its packed B: the same tile, the same operations in the same order
// (the tile starts at the bias, then one multiply-add per k in increasing k, then the ReLU epilogue), so every
// output element has the GEMM path's bits; only where the B operand is read from changes. With K this short the
// GEMM spent a tenth of its time packing B, and its tasks (strips of the N images side by side) shared out worse
// on two threads than this file's (image, band of rows) tasks.
// Measured (1 thread, CPU-time minima, shared 2-core machine at load 5-10; ms, the GEMM path -> this one; the
// results are the same bits):
//   25x1x28x28 -> 32, 3x3 pad 1 (dec3's input gradient)  0.170 -> 0.134   (PyTorch's conv2d: 0.229)
//   25x1x28x28 -> 32, 5x5 pad 2                          0.375 -> 0.314
//   25x2x28x28 -> 8, 3x3                                 0.119 -> 0.078
//   32x3x32x32 -> 16, 3x3 (K = 27)                       0.408 -> 0.314;  -> 64: 1.26 -> 1.18-1.25
//   8x3x56x56 -> 16, 1x1                                 0.068 -> 0.045
// The tile loop alone runs at ~85% of the FMA peak; the shifted copies cost ~6% of the whole.
//
// A y of kStreamBytes or more (batch 256: dec3's input gradient, 25.7 MB, read next by dec2's ReLU mask from
// memory anyway) is written by non-temporal stores from the tile's registers (cpu/streaming.h), which skip reading
// each line before writing it. Measured (issue 19, session 8, 2-core Xeon; 1 thread, CPU-time minima of interleaved
// processes against main 0b75707, load 5-7): in the B=256 training step 2.9-3.5 -> 1.9 ms per call (6 steps x 2
// processes each), dec2's ReLU mask after it unchanged (3.7-4.0 -> 3.5-3.6); alone on 8 cycled inputs 1.52-1.65 ->
// 1.39-1.43 ms.
//
// The input gradient of the same shapes (conv_transpose2d with few output channels: the seed decoder's last layer,
// 32 -> 1, is conv2d_backward_input of a conv2d 1 -> 32) is conv2d_backward_input.cpp's GEMM + col2im without the
// packed B: dcol (K x pixels) = W^T (K x C_out) * gy (C_out x pixels) in tiles of up to 12 rows x 2 vectors, reading
// gy's C_out rows where they lie (see backward_input below), then col2im on the task's band. Same bits as that path.
// Its GEMM path spent most of its time packing gy (B=256, 2 threads, phase timer: pack 3.6 / gemm 1.1 / col2im 0.6
// thread-ms), the one pass over the cold 25.7 MB. Measured (1 thread, CPU-time minima, interleaved against main
// 0b75707, load 5-7): in the training step B=256 4.6-5.3 -> 2.9-4.1 ms per call, B=25 0.273-0.322 -> 0.187-0.207;
// alone (8 cycled 256x32x28x28 inputs, each call reading a cold one) 3.9-4.0 -> 2.86-2.92 ms, where one core reads
// a cold 25.7 MB in 1.63-1.79 ms (numpy's max or sum over it, ~15 GB/s): what is left is the ~1.3 ms of arithmetic
// (16 images in cache: 0.083 ms, the GEMM path 0.137) not fully overlapped with the reads. Tried, no clear gain:
// prefetching the next task's gy (its 100 KB, prefetcht1 spread over the task's strips): alone 3.14-3.51 -> 3.14-3.36
// ms (prefetcht0 / t2 no better, prefetchnta 2.5x slower); the same for the weight gradient's dots path (dec3's
// weight gradient, cpu/conv2d_backward_weight.cpp): 3.32-3.46 -> 3.28-3.33. Also tried, no gain: the strips run 8
// channels at a time (8 row streams instead of 32, the tile's chains stored to dcol and resumed between passes, the
// same bits): alone 3.08-3.72 -> 3.32-3.66 ms.
//
// Threads and determinism: one (image, band) per task, each writing its own output rows; an element's value never
// depends on the band (the shifted copies hold x or zero; the input gradient's bands recompute their halo of dcol
// rows with the same operations), so results are bitwise the same for any thread count.
#include "cpu/conv2d_few_channels.h"
#include <algorithm>
#include <cstring>
#include "cpu/epilogue.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"
#include "cpu/simd.h"
#include "cpu/streaming.h"

namespace gradcore {

namespace {

using namespace cpu;

// The longest reduction taken here: 3 channels of a 3x3 kernel (the tap vectors of one tile are then 27 L1 reads).
constexpr int64_t kFewChannelsMaxK = 27;
// A band's shifted copies are kept to about this many elements, so they stay in L1/L2 while its tiles read them.
constexpr int64_t kBandElements = 16384;

// Rows per band of an image's `extent` rows: 16 tasks per thread over the batch, and a band's working set
// (`row_elements` per row, and its halo of rows) within kBandElements, so that it stays in cache. Tuning only.
inline int64_t band_rows(int64_t N, int64_t threads, int64_t extent, int64_t row_elements, int64_t halo) {
  const int64_t bands_wanted = (16 * threads + N - 1) / N;
  const int64_t rows = (extent + bands_wanted - 1) / bands_wanted;
  return std::clamp<int64_t>(std::min(rows, kBandElements / std::max<int64_t>(row_elements, 1) - halo), 1, extent);
}

// Output tile: ROWS channels (a packed weight panel, [k][kMr]) x nr pixels starting at band pixel q, of which
// n_valid are stored (rows at stride ldc). tap[k]: the shifted copy read by reduction step k.
template <typename T, int ROWS>
inline void tile(int64_t K, const T* panel, const T* const* tap, int64_t q, T* out, int64_t ldc, int64_t n_valid,
                 const T* bias, bool relu, bool stream) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes, NR = Simd<T>::nr;
  V acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i) {
    acc0[i] = broadcast<T>(bias ? bias[i] : T(0));
    acc1[i] = acc0[i];
  }
  for (int64_t k = 0; k < K; ++k) {
    const V b0 = load_vec(tap[k] + q), b1 = load_vec(tap[k] + q + L);
    tile_step<T, ROWS>(acc0, acc1, panel + k * kMr, 1, b0, b1);
  }
  if (relu) {
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      acc0[i] = relu_vec(acc0[i]);
      acc1[i] = relu_vec(acc1[i]);
    }
  }
  if (n_valid == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      stream_vec(out + i * ldc, acc0[i], stream);
      stream_vec(out + i * ldc + L, acc1[i], stream);
    }
    return;
  }
  alignas(64) T edge[ROWS][NR];  // (stored from registers in an unrolled loop: a loop over acc0[i] with a variable
                                 // i would keep the whole tile in memory, on the full tiles' path too)
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i) {
    store_vec(edge[i], acc0[i]);
    store_vec(edge[i] + L, acc1[i]);
  }
  for (int i = 0; i < ROWS; ++i) std::memcpy(out + i * ldc, edge[i], sizeof(T) * (size_t)n_valid);
}

template <typename T, int ROWS>
void tile_rows(int64_t rows, int64_t K, const T* panel, const T* const* tap, int64_t q, T* out, int64_t ldc,
               int64_t n_valid, const T* bias, bool relu, bool stream) {
  if constexpr (ROWS > 1) {
    if (rows < ROWS) return tile_rows<T, ROWS - 1>(rows, K, panel, tap, q, out, ldc, n_valid, bias, relu, stream);
  }
  tile<T, ROWS>(K, panel, tap, q, out, ldc, n_valid, bias, relu, stream);
}

template <typename T> void forward(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  const int64_t N = p.batch, C = p.in_channels, H = p.in_h, W = p.in_w, M = p.out_channels, K = p.gemm_k();
  const int64_t kH = p.kernel_h, kW = p.kernel_w, dh = p.dilation_h, dw = p.dilation_w;
  const int64_t Ho = p.out_h, Wo = p.out_w, P = Ho * Wo;
  constexpr int64_t nr = nr_of<T>();
  const T* px = x.data_as<T>();
  const T* pb = bias.numel() ? bias.data_as<T>() : nullptr;
  T* py = y.data_as<T>();
  const bool relu = p.activation == Activation::relu;
  const bool stream = streams_output<T>(y.numel());  // a large y: non-temporal stores (streaming.h)
  AlignedBuffer<T> packed_w(round_up(M, kMr) * K);  // panels of kMr output channels, k-major (K <= kKc: one block)
  pack_a(w.data_as<T>(), K, (int64_t)1, M, K, packed_w.ptr);
  // Bands of output rows: enough tasks for every thread to get several, and shifted copies that stay in cache.
  // Tuning only (see the header: no element depends on its band).
  const bool parallel = N * M * P * K >= kParallelThreshold;  // multiply-adds
  const int64_t halo = (kH - 1) * dh;
  const int64_t rows = band_rows(N, parallel ? max_threads() : 1, Ho, C * kW * Wo, halo);
  const int64_t bands = (Ho + rows - 1) / rows, tasks = N * bands;
  TaskShares shares(tasks, parallel);  // (parallel.h: outputs stay with one core)
#pragma omp parallel if (shares.parallel())
  shares.run([&](int64_t t) {
    const int64_t n = t / bands, oh0 = t % bands * rows, oh1 = std::min(Ho, oh0 + rows);
    const int64_t R = oh1 - oh0 + halo, plane = R * Wo + nr;  // + nr: the band's last tile reads past its end
    T* S = scratch_col.get<T>(C * kW * plane);
    const T* tap[kFewChannelsMaxK];
    {
      GRADCORE_PHASE("conv2d_forward/shifted_copies");
      for (int64_t c = 0; c < C; ++c) {
        const T* xc = px + (n * C + c) * H * W;
        for (int64_t kw = 0; kw < kW; ++kw) {
          T* s = S + (c * kW + kw) * plane;
          const int64_t shift = kw * dw - p.pad_left;  // input column of output column ow: ow + shift
          const int64_t lo = std::clamp<int64_t>(-shift, 0, Wo), hi = std::clamp<int64_t>(W - shift, lo, Wo);
          for (int64_t r = 0; r < R; ++r) {
            T* row = s + r * Wo;
            const int64_t ih = oh0 - p.pad_top + r;
            if (ih < 0 || ih >= H) {
              std::fill(row, row + Wo, T(0));
              continue;
            }
            std::fill(row, row + lo, T(0));
            std::memcpy(row + lo, xc + ih * W + lo + shift, sizeof(T) * (size_t)(hi - lo));
            std::fill(row + hi, row + Wo, T(0));
          }
          std::fill(s + R * Wo, s + plane, T(0));
          for (int64_t kh = 0; kh < kH; ++kh) tap[(c * kH + kh) * kW + kw] = s + kh * dh * Wo;
        }
      }
    }
    GRADCORE_PHASE("conv2d_forward/direct");
    const int64_t band_pixels = (oh1 - oh0) * Wo;
    T* y_band = py + n * M * P + oh0 * Wo;
    for (int64_t q = 0; q < band_pixels; q += nr) {
      const int64_t n_valid = std::min(nr, band_pixels - q);
      for (int64_t i0 = 0; i0 < M; i0 += kMr)
        tile_rows<T, kMr>(M - i0, K, packed_w.ptr + i0 * K, tap, q, y_band + i0 * P + q, P, n_valid,
                          pb ? pb + i0 : nullptr, relu, stream);
    }
    if (stream) stream_fence();  // the task's non-temporal stores, ordered before its end
  });
}

// ---- the input gradient (conv_transpose2d's forward) ------------------------------------------------------------
// gx = col2im(dcol), dcol (K x pixels of gy) = W^T (K x C_out) * gy (C_out x pixels): conv2d_backward_input.cpp's GEMM
// path without its packed B (gy's rows are read where they lie: strips of nr pixels of all C_out channel rows, W^T's
// column for channel m is w's row m, contiguous along k). The tile runs gemm.h's FMA step (tile_step) from zero in
// increasing m, kKc channels per block with the blocks' sums added as the GEMM adds them, so dcol has the GEMM path's
// bits; col2im then adds the K taps in increasing k onto zero, then the bias, then the activation, as there.

// Rows of dcol one tile holds (2 vectors each); K is cut into the fewest groups of at most this many.
constexpr int kDcolMaxRows = 12;

// dcol rows [0, ROWS) of w's columns k0.. (w + k0, row stride K) for the nr pixels at b (channel m's at b + m ldb),
// into out (row stride ldo).
template <typename T, int ROWS>
inline void dcol_tile(int64_t M, const T* w, int64_t K, const T* b, int64_t ldb, T* out, int64_t ldo) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  for (int64_t m0 = 0; m0 < std::max<int64_t>(M, 1); m0 += kKc) {  // (no channels: dcol = 0)
    V acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) acc0[i] = acc1[i] = V{};
    for (int64_t m = m0; m < std::min(M, m0 + kKc); ++m)
      tile_step<T, ROWS>(acc0, acc1, w + m * K, 1, load_vec(b + m * ldb), load_vec(b + m * ldb + L));
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      if (m0 > 0) {  // a later block of channels: added to the earlier blocks' sum, as the GEMM's accumulate does
        acc0[i] += load_vec(out + i * ldo);
        acc1[i] += load_vec(out + i * ldo + L);
      }
      store_vec(out + i * ldo, acc0[i]);
      store_vec(out + i * ldo + L, acc1[i]);
    }
  }
}

template <typename T, int ROWS>
void dcol_tile_rows(int64_t rows, int64_t M, const T* w, int64_t K, const T* b, int64_t ldb, T* out, int64_t ldo) {
  if constexpr (ROWS > 1) {
    if (rows < ROWS) return dcol_tile_rows<T, ROWS - 1>(rows, M, w, K, b, ldb, out, ldo);
  }
  dcol_tile<T, ROWS>(M, w, K, b, ldb, out, ldo);
}

template <typename T>
void backward_input(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p) {
  const int64_t N = p.batch, Cin = p.in_channels, H = p.in_h, W = p.in_w, M = p.out_channels, K = p.gemm_k();
  const int64_t kH = p.kernel_h, kW = p.kernel_w, dh = p.dilation_h, Ho = p.out_h, Wo = p.out_w, P = Ho * Wo;
  constexpr int64_t nr = nr_of<T>();
  const T* pg = gy.data_as<T>();
  const T* pw = w.data_as<T>();
  const T* pb = bias.numel() ? bias.data_as<T>() : nullptr;
  T* px = gx.data_as<T>();
  const int64_t row_groups = (K + kDcolMaxRows - 1) / kDcolMaxRows, group_rows = (K + row_groups - 1) / row_groups;
  // Bands of gx rows, as the forward's: enough tasks for every thread to get several, and a dcol that stays in
  // cache. A band's dcol covers the gy rows its taps read (a halo of (kH - 1) dh rows, computed by both bands).
  const bool parallel = N * M * P * K >= kParallelThreshold;  // multiply-adds
  const int64_t halo = (kH - 1) * dh;
  const int64_t rows = band_rows(N, parallel ? max_threads() : 1, H, K * Wo, halo);
  const int64_t bands = (H + rows - 1) / rows, tasks = N * bands;
  TaskShares shares(tasks, parallel);  // (parallel.h: outputs stay with one core)
#pragma omp parallel if (shares.parallel())
  shares.run([&](int64_t t) {
    const int64_t n = t / bands, band = t % bands, ih0 = band * rows, ih1 = std::min(H, ih0 + rows);
    // the gy rows [oh0, oh1) that the band's gx rows read: ih = oh - pad_top + kh dh for some kh
    const int64_t oh0 = std::clamp<int64_t>(ih0 + p.pad_top - halo, 0, Ho);
    const int64_t oh1 = std::clamp<int64_t>(ih1 + p.pad_top, oh0, Ho);
    const int64_t cols = (oh1 - oh0) * Wo, ld = round_up(std::max<int64_t>(cols, 1), nr), strips = ld / nr;
    T* dcol = scratch_col.get<T>(K * ld + M * nr);
    T* tail = dcol + K * ld;  // the plane's last strip, zero-padded (reading on would leave gy at its last row)
    const T* gy_n = pg + n * M * P;
    {
      GRADCORE_PHASE("conv2d_backward_input/few_channels_dcol");
      for (int64_t s = 0; s < strips; ++s) {
        const int64_t q = oh0 * Wo + s * nr;
        const T* b = gy_n + q;
        int64_t ldb = P;
        if (q + nr > P) {
          for (int64_t m = 0; m < M; ++m) {
            std::copy(gy_n + m * P + q, gy_n + (m + 1) * P, tail + m * nr);
            std::fill(tail + m * nr + (P - q), tail + (m + 1) * nr, T(0));
          }
          b = tail, ldb = nr;
        }
        for (int64_t k0 = 0; k0 < K; k0 += group_rows)
          dcol_tile_rows<T, kDcolMaxRows>(std::min(group_rows, K - k0), M, pw + k0, K, b, ldb, dcol + k0 * ld + s * nr,
                                          ld);
      }
    }
    GRADCORE_PHASE("conv2d_backward_input/col2im");
    T* gx_n = px + n * Cin * H * W;
    for (int64_t c = 0; c < Cin; ++c) std::fill(gx_n + (c * H + ih0) * W, gx_n + (c * H + ih1) * W, T(0));
    for (int64_t k = 0; k < K; ++k) {  // col2im_add's order (cpu/im2col.h), on this band's rows
      const int64_t ci = k / (kH * kW), kh = k / kW % kH;
      const RowWindow win(p, k % kW);
      for (int64_t oh = oh0; oh < oh1; ++oh) {
        const int64_t ih = oh - p.pad_top + kh * dh;
        if (ih < ih0 || ih >= ih1) continue;
        T* row = gx_n + (ci * H + ih) * W + win.iw0;
        const T* d = dcol + k * ld + (oh - oh0) * Wo;
        for (int64_t ow = win.ow_lo; ow < win.ow_hi; ++ow) row[ow] += d[ow];
      }
    }
    for (int64_t c = 0; c < Cin; ++c) {
      T* gx_band = gx_n + (c * H + ih0) * W;
      const int64_t count = (ih1 - ih0) * W;
      if (pb)
        for (int64_t e = 0; e < count; ++e) gx_band[e] += pb[c];
      activate_span(gx_band, count, p.activation);
    }
  });
}

}  // namespace

bool few_channels_forward_applies(const Conv2dParams& p) {
  return p.groups == 1 && p.stride_h == 1 && p.stride_w == 1 && p.gemm_k() <= kFewChannelsMaxK;
}

void conv2d_few_channels_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y,
                                     const Conv2dParams& p) {
  if (y.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) { forward<decltype(zero)>(x, w, bias, y, p); });
}

bool few_channels_backward_input_applies(const Conv2dParams& p) {
  return few_channels_forward_applies(p);  // the same shapes: K <= 27 keeps dcol's tile rows in registers as well
}

void conv2d_few_channels_backward_input_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx,
                                            const Conv2dParams& p) {
  if (gx.numel() == 0) return;
  dispatch_float(gy.dtype(), [&](auto zero) { backward_input<decltype(zero)>(gy, w, bias, gx, p); });
}

}  // namespace gradcore
