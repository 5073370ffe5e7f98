// CPU conv2d weight gradient (conv_transpose2d's too, with x and gy swapped); the maths is in conv2d.h:
// dW_g (C_out/G x K) = sum over images and output pixels of gy_g (C_out/G x N P) * im2col(x)_g^T (N P x K).
// The reduction runs over N P (long), the product's sides are small, so three algorithms, chosen by the shape:
//   direct  one GEMM per kernel tap, x read in place (a tap only moves where the walk over x starts) against gy
//           copied once with its channels innermost: no im2col at all. Tiles are kMr input channels by one or two
//           vectors of output channels; each runs the whole reduction in one chain of multiply-adds. The default.
//   dots    a short im2col (2K <= C_out/G, e.g. one input channel): the im2col rows are materialised (K is small)
//           and blocks of dW are dot products over gy's own rows, in vector lanes, per chunk of images (chunks fixed
//           by N); the chunks' partial lanes are added in chunk order, then the lanes in lane order.
//   strips  the im2col GEMM (gy as packed A panels, im2col^T as packed B strips), where the direct tiles would be
//           mostly padding (C_in/G of 1 or 2 with few output channels).
// 3x3 convolutions of stride 1 or 2 with enough channels go to Winograd first (conv2d_backward_weight_winograd.cpp,
// which has the rule: at stride 2, small images or >= 128 channels). Depthwise convolutions go to conv2d_depthwise.h. Every dW element (or partial sum) belongs to one task at a time and
// is summed in an order fixed by the shapes, so results are the same for any thread count.
// Where the time goes (single thread, float32, seed autoencoder layers): the direct tiles run at ~110 GFLOP/s per
// core, the gy copy is 1-3% of the time; dots spend ~20% in im2col. Phases: conv2d_backward_weight/{pack,gemm,reduce}.
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>
#include "conv2d.h"
#include "cpu/block_channels.h"
#include "cpu/conv2d_backward_weight_winograd.h"
#include "cpu/conv2d_depthwise.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"
#include "cpu/simd.h"
namespace gradcore {

namespace {

using namespace cpu;

// Weight gradient for a short im2col (K much smaller than C_out/G, e.g. a first layer with one input channel):
// dW_g (M x K) = sum_n gy_{n,g} (M x P) col_{n,g}^T (P x K), where gy's rows are already contiguous along the pixels,
// so nothing of gy is packed. im2col goes to plain rows (K x P per image and group, zero-padded to whole vectors);
// then each BM x BK block of dW is kept as BM * BK vectors of partial sums, lane l summing the pixels l, l + L, ...
// of the images in order, and no horizontal sum is paid per image.
// Output width from which the short im2col copies row runs instead of gathering through the tap table.
constexpr int64_t kDotsRowRunMinWidth = 16;
// Images from which the dots' tasks own chunks of images (below, blocks of dW): from the shape alone.
constexpr int64_t kDotsImageChunksFrom = 8;

// row[(oh, ow)] = x[ih, iw] (0 for padding) for one tap (kh, win) over all P output pixels: per output row a zero run,
// a copy (every s_w-th value when strided) and a zero run.
template <typename T>
void im2col_row(const T* plane, const Conv2dParams& p, int64_t kh, const RowWindow& win, T* row) {
  const int64_t Wo = p.out_w, sw = p.stride_w;
  for (int64_t oh = 0; oh < p.out_h; ++oh) {
    T* d = row + oh * Wo;
    const int64_t ih = oh * p.stride_h - p.pad_top + kh * p.dilation_h;
    if (ih < 0 || ih >= p.in_h) {
      std::fill(d, d + Wo, T(0));
      continue;
    }
    const T* s = plane + ih * p.in_w + win.iw0;  // x column of ow = 0
    std::fill(d, d + win.ow_lo, T(0));
    if (sw == 1)
      std::copy(s + win.ow_lo, s + win.ow_hi, d + win.ow_lo);
    else
      for (int64_t ow = win.ow_lo; ow < win.ow_hi; ++ow) d[ow] = s[ow * sw];
    std::fill(d + win.ow_hi, d + Wo, T(0));
  }
}

template <typename T, int BM, int BK>
void dots_block(const T* pg, const T* col, int64_t images, int64_t P, int64_t P_pad, int64_t gy_image,
                int64_t col_image, int64_t m_valid, int64_t k_valid, T* lanes, bool accumulate) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  V acc[BM][BK];
  for (int r = 0; r < BM; ++r)
    for (int s = 0; s < BK; ++s) acc[r][s] = accumulate ? load_vec(lanes + (r * BK + s) * L) : V{};
  for (int64_t i = 0; i < images; ++i) {
    const T* a[BM];
    const T* c[BK];
    for (int r = 0; r < BM; ++r) a[r] = pg + i * gy_image + std::min<int64_t>(r, m_valid - 1) * P;  // past the edge:
    for (int s = 0; s < BK; ++s) c[s] = col + i * col_image + std::min<int64_t>(s, k_valid - 1) * P_pad;  // dropped
    int64_t q = 0;
    for (; q + L <= P; q += L) {
      V cv[BK];
      for (int s = 0; s < BK; ++s) {
        cv[s] = load_vec(c[s] + q);
#if defined(__x86_64__)
        // Keeps the col vectors in registers: folded into each multiply-add as a memory operand instead, they are
        // loaded BM times, and the loop becomes bound by loads (Zen 4: one 64-byte load per cycle).
        asm("" : "+v"(cv[s]));
#endif
      }
      for (int r = 0; r < BM; ++r) {
        const V av = load_vec(a[r] + q);
        for (int s = 0; s < BK; ++s) acc[r][s] += av * cv[s];
      }
    }
    if (q < P) {  // the last, partial vector: gy's tail through a zero-padded copy (col is zero there already)
      V cv[BK];
      for (int s = 0; s < BK; ++s) cv[s] = load_vec(c[s] + q);
      for (int r = 0; r < BM; ++r) {
        alignas(64) T tail[L] = {};
        std::copy(a[r] + q, a[r] + P, tail);
        const V av = load_vec(tail);
        for (int s = 0; s < BK; ++s) acc[r][s] += av * cv[s];
      }
    }
  }
  for (int r = 0; r < BM; ++r)
    for (int s = 0; s < BK; ++s) store_vec(lanes + (r * BK + s) * L, acc[r][s]);
}

// The dots paths' im2col of one image and group: K rows of P_pad columns (the padding zeroed) at col, copying row
// runs for wide outputs and gathering through the tap table for narrow ones.
template <typename T>
void dots_im2col(const T* x_group, const Conv2dParams& p, const TapTable& taps, const std::vector<RowWindow>& windows,
                 T* col, int64_t P_pad) {
  const int64_t K = p.gemm_k(), P = p.out_pixels(), HW = p.in_pixels(), taps_per_channel = p.kernel_h * p.kernel_w;
  for (int64_t k = 0; k < K; ++k) {
    T* row = col + k * P_pad;
    const T* plane = x_group + (k / taps_per_channel) * HW;
    if (p.out_w >= kDotsRowRunMinWidth)
      im2col_row(plane, p, k / p.kernel_w % p.kernel_h, windows[k % p.kernel_w], row);
    else
      gather_taps(plane, taps.tap(k % taps_per_channel), P, row, (int64_t)1);
    std::fill(row + P, row + P_pad, T(0));
  }
}

// dW block columns per task (BK) for K: the fewest blocks of at most 9 columns, so K = 9 (3x3, one channel) is one
// block; rows per task (BM): as many as keep BM * BK accumulators and BK column vectors in the registers.
template <typename T, int BK> struct DotsShape {
  static constexpr int rows = std::min(8, 24 / BK);
};

// What both dots paths share: the shapes, the im2col of one image's group of channels, and dW cut into blocks of
// BM rows by BK columns per group, numbered t over (group, row block, column block).
template <typename T, int BK> struct DotsBlocks {
  static constexpr int L = Simd<T>::lanes;
  static constexpr int BM = DotsShape<T, BK>::rows;
  const Conv2dParams& p;
  const int64_t G, M, K, P, N, Cout, P_pad;
  const TapTable taps;
  const std::vector<RowWindow> windows;
  const int64_t m_blocks, k_blocks, blocks;
  struct Block {
    int64_t g, m0, k0, rows, cols;
  };

  explicit DotsBlocks(const Conv2dParams& params)
      : p(params), G(p.groups), M(p.out_per_group()), K(p.gemm_k()), P(p.out_pixels()), N(p.batch),
        Cout(p.out_channels), P_pad(round_up(P, L)), taps(p), windows(row_windows(p)), m_blocks((M + BM - 1) / BM),
        k_blocks((K + BK - 1) / BK), blocks(G * m_blocks * k_blocks) {}

  Block block(int64_t t) const {
    const int64_t g = t / (m_blocks * k_blocks), m0 = t / k_blocks % m_blocks * BM, k0 = t % k_blocks * BK;
    return {g, m0, k0, std::min<int64_t>(BM, M - m0), std::min<int64_t>(BK, K - k0)};
  }
  // Image n's group g of x as K rows of P_pad columns at col.
  void im2col(const T* px, int64_t n, int64_t g, T* col) const {
    dots_im2col(px + (n * p.in_channels + g * p.in_per_group()) * p.in_pixels(), p, taps, windows, col, P_pad);
  }
  // Block t's lane sums over `count` images from image n, whose im2cols follow each other at col (G * K * P_pad
  // apart); `accumulate` adds to the lanes instead of starting them.
  void dots(const T* pg, const T* col, int64_t n, int64_t count, int64_t t, T* lanes, bool accumulate) const {
    const Block b = block(t);
    dots_block<T, BM, BK>(pg + (n * Cout + b.g * M + b.m0) * P, col + (b.g * K + b.k0) * P_pad, count, P, P_pad,
                          Cout * P, G * K * P_pad, b.rows, b.cols, lanes, accumulate);
  }
  // Writes dW's entries of block t, each the sum of its L lanes (lane_vector(at, lanes) fills the lanes of the
  // entry at at).
  template <typename LaneVector> void write(T* pw, int64_t t, LaneVector&& lane_vector) const {
    const Block b = block(t);
    for (int64_t r = 0; r < b.rows; ++r)
      for (int64_t s = 0; s < b.cols; ++s) {
        T lanes[L];
        lane_vector((t * BM * BK + r * BK + s) * L, lanes);
        T sum = lanes[0];
        for (int l = 1; l < L; ++l) sum += lanes[l];
        pw[(b.g * M + b.m0 + r) * K + b.k0 + s] = sum;
      }
  }
};

// Few images (N < kDotsImageChunksFrom): tasks own blocks of dW over all the images instead, reading an im2col made
// by all threads (chunks of images would leave threads idle).
template <typename T, int BK>
void backward_weight_dots_by_block(const T* px, const T* pg, T* pw, const Conv2dParams& p, bool parallel) {
  const DotsBlocks<T, BK> d(p);
  const int64_t per_chunk =
      std::clamp<int64_t>((int64_t)((4u << 20) / sizeof(T)) / std::max<int64_t>(d.G * d.K * d.P_pad, 1), 1, d.N);
  T* col = scratch_col.get<T>(per_chunk * d.G * d.K * d.P_pad);
  T* lanes = scratch_packed_b.get<T>(d.blocks * d.BM * BK * d.L);
#pragma omp parallel if (parallel)
  for (int64_t n0 = 0; n0 < d.N; n0 += per_chunk) {
    const int64_t count = std::min(per_chunk, d.N - n0);
    {
      GRADCORE_PHASE("conv2d_backward_weight/pack");
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < count * d.G; ++t) d.im2col(px, n0 + t / d.G, t % d.G, col + t * d.K * d.P_pad);
    }
    GRADCORE_PHASE("conv2d_backward_weight/gemm");
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < d.blocks; ++t) d.dots(pg, col, n0, count, t, lanes + t * d.BM * BK * d.L, n0 > 0);
  }
  GRADCORE_PHASE("conv2d_backward_weight/reduce");
  for (int64_t t = 0; t < d.blocks; ++t)
    d.write(pw, t, [&](int64_t at, T* out) { std::copy(lanes + at, lanes + at + d.L, out); });
}

template <typename T, int BK>
void backward_weight_dots_bk(const T* px, const T* pg, T* pw, const Conv2dParams& p, bool parallel) {
  const DotsBlocks<T, BK> d(p);
  const int64_t N = d.N, blocks = d.blocks, block_lanes = d.BM * BK * d.L;
  // The images go in at most 16 chunks (from N alone); a task takes a chunk, makes each image's im2col in its own
  // cache and runs every dW block over it, into the chunk's own partial lane sums. Then each block adds its chunks'
  // partials in chunk order. (Tasks owning dW blocks over all images instead read every image's im2col, made by
  // both threads, from L3: 2 threads were no faster than 1.)
  if (N < kDotsImageChunksFrom) return backward_weight_dots_by_block<T, BK>(px, pg, pw, p, parallel);
  const int64_t per_chunk = (N + 15) / 16, chunks = (N + per_chunk - 1) / per_chunk;
  T* partial = scratch_packed_b.get<T>(chunks * blocks * block_lanes);
#pragma omp parallel if (parallel)
  {
    T* col = scratch_col.get<T>(d.G * d.K * d.P_pad);  // this thread's
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) {
      T* part = partial + c * blocks * block_lanes;
      for (int64_t n = c * per_chunk; n < std::min(N, (c + 1) * per_chunk); ++n) {
        {
          GRADCORE_PHASE("conv2d_backward_weight/pack");
          for (int64_t g = 0; g < d.G; ++g) d.im2col(px, n, g, col + g * d.K * d.P_pad);
        }
        GRADCORE_PHASE("conv2d_backward_weight/gemm");
        // col holds image n alone: dots reads it as image 0 of one.
        for (int64_t t = 0; t < blocks; ++t)
          d.dots(pg + n * d.Cout * d.P, col, 0, 1, t, part + t * block_lanes, n > c * per_chunk);
      }
    }
    GRADCORE_PHASE("conv2d_backward_weight/reduce");
#pragma omp for schedule(static)
    for (int64_t t = 0; t < blocks; ++t)
      d.write(pw, t, [&](int64_t at, T* lanes) {
        for (int l = 0; l < d.L; ++l) lanes[l] = partial[at + l];
        for (int64_t c = 1; c < chunks; ++c)
          for (int l = 0; l < d.L; ++l) lanes[l] += partial[c * blocks * block_lanes + at + l];
      });
  }
}

template <typename T>
void backward_weight_dots(const T* px, const T* pg, T* pw, const Conv2dParams& p, bool parallel) {
  const int64_t K = p.gemm_k(), blocks = (K + 8) / 9, bk = (K + blocks - 1) / blocks;  // bk in [1, 9]
  switch (bk) {
    case 1: return backward_weight_dots_bk<T, 1>(px, pg, pw, p, parallel);
    case 2: return backward_weight_dots_bk<T, 2>(px, pg, pw, p, parallel);
    case 3: return backward_weight_dots_bk<T, 3>(px, pg, pw, p, parallel);
    case 4: return backward_weight_dots_bk<T, 4>(px, pg, pw, p, parallel);
    case 5: return backward_weight_dots_bk<T, 5>(px, pg, pw, p, parallel);
    case 6: return backward_weight_dots_bk<T, 6>(px, pg, pw, p, parallel);
    case 7: return backward_weight_dots_bk<T, 7>(px, pg, pw, p, parallel);
    case 8: return backward_weight_dots_bk<T, 8>(px, pg, pw, p, parallel);
    default: return backward_weight_dots_bk<T, 9>(px, pg, pw, p, parallel);
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
#pragma omp for schedule(dynamic, 1)
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

// ---- direct: an implicit GEMM per kernel tap, x read in place, gy channel-blocked ------------------------------
//
// For tap t = (kh, kw), dW[co, ci, t] = sum_{n, oh, ow} x[n, ci, oh s_h - pad_top + kh d_h, ow s_w - pad_left + kw d_w]
// * gy[n, co, oh, ow]: a GEMM (C_in/G x N P) * (N P x C_out/G) per tap. Nothing is expanded 9-fold as im2col would:
//   A (kMr rows of C_in): read where x lies: a step (one output pixel) broadcasts one value from each of kMr channel
//     planes, all at the same offset, which moves by s_w along an output row and by s_h W between rows. A tap only
//     moves the start; the output pixels whose input is padding are left out of its walk (they add zeros), so x needs
//     no padded copy.
//   B (nr columns of C_out): gy, copied once with its channels innermost (blocks of nr channels as [P][nr]), so a step
//     reads nr consecutive values.
// Each C tile (kMr x nr of one tap and group) belongs to one task at a time, and its accumulators run the reduction
// as one chain of multiply-adds in (n, oh, ow) order, loaded from the tile (not started at zero) between image
// chunks; so neither the chunking nor the thread count can change a bit.

// The outputs o in [lo, hi) whose input o s - pad + k d lies inside [0, size): the rest read padding.
struct OutputRange {
  int64_t lo, hi;
  OutputRange(int64_t size, int64_t out, int64_t s, int64_t pad, int64_t kd) {
    const int64_t first = pad - kd, end = size + pad - kd;  // o s in [first, end)
    lo = std::min(out, first <= 0 ? (int64_t)0 : (first + s - 1) / s);
    hi = std::clamp<int64_t>(end <= 0 ? 0 : (end + s - 1) / s, lo, out);
  }
};

// How a tile's operand is walked: element (image i, output row oh, output column ow) at base + i img + oh row + ow col.
struct Walk {
  int64_t img, row, col;
};

// C tile (kMr x NV vectors, row stride ldc) [+]= sum over images, rows and columns of the walk of a[r][.] (kMr rows,
// walked by wa) times the NV vectors at b (walked by wb), one multiply-add chain per element, starting from C when
// accumulating.
template <typename T, int NV>
void direct_tile(int64_t images, int64_t rows, int64_t cols, const T* const* a, Walk wa, const T* b, Walk wb, T* c,
                 int64_t ldc, bool accumulate) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  V acc[NV][kMr];
  for (int v = 0; v < NV; ++v)
    for (int i = 0; i < kMr; ++i) acc[v][i] = accumulate ? load_vec(c + i * ldc + v * L) : V{};
  const T* ar[kMr];
  for (int i = 0; i < kMr; ++i) ar[i] = a[i];
  for (int64_t n = 0; n < images; ++n) {
    for (int64_t oh = 0; oh < rows; ++oh) {
      int64_t o = n * wa.img + oh * wa.row;
      const T* bp = b + n * wb.img + oh * wb.row;
      for (int64_t ow = 0; ow < cols; ++ow) {
        V bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = load_vec(bp + v * L);
        for (int i = 0; i < kMr; ++i) {
          const V ai = broadcast<T>(ar[i][o]);
          for (int v = 0; v < NV; ++v) acc[v][i] += ai * bv[v];
        }
        o += wa.col;
        bp += wb.col;
      }
    }
  }
  for (int v = 0; v < NV; ++v)
    for (int i = 0; i < kMr; ++i) store_vec(c + i * ldc + v * L, acc[v][i]);
}

// gy's block width in vectors: two (nr columns, as the GEMM's micro-kernel), or one where that pads C_out/G less
// (C_out/G <= one vector, or e.g. 40 = 3 x 16 instead of 2 x 32).
template <typename T> int direct_vectors(const Conv2dParams& p) {
  constexpr int64_t L = Simd<T>::lanes;
  const int64_t M = p.out_per_group();
  return round_up(M, L) < round_up(M, 2 * L) ? 1 : 2;
}

// The share of the direct path's multiply-adds that are useful (the rest is padding of C_in/G to kMr rows and of
// C_out/G to whole blocks).
template <typename T> double direct_efficiency(const Conv2dParams& p) {
  const int64_t M = p.out_per_group(), C = p.in_per_group(), width = direct_vectors<T>(p) * Simd<T>::lanes;
  return (double)(M * C) / (double)(round_up(C, kMr) * round_up(M, width));
}

template <typename T, int NV>
void backward_weight_direct(const T* px, const T* pg, T* pw, const Conv2dParams& p, bool parallel) {
  constexpr int64_t nr = NV * Simd<T>::lanes;  // gy's block width: the tile's columns
  const int64_t G = p.groups, M = p.out_per_group(), C = p.in_per_group(), N = p.batch, Cin = p.in_channels;
  const int64_t H = p.in_h, W = p.in_w, HW = p.in_pixels(), Ho = p.out_h, Wo = p.out_w, P = p.out_pixels();
  const int64_t kW = p.kernel_w, taps = p.kernel_h * kW;
  const int64_t x_blocks = (C + kMr - 1) / kMr, g_blocks = (M + nr - 1) / nr;
  // The reduction goes in chunks whose x and gy about fit a core's L2 (every tile of a chunk reads all of it):
  // several whole images, or, where one image is larger, bands of `band` output rows of one image. A chunk's gy is
  // blocked as [image][g][block][band rows][Wo][nr].
  const int64_t budget = (int64_t)((512u << 10) / sizeof(T));
  const int64_t per_row = Cin * W * p.stride_h + G * g_blocks * Wo * nr;  // x and blocked gy per output row
  const int64_t chunk = std::clamp<int64_t>(budget / std::max<int64_t>(per_row * Ho, 1), 1, N);
  const int64_t band = chunk > 1 ? Ho : std::clamp<int64_t>(budget / std::max<int64_t>(per_row, 1), 1, Ho);
  const int64_t g_image = G * g_blocks * band * Wo * nr;  // blocked gy of one image of a chunk
  T* gb = scratch_col.get<T>(chunk * g_image);
  // dW by tap: dwt[g][tap][rows][cols], rows C_in (kMr-padded), cols C_out (nr-padded)
  const int64_t rows = x_blocks * kMr, cols = g_blocks * nr, tiles = G * taps * x_blocks * g_blocks;
  T* dwt = scratch_packed_b.get<T>(G * taps * rows * cols);
  const Walk x_walk{Cin * HW, p.stride_h * W, p.stride_w}, g_walk{g_image, Wo * nr, nr};
#pragma omp parallel if (parallel)
  {
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      for (int64_t oh0 = 0; oh0 < Ho; oh0 += band) {
        const int64_t count = std::min(chunk, N - n0), oh1 = std::min(Ho, oh0 + band);
        {
          GRADCORE_PHASE("conv2d_backward_weight/pack");
#pragma omp for schedule(dynamic, 1)
          for (int64_t t = 0; t < count * G * g_blocks; ++t)
            block_channels(pg + (n0 * G * M + t / g_blocks * M) * P + oh0 * Wo, M, P, (oh1 - oh0) * Wo, t % g_blocks,
                           nr, gb + t * band * Wo * nr);
        }
        GRADCORE_PHASE("conv2d_backward_weight/gemm");
        // Tiles go to whichever thread is free (a tile's sum does not depend on who computes it, so one stalled
        // thread on a busy machine does not hold the other up); tiles of one x panel and tap follow each other.
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t cb = t % g_blocks, rb = t / g_blocks % x_blocks, tap = t / (g_blocks * x_blocks) % taps;
          const int64_t g = t / (g_blocks * x_blocks * taps), kh = tap / kW, kw = tap % kW;
          const OutputRange oh(H, Ho, p.stride_h, p.pad_top, kh * p.dilation_h);
          const OutputRange ow(W, Wo, p.stride_w, p.pad_left, kw * p.dilation_w);
          const int64_t r0 = std::clamp(oh.lo, oh0, oh1), r1 = std::clamp(oh.hi, r0, oh1);  // this band's rows
          const int64_t ih = r0 * p.stride_h - p.pad_top + kh * p.dilation_h;
          const int64_t iw = ow.lo * p.stride_w - p.pad_left + kw * p.dilation_w;
          const T* a[kMr];
          for (int64_t i = 0; i < kMr; ++i)  // rows past C_in repeat the last channel; their sums are never read
            a[i] = px + (n0 * Cin + g * C + std::min(rb * kMr + i, C - 1)) * HW + ih * W + iw;
          const T* b = gb + (g * g_blocks + cb) * band * Wo * nr + ((r0 - oh0) * Wo + ow.lo) * nr;
          T* c = dwt + ((g * taps + tap) * rows + rb * kMr) * cols + cb * nr;
          direct_tile<T, NV>(count, r1 - r0, ow.hi - ow.lo, a, x_walk, b, g_walk, c, cols, n0 + oh0 > 0);
        }
      }
    }
    GRADCORE_PHASE("conv2d_backward_weight/reduce");  // dW[co, ci, tap] from the tiles, by rows of dW
#pragma omp for schedule(static)
    for (int64_t gm = 0; gm < G * M; ++gm) {
      const int64_t g = gm / M, m = gm % M;
      T* w = pw + gm * C * taps;
      for (int64_t tap = 0; tap < taps; ++tap) {
        const T* tile_column = dwt + (g * taps + tap) * rows * cols + m;
        for (int64_t c = 0; c < C; ++c) w[c * taps + tap] = tile_column[c * cols];
      }
    }
  }
}

template <typename T> void backward_weight(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  GRADCORE_PHASE("conv2d_backward_weight");
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels();
  const T* px = x.data_as<T>();
  const T* pg = gy.data_as<T>();
  T* pw = gw.data_as<T>();
  std::memset(pw, 0, sizeof(T) * G * M * K);
  if (N == 0) return;
  const bool parallel = N * Cout * P * K >= kParallelThreshold;  // multiply-adds
  if (is_depthwise(p)) {  // one thread per channel, images in order
    depthwise_backward_weight(px, pg, pw, p, parallel);
    return;
  }
  if (winograd_backward_weight_applies(p)) {
    conv2d_winograd_backward_weight_cpu(x, gy, gw, p);
    return;
  }
  if (2 * K <= M) {
    backward_weight_dots(px, pg, pw, p, parallel);
    return;
  }
  // Direct while at least ~30% of its multiply-adds are useful: it beats the strips' im2col by 2x at 50% (C_in/G =
  // C_out/G = 16) and loses by 15% at 19% (3 -> 16 channels), single-thread.
  if (direct_efficiency<T>(p) >= 0.3) {
    if (direct_vectors<T>(p) == 1)
      backward_weight_direct<T, 1>(px, pg, pw, p, parallel);
    else
      backward_weight_direct<T, 2>(px, pg, pw, p, parallel);
    return;
  }
  backward_weight_strips(px, pg, pw, p, parallel);
}

}  // namespace

void conv2d_backward_weight_cpu(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  if (gw.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) { backward_weight<decltype(zero)>(x, gy, gw, p); });
}

}  // namespace gradcore
