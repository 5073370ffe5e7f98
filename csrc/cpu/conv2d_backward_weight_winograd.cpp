// Winograd for the CPU weight gradient of 3x3 convolutions, stride 1 or 2 along each side, dilation 1, groups 1:
// fewer multiplies than the 9 per (gy pixel, input channel, output channel) of the direct paths.
//
// The maths, along one side (rows or columns; the 2-D algorithm is the product of the two sides' algorithms). The
// three taps' gradients are sums over the output positions o of gy[o] x[s o - pad + k], k = 0, 1, 2. Cut the outputs
// into pairs (o, o + 1) ("tiles"); a tile's share of the three sums is written as a few products of a combination of
// its gy values with a combination of its x values ("points"), and each point adds into the taps with fixed
// coefficients (the output transform):
//   stride 1, i = o - pad (Winograd F(3, 2), the transpose of the forward's F(2, 3); d_j = x[i + j]):
//     point 0: gy[o] (d0 - d2)                          -> tap 0
//     point 1: (gy[o] + gy[o+1]) / 2 (d1 + d2)         -> taps 0, 1, 2
//     point 2: (gy[o] - gy[o+1]) / 2 (d2 - d1)         -> taps 0, -1, 2
//     point 3: gy[o+1] (d3 - d1)                        -> tap 2
//     4 products instead of 6.
//   stride 2, i = 2 o - pad: taps 0 and 2 read the even inputs e_j = x[i + 2 j], tap 1 the odd ones; the even part
//     is a 2-tap correlation, done with the 3-product F(2, 2) (points 0 .. 2), the odd part directly (point 3):
//     point 0: gy[o] (e0 - e1)                          -> tap 0
//     point 1: (gy[o] + gy[o+1]) e1                     -> taps 0, 2
//     point 2: gy[o+1] (e2 - e1)                        -> tap 2
//     point 3: gy[o] x[i + 1], and gy[o+1] x[i + 3]     -> tap 1
//     5 products instead of 6.
// (Expanding the sums checks them: e.g. stride 2, tap 0: gy[o] (e0 - e1) + (gy[o] + gy[o+1]) e1 = gy[o] e0 + gy[o+1]
// e1.) Values outside gy or x are zeros, and their terms are dropped; a point left without a gy or an x term is
// dropped whole, so an odd last output costs 3 products at stride 1 and 2 at stride 2 (not a padded tile's 4 and 3).
// In two dimensions, a point is a pair (row point, column point): its gy (x) value is the row combination of the
// column combinations, and it adds into tap (kh, kw) with the product of the two coefficients. Every point of one
// of the 4 x 4 types (row point type, column point type) has the same coefficients, so the sum over images and tiles
// of one type's products, for every pair of channels, is one GEMM:
//   R_t (C_in x C_out) = V_t (C_in x K_t) U_t^T (K_t x C_out),  K_t = images x points of type t per image,
//   dW[co, ci, kh, kw] = sum_t row_coef[t][kh] col_coef[t][kw] R_t[ci, co].
// Multiplies per 2x2 block of gy and pair of channels: 16 instead of 36 at stride 1 (2.25x fewer), 25 instead of 36
// at stride 2 (1.44x).
//
// The work, per chunk of images (a fixed count from the shapes, so that the chunk's copies stay in the caches): one
// task per image and side copies gy (x) with its channels innermost; then one task per type t transforms the chunk's
// U_t and V_t into its own scratch, straight in the GEMM's packed layouts (B strips of nr output channels, [k][nr];
// A panels of kMr input channels, [k][kMr]), and runs gemm.h's micro-kernel over the chunk's K_t steps for every
// tile of R_t, added onto the previous chunks' (loaded from the tile). Every element of R_t is summed over the same
// k in the same order, and the output transform adds the R_t in a fixed order: bitwise the same for any number of
// threads. Phases: conv2d_backward_weight/winograd_{transpose,transform,gemm,output}. That is the stride-1 driver.
// Stride 2 on both sides has its own (backward_weight_winograd_groups, below): the images in up to 4 fixed groups,
// each run by one task alone into its own R (no barrier per chunk), each type's points multiplied in blocks of ~128
// points, the groups' R added in group order before the output transform. Its operands are not packed: a gather
// micro-kernel reads every k step's kMr x values and nr gy values where they are, through one offset per row of
// points and a fixed step along it, so a side with nothing to combine is read in place from the channels-innermost
// copy (the x side of types (1 or 3, 1 or 3), 36% of the points), gy's pair sums (its only combination at stride 2)
// are formed once per image into three planes beside gy and every gy side read in place, and only the x sides with
// differences are transformed, per block, point-major ([k][ci_pad], in L1). Phases:
// winograd_{transpose,transform_gemm,output}.
// Where the time goes at stride 2 (seed dec2's weight gradient, 25x32x28x28 -> 64 at stride 2, 1 thread, thread CPU
// time minima, each part timed by leaving it out; load 6-7 on the 2 cores): GEMMs 1.11 ms (~113 GFLOP/s, the
// micro-kernel at its peak), the channels-innermost copies 0.13 (x's two thirds of it), x transforms 0.09, gy planes
// ~0.03, the rest 0.05: 1.40-1.43 ms. Before the in-place reads (session 5, same method): GEMMs 1.08, gy transforms
// 0.21, x transforms 0.15, copies 0.11, rest 0.03 (1.51; 1.52-1.60 measured beside this one). What is left outside
// the GEMMs is the copies and the x differences (784 values per 28x28 image, each formed once: no redundancy left),
// bound by reads in L2 (neither the block size, 32..400 points, nor chunks of 1..4 images changed them).
// Tried and not taken (session 7, on an Intel Xeon, Sapphire-Rapids class, where the GEMMs are about half of these
// passes' time, not Zen 4's ~80%; the code is on branch wgrad-s2-f32, e42d4ed + ea639df): tiles of three outputs a
// side, the even taps by F(2, 3) with gy in the filter's place (Toom-Cook at 0, 1, -1, infinity; g_j = gy[o + j],
// e_j = x[i + 2 j]):
//     point 0: g0 (e0 - e2)                     -> tap 0
//     point 1: (g0 + g1 + g2) (e1 + e2) / 2     -> taps 0, 2
//     point 4: (g0 - g1 + g2) (e2 - e1) / 2     -> taps 0, -2
//     point 2: g2 (e3 - e1)                     -> tap 2
//     point 3: g_j x[i + 1 + 2 j], j = 0, 1, 2  -> tap 1
//   7 products per 3 outputs instead of 7.5 (a last tile of two: these with g2 = 0, point 2 dropped; of one: F(2, 2)'s
//   with gy[o + 1] = 0). Checked by expansion (tap 0: g0 (e0 - e2) + ((g0 + g2)(e1 + e2 + e2 - e1) + g1 (e1 + e2 - e2
//   + e1)) / 2 = g0 e0 + g1 e1 + g2 e2) and by a numpy script over every tile cut (1..39 inputs, padding 0..5 per
//   end); passed the float64 references, the gradchecks and 1/2/3 threads bitwise; float32 worst ratios fell (10.8
//   -> 9.05; seed enc2 1.88 -> 1.48, dec2 1.6 -> 1.2). 289 points per 7x7 image instead of 324, 1089 per 14x14 instead
//   of 1225 (11% fewer GEMM multiplies), but 5 point types a side (25 GEMMs, many small: type (4, 4) has 4 points per
//   7x7 image), 9 gy planes of up to 3 terms (2.8x gy instead of 2.25x; types 1 and 4 formed together from
//   g0 + g2), and type 1's x side a 2-term sum (x read in place for types (3, 3) only: 17% of the points, not 37%).
//   Measured, 1 thread, thread CPU minima of 300 calls (12 at B=256) per process, processes alternating with this
//   build's (4-6 rounds, load 6-7; ms): B=25 enc2 .345 -> .37 (+7%), dec1 .74 -> .76 (+3%), dec2 1.29 -> 1.27 (-1.5%;
//   again: +7%, +6%, +1%); B=256 -2 to -3% each (enc2 3.29 -> 3.22, dec1 7.39 -> 7.20, dec2 15.66 -> 15.23; 2-thread
//   walls too noisy at this load to say more); 25x128x28x28 -> 128 10.70 -> 10.88 (+2%), 25x256x14x14 -> 256 18.0 ->
//   24.9 (+38%). In one process, the two schemes alternating call by call, tiles of three came out 4-8% faster at B=25,
//   but that build's tiles of two, run alone, were 4-15% slower than this build (the cause not found: the same loops,
//   larger tables), so that comparison flattered them. perf on unstripped builds (1 thread, B=25): the gather kernel's
//   FMA loop is 46% of enc2's samples and 52% of dec2's; tiles of three cut those by 11-15% and raised the rest
//   (planes, x transforms, copies, the C tile round trips of 25 types) by 14-23%. The 256-channel loss shows the
//   driver's other cost: a chunk there is one image (kGroupChunkBytes), so every type's R_t (256 KB) is loaded and
//   stored by the gather kernel for a few k steps per chunk (4 for type (4, 4)): R round trips, not multiplies, are
//   what smaller types pay for, here and (less) in tiles of two. So on this host the lever is the half outside the
//   GEMMs (its auto-vectorised loops compile to 256-bit vectors here, the gather kernel to 512-bit), and F(3, 2) could
//   pay once the k steps per R round trip grow (chunks by points, not bytes, or R tiles kept in registers over several
//   chunks).
// Batch 256 (session 8, same host; 1 thread, CPU-time minima of processes alternating with main 0b75707, 3-4 rounds,
// load 5-7). There x and gy (seed dec2: 25.7 + 12.8 MB) come from L3 or memory, and the channels-innermost copies
// waited on them: dec2's copy phase 2.3-2.8 ms of 12.0-12.8, 2-3x its per-image cost at batch 25. Each group now
// prefetches (prefetcht1) its next chunk's NCHW lines while the current chunk's GEMMs run, spread evenly over the
// gather kernel's row units (LinesAhead). Isolated, warm: enc2 2.97 -> 2.90, dec1 6.30 -> 5.65, dec2 12.47 -> 11.94
// ms (the copy phase 2.3 -> 1.3); in the training step (per-call CPU minima, 10 steps a run; two sessions of 4
// rounds): enc2 3.61 -> 3.42 and 3.54 -> 3.15, dec1 6.88 -> 5.88 and 6.45 -> 5.89, dec2 13.83 -> 13.66 and 13.55 ->
// 12.88, the step 112.8 -> 111.1 and 108.4 -> 106.8. Batch 25 even, isolated (0.303 / 0.599 / 1.194 -> 0.302 /
// 0.597 / 1.190: the copies gain 10-20%, the prefetches cost the GEMM phase 2-3%) and in the step (+0.6 to +1.3%,
// within noise); its groups' first chunks, a third of its images, are not prefetched. 2-thread walls could not be
// measured this session (load 6-7: the step at B=256 took 370-410 ms). Not taken, same method:
// - 4 lines per row unit up front (the prefetch done in the first quarter of a chunk): in the step, prefetcht1 took
//   10% of the kernel's samples (waiting for line fill buffers) and dec2 gained nothing (13.4 -> 13.5).
// - one loop over the k steps of a block with an offset per step (instead of rows of 7-14 points, to drop the short
//   inner loops' exits): batch 25 transform + GEMM phase enc2 0.224 -> 0.238, dec1 0.453 -> 0.475, dec2 0.950 ->
//   1.023 ms (the offset loads cost more than the exits).
// - the transforms and gy planes built with 512-bit vectors (target prefer-vector-width=512 on transform_run and
//   make_gy_planes): transform + GEMM phase +0.2 to +2.4% at batch 25, i.e. nothing.
// - prefetching two chunks ahead instead of one: no better (noisy).
// - after a group's last chunk, the next group's first (batch 25: enc2 has one chunk per group, so no prefetch at
//   all): the copies gain (dec2 0.159 -> 0.115, dec1 0.069 -> 0.053 ms) and the GEMM phase loses as much (+3.5 to
//   +5.8%): enc2 0.285 -> 0.289, dec1 0.554 -> 0.571, dec2 1.088 -> 1.068 ms, so even.
// Left: from memory (512 MB written between calls, as in the step, where dec2's x was last read by another pass) the
// prefetch helps dec1 only (6.94 -> 6.56) and not dec2 (13.15 -> 13.21) or enc2: at memory latency ~16 lines in flight
// per core are too few beside the gather kernel's own misses. dec2 in the step is ~13.7 ms against ~11.5 isolated.
// What the copy reorders: each image NCHW -> [pixel][c_pad], because the gather kernel loads nr output channels of
// one gy pixel as two vectors. Its x side is only broadcast (kMr separate loads per k step), so x could be read in
// place from the NCHW planes (tile_step's a_stride = H W; C_in a multiple of kMr, or the last panel from a copy) for
// the sides read without a transform (36% of the points), and the x differences formed from the planes into the
// point-major block (a gather across channels there, or the block made channel-major); that drops x's copy (two
// thirds of the copied bytes at dec2) and its cold read, and is the next thing to try here; gy's copy must stay.
// Rounding: each transformed value adds up to 2 x 2 inputs, and the output transform up to 9 R_t whose terms partly
// cancel, so float32 results differ from the direct path's by a few units of eps * sum |gy x|
// (tests/test_conv2d_backward_weight_winograd.py measures it: at most 3.7 at stride 1, 6.6 at stride 2).
#include "cpu/conv2d_backward_weight_winograd.h"
#include <algorithm>
#include <initializer_list>
#include <utility>
#include <vector>
#include "cpu/block_channels.h"
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"

namespace gradcore {

namespace {

using namespace cpu;

constexpr int kTypes = 4;  // point types per side

// A combination of at most two values along one side: sum_j c[j] v[at[j]].
struct Terms {
  int n = 0;
  int64_t at[2] = {0, 0};
  double c[2] = {0, 0};
};

struct Point {
  Terms gy, x;
};

// One side's algorithm: its points, grouped by type, and the types' coefficients on the three taps.
struct Scheme {
  std::vector<Point> points;  // type 0's, then type 1's, ...
  int64_t start[kTypes + 1] = {};
  int tap[kTypes][3] = {};
  int64_t count(int t) const { return start[t + 1] - start[t]; }
};

// The points of one side of `out` outputs from `in` inputs (the formulas at the top of the file).
Scheme make_scheme(int64_t out, int64_t in, int64_t stride, int64_t pad) {
  using List = std::initializer_list<std::pair<int64_t, double>>;
  std::vector<Point> by_type[kTypes];
  auto add = [&](int type, List gy, List x) {
    Point pt;
    for (auto [at, c] : gy)
      if (at >= 0 && at < out) pt.gy.at[pt.gy.n] = at, pt.gy.c[pt.gy.n++] = c;
    for (auto [at, c] : x)
      if (at >= 0 && at < in) pt.x.at[pt.x.n] = at, pt.x.c[pt.x.n++] = c;
    if (pt.gy.n && pt.x.n) by_type[type].push_back(pt);
  };
  Scheme s;
  static constexpr int taps1[kTypes][3] = {{1, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 1}};
  static constexpr int taps2[kTypes][3] = {{1, 0, 0}, {1, 0, 1}, {0, 0, 1}, {0, 1, 0}};
  for (int t = 0; t < kTypes; ++t)
    for (int k = 0; k < 3; ++k) s.tap[t][k] = stride == 1 ? taps1[t][k] : taps2[t][k];
  for (int64_t o = 0; o < out; o += 2) {
    if (stride == 1) {
      const int64_t i = o - pad;
      add(0, {{o, 1}}, {{i, 1}, {i + 2, -1}});
      add(1, {{o, .5}, {o + 1, .5}}, {{i + 1, 1}, {i + 2, 1}});
      add(2, {{o, .5}, {o + 1, -.5}}, {{i + 2, 1}, {i + 1, -1}});
      add(3, {{o + 1, 1}}, {{i + 3, 1}, {i + 1, -1}});
    } else {
      const int64_t i = 2 * o - pad;
      add(0, {{o, 1}}, {{i, 1}, {i + 2, -1}});
      add(1, {{o, 1}, {o + 1, 1}}, {{i + 2, 1}});
      add(2, {{o + 1, 1}}, {{i + 4, 1}, {i + 2, -1}});
      add(3, {{o, 1}}, {{i + 1, 1}});
      add(3, {{o + 1, 1}}, {{i + 3, 1}});
    }
  }
  for (int t = 0; t < kTypes; ++t) {
    s.start[t] = (int64_t)s.points.size();
    s.points.insert(s.points.end(), by_type[t].begin(), by_type[t].end());
  }
  s.start[kTypes] = (int64_t)s.points.size();
  return s;
}

// Consecutive points of one type whose terms (of one side) have the same count and coefficients and whose positions
// advance by one step: the column transform walks a run as one loop.
struct Run {
  int64_t first, length, step;
  Terms terms;  // of the run's first point
};

std::vector<Run> runs_of(const Scheme& s, int type, Terms Point::*side) {
  std::vector<Run> runs;
  for (int64_t j = s.start[type]; j < s.start[type + 1]; ++j) {
    const Terms& t = s.points[j].*side;
    if (!runs.empty()) {
      Run& r = runs.back();
      const Terms& f = r.terms;
      const int64_t step = t.at[0] - (f.at[0] + (r.length - 1) * r.step);
      const bool same = t.n == f.n && t.c[0] == f.c[0] && (t.n == 1 || (t.c[1] == f.c[1] && t.at[1] - t.at[0] ==
                                                                                                 f.at[1] - f.at[0]));
      if (same && (r.length == 1 ? step > 0 : step == r.step)) {
        if (r.length == 1) r.step = step;
        ++r.length;
        continue;
      }
    }
    runs.push_back(Run{j - s.start[type], 1, 0, t});
  }
  return runs;
}

// The 2-D problem: both sides' schemes and where each 2-D type's operands sit in a chunk's buffers.
struct Plan {
  Scheme rows, cols;
  std::vector<Run> row_runs[2][kTypes], col_runs[2][kTypes];  // [gy, x][row or column type]
  int64_t points[kTypes * kTypes];  // per image, per type t = 4 (row type) + column type
  int64_t per_image = 0;            // sum of points[]
  int64_t before[kTypes * kTypes];  // points of the types before t, per image
};

Plan make_plan(const Conv2dParams& p) {
  Plan q;
  q.rows = make_scheme(p.out_h, p.in_h, p.stride_h, p.pad_top);
  q.cols = make_scheme(p.out_w, p.in_w, p.stride_w, p.pad_left);
  for (int t = 0; t < kTypes * kTypes; ++t) {
    q.before[t] = q.per_image;
    q.points[t] = q.rows.count(t / kTypes) * q.cols.count(t % kTypes);
    q.per_image += q.points[t];
  }
  for (int tc = 0; tc < kTypes; ++tc) {
    q.col_runs[0][tc] = runs_of(q.cols, tc, &Point::gy);
    q.col_runs[1][tc] = runs_of(q.cols, tc, &Point::x);
    q.row_runs[0][tc] = runs_of(q.rows, tc, &Point::gy);
    q.row_runs[1][tc] = runs_of(q.rows, tc, &Point::x);
  }
  return q;
}

// The values of `rows` row points (rows_step apart in the input, one after the other in k, row_k apart) times one
// column run, every channel: d[blk][.][width] (blocks kt * width apart), from the rows r0 (r1: the rows' second
// term) at the run's column offsets. KIND: (row terms - 1) * 2 + column terms - 1. One point at a time with every
// channel block inside, so the reads walk the channels-innermost rows in order, and the loops carry no branch: the
// short runs of small images (7 points) cost more in calls than in arithmetic when walked one row point per call.
// WIDTH: the block width, a compile-time constant for the GEMM's panels; 0 for the stride-2 driver's point-major
// layout (d[k][c_pad], like the channels-innermost images, so its gather kernel reads both alike): one block of
// `width` = c_pad channels per point, one contiguous vector loop per point.
template <typename T, int64_t WIDTH, int KIND>
void transform_run(const T* r0, const T* r1, int64_t rows, int64_t rows_step, int64_t row_k, int64_t o0, int64_t o1,
                   int64_t step, int64_t length, int64_t blocks, int64_t kt, int64_t width, T k00, T k01, T k10,
                   T k11, T* d) {
  const int64_t w = WIDTH ? WIDTH : width;
  for (int64_t a = 0; a < rows; ++a, r0 += rows_step, r1 += rows_step) {
    T* da = d + a * row_k * w;
    for (int64_t b = 0, off = 0; b < length; ++b, da += w, off += step) {
      const T *p00 = r0 + o0 + off, *p01 = r0 + o1 + off, *p10 = r1 + o0 + off, *p11 = r1 + o1 + off;
      for (int64_t blk = 0; blk < blocks; ++blk, p00 += w, p01 += w, p10 += w, p11 += w) {
        T* o = da + blk * kt * w;
        if constexpr (KIND == 0) {
#pragma omp simd
          for (int64_t j = 0; j < w; ++j) o[j] = k00 * p00[j];
        } else if constexpr (KIND == 1) {
#pragma omp simd
          for (int64_t j = 0; j < w; ++j) o[j] = k00 * p00[j] + k01 * p01[j];
        } else if constexpr (KIND == 2) {
#pragma omp simd
          for (int64_t j = 0; j < w; ++j) o[j] = k00 * p00[j] + k10 * p10[j];
        } else {
#pragma omp simd
          for (int64_t j = 0; j < w; ++j) o[j] = (k00 * p00[j] + k01 * p01[j]) + (k10 * p10[j] + k11 * p11[j]);
        }
      }
    }
  }
}

// One side's operand of 2-D type t = (tr, tc), row points [a0, a1) of one image of a chunk: the point values of every
// channel, written into out as blocks of WIDTH channels, [block][k][WIDTH], k = k0 + (row point - a0) * column
// points of tc + column point index, kt = k's range; WIDTH 0: point-major, out[k][c_pad] (kt unused). plane: the
// image, channels innermost ([rows][cols_in][c_pad]). Each value is at most 2 x 2 terms: coefficient products (+-1,
// +-1/2, +-1/4: exact) times inputs, added in a fixed order, the same in either layout. Row points of the same shape
// a fixed step apart (a row run) go through one call per column run.
template <typename T, int64_t WIDTH>
void transform_type(const T* plane, int64_t cols_in, int64_t c_pad, const Plan& q, int t, Terms Point::*side,
                    int64_t a0, int64_t a1, int64_t k0, int64_t kt, T* out) {
  const int tr = t / kTypes, tc = t % kTypes, x_side = side == &Point::x;
  const int64_t width = WIDTH ? WIDTH : c_pad, blocks = c_pad / width;
  const int64_t per_row = q.cols.count(tc), row_size = cols_in * c_pad;
  for (const Run& rrun : q.row_runs[x_side][tr]) {
    const int64_t first = std::max(a0, rrun.first), last = std::min(a1, rrun.first + rrun.length);
    if (first >= last) continue;
    const Terms& rt = rrun.terms;  // the run's first row point; row point a's terms sit (a - first) step rows on
    const T* r0 = plane + (rt.at[0] + (first - rrun.first) * rrun.step) * row_size;
    const T* r1 = plane + (rt.at[1] + (first - rrun.first) * rrun.step) * row_size;
    T* dst = out + (k0 + (first - a0) * per_row) * width;
    for (const Run& run : q.col_runs[x_side][tc]) {
      const Terms& ct = run.terms;
      const T k00 = T(rt.c[0] * ct.c[0]), k01 = T(rt.c[0] * ct.c[1]), k10 = T(rt.c[1] * ct.c[0]),
              k11 = T(rt.c[1] * ct.c[1]);
      const int64_t step = run.step * c_pad, o0 = ct.at[0] * c_pad, o1 = ct.at[1] * c_pad;
      const int64_t rows = last - first, rows_step = rrun.step * row_size;
      T* d = dst + run.first * width;
#define GRADCORE_RUN(KIND)                                                                                      \
  transform_run<T, WIDTH, KIND>(r0, r1, rows, rows_step, per_row, o0, o1, step, run.length, blocks, kt, width, \
                                k00, k01, k10, k11, d)
      switch ((rt.n - 1) * 2 + (ct.n - 1)) {
        case 0: GRADCORE_RUN(0); break;
        case 1: GRADCORE_RUN(1); break;
        case 2: GRADCORE_RUN(2); break;
        default: GRADCORE_RUN(3);
      }
#undef GRADCORE_RUN
    }
  }
}

// Bytes per chunk of images: its channels-innermost copies of x and gy (read by every type's task) stay in L2/L3,
// and one type's operands (transformed, then read by the GEMM) in L2. Tuning only (the count of images per chunk
// comes from the shapes).
constexpr int64_t kChunkBytes = 1 << 20;
constexpr int64_t kTypeBytes = 512 << 10;

// dW[co, ci, kh, kw] = sum over row types tr of row_coef (sum over column types tc of col_coef R_t[ci, co]), both
// sums in type order, R_t the sum of the `groups` partial R's (group g's at r + g * group_size) in group order; one
// task per input channel, every output channel at once (R's rows are contiguous in co). Inside a parallel region.
template <typename T>
void output_transform(const T* r, int64_t groups, int64_t group_size, const Plan& q, int64_t Cin, int64_t Cout,
                      int64_t ci_pad, int64_t co_pad, T* pw) {
  constexpr int kT = kTypes * kTypes;
  GRADCORE_PHASE("conv2d_backward_weight/winograd_output");
#pragma omp for schedule(static)
  for (int64_t ci = 0; ci < Cin; ++ci) {
    T* sums = scratch_packed_b.get<T>((2 + (groups > 1 ? kT : 0)) * co_pad);  // (R is in no thread's scratch_packed_b)
    T* inner = sums + co_pad;
    T* added = inner + co_pad;  // with several groups: R_t[ci, .] summed over them, per type
    if (groups > 1)
      for (int t = 0; t < kT; ++t) {
        T* sum = added + t * co_pad;
        const T* rt = r + (t * ci_pad + ci) * co_pad;
        std::copy(rt, rt + co_pad, sum);
        for (int64_t g = 1; g < groups; ++g)
#pragma omp simd
          for (int64_t co = 0; co < co_pad; ++co) sum[co] += rt[g * group_size + co];
      }
    for (int kh = 0; kh < 3; ++kh)
      for (int kw = 0; kw < 3; ++kw) {
        std::fill(sums, sums + co_pad, T(0));
        for (int tr = 0; tr < kTypes; ++tr) {
          const T cr = (T)q.rows.tap[tr][kh];
          if (cr == T(0)) continue;
          std::fill(inner, inner + co_pad, T(0));
          for (int tc = 0; tc < kTypes; ++tc) {
            const T cc = (T)q.cols.tap[tc][kw];
            if (cc == T(0)) continue;
            const int t = tr * kTypes + tc;
            const T* rt = groups > 1 ? added + t * co_pad : r + (t * ci_pad + ci) * co_pad;
#pragma omp simd
            for (int64_t co = 0; co < co_pad; ++co) inner[co] += cc * rt[co];
          }
#pragma omp simd
          for (int64_t co = 0; co < co_pad; ++co) sums[co] += cr * inner[co];
        }
        for (int64_t co = 0; co < Cout; ++co) pw[((co * Cin + ci) * 3 + kh) * 3 + kw] = sums[co];
      }
  }
}

template <typename T>
void backward_weight_winograd(const T* px, const T* pg, T* pw, const Conv2dParams& p) {
  constexpr int64_t nr = nr_of<T>();
  constexpr int kT = kTypes * kTypes;
  const int64_t N = p.batch, Cin = p.in_channels, Cout = p.out_channels, H = p.in_h, W = p.in_w;
  const int64_t Ho = p.out_h, Wo = p.out_w;
  const int64_t ci_pad = round_up(Cin, kMr), co_pad = round_up(Cout, nr);
  const Plan q = make_plan(p);
  const int64_t x_image = H * W * ci_pad, g_image = Ho * Wo * co_pad;
  const int64_t most_points = *std::max_element(q.points, q.points + kT);
  const int64_t chunk = std::clamp<int64_t>(
      std::min(kChunkBytes / (int64_t)sizeof(T) / (x_image + g_image),
               kTypeBytes / (int64_t)sizeof(T) / std::max<int64_t>(most_points * (ci_pad + co_pad), 1)),
      1, N);
  const int64_t panels = ci_pad / kMr, strips = co_pad / nr;
  // The calling thread's scratch holds R_t (kT x ci_pad x co_pad) and the chunk's channels-innermost x and gy; each
  // thread's own holds the operands of the type it works on.
  T* r = scratch_col.get<T>(kT * ci_pad * co_pad + chunk * (x_image + g_image));
  T* xt = r + kT * ci_pad * co_pad;
  T* gt = xt + chunk * x_image;
  int order[kT];  // the types, most points first, so that the last tasks of a chunk are short ones
  for (int t = 0; t < kT; ++t) order[t] = t;
  std::stable_sort(order, order + kT, [&](int a, int b) { return q.points[a] > q.points[b]; });
  const bool parallel = N * Cout * Ho * Wo * Cin * 9 >= kParallelThreshold;  // multiply-adds of the direct path
#pragma omp parallel if (parallel)
  {
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
      const int64_t count = std::min(chunk, N - n0);
      {
        GRADCORE_PHASE("conv2d_backward_weight/winograd_transpose");
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < 2 * count; ++task) {
          const int64_t i = task / 2;
          if (task % 2 == 0)
            block_channels(pg + (n0 + i) * Cout * Ho * Wo, Cout, Ho * Wo, Ho * Wo, (int64_t)0, co_pad,
                           gt + i * g_image);
          else
            block_channels(px + (n0 + i) * Cin * H * W, Cin, H * W, H * W, (int64_t)0, ci_pad, xt + i * x_image);
        }
      }
#pragma omp for schedule(dynamic, 1)
      for (int j = 0; j < kT; ++j) {
        const int t = order[j];
        const int64_t kt = count * q.points[t], rows_t = q.rows.count(t / kTypes);
        T* u = scratch_packed_b.get<T>(kt * (co_pad + ci_pad));
        T* v = u + kt * co_pad;
        {
          GRADCORE_PHASE("conv2d_backward_weight/winograd_transform");
          for (int64_t i = 0; i < count; ++i) {
            transform_type<T, nr>(gt + i * g_image, Wo, co_pad, q, t, &Point::gy, 0, rows_t, i * q.points[t], kt, u);
            transform_type<T, (int64_t)kMr>(xt + i * x_image, W, ci_pad, q, t, &Point::x, 0, rows_t,
                                            i * q.points[t], kt, v);
          }
        }
        GRADCORE_PHASE("conv2d_backward_weight/winograd_gemm");
        for (int64_t strip = 0; strip < strips; ++strip)
          for (int64_t panel = 0; panel < panels; ++panel)
            micro_kernel_rows<T, kMr>(kMr, kt, v + panel * kt * kMr, u + strip * kt * nr,
                                      r + (t * ci_pad + panel * kMr) * co_pad + strip * nr, co_pad, nr, n0 > 0,
                                      (const T*)nullptr);
      }
    }
    output_transform(r, 1, 0, q, Cin, Cout, ci_pad, co_pad, pw);
  }
}

// ---- stride 2 on both sides: images in groups, each group's R on one thread ------------------------------------
//
// At stride 2 the GEMMs are a smaller share of the work (1.44x fewer multiplies, not 2.25x), so what the driver above
// pays around them shows: two barriers per chunk of images, 16 type tasks of unequal sizes, and operand buffers of a
// whole chunk per type that spill out of L2 before the GEMM reads them. Here the images go in `groups` fixed ranges
// (from N alone); a task takes a group and runs all of it alone: per chunk of its images, the channels-innermost
// copies and gy's planes, then per type the points in blocks of about kBlockPoints (whole row points), each block's
// x differences transformed into an L1-sized buffer and multiplied at once by the gather kernel, added onto the
// group's own R. No barrier until the output transform, which first adds the groups' R in group order. Every R
// element is summed in an order fixed by the shapes (blocks, chunks, groups), never by the thread count; the in-place
// reads and the planes sum the same values in the same order as the packed transforms they replaced (the same bits).
constexpr int64_t kGroups = 4;            // image groups (at most; fewer for N < 4): room to rebalance 2 threads
constexpr int64_t kBlockPoints = 128;     // points per transform + GEMM block: the x buffer in L1
constexpr int64_t kGroupChunkBytes = 300 << 10;  // a chunk's channels-innermost x and gy (without gy's
                                                 // planes, 2.25x gy at 14x14): well inside L2

// One thread's R for the stride-2 driver's groups: kept between calls (only grows).
inline thread_local Scratch scratch_winograd_r;

// Where the stride-2 driver's GEMM reads one side's operand of a 2-D type: straight from the channels-innermost
// image when every point of the type is a single term with coefficient 1 (no combination to form, so the packed copy
// would only move it), else from the transformed block. A single-term side is a gather of pixels: row point a at
// image row row_at[a], its column points at column col0 + j col_step. Straight reads need the column points to be one
// run (a fixed step apart); the rows may sit anywhere (each row unit gets its own offset).
struct DirectSide {
  bool direct = false;
  std::vector<int64_t> row_at;  // per row point of the type
  int64_t col0 = 0, col_step = 0;
};

DirectSide direct_side(const Plan& q, int t, Terms Point::*side) {
  const int tr = t / kTypes, tc = t % kTypes, x_side = side == &Point::x;
  DirectSide d;
  for (int64_t a = q.rows.start[tr]; a < q.rows.start[tr + 1]; ++a) {
    const Terms& rt = q.rows.points[a].*side;
    if (rt.n != 1 || rt.c[0] != 1) return d;
    d.row_at.push_back(rt.at[0]);
  }
  const std::vector<Run>& runs = q.col_runs[x_side][tc];
  if (runs.size() > 1) return d;
  if (runs.size() == 1) {
    const Terms& ct = runs[0].terms;
    if (ct.n != 1 || ct.c[0] != 1) return d;
    d.col0 = ct.at[0];
    d.col_step = runs[0].step;
  }
  d.direct = true;
  return d;
}

// The gy side at stride 2 needs no transform at all: its only combination is the pair sum of point type 1 (gy[o] +
// gy[o + 1], coefficients 1), so every 2-D type's gy values are pixels of one of four planes per image, each value
// formed once (the per-type transforms formed the pair sums once per type that used them, 441 values per 14x14 image
// instead of these 245):
//   plane 0: gy itself, [Ho][Wo];                     types (row type != 1, column type != 1)
//   plane 1: column pair sums of every gy row, [Ho][n1c] (n1c: column points of type 1);  (!= 1, 1)
//   plane 2: row pair sums of every gy column, [n1r][Wo];  (1, != 1)
//   plane 3: both, [n1r][n1c], plane 1's rows added;   (1, 1)
// The sums are the transforms' (the same terms in the same order: a 2 x 2 value is (row 0's column sum) + (row 1's)),
// so the bits are too. GyPlanes says where they sit; gy_planes_apply says whether the scheme has that shape.
struct GyPlanes {
  int64_t n1r = 0, n1c = 0, offset[4] = {}, width[4] = {}, size = 0;  // offsets and size in pixels of co_pad values
};

GyPlanes gy_planes_of(const Plan& q, int64_t Ho, int64_t Wo) {
  GyPlanes g;
  g.n1r = q.rows.count(1), g.n1c = q.cols.count(1);
  const int64_t rows[4] = {Ho, Ho, g.n1r, g.n1r};
  g.width[0] = g.width[2] = Wo, g.width[1] = g.width[3] = g.n1c;
  for (int k = 0; k < 4; ++k) g.offset[k] = g.size, g.size += rows[k] * g.width[k];
  return g;
}

bool gy_planes_apply(const Plan& q) {
  for (const Scheme* s : {&q.rows, &q.cols})
    for (int t = 0; t < kTypes; ++t)
      for (int64_t j = s->start[t]; j < s->start[t + 1]; ++j) {
        const Terms& g = s->points[j].gy;
        if (g.c[0] != 1 || (g.n == 2 && g.c[1] != 1) || (t != 1 && g.n != 1)) return false;
      }
  for (int t = 0; t < kTypes; ++t)  // single-term column types: one run, read a fixed step apart
    if (t != 1 && q.col_runs[0][t].size() > 1) return false;
  return true;
}

// Planes 1..3 of one image from plane 0 (at gp, channels innermost, co_pad per pixel).
template <typename T>
void make_gy_planes(T* gp, const Plan& q, const GyPlanes& g, int64_t Ho, int64_t co_pad) {
  auto add_terms = [&](const Terms& terms, auto at_of, T* dst) {
    const T* p0 = at_of(terms.at[0]);
    if (terms.n == 1) {
      std::copy(p0, p0 + co_pad, dst);
    } else {
      const T* p1 = at_of(terms.at[1]);
#pragma omp simd
      for (int64_t c = 0; c < co_pad; ++c) dst[c] = p0[c] + p1[c];
    }
  };
  const int64_t Wo = g.width[0];
  for (int64_t r = 0; r < Ho; ++r)  // plane 1
    for (int64_t j = 0; j < g.n1c; ++j)
      add_terms(q.cols.points[q.cols.start[1] + j].gy, [&](int64_t col) { return gp + (r * Wo + col) * co_pad; },
                gp + (g.offset[1] + r * g.n1c + j) * co_pad);
  for (int64_t a = 0; a < g.n1r; ++a) {
    const Terms& rt = q.rows.points[q.rows.start[1] + a].gy;
    for (int64_t col = 0; col < Wo; ++col)  // plane 2
      add_terms(rt, [&](int64_t row) { return gp + (row * Wo + col) * co_pad; },
                gp + (g.offset[2] + a * Wo + col) * co_pad);
    for (int64_t j = 0; j < g.n1c; ++j)  // plane 3
      add_terms(rt, [&](int64_t row) { return gp + (g.offset[1] + row * g.n1c + j) * co_pad; },
                gp + (g.offset[3] + a * g.n1c + j) * co_pad);
  }
}

// Where type t's gy values sit in an image's planes: row point a at plane row row_at[a], column point j at column
// col0 + j col_step of a plane `width` wide starting at pixel `offset`.
DirectSide gy_plane_side(const Plan& q, const GyPlanes& g, int t, int64_t* offset, int64_t* width) {
  const int tr = t / kTypes, tc = t % kTypes, k = (tr == 1) * 2 + (tc == 1);
  DirectSide d;
  d.direct = true;
  for (int64_t a = q.rows.start[tr]; a < q.rows.start[tr + 1]; ++a)
    d.row_at.push_back(tr == 1 ? a - q.rows.start[tr] : q.rows.points[a].gy.at[0]);
  if (tc == 1) {
    d.col0 = 0, d.col_step = 1;
  } else if (!q.col_runs[0][tc].empty()) {
    d.col0 = q.col_runs[0][tc][0].terms.at[0], d.col_step = q.col_runs[0][tc][0].step;
  }
  *offset = g.offset[k], *width = g.width[k];
  return d;
}

// The source lines (NCHW x and gy) of a group's next chunk of images, fetched into L2 while the current chunk's GEMMs
// run, so that its channels-innermost copies find them there: at batch 256 x and gy come from L3 or memory (seed
// dec2: 38 MB), and the copies waited on them. Two contiguous ranges (the chunk's gy images, its x images), handed
// out `per_unit` lines per row unit of the gather kernel, a call's worth at a time (take()), spread over the whole
// chunk: a burst would wait for line fill buffers. A hint only: no result depends on it.
struct LinesAhead {
  const char* at[2] = {nullptr, nullptr};
  const char* end[2] = {nullptr, nullptr};
  int64_t per_unit = 1;
  // The lines for a call of `units` row units: from *from, units_out of them get per_unit each.
  void take(int64_t units, const char** from, int64_t* units_out) {
    const int r = at[0] < end[0] ? 0 : 1;
    const int64_t lines = (end[r] - at[r] + 63) / 64;
    *from = at[r];
    *units_out = std::min(units, (lines + per_unit - 1) / per_unit);
    at[r] = std::min(end[r], at[r] + *units_out * per_unit * 64);
  }
};

// The C tile (kMr x nr) [+]= A panel * B strip over the k steps of `units` row units of per_row column points each:
// k = (unit u, column point j) reads A's kMr values at a + a_off[u] + j a_step and B's nr at b + b_off[u] + j b_step
// (a packed block: a_off[u] = u per_row kMr, a_step = kMr; an image read in place: the pixel's channels). The sums
// in k order from zero, then C added: gemm.h's micro_kernel's order and rounding, so a packed block gives its bits.
// Row units [0, ahead_units) also prefetch ahead_lines lines each into L2, from `ahead` on (LinesAhead).
template <typename T>
void gather_kernel(int64_t units, int64_t per_row, const T* a, const int64_t* a_off, int64_t a_step, const T* b,
                   const int64_t* b_off, int64_t b_step, T* c, int64_t ldc, bool accumulate, const char* ahead,
                   int64_t ahead_units, int64_t ahead_lines) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  V acc0[kMr], acc1[kMr];
#pragma GCC unroll 16
  for (int i = 0; i < kMr; ++i) {
    acc0[i] = broadcast<T>(T(0));
    acc1[i] = acc0[i];
  }
  for (int64_t u = 0; u < units; ++u) {
    const T* ak = a + a_off[u];
    const T* bk = b + b_off[u];
    if (u < ahead_units)
      for (int64_t l = 0; l < ahead_lines; ++l) __builtin_prefetch(ahead + (u * ahead_lines + l) * 64, 0, 2);  // T1
    for (int64_t j = 0; j < per_row; ++j, ak += a_step, bk += b_step) {
      tile_step<T, kMr>(acc0, acc1, ak, 1, load_vec(bk), load_vec(bk + L));
    }
  }
  if (accumulate) {
#pragma GCC unroll 16
    for (int i = 0; i < kMr; ++i) {
      acc0[i] += load_vec(c + i * ldc);
      acc1[i] += load_vec(c + i * ldc + L);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < kMr; ++i) {
    store_vec(c + i * ldc, acc0[i]);
    store_vec(c + i * ldc + L, acc1[i]);
  }
}

template <typename T>
void backward_weight_winograd_groups(const T* px, const T* pg, T* pw, const Conv2dParams& p) {
  constexpr int64_t nr = nr_of<T>();
  constexpr int kT = kTypes * kTypes;
  const int64_t N = p.batch, Cin = p.in_channels, Cout = p.out_channels, H = p.in_h, W = p.in_w;
  const int64_t Ho = p.out_h, Wo = p.out_w;
  const int64_t ci_pad = round_up(Cin, kMr), co_pad = round_up(Cout, nr);
  const Plan q = make_plan(p);
  // gy's planes (GyPlanes) where the scheme allows, else gy alone and the per-type transforms
  const bool planes = gy_planes_apply(q);
  const GyPlanes gyp = gy_planes_of(q, Ho, Wo);
  const int64_t x_image = H * W * ci_pad, g_image = (planes ? gyp.size : Ho * Wo) * co_pad;
  const int64_t groups = std::min(N, kGroups);
  const int64_t chunk =
      std::clamp<int64_t>(kGroupChunkBytes / (int64_t)sizeof(T) / (x_image + Ho * Wo * co_pad), 1, N);
  const int64_t panels = ci_pad / kMr, strips = co_pad / nr, group_size = kT * ci_pad * co_pad;
  T* r = scratch_winograd_r.get<T>(groups * group_size);
  DirectSide direct[kT][2];  // per type: [gy side, x side]
  int64_t g_plane[kT] = {}, g_width[kT];  // per type: its gy plane's first pixel and width
  for (int t = 0; t < kT; ++t) {
    g_width[t] = Wo;
    direct[t][0] = planes ? gy_plane_side(q, gyp, t, &g_plane[t], &g_width[t]) : direct_side(q, t, &Point::gy);
    direct[t][1] = direct_side(q, t, &Point::x);
  }
  int64_t units_per_image = 0;  // the gather kernel's row units per image: every type's rows, per strip and panel
  for (int t = 0; t < kT; ++t) units_per_image += q.rows.count(t / kTypes) * strips * panels;
  units_per_image = std::max<int64_t>(units_per_image, 1);
  const bool parallel = N * Cout * Ho * Wo * Cin * 9 >= kParallelThreshold;  // multiply-adds of the direct path
  TaskShares group_shares(groups, parallel);
#pragma omp parallel if (parallel)
  {
    group_shares.run([&](int64_t g) {  // (parallel.h's TaskShares: a group's R stays with one core)
      T* rg = r + g * group_size;
      int64_t g_off[kBlockPoints], x_off[kBlockPoints];  // per row unit of a block: where its k steps start
      const int64_t g0 = N * g / groups, g1 = N * (g + 1) / groups;
      T* xt = scratch_col.get<T>(chunk * (x_image + g_image));
      T* gt = xt + chunk * x_image;
      for (int64_t n0 = g0; n0 < g1; n0 += chunk) {
        const int64_t count = std::min(chunk, g1 - n0);
        {
          GRADCORE_PHASE("conv2d_backward_weight/winograd_transpose");
          for (int64_t i = 0; i < count; ++i) {
            block_channels(pg + (n0 + i) * Cout * Ho * Wo, Cout, Ho * Wo, Ho * Wo, (int64_t)0, co_pad,
                           gt + i * g_image);
            block_channels(px + (n0 + i) * Cin * H * W, Cin, H * W, H * W, (int64_t)0, ci_pad, xt + i * x_image);
          }
        }
        GRADCORE_PHASE("conv2d_backward_weight/winograd_transform_gemm");
        LinesAhead ahead;
        if (n0 + count < g1) {
          const int64_t next = std::min(chunk, g1 - n0 - count), g_bytes = Cout * Ho * Wo * (int64_t)sizeof(T),
                        x_bytes = Cin * H * W * (int64_t)sizeof(T);
          ahead.at[0] = (const char*)pg + (n0 + count) * g_bytes, ahead.end[0] = ahead.at[0] + next * g_bytes;
          ahead.at[1] = (const char*)px + (n0 + count) * x_bytes, ahead.end[1] = ahead.at[1] + next * x_bytes;
          ahead.per_unit = (next * (g_bytes + x_bytes) / 64 + units_per_image * count - 1) / (units_per_image * count);
        }
        if (planes)
          for (int64_t i = 0; i < count; ++i) make_gy_planes(gt + i * g_image, q, gyp, Ho, co_pad);
        for (int t = 0; t < kT; ++t) {
          // The type's points of the chunk, row unit (image i, row point a) after row unit, per_row points each, in
          // blocks of whole row units; a side read in place (direct[t]) is neither transformed nor copied
          const DirectSide &gd = direct[t][0], &xd = direct[t][1];
          const int64_t rows_t = q.rows.count(t / kTypes), per_row = q.cols.count(t % kTypes), units = count * rows_t;
          const int64_t unit_block = std::max<int64_t>(1, kBlockPoints / std::max<int64_t>(per_row, 1));
          for (int64_t u0 = 0; u0 == 0 || u0 < units; u0 += unit_block) {  // once even without points: R_t is set
            const int64_t u1 = std::min(units, u0 + unit_block), kt = (u1 - u0) * per_row;
            T* u = scratch_packed_b.get<T>(kt * ((gd.direct ? 0 : co_pad) + (xd.direct ? 0 : ci_pad)));
            T* v = u + (gd.direct ? 0 : kt * co_pad);
            for (int64_t unit = u0; unit < u1;) {
              const int64_t i = unit / rows_t, a0 = unit % rows_t, a1 = std::min(rows_t, a0 + u1 - unit);
              const int64_t k0 = (unit - u0) * per_row;
              if (!gd.direct) transform_type<T, 0>(gt + i * g_image, Wo, co_pad, q, t, &Point::gy, a0, a1, k0, 0, u);
              if (!xd.direct) transform_type<T, 0>(xt + i * x_image, W, ci_pad, q, t, &Point::x, a0, a1, k0, 0, v);
              for (int64_t a = a0; a < a1; ++a) {
                const int64_t at = unit - u0 + a - a0;
                g_off[at] = gd.direct ? i * g_image + (g_plane[t] + gd.row_at[a] * g_width[t] + gd.col0) * co_pad
                                    : at * per_row * co_pad;
                x_off[at] = xd.direct ? i * x_image + (xd.row_at[a] * W + xd.col0) * ci_pad : at * per_row * ci_pad;
              }
              unit += a1 - a0;
            }
            const int64_t g_step = (gd.direct ? gd.col_step : 1) * co_pad;
            const int64_t x_step = (xd.direct ? xd.col_step : 1) * ci_pad;
            const T *g_at = gd.direct ? gt : u, *x_at = xd.direct ? xt : v;
            for (int64_t strip = 0; strip < strips; ++strip) {
              const T* b = g_at + strip * nr;
              for (int64_t panel = 0; panel < panels; ++panel) {
                const char* pf;
                int64_t pf_units;
                ahead.take(u1 - u0, &pf, &pf_units);
                gather_kernel<T>(u1 - u0, per_row, x_at + panel * kMr, x_off, x_step,
                                 b, g_off, g_step, rg + (t * ci_pad + panel * kMr) * co_pad + strip * nr, co_pad,
                                 n0 > g0 || u0 > 0, pf, pf_units, ahead.per_unit);
              }
            }
          }
        }
      }
    });
#pragma omp barrier
    output_transform(r, groups, group_size, q, Cin, Cout, ci_pad, co_pad, pw);  // (after every group's R)
  }
}

}  // namespace

// When Winograd wins. Measured on the 2-core Zen 4 dev machine under load (about 14 on 2 cores), float32, 1 thread,
// thread CPU time, the minimum of 25 calls alternating with the direct path in the same process (N x C_in x H x W ->
// C_out, padding 1; ms, direct -> Winograd):
//   stride 1  16x16x28x28->16: 0.52 -> 0.90   16x32x28x28->32: 2.00 -> 1.59   16x16x28x28->64: 2.07 -> 1.73
//             16x64x28x28->16: 2.09 -> 2.91   16x32x14x14->32: .495 -> .403   16x64x7x7->64: .543 -> .479
//             16x128x7x7->128: 2.43 -> 1.84   8x256x4x4->256: 2.74 -> 3.08    16x16x14x14->16: .146 -> .290
//             16x128x14x14->32: 2.17 -> 1.66  16x32x14x14->128: 2.08 -> 1.42  16x64x16x16->64: 2.81 -> 1.83
//             16x48x28x28->48: 4.86 -> 4.60   16x24x28x28->32: 1.70 -> 1.65   16x32x28x28->24: 2.09 -> 1.69
//             16x16x56x56->32: 4.55 -> 4.16   ConvLSTM 16x65x64x64->256: 206 -> 151
//             ResNet 32x64x56x56->64: 67.5 -> 46.2   32x128x28x28->128: 67.5 -> 38.6   32x256x14x14->256: 74.3 -> 45.0
//   strides mixed (1 and 2): the stride-1 driver; from the stride-2 measurements of that driver (session 4): it won
//             by 4-13% from 32 input and 64 output channels on inputs of at most 16x16, and from 128 channels.
//   stride 2 on both sides, the grouped driver (session 5; load 8-10, minima of 40-80 calls; direct -> Winograd):
//             seed enc2 25x32x14x14->64: .426 -> .388   seed dec1 25x64x14x14->64: .843 -> .701
//             seed dec2 25x32x28x28->64: 1.637 -> 1.520 (bench.conv's padding, (0, 1) per side)
//             16x32x16x16->64: .356 -> .346   16x32x20x20->64: .549 -> .517   16x32x28x28->64: 1.053 -> .975
//             16x32x56x56->64: 4.44 -> 4.23   8x32x32x32->64: .692 -> .682    16x40x20x20->64: .675 -> .643
//             16x48x12x12->96: .469 -> .433   25x64x8x8->64: .303 -> .294     16x64x28x28->64: 2.42 -> 2.20
//             16x64x56x56->64: 9.16 -> 8.45   16x96x16x16->64: 1.20 -> 1.16   16x128x8x8->128: .823 -> .788
//             16x128x14x14->128: 2.59 -> 2.24 8x256x28x28->256: 20.1 -> 17.4
//             16x128x11x9->136: 1.69 -> 1.51  16x128x14x14->112: 2.37 -> 2.01 16x64x14x14->136: 1.47 -> 1.26
//             16x56x14x14->64: .483 -> .484 (a tie, taken)
//             not taken: 16x32x28x28->72: 1.37 -> 1.44
//             16x32x14x14->80: .407 -> .414   16x40x28x28->72: 1.74 -> 1.77   16x64x28x28->32: 1.07 -> 1.01 (C_out
//             32: under the rule's 64, a 5% win left alone)   16x32x28x28->32: .523 -> .536   16x16x28x28->32: .270 ->
//             .308   16x16x14x14->64: .143 -> .164   16x64x14x14->16: .168 -> .298   16x24x28x28->48: .620 -> .784
//             At 2 threads (wall-time minima, too noisy under this load for the rule): seed enc2 .225 -> .210, dec1
//             .462 -> .389, dec2 .960 -> .802 (the stride-1 driver's barriers per chunk made it lose at 2 threads).
// At stride 2 the multiplies only fall by 1.44x, and the copies and transforms eat a good part of that (the header
// says where the time goes): the grouped driver wins by 3-9% from 32 input and 64 output channels, 10-17% from 64
// (at any image size), and loses where C_out leaves over 15% of its 32-wide strips empty (72, 80: the direct path
// pads to 16 instead) or the channels are few. At stride 1 (2.25x fewer multiplies) it wins unless the GEMM is small
// or mostly padding: few channels (C_in C_out < 512), output channels that leave a quarter or more of the 32-wide
// strips empty (C_out = 16), or images under 7x7.
bool winograd_backward_weight_applies(const Conv2dParams& p) {
  if (p.kernel_h != 3 || p.kernel_w != 3 || p.dilation_h != 1 || p.dilation_w != 1 || p.groups != 1) return false;
  const int64_t in = p.in_channels, out = p.out_channels;
  if (p.stride_h == 1 && p.stride_w == 1)
    return in >= 16 && in * out >= 512 && 4 * out >= 3 * round_up(out, 32) && p.out_pixels() >= 49;
  if (p.stride_h == 2 && p.stride_w == 2) return in >= 32 && out >= 64 && 20 * out >= 17 * round_up(out, 32);
  if ((p.stride_h != 1 && p.stride_h != 2) || (p.stride_w != 1 && p.stride_w != 2)) return false;
  return (in >= 128 && out >= 128) || (in >= 32 && out >= 64 && p.in_pixels() <= 256);
}

void conv2d_winograd_backward_weight_cpu(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p) {
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (p.stride_h == 2 && p.stride_w == 2)
      backward_weight_winograd_groups<T>(x.data_as<T>(), gy.data_as<T>(), gw.data_as<T>(), p);
    else
      backward_weight_winograd<T>(x.data_as<T>(), gy.data_as<T>(), gw.data_as<T>(), p);
  });
}

}  // namespace gradcore
