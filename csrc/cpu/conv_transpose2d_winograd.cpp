// The stride-2, 3x3 transposed convolution (conv2d's input gradient = conv_transpose2d's forward; gx twice gy's size)
// with 25 multiplies per 4x4 block of outputs instead of 36, by Winograd's minimal filtering on the odd output phase.
//
// The maths along one side (rows or columns), in conv2d.h's notation (gy the operand, gx the result, w0 w1 w2 the
// taps). Padding 1 (conv_transpose2d(padding=1, output_padding=1)):
//   gx[2j] = w1 gy[j],   gx[2j + 1] = w2 gy[j] + w0 gy[j + 1]      (gy read as 0 outside it)
// The even phase is a 1-tap filter, the odd phase a 2-tap one. Over a block ("tile") of 4 outputs 4b .. 4b + 3 from
// x0, x1, x2 = gy[2b], gy[2b + 1], gy[2b + 2], the odd phase runs F(2, 2): five products ("points") instead of six,
//   point 0: x0 w1              -> out 0
//   point 1: x1 w1              -> out 2
//   point 2: (x0 - x1) w2       -> out 1
//   point 3: x1 (w0 + w2)       -> out 1 and out 3
//   point 4: (x2 - x1) w0       -> out 3
//   out 0 = m0,  out 1 = m2 + m3 = x0 w2 + x1 w0,  out 2 = m1,  out 3 = m3 + m4 = x1 w2 + x2 w0.
// Padding 0 (conv_transpose2d(padding="same"): gx[2j] = w0 gy[j] + w2 gy[j - 1], gx[2j + 1] = w1 gy[j]) is the same
// with the tile starting at an odd output: x0, x1, x2 = gy[2b - 1], gy[2b], gy[2b + 1], points 0 and 1 read x1 and
// x2 (w1 each), and out 0 = m2 + m3, out 1 = m0, out 2 = m3 + m4, out 3 = m1 (the tiles' "form", kOutputOf).
// The points read four input combinations ("planes"): X0 (x0, or x2 at padding 0), X1 = x1 (two points), D0 = x0 -
// x1, D2 = x2 - x1. In two dimensions a product is a pair (row point, column point): 25 products per 4x4 tile from 16
// planes; its weight is the row point's combination of the column point's combinations of w[co, ci], and its sum
// over the gy channels co, for all tiles at once, is a GEMM per plane:
//   M_q (tiles x (products of q) ci) = V_q (tiles x co) U_q (co x (products of q) ci)
// where the products that read one plane (1, 2 or 4: X1 is shared along each side) are stacked along the columns,
// so each transformed input is made once. Output transform: per row point, the column outputs (the 1-D rule), then
// the row outputs from those; then the bias, then the activation epilogue (epilogue.h's relu, the same bits).
// When gy has an odd size, the last tile along that side has only outputs 0 and 1 inside gx, and the points that
// read only gy[Ho] = 0 or feed only outputs past gx's end are dropped: it keeps two planes (kPartialKeeps), so a 7x7
// gy costs 17 x 17 = 289 products per channel pair instead of the direct path's 441 (0.66x), a 14x14 gy 1225
// instead of 1764 (0.69x).
//
// The work, per task (a chunk of consecutive tile rows, images one after another; its size from the shapes only):
// the task copies the gy rows it reads with the channels innermost (16x16 register transposes), so that the input
// transform makes each plane's values for 16 channels of one tile as one vector and stores them as a row of the
// plane's A (tiles x co, row-major); gemm.h's micro-kernel reads those rows in place (DIRECT_A) against U_q, packed
// as its B once per call (the weight transform, ~1% of the time), and writes M_q into a buffer of the chunk's size
// that stays in L2; the output transform reads it back per tile and 16 channels, transposes the 16 output vectors in
// registers into 16 channels' 4x4 blocks and stores them row by row into gx; for a large gx (4 MiB or more, float
// with AVX-512: streams_gx) into a stage in gx's layout, then to gx by non-temporal stores (below, "Writing a large
// gx"). Each task owns whole tiles of gx and every sum runs in an order fixed by the shapes (the GEMM over co in
// increasing order, then the output transform's fixed adds), so results are bitwise identical for any number of
// threads.
// What did not work: the transformed inputs written into gemm.h's packed A panels of kMr tiles by AVX-512 masked
// stores (a tile row's runs start anywhere in a panel): masked stores with varying masks cost ~12 cycles each on
// Zen 4, and the input transform took as long as the GEMMs (dec2 T forward 2.15 ms -> 1.70 once rewritten as above).
// Staging each tile row's outputs to write gx in whole rows (for batch 256, where gx leaves the caches) cost more
// at batch 25 (the row copies) than it saved.
// Where the transforms' time goes (session 6, batch 25, 1 thread, per-call minima of each phase, load 6-8): the
// GEMMs run at ~56 G multiply-adds/s, about this core's peak (dec2 T forward: 62.7 M products' multiply-adds in
// 1.11 ms), so only the transforms can shrink. dec2's output transform takes 0.33-0.46 ms writing a cold gx and
// 0.195 ms when run a second time over the same (now cached) gx rows: about half of it waits for gx's lines; half of
// the input transform (0.25 of 0.40 ms) is channels_innermost reading a cold gy. dec1 and enc2 (gx 1.25 and 0.8 MiB,
// gy 0.3 MiB) barely wait. What did not pay, measured interleaved against this code:
// - software prefetch of each task's gx lines and of its thread's next task's gy lines, spread over the GEMM phase
//   (after each micro-kernel call, or per plane): the transforms drop (batch 25 dec2: output 0.37 -> 0.21, input
//   0.30 -> 0.22 ms; batch 256: output 5.4 -> 2.3, input 4.5 -> 2.6 ms) but the GEMMs slow down by as much or more
//   (batch 25: 1.12 -> 1.25-1.30 ms, dec1 0.53 -> 0.59; batch 256 dec2 12.5 -> 14.3-16.9 ms): the prefetched lines
//   push U and the task's A and M out of L2. With the task's L2 budget cut to 256 KiB to make room, the GEMMs lose
//   20%.
// - prefetching the next tile row's gx lines inside the output transform instead (prefetchw or prefetcht1): dec2
//   output 0.42 -> 0.28 ms at batch 25, but dec1's 0.12 -> 0.17 ms and enc2's 0.067 -> 0.097 (their gx sits in
//   L3), and no clear gain at batch 256.
// - four tiles side by side per output row (one 16 x 16 transpose per row of 4 tiles, then one 16-float store per
//   channel instead of four 4-float stores): even with cold gx (dec2 0.327 vs 0.329 ms), slower when gx is cached
//   (0.225 vs 0.195 ms: the staged 4 x 16 vectors cost more than the stores they save).
// - GEMMs and output transform in steps of ceil(kMr / TW) tile rows (each step's results transformed while in L1,
//   the next step's gx lines prefetched during its GEMMs): output 0.25 -> 0.22 ms (dec2), but the GEMMs lose with
//   the short panels and the B strips reloaded per step (dec1 0.53 -> 0.66, dec2 1.11 -> 1.21, enc2 0.27 -> 0.34).
// So the lever left is the layout, not a prefetch: GEMMs with the tiles as columns (M_q^T = U_q^T V_q^T, the
// transformed inputs packed as B): the input transform then reads gy's rows directly (vectors of 16 tiles of one
// channel: no channels_innermost, no 16 x 16 transposes) and the output transform writes gx's rows 16 outputs at a
// time after a 4-way interleave; the weights become the packed A (kMr rows of products x channels).
// Writing a large gx (session 7, on a 2-core Intel Xeon, Sapphire Rapids class, 2 MiB L2 per core; 1 thread,
// per-phase CPU time by the thread's CPU clock, minima, load 6-7): at batch 256 dec2 T forward's output transform
// takes 6.7-7.1 ms (0.38 at batch 25, 10x fewer images), its input transform 4.6-4.8 (channels_innermost 2.4-2.6),
// its GEMMs 8.4-9.0. This core writes dec2's 25.7 MB gx in 2.2-3.5 ms with ordinary stores (a standalone loop from
// a cached source: memcpy, vector stores and rep movsb alike) and in 1.6-3.3 with non-temporal stores, which write a
// line without reading it first. Measured against the tile-by-tile stores (dec1 / dec2 / enc2 output transform):
// - each image's rows staged in gx's layout, then copied by memcpy (contiguous per channel, or the whole image):
//   3.9-4.0 / 6.7-7.1 / 1.9-2.0 -> 3.0-3.2 / 7.5-7.7 / 1.3-1.8 ms (the copy alone 1.5 / 4.5-4.7 / 0.4-0.8): a
//   contiguous write of gx is not faster by itself.
// - the same stage streamed to gx by non-temporal stores (this code): -> 2.4-2.5 / 4.6-5.0 / 1.3-1.4 ms; whole calls,
//   CPU-time minima of 3 interleaved runs of 8 against main 20af11b: dec1 9.43 -> 7.97, dec2 20.15 -> 18.40, enc2
//   5.36 -> 4.29 ms. At batch 128 (gx 6.4 / 12.8 / 3.2 MB) it wins on all three (output dec2 3.3-3.4 -> 2.3, enc2
//   0.74-0.85 -> 0.56-0.61), at 64 it is even, and at batch 25 (gx 1.3 / 2.5 / 0.6 MB) the stage loses in the
//   training step, streamed or not (the three calls' output transforms 0.66-0.74 -> 0.88-0.95 thread-ms, the step's
//   CPU time 11.1-11.2 -> 11.5-11.9 ms): gx stays in the caches for its reader there. Hence kStreamBytes. In the
//   training step at batch 256 the three calls' output transforms drop from 11.6-12.5 to 8.0-9.1 ms.
// Also measured there, no gain: channels_innermost prefetching (T0) the next 16 channels' pixels while it transposes
// the current ones (batch 256, whole calls: dec2 17.2-17.7 ms either way); tasks of twice the L2 budget (768 KiB,
// this L2 being twice Zen 4's): batch 25 dec1 0.64-0.68 -> 0.67-0.71 ms, enc2 0.35-0.39 -> 0.38-0.40, dec2 even.
// What this says of tiles as columns: its output side writes gx's rows contiguously, which on this host pays only
// with the non-temporal stores that the stage already gives; its input side would drop channels_innermost (at batch
// 256 2.4-2.6 of dec2's 4.6-4.8 ms input transform, at batch 25 0.10 of 0.25-0.32), less the cold read of gy it
// does (12.8 MB, ~1.3 ms at this core's ~10 GB/s) that stays. Not attempted.
//
// Rounding: the inputs are differences of two gy values and the weights sums of up to four taps, and the output
// transform adds up to four products whose terms partly cancel: float32 results are within 8 eps * sum |w gy| over
// each output's terms of the exact value (tests/test_conv_transpose2d_winograd.py checks it against the float64
// reference; measured at most 4.5 eps, the direct path's about 2-3).
//
// When it wins (the rule, conv_transpose2d_winograd_applies). CPU-time minima per call, 1 thread, float32, 2-core
// Zen 4 shared with other jobs (load 5-7), padding 0, same process order interleaved, ms, direct (main f4d5fbb) ->
// this path; gy channels -> gx channels, gy size:
//   N25 64->64 7x7: 1.057 -> 0.755   N25 64->32 14x14: 1.982 -> 1.641   N25 64->32 7x7: 0.569 -> 0.418
//   N16 16->16 14x14: 0.393 -> 0.273   32->16: 0.664 -> 0.424   16->32: 0.436 -> 0.382   16->64: 0.822 -> 0.717
//   N16 64->16 14x14: 1.217 -> 0.738   64->17: 1.222 -> 1.001   64->24: 1.243 -> 1.022   24->64: 1.088 -> 0.922
//   N8 128->128 7x7: 1.239 -> 0.994   N8 32->32 28x28: 1.337 -> 1.208   N4 64->64 28x28: 2.370 -> 1.957
//   N32 128->128 2x2: 0.685 -> 0.409   4x4: 1.732 -> 1.199   N32 64->64 3x3: 0.357 -> 0.208   N1 64->64 14x14:
//   0.171 -> 0.152   N2 256->256 8x8: 1.740 -> 1.762 (even: left out by the rule)
// The seed layers in bench.conv (padding "same", batch 25, ours / PyTorch, 1 thread, CPU-time minima of 3 interleaved
// runs of 40, load 8-11): enc2 backward-data 0.569 -> 0.442 ms (0.84 -> 0.65), dec1 T forward 1.072 -> 0.826
// (0.89 -> 0.69), dec2 T forward 2.141 -> 1.826 (0.77 -> 0.65 against PyTorch's best 2.80).
// Batch 256, 64->32 14x14 (the seed's dec2 at the large batch): 22.0 -> 21.5-25.5 ms, about even; there this path
// page-faults ~1000 more times per call than the direct one (perf stat: gx's stores fault; not understood yet).
#include "cpu/conv_transpose2d_winograd.h"
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>
#include "cpu/conv2d_stride_decomposed.h"  // transpose16x16
#include "cpu/epilogue.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"
#include "cpu/simd.h"
#include "cpu/streaming.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gradcore {

namespace {

using namespace cpu;

// The transformed weights of one call, in the calling thread's memory that only grows (a fresh ~400 KiB block per
// call cost its page faults every time).
inline thread_local Scratch scratch_weights;
// Each task's copy of its gy rows with the channels innermost (channels_innermost).
inline thread_local Scratch scratch_nhwc;
// Each task's outputs, one image's tile rows at a time, before they are streamed to gx (output_transform).
inline thread_local Scratch scratch_stage;

// The 1-D input combinations ("planes"): X0 the one read by one even-phase point only (x0 when a tile starts at an
// even output, x2 when it starts at an odd one), X1 = x1 (read by two points), D0 = x0 - x1, D2 = x2 - x1.
enum Plane1 { X0 = 0, X1 = 1, D0 = 2, D2 = 3 };
constexpr int kPoints1 = 5, kPlanes = 16, kProducts = 25;
// Per side, the form of its tiles: 0 when a tile's outputs start at an even output (padding 1: x0 = gy[2 b]), 1 when
// at an odd one (padding 0: x0 = gy[2 b - 1]); the planes of the points, where the points' sums go (outputs of m0,
// m1, m2 + m3, m3 + m4), and the planes a partial last tile (an odd gy size) keeps.
constexpr int kPlaneOfPoint[2][kPoints1] = {{X0, X1, D0, X1, D2}, {X1, X0, D0, X1, D2}};
constexpr int kOutputOf[2][4] = {{0, 2, 1, 3}, {1, 3, 0, 2}};
constexpr bool kPartialKeeps[2][4] = {{true, false, true, false}, {false, true, true, false}};

// The weight combination of point t from the three taps v0, v1, v2 of one side.
template <typename T> inline T weight_point(int t, T v0, T v1, T v2) {
  switch (t) {
    case 0:
    case 1: return v1;
    case 2: return v2;
    case 3: return v0 + v2;
    default: return v0;
  }
}

// The 25 products grouped by plane (q = 4 a + b for row plane a and column plane b), row point major within one.
struct Products {
  int first[kPlanes + 1] = {};      // products [first[q], first[q + 1]) read plane q
  int index[kPoints1][kPoints1] = {};  // (row point, column point) -> product
  int row_point[kProducts] = {}, col_point[kProducts] = {}, plane[kProducts] = {};
  Products(int form_h, int form_w) {
    int n = 0;
    for (int q = 0; q < kPlanes; ++q) {
      first[q] = n;
      for (int ph = 0; ph < kPoints1; ++ph)
        for (int pw = 0; pw < kPoints1; ++pw)
          if (kPlaneOfPoint[form_h][ph] == q / 4 && kPlaneOfPoint[form_w][pw] == q % 4) {
            index[ph][pw] = n;
            row_point[n] = ph, col_point[n] = pw, plane[n] = q;
            ++n;
          }
    }
    first[kPlanes] = n;
  }
  int count(int q) const { return first[q + 1] - first[q]; }
};

struct Geometry {
  int64_t N, K, C, Ho, Wo, H, W;  // gy (N, K, Ho, Wo), gx (N, C, H, W), H = 2 Ho, W = 2 Wo
  int64_t TH, TW;                 // tiles per image along each side (the last one partial when Ho, Wo is odd)
  int64_t Cp;                     // C rounded up to whole vectors: each product's block of GEMM columns
  int form_h, form_w;             // 1 - padding (top, left): the tiles' forms (kPlaneOfPoint)
  // A partial last tile keeps two planes (the others read only gy[Ho] = 0 or feed only outputs past gx's end).
  bool row_in(int a, int64_t th) const { return th < Ho / 2 || kPartialKeeps[form_h][a]; }
  int64_t cols_in(int b) const { return kPartialKeeps[form_w][b] ? TW : Wo / 2; }
};

// Where the input transform writes: plane q's A (its tiles' rows, each the K channels co, row stride lda) at a[q],
// this tile row's tiles from row base[q] on (-1: the tile row has no tiles in plane q).
template <typename T> struct PlaneRows {
  T* a[kPlanes];
  int64_t base[kPlanes], lda;
};

// C (M x N, row stride ldc) = A (M x K, row i at a + i lda, read in place) * B (packed, gemm.h's layout): gemm.h's
// micro-kernel with DIRECT_A, each element summed over k in increasing order (as gemm_packed sums).
template <typename T>
void gemm_rows_a(int64_t M, int64_t N, int64_t K, const T* a, int64_t lda, const T* bp, T* c, int64_t ldc) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t n_pad = round_up(N, nr);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    for (int64_t j0 = 0; j0 < N; j0 += nr)
      for (int64_t i0 = 0; i0 < M; i0 += kMr)
        micro_kernel_rows<T, kMr, true>(M - i0, kc, a + i0 * lda + k0, bp + k0 * n_pad + j0 * kc,
                                        StripOut<T>{c + i0 * ldc + j0, nr, nullptr}, ldc, std::min(nr, N - j0),
                                        k0 > 0, (const T*)nullptr, lda);
  }
}

// gy's rows [y0, y0 + count) of one image (K channels of Ho x Wo), channels innermost and shifted right by
// `left` columns: dst[(y - y0) Wp + left + x][co] (Kp values per pixel, channels past K zero); the pixels outside gy
// (rows before 0 or past Ho - 1, columns before `left` or past left + Wo - 1) are zeros. With AVX-512 (float), 16
// channels x 16 pixels per register transpose.
template <typename T>
void channels_innermost(const T* gy, const Geometry& g, int64_t y0, int64_t count, int64_t left, int64_t Wp,
                        int64_t Kp, T* dst) {
  const int64_t y_lo = std::max<int64_t>(y0, 0), y_hi = std::min(g.Ho, y0 + count), K = g.K;
  for (int64_t y = y0; y < y0 + count; ++y) {
    T* row = dst + (y - y0) * Wp * Kp;
    if (y < y_lo || y >= y_hi) {
      std::fill(row, row + Wp * Kp, T(0));
      continue;
    }
    std::fill(row, row + left * Kp, T(0));
    std::fill(row + (left + g.Wo) * Kp, row + Wp * Kp, T(0));
  }
  if (y_hi <= y_lo) return;
  const int64_t pixels = (y_hi - y_lo) * g.Wo, plane = g.Ho * g.Wo;
  const T* src = gy + y_lo * g.Wo;  // the rows are contiguous in each channel's plane
  auto to = [&](int64_t p) { return dst + ((p / g.Wo + y_lo - y0) * Wp + left + p % g.Wo) * Kp; };
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t co0 = 0; co0 < K; co0 += 16)
      for (int64_t p0 = 0; p0 < pixels; p0 += 16) {
        const int64_t n = std::min<int64_t>(16, pixels - p0);
        const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
        __m512 r[16];
        for (int c = 0; c < 16; ++c)
          r[c] = co0 + c < K ? _mm512_maskz_loadu_ps(m, src + (co0 + c) * plane + p0) : _mm512_setzero_ps();
        transpose16x16(r);
        int64_t y = p0 / g.Wo, x = p0 % g.Wo;  // pixel p0 + j, stepped (not a division per pixel)
        for (int64_t j = 0; j < n; ++j) {
          _mm512_storeu_ps(dst + ((y + y_lo - y0) * Wp + left + x) * Kp + co0, r[j]);
          if (++x == g.Wo) x = 0, ++y;
        }
      }
    return;
  }
#endif
  for (int64_t p = 0; p < pixels; ++p) {
    T* d = to(p);
    for (int64_t co = 0; co < Kp; ++co) d[co] = co < K ? src[co * plane + p] : T(0);
  }
}

// The 16 planes' values of the tiles of one tile row into the rows of each plane's A, from nhwc (the tile row's gy
// rows 2 th .. 2 th + 2 from channels_innermost, Wp pixels a row): tile tw reads x[i][j] = gy pixel (2 th + i,
// 2 tw + j), a vector of channels each; down the rows, per column j: X0 = x0j, X1 = x1j, D0 = x0j - x1j,
// D2 = x2j - x1j; then along the row, per row plane a: X0 = a0, X1 = a1, D0 = a0 - a1, D2 = a2 - a1.
template <typename T>
void input_transform_row(const T* nhwc, const Geometry& g, int64_t Wp, const PlaneRows<T>& out) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  for (int64_t tw = 0; tw < g.TW; ++tw)
    for (int64_t co0 = 0; co0 < out.lda; co0 += L) {
      V rp[4][3];  // row planes, per column j
      for (int j = 0; j < 3; ++j) {
        const T* px = nhwc + (2 * tw + j) * out.lda + co0;
        const V x0 = load_vec(px), x1 = load_vec(px + Wp * out.lda), x2 = load_vec(px + 2 * Wp * out.lda);
        rp[X0][j] = g.form_h ? x2 : x0, rp[X1][j] = x1, rp[D0][j] = x0 - x1, rp[D2][j] = x2 - x1;
      }
      for (int a = 0; a < 4; ++a) {
        const V v[4] = {rp[a][g.form_w ? 2 : 0], rp[a][1], rp[a][0] - rp[a][1], rp[a][2] - rp[a][1]};
        for (int b = 0; b < 4; ++b) {
          const int q = 4 * a + b;
          if (out.base[q] >= 0 && tw < g.cols_in(b)) store_vec(out.a[q] + (out.base[q] + tw) * out.lda + co0, v[b]);
        }
      }
    }
}

// Tile rows per task: as many as keep the chunk's packed inputs and GEMM results (~(16 K + 25 Cp) values per tile)
// within ~384 KiB of L2, preferring a count whose tiles fill whole kMr panels.
template <typename T> int64_t tile_rows_per_task(const Geometry& g) {
  const int64_t per_row = g.TW * (kPlanes * g.K + kProducts * g.Cp) * (int64_t)sizeof(T);
  const int64_t most = std::clamp<int64_t>((384 << 10) / per_row, 1, g.N * g.TH);
  int64_t best = most;
  for (int64_t r = most; r >= std::max<int64_t>(1, most / 2); --r)
    if (round_up(r * g.TW, kMr) - r * g.TW < round_up(best * g.TW, kMr) - best * g.TW) best = r;
  return best;
}

// Output transform of one tile (th, tw) of image n, channels [c0, c0 + L): m[i] points at product i's L values
// (null: a product the tile does not have, zero). The 1-D rule along the columns for each row point, then along the
// rows; then the bias and the activation; then the 4x4 block of each channel into gx.
template <typename T, int FORM_H, int FORM_W>
inline void output_tile(const T* const m[kProducts], const Products& pr, const T* bias, bool relu, T* gx_block,
                        int64_t channel_stride, int64_t W, int64_t channels, int rows, int cols) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  auto get = [&](int ph, int pw) { return load_vec(m[pr.index[ph][pw]]); };
  constexpr const int* oh = kOutputOf[FORM_H];
  constexpr const int* ow = kOutputOf[FORM_W];
  V s[kPoints1][4];
  for (int ph = 0; ph < kPoints1; ++ph) {
    const V m3 = get(ph, 3);
    s[ph][ow[0]] = get(ph, 0);
    s[ph][ow[1]] = get(ph, 1);
    s[ph][ow[2]] = get(ph, 2) + m3;
    s[ph][ow[3]] = m3 + get(ph, 4);
  }
  V out[16];
  for (int c = 0; c < 4; ++c) {
    out[4 * oh[0] + c] = s[0][c];
    out[4 * oh[1] + c] = s[1][c];
    out[4 * oh[2] + c] = s[2][c] + s[3][c];
    out[4 * oh[3] + c] = s[3][c] + s[4][c];
  }
  if (bias) {
    const V b = load_vec(bias);
    for (int i = 0; i < 16; ++i) out[i] += b;
  }
  if (relu)
    for (int i = 0; i < 16; ++i) out[i] = relu_vec(out[i]);
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    __m512 r[16];
    for (int i = 0; i < 16; ++i) r[i] = (__m512)out[i];
    transpose16x16(r);  // r[ch]: channel ch's 16 outputs, lane 4 row + col
    // each row of a channel's block: 4 values (2 in a last tile of an odd-sized gy), plain stores (masked stores
    // with varying masks cost ~12 cycles each on Zen 4)
    auto store_row = [&](float* dst, __m128 v) {
      if (cols == 4)
        _mm_storeu_ps(dst, v);
      else
        _mm_storel_pi((__m64*)dst, v);
    };
    for (int64_t ch = 0; ch < channels; ++ch) {
      float* dst = gx_block + ch * channel_stride;
      store_row(dst, _mm512_castps512_ps128(r[ch]));
      store_row(dst + W, _mm512_extractf32x4_ps(r[ch], 1));
      if (rows == 4) {
        store_row(dst + 2 * W, _mm512_extractf32x4_ps(r[ch], 2));
        store_row(dst + 3 * W, _mm512_extractf32x4_ps(r[ch], 3));
      }
    }
    return;
  }
#endif
  alignas(64) T tmp[16][L];
  for (int i = 0; i < 16; ++i) store_vec(tmp[i], out[i]);
  for (int64_t ch = 0; ch < channels; ++ch)
    for (int row = 0; row < rows; ++row)
      for (int col = 0; col < cols; ++col) gx_block[ch * channel_stride + row * W + col] = tmp[4 * row + col][ch];
}

// The GEMM results of a task and where its tiles' rows are (convt_winograd's task).
template <typename T> struct OutputRows {
  const T* result;
  const int64_t *c_offset, *ldc, *base;
  const T *bias, *zeros;
  bool relu;
};

// Whether the output transform stages each image's rows and streams them to gx (stream_to, cpu/streaming.h): for a
// gx of kStreamBytes or more, whose lines leave the caches before anything reads them, so that ordinary stores pay a
// read of each line (for ownership) from memory, and the tile-by-tile stores (16 channels x 4 rows of 16 bytes each)
// wait on those reads. float with AVX-512 only (non-temporal stores of whole vectors).
template <typename T> bool streams_gx(const Geometry& g) { return streams_output<T>(g.N * g.C * g.H * g.W); }

// gx for the tile rows [r0, r1), from the task's GEMM results, image by image: each tile's 4x4 blocks into gx, or
// with a stage (streams_gx), into the stage (C x rows x W: gx's layout for the image's rows [y0, y1)) and then to gx
// by stream_to, one contiguous run per channel (one for the whole image when the task holds all its rows).
template <typename T, int FORM_H, int FORM_W>
void output_transform(T* px, const Geometry& g, const Products& pr, const OutputRows<T>& o, int64_t r0, int64_t r1,
                      T* stage) {
  constexpr int L = Simd<T>::lanes;
  const int64_t C = g.C, plane = g.H * g.W;
  for (int64_t ra = r0; ra < r1;) {
    const int64_t n = ra / g.TH, th0 = ra % g.TH, rb = std::min(r1, ra + (g.TH - th0));
    const int64_t y0 = 4 * th0, y1 = std::min(g.H, 4 * (th0 + rb - ra));
    T* const out = stage ? stage : px + n * C * plane + y0 * g.W;  // where row y0 of channel 0 goes
    const int64_t out_plane = stage ? (y1 - y0) * g.W : plane;
    for (int64_t r = ra; r < rb; ++r) {
      const int64_t th = r % g.TH;
      const int64_t* b = o.base + (r - r0) * kPlanes;
      const int rows = (int)std::min<int64_t>(4, g.H - 4 * th);
      for (int64_t tw = 0; tw < g.TW; ++tw) {
        const int cols = (int)std::min<int64_t>(4, g.W - 4 * tw);
        const T* m[kProducts];  // product i's C values of this tile (zeros where the tile does not have it)
        for (int q = 0; q < kPlanes; ++q) {
          const bool in = b[q] >= 0 && tw < g.cols_in(q % 4);
          for (int i = pr.first[q]; i < pr.first[q + 1]; ++i)
            m[i] = in ? o.result + o.c_offset[q] + (b[q] + tw) * o.ldc[q] + (i - pr.first[q]) * g.Cp : o.zeros;
        }
        T* block = out + (4 * th - y0) * g.W + 4 * tw;
        for (int64_t c0 = 0; c0 < C; c0 += L) {
          const T* mc[kProducts];
          for (int i = 0; i < kProducts; ++i) mc[i] = m[i] + c0;
          output_tile<T, FORM_H, FORM_W>(mc, pr, o.bias ? o.bias + c0 : nullptr, o.relu, block + c0 * out_plane,
                                         out_plane, g.W, std::min<int64_t>(L, C - c0), rows, cols);
        }
      }
    }
    if (stage) {
      if (y1 - y0 == g.H)
        stream_to(px + n * C * plane, stage, C * plane);
      else
        for (int64_t c = 0; c < C; ++c)
          stream_to(px + (n * C + c) * plane + y0 * g.W, stage + c * out_plane, out_plane);
    }
    ra = rb;
  }
  if (stage) stream_fence();  // the task's non-temporal stores, ordered before its end (and so before gx is read)
}

template <typename T>
void convt_winograd(const T* pg, const T* pw, const T* pb, T* px, const Geometry& g, Activation act) {
  constexpr int64_t nr = nr_of<T>();
  constexpr int L = Simd<T>::lanes;
  const Products pr(g.form_h, g.form_w);
  const int64_t K = g.K, C = g.C, Cp = g.Cp;

  // U_q, the weights of plane q's products side by side (co x count(q) Cp, channels past C zero), packed as the
  // GEMM's B: plane q at packed_u + u_offset[q].
  int64_t u_offset[kPlanes + 1], u_cols[kPlanes];
  u_offset[0] = 0;
  for (int q = 0; q < kPlanes; ++q) {
    u_cols[q] = pr.count(q) * Cp;
    u_offset[q + 1] = u_offset[q] + K * round_up(u_cols[q], nr);
  }
  T* packed_u = scratch_weights.get<T>(u_offset[kPlanes]);  // the calling thread's; the tasks only read it
  const std::vector<T> zeros(Cp, T(0));  // the products a partial tile does not have
  std::vector<T> bias_padded;
  if (pb) {
    bias_padded.assign(Cp, T(0));
    std::copy(pb, pb + C, bias_padded.begin());
  }
  {
    GRADCORE_PHASE("conv_transpose2d_winograd/weight_transform");
    using V = typename Simd<T>::vec;
    // w with the output channels innermost, [co][tap][Cp] (zeros past C), so that L of them are one vector
    T* wt = scratch_col.get<T>(K * 9 * Cp);
    for (int64_t co = 0; co < K; ++co)
      for (int tap = 0; tap < 9; ++tap) {
        T* d = wt + (co * 9 + tap) * Cp;
        for (int64_t ci = 0; ci < Cp; ++ci) d[ci] = ci < C ? pw[(co * C + ci) * 9 + tap] : T(0);
      }
    for (int q = 0; q < kPlanes; ++q)  // a last strip of B wider than the plane's columns: zeros past them
      if (u_cols[q] % nr) std::fill(packed_u + u_offset[q], packed_u + u_offset[q + 1], T(0));
    for (int64_t co = 0; co < K; ++co) {
      const int64_t blk = co / kKc * kKc, kc = std::min(kKc, K - blk);
      for (int64_t ci = 0; ci < Cp; ci += L) {
        const T* w9 = wt + co * 9 * Cp + ci;
        V cols[3][kPoints1];  // per kernel row: the column points' combinations
        for (int kh = 0; kh < 3; ++kh) {
          const V v0 = load_vec(w9 + 3 * kh * Cp), v1 = load_vec(w9 + (3 * kh + 1) * Cp), v2 = load_vec(w9 + (3 * kh + 2) * Cp);
          for (int t = 0; t < kPoints1; ++t) cols[kh][t] = weight_point(t, v0, v1, v2);
        }
        for (int i = 0; i < kProducts; ++i) {
          const int q = pr.plane[i], col_p = pr.col_point[i];
          const int64_t col = (i - pr.first[q]) * Cp + ci, cols_pad = round_up(u_cols[q], nr);
          // packed B, element (co, col) of plane q and the L after it (gemm.h's layout: kKc blocks of strips of nr
          // columns, [k][nr]; col is a multiple of L, so the L columns lie in one strip)
          store_vec(packed_u + u_offset[q] + blk * cols_pad + (col / nr) * (kc * nr) + (co - blk) * nr + col % nr,
                    weight_point(pr.row_point[i], cols[0][col_p], cols[1][col_p], cols[2][col_p]));
        }
      }
    }
  }

  const int64_t R = tile_rows_per_task<T>(g), total_rows = g.N * g.TH, tasks = (total_rows + R - 1) / R;
  const bool parallel = g.N * C * g.H * g.W * K * 9 / 4 >= kParallelThreshold;  // multiply-adds
  const bool relu = act == Activation::relu, stream = streams_gx<T>(g);
  // Tasks in contiguous shares per thread (parallel.h's TaskShares: gx's lines stay with one core from call to call).
  TaskShares shares(tasks, parallel);
#pragma omp parallel if (shares.parallel())
  shares.run([&](int64_t t) {
    const int64_t r0 = t * R, r1 = std::min(total_rows, r0 + R), nrows = r1 - r0;
    // Rows of each plane's GEMM: tile row r's tiles start at row base[(r - r0) 16 + q] of plane q (-1: none).
    std::vector<int64_t> base(nrows * kPlanes);
    int64_t rows_q[kPlanes] = {}, a_offset[kPlanes + 1], c_offset[kPlanes + 1], ldc[kPlanes];
    for (int64_t r = r0; r < r1; ++r)
      for (int q = 0; q < kPlanes; ++q) {
        const bool in = g.row_in(q / 4, r % g.TH);
        base[(r - r0) * kPlanes + q] = in ? rows_q[q] : -1;
        if (in) rows_q[q] += g.cols_in(q % 4);
      }
    // A_q: rows_q rows of lda values (K, rounded up to whole vectors: the AVX-512 transform writes 16 channels at a
    // time); + nr between planes, so that the planes' rows do not all share L1 sets
    const int64_t lda = round_up(K, (int64_t)L);
    a_offset[0] = c_offset[0] = 0;
    for (int q = 0; q < kPlanes; ++q) {
      ldc[q] = round_up(u_cols[q], nr);
      a_offset[q + 1] = a_offset[q] + rows_q[q] * lda + nr;
      c_offset[q + 1] = c_offset[q] + rows_q[q] * ldc[q] + nr;
    }
    T* packed = scratch_packed_b.get<T>(a_offset[kPlanes]);
    T* result = scratch_col.get<T>(c_offset[kPlanes]);
    const int64_t Wp = 2 * g.TW + 1;  // gy columns a tile row reads (0 .. 2 TW)
    T* nhwc = scratch_nhwc.get<T>((2 * nrows + 1) * Wp * lda);
    {
      GRADCORE_PHASE("conv_transpose2d_winograd/input_transform");
      PlaneRows<T> out;
      out.lda = lda;
      for (int q = 0; q < kPlanes; ++q) out.a[q] = packed + a_offset[q];
      for (int64_t r = r0; r < r1;) {  // per image: its tile rows in this task
        const int64_t n = r / g.TH, th0 = r % g.TH, th1 = std::min(g.TH, th0 + (r1 - r));
        channels_innermost(pg + n * K * g.Ho * g.Wo, g, 2 * th0 - g.form_h, 2 * (th1 - th0) + 1, g.form_w, Wp, lda,
                           nhwc);
        for (int64_t th = th0; th < th1; ++th, ++r) {
          for (int q = 0; q < kPlanes; ++q) out.base[q] = base[(r - r0) * kPlanes + q];
          input_transform_row(nhwc + 2 * (th - th0) * Wp * lda, g, Wp, out);
        }
      }
    }
    {
      GRADCORE_PHASE("conv_transpose2d_winograd/gemm");
      for (int q = 0; q < kPlanes; ++q)
        if (rows_q[q] > 0)
          gemm_rows_a(rows_q[q], u_cols[q], K, packed + a_offset[q], lda, packed_u + u_offset[q],
                      result + c_offset[q], ldc[q]);
    }
    GRADCORE_PHASE("conv_transpose2d_winograd/output_transform");
    T* stage = stream ? scratch_stage.get<T>(C * std::min(4 * nrows, g.H) * g.W) : nullptr;
    const OutputRows<T> rows_out{result, c_offset, ldc, base.data(), pb ? bias_padded.data() : nullptr, zeros.data(),
                                 relu};
    switch (2 * g.form_h + g.form_w) {
      case 0: output_transform<T, 0, 0>(px, g, pr, rows_out, r0, r1, stage); break;
      case 1: output_transform<T, 0, 1>(px, g, pr, rows_out, r0, r1, stage); break;
      case 2: output_transform<T, 1, 0>(px, g, pr, rows_out, r0, r1, stage); break;
      default: output_transform<T, 1, 1>(px, g, pr, rows_out, r0, r1, stage); break;
    }
  });
}

}  // namespace

// When it runs (the rule's measurements: the header of this file). Both paddings whose tiles line up with gx's
// rows (1: outputs start at an even phase, conv_transpose2d(padding=1, output_padding=1); 0: at an odd one, "same"),
// at least 16 channels on each side (the direct path's own threshold: below it the GEMM + col2im path runs, not
// measured against this one), and at most 128 x 128 channel pairs (256 x 256 was even: the 6.5 MiB of transformed
// weights stream through L2 for every task).
bool conv_transpose2d_winograd_applies(const Conv2dParams& p) {
  return p.kernel_h == 3 && p.kernel_w == 3 && p.stride_h == 2 && p.stride_w == 2 && p.dilation_h == 1 &&
         p.dilation_w == 1 && p.groups == 1 && (p.pad_top == 0 || p.pad_top == 1) &&
         (p.pad_left == 0 || p.pad_left == 1) && p.in_h == 2 * p.out_h &&
         p.in_w == 2 * p.out_w && p.in_channels >= 16 && p.out_channels >= 16 &&
         p.in_channels * p.out_channels <= 128 * 128;
}

void conv_transpose2d_winograd_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx,
                                   const Conv2dParams& p) {
  dispatch_float(gy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t L = Simd<T>::lanes;
    const Geometry g{p.batch, p.out_channels, p.in_channels, p.out_h, p.out_w, p.in_h, p.in_w,
                     (p.out_h + 1) / 2, (p.out_w + 1) / 2, round_up(p.in_channels, L),
                     (int)(1 - p.pad_top), (int)(1 - p.pad_left)};
    convt_winograd<T>(gy.data_as<T>(), w.data_as<T>(), bias.numel() ? bias.data_as<T>() : nullptr,
                      gx.data_as<T>(), g, p.activation);
  });
}

}  // namespace gradcore
