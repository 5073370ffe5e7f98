// The CPU's stride-2, dilation-1, 3x3 convolution forward (conv2d's forward and so conv_transpose2d's input
// gradient) with 25 multiplies per 2x2 block of outputs and input channel instead of 36: the input-phase
// decomposition, with Winograd's minimal filter F(2, 2) on the phase that holds two taps.
//
// One dimension. Output o reads x at 2 o - pad + (0, 1, 2) with taps w0, w1, w2. A "tile" of two outputs 2t, 2t + 1
// reads the five inputs d_k = x[4t - pad + k], k = 0..4 (zero outside the image):
//   y0 = d0 w0 + d1 w1 + d2 w2,   y1 = d2 w0 + d3 w1 + d4 w2.
// The even inputs d0, d2, d4 meet the 2-tap kernel (w0, w2) at stride 1: F(2, 2) gives it in 3 multiplies, and the
// odd inputs d1, d3 meet the 1-tap kernel w1. Grouped by the output combination each product feeds, three "points":
//   P0 = (d0 - d2) w0 + d1 w1,   P1 = d2 (w0 + w2),   P2 = (d4 - d2) w2 + d3 w1;   y0 = P0 + P1,  y1 = P2 + P1,
// 5 multiplies for 2 outputs instead of 6. A point is a sum of "slots" (transformed input times transformed weight):
// point 0 has two, point 1 one, point 2 two.
// Two dimensions (nesting the rule along rows a and columns b), for the tile at output (2 th, 2 tw), every input
// channel i and output channel o:
//   V[a, sa, b, sb; i] = column combination (b, sb) of the row combination (a, sa) of x[i, 4 th - pad_top + 0..4,
//                        4 tw - pad_left + 0..4]                                     (subtractions only)
//   U[a, sa, b, sb; o, i] = sum of w[o, i, kh, kw] over the taps kh of (a, sa) and kw of (b, sb) (in float64, once)
//   P_ab[o] = sum_{sa, sb, i} U[a, sa, b, sb; o, i] V[a, sa, b, sb; i]                 (nine GEMMs)
//   Q_a0 = P_a0 + P_a1,  Q_a1 = P_a2 + P_a1;   y[2th + r, 2tw + c] = Q_(2r)c + Q_1c   (r, c in {0, 1})
// The nine GEMMs have reductions of K = 4C, 2C, 4C, 2C, C, 2C, 4C, 2C, 4C (25 C in all, against 36 C for im2col
// over a 2x2 block). The bias rides in P_11's GEMM (its row bias), which every output sums once.
//
// Why this wins where session 4's phase-domain F(2, 2) (conv2d_winograd.cpp's header) lost: the transforms ride on
// the GEMM's own data movement instead of being passes of their own.
//   Input transform, straight into the GEMM's packed B, strip by strip (nr = 32 tiles x 25 C rows). For images
//   narrow enough (rows_fit_two_vectors), each x row a tile row reads is loaded in place as two vectors (masked:
//   zero outside the image), the row combinations are vector subtractions, one two-register permute per window
//   column moves each tile's column into its lane, masked moves merge the tile rows ("pieces") of 16 lanes, and the
//   column combinations are stored as whole vectors. (Storing a partial vector per tile row instead cost four times
//   as much: the stores, not the loads or permutes, were the bottleneck.) Strips of cut tiles (below), one tile per
//   row, and wider images use one masked AVX-512 gather per window element instead: the same values, the same bits.
//   Weight transform: straight into the nine packed A, in float64 rounded once, through a small block so that the
//   25 destinations are written as runs; each thread transforms all of U into its own scratch before its first strip
//   (a fresh block of that size was mapped anew on every call and its page faults cost more than the transform;
//   shared between the threads, each read half of it from the other core: session 8 below).
//   Output transform: the nine GEMMs of a strip store their P blocks (C_out x 32 tiles each) into a per-thread
//   buffer that stays in L2; the adds, the activation epilogue, and the interleave of the two output columns of each
//   tile (two permutes per 16 tiles) read them from there into a small buffer in y's row order, from which each run of
//   tiles of one tile row is copied into y, channel after channel.
//   Odd output sizes: the tiles cut to one column or one row are sorted after the whole ones (Problem::tile) and run
//   only the GEMMs their outputs need, so 7x7 outputs cost 324 instead of 400 products per image and channel pair.
//
// Measured (2-core Zen 4 dev machine at load 6-9, 1 thread, float32, CPU-time minima of 45-60 calls, interleaved
// runs of this branch and main f4d5fbb, PyTorch 2.13 oneDNN in the same process; ms, direct -> this path):
//   seed enc2 forward        25x32x14x14 -> 64 (7x7 out):    0.556-0.561 -> 0.542-0.546   (PyTorch 0.486-0.49)
//   seed dec1 backward-data  25x64x14x14 -> 64 (7x7 out):    1.095-1.111 -> 1.013-1.034   (PyTorch 0.89-0.94)
//   seed dec2 backward-data  25x32x28x28 -> 64 (14x14 out):  1.988-2.127 -> 1.555-1.634   (PyTorch 1.69-1.83)
//   25x32x28x28 -> 32: 1.15 -> 0.89-0.96   16x128x28x28 -> 256: 18.3-18.6 -> 14.2-14.9
//   outside the rule: 8x64x56x56 -> 128 (gathers): 10.0-10.6 -> 10.1 (a tie)   8x256x14x14 -> 256: 5.1-5.4 ->
//   4.8-5.6 (the packed U out of L2)   32x16x32x32 -> 16: 0.62 -> 0.67-0.81   25x16x14x14 -> 32: 0.17 -> 0.19-0.21
//   4x32x9x9 -> 48 (5x5 out): 0.056 -> 0.073
// Phase timer, 1 thread (ms; gemm / input transform / output transform / weight transform): enc2 0.31 / 0.14 /
// 0.06 / 0.03 (direct: gemm 0.41, im2col 0.14), dec1 0.62 / 0.29 / 0.06 / 0.05 (direct 0.81, 0.27), dec2 1.11 /
// 0.28 / 0.13 / 0.03 (direct 1.60, 0.37). What is left: the input transform of the 7x7-output layers (pieces of
// three or four tiles, and the gathers of the cut-tile strips) and the output transform's per-run stores.
// At batch 256 (lead, after the merge: quiet machine, 1 thread, CPU-time minima of 2-4 interleaved runs; ms,
// direct f4d5fbb -> kinds sorted over the whole batch -> sorted per group of 32 images, Problem::tile): enc2 forward
// 6.22 -> 6.47 -> 5.73, dec1 backward-data 12.10 -> 14.56 -> 11.32, dec2 backward-data 23.4 -> 20.5 -> 20.3.
//
// Session 6 (same bits throughout): the weight transform vectorised over the panel's 8 output channels, the cut tiles'
// strips gathering only the window rows/columns their points read, rows that fit one vector taking
// input_transform_narrow, and the one-kind strips of a group ordered by image (Problem::chunks). Batch 25, 1 thread,
// CPU-time minima of interleaved processes against b359cf6 at load 7-8 (ms): enc2 forward 0.548-0.552 -> 0.502-0.504
// (PyTorch 0.49-0.58), dec1 backward-data 1.03-1.06 -> 0.94-0.95 (PyTorch 0.92-0.95). What bounds it: at batch 25,
// 1 thread, enc2's GEMMs alone take 0.31 ms (324 products per image and channel pair, at the micro-kernel's peak),
// PyTorch's whole forward 0.49 (441 products at ~90% of peak): 0.8 of PyTorch leaves 0.08 ms for every transform
// (now: input 0.11, output 0.06, weights 0.02). Reaching it needs fewer products (F(3, 2) on the even phase: a 7-wide
// row as 3 + 2 + 2 outputs, 289 instead of 324) as well as cheaper transforms; the cut tiles' gathers (16 lanes from
// 16 cache lines each) still cost about as much as the whole tiles' transform.
//
// Work split and determinism: the tiles, in Problem::tile's order, are cut into strips of the GEMM's nr columns; one
// task per strip runs the input transform, the GEMMs and the output transform into its own outputs. Each P element
// is summed over k in the GEMM's fixed order (gemm.h) and each output from its P's in a fixed order, whatever strip
// or lane its tile lands in: results are bitwise identical for any thread count.
//
// Session 7, on a Xeon (Sapphire-Rapids class, AVX-512, two FMA units), batch 25, 1 thread, phase-timer minima of 40
// calls at load 7-8 (ms; gemm of the whole-tile strips + the cut-tile strips / input transform / output / weights):
// enc2 forward 0.13 + 0.045 / 0.09 (narrow 0.06, gathers 0.02) / 0.05 / 0.013 of 0.36 in all; dec1 backward-data
// 0.26 + 0.09 / 0.19 (narrow 0.13, gathers 0.05) / 0.06 / 0.03 of 0.66; dec2 backward-data 0.64 / 0.23 (rows) / 0.15
// / 0.013 of 1.08. The whole-tile GEMMs run at the FMA loop's peak (~205 GFLOP/s counting the strips' padding). On
// this machine gathers alone would take the 7x7-output layers' input transform in ~12% less time than
// input_transform_narrow (enc2 0.082 vs 0.096, dec1 0.184 vs 0.205), the opposite of Zen 4, and lose at 14x14
// outputs (dec2 0.31 vs 0.26 for input_transform_rows): not taken, a quirk of one machine. With the caches flushed
// before each call (64 MiB written; the training step's context, where x was written long before), the same calls
// (this code and 20af11b's, interleaved: equal within the noise) take 0.53-0.60 / 0.84-0.90 / 1.52-1.60 ms, the
// input transform 0.11-0.15 / 0.23-0.26 / 0.41-0.45 of it (batch 256: 4.7-5.3 / 8.4-9.1 / 17.4-18.3, input 1.3-1.5
// / 3.0-3.3 / 5.2-5.7). Software prefetch of the next-but-one channel's window rows in the tile-row transforms made
// no difference beyond the noise (±10%) there: not kept.
//
// Session 8 (same Xeon; same bits throughout: 24 outputs of 8 shapes, 1, 2 and 3 threads, compared bitwise with
// 0b75707's). Each step measured with the phase timer, 1 thread, batch 25, minima of 60-80 calls at load 5-7 (ms):
// - U per thread (above): at 2 threads enc2's GEMMs had taken 0.177 -> 0.205 thread-ms and its output transform
//   0.051 -> 0.084 from 1 thread (half of U read from the other core, whose next transform took the lines back, and
//   a barrier between the phases); with U per thread the GEMMs take 0.172-0.180 at 2 threads. It costs the weight
//   transform once per thread, which the next item made cheaper. Batches 1 and 4 not slower (enc2 2 threads 0.044 ->
//   0.041, 0.068 -> 0.061).
// - transform_weights copies a value's block run with one memcpy (one per input channel before, each with its index
//   arithmetic): 0.013 -> 0.009 (enc2), 0.026-0.031 -> 0.020 (dec1). V's 25 row pointers stepped per channel
//   (value_rows, recomputed per channel, was 2.5% of enc2's samples).
// - input_transform_narrow and _rows work out each source's or piece's five window rows (pointer, load mask, zero
//   outside the image) once per strip: before, a bounds branch and a multiply per load and channel kept the loop in
//   scalar code around each masked load. Input transform enc2 0.085-0.089 -> 0.066, dec1 0.18-0.19 -> 0.136-0.143,
//   dec2 0.265 -> 0.213-0.223. The narrow transform now matches or beats the gathers on this machine too (0.064-0.071
//   / 0.140): session 7's Zen-4-versus-Xeon question is moot, and the rule stays.
// - output transform: the interleave once per 16 lanes, then masked copies per run (0.050 -> 0.046 enc2, 0.060 ->
//   0.057 dec1, 0.160 -> 0.135 dec2); y's lines fetched for writing 4 channels ahead in runs of <= 16 outputs
//   (dec1 0.057-0.059 -> 0.049-0.051, enc2 0.047 -> 0.044-0.045; 8 channels ahead no better).
// Whole calls against 0b75707, interleaved processes, minima (ms; load 6-7, the same build varies +-15% between
// runs): 1 thread CPU time, 5 x 80 calls: enc2 forward 0.431 -> 0.393, dec1 backward-data 0.763 -> 0.684, dec2
// backward-data 1.212 -> 1.176 (an earlier set at load 6: 0.350 -> 0.328, 0.625 -> 0.598, 1.140 -> 1.090); 2 threads
// wall, 7 x 200 calls: 0.241 -> 0.202, 0.394 -> 0.365, 0.645 -> 0.555. Batch 256, 1 thread, 3 x 8 calls: 4.35 ->
// 3.80, 9.21 -> 7.69, 24.7 -> 22.3. Against PyTorch in the same process (2 threads, minima of 2 x 200 calls, three
// runs alternating with 0b75707's, load 5-7): enc2 forward 0.160-0.166 against 0.191-0.201 (ratio 0.82-0.87;
// 0b75707 0.198-0.206, 1.02-1.04), dec1 backward-data 0.293-0.300 against 0.322-0.329 (0.90-0.91; 0b75707
// 0.302-0.334, 0.92-1.02), dec2 backward-data 0.470 against 0.658-0.684 (0.69; 0b75707 0.80-0.82): the 0.8 target
// is not reached. Where enc2's time goes
// now (1 thread, 0.32 ms: GEMMs 0.18-0.19, input 0.065, output 0.045, weights 0.009; perf samples): the GEMMs' FMA
// loop 56% (at peak; 269 of the 253 strip-products needed at batch 25, the rest the mixed and half-empty last
// strips), input_transform_narrow 11%, the cut tiles' gathers 7% (per tile twice narrow's cost: a strip of
// one-column tiles has one tile per tile row, too many sources for narrow), the output copy 11% (~22k masked stores
// per call, more than half of them the cut tiles' one- or two-output stores), weights 3%. 2 threads scale 1t / (2 x
// 2t) = 0.88-0.89 (0b75707: 0.82-0.84), with ~0.015 ms of Python per call serial.
// Not attempted: streaming y (non-temporal stores through a stage, as conv_transpose2d_winograd.cpp does for gx of 4
// MiB or more) for dec2's backward-data at batch 256 (12.8 MB): a strip holds parts of two images and the strips of
// one image can run on two threads, so whole lines of y would need tasks of whole images first.
//
// Untried: F(4, 2) on the even phase (session 4 measured float32 errors of 30-130 units for it); a direct kernel for
// the 7x7 layers, where this path wins only 3-8%.
//
// Tried and measured slower (session 7, Xeon; commit 86fd2bc, reverted): F(3, 2) on the even phase. One dimension,
// a tile of 3 outputs reads d0..d6, 5 points: P0 = (d0 - d4) w0 + d1 w1, P1 = (d2 + d4)(w0 + w2)/2, P2 = (d4 - d2)
// (w0 - w2)/2, P3 = (d6 - d2) w2 + d5 w1, P4 = d3 w1; y0 = P0 + (P1 + P2), y1 = (P1 - P2) + P4, y2 = (P1 + P2) + P3
// (7 multiplies per 3 outputs). 3x3 tiles (25 points, 25 GEMMs of K = C..4C, 49 C products) on the outputs
// [0, 6 (out_h / 6)) x [0, 6 (out_w / 6)), the 2x2 tiles and their cut kinds on the rest: 295 instead of 324 products
// per image and channel pair for 7x7 outputs, 1109 instead of 1225 for 14x14; the input transform by 7x7 gathers.
// Correct (float32 worst error ratios 3.49 / 3.74 / 2.89 for C_in 32 / 64 / 128, bound 8), but slower: 1 thread, load
// 7-8, minima of 40 calls' conv2d_winograd_s2 phase at batch 25, of 5 calls' CPU time at batch 256 (ms, F(2, 2) ->
// with F(3, 2)): batch 25 enc2 forward 0.41 -> 0.51, dec1 backward-data 0.77 ->
// 0.95, dec2 backward-data 1.26 -> 1.43; batch 256 5.3 -> 5.1, 9.1 -> 9.3, 17.7 -> 21.0. Phase timer, batch 25 enc2:
// GEMMs 0.20 -> 0.22 ms (fewer products, but 25 GEMMs with 9 of K = C = 32 run further from the micro-kernel's peak,
// and 100 3x3 tiles still pad to 4 strips of 32 columns: the products computed fall 2%, not 9%), weight transform 0.014 ->
// 0.055 (49 values per channel pair besides the 25), output transform 0.063 -> 0.09 (25 P blocks per 9 outputs, the
// 3-wide interleave); at 14x14 outputs the 7x7 window gathers lost to input_transform_rows' row loads. For F(3, 2) to
// pay here, it would need GEMMs as efficient at K = C as at 4 C, and the weight transform amortised over more images.
//
// Rounding (float32): the transforms subtract inputs before the products (two levels at most) and each output adds
// four P's, each a sum of C to 4C products. Against the float64 reference, |y - y_exact| <= 8 * 2^-24 * sum |w| |x|
// over each output's 9 C products (tests/test_conv2d_winograd_stride2.py); the worst ratio measured is 3.5 / 3.9 /
// 2.5 for C_in = 32 / 64 / 128 (the direct GEMM: 4.0 / 2.2 / 1.0 on the same inputs).
#include "cpu/conv2d_winograd_stride2.h"
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"

namespace gradcore {

namespace {

using namespace cpu;

// One dimension: for point a and slot s, the transformed input d[kPlus] - d[kMinus] (kMinus < 0: d[kPlus] alone)
// (the transformed weights: transform_weights).
constexpr int kSlots[3] = {2, 1, 2};
constexpr int kPlus[3][2] = {{0, 1}, {2, -1}, {4, 3}};
constexpr int kMinus[3][2] = {{2, -1}, {-1, -1}, {2, -1}};
constexpr int kPoints = 9;  // (a, b), point a * 3 + b

inline int64_t slots_of(int pt) { return kSlots[pt / 3] * kSlots[pt % 3]; }

thread_local Scratch weight_scratch;  // the packed U of the calls this thread makes

struct Problem {
  int64_t batch, in_c, in_h, in_w, out_c, out_h, out_w, pad_top, pad_left;
  int64_t tiles_h() const { return (out_h + 1) / 2; }
  int64_t tiles_w() const { return (out_w + 1) / 2; }
  int64_t tiles() const { return batch * tiles_h() * tiles_w(); }

  // The order of the tiles (the GEMMs' columns), by kind: first the whole 2x2 tiles of every image (image by image,
  // row by row), then those cut to one column by an odd width (the last tile column), those cut to one row by an
  // odd height, and the corners cut to one output. A cut tile needs only the points that feed its outputs (no
  // b = 2 without a second column, no a = 2 without a second row: 15 C or 9 C multiplies instead of 25 C), and
  // sorted so, most strips hold one kind and run only its GEMMs: 7x7 outputs cost 324 instead of 400 products per
  // image and channel pair (direct: 441). The order moves no bit: each output comes from its own tile's P's.
  int64_t full_h() const { return out_h / 2; }
  int64_t full_w() const { return out_w / 2; }
  struct Tile {
    int64_t n, th, tw;
    int needs;  // the points its outputs sum: bit a * 3 + b
  };
  // The kinds are sorted within groups of kImagesPerGroup images, not over the whole batch: a group's x (~1.6 MiB for
  // 32 images of 64x14x14) stays in the caches while its cut tiles, which gather, read it a second time. Sorted over
  // the whole batch, batch 256 read them from memory: dec1's backward-data took 14.6 ms instead of 12.1 (direct).
  static constexpr int64_t kImagesPerGroup = 32;
  // Within a group, the whole strips of nr tiles of one kind (order_tiles) run in the order of the last image they
  // reach, kind by kind on a tie, and the kinds' partial strips after them: the cut tiles' strips then gather from the
  // x of the images whose whole tiles ran just before (in L2), not from the x of a whole group ago (L3: at batch 25
  // the cut tiles' input transform cost as much as the whole tiles'). chunks[0] orders the groups of kImagesPerGroup
  // images, chunks[1] a last smaller group: entry kind << 28 | strip of that kind; null: the kinds one after another.
  const uint32_t* chunks[2] = {nullptr, nullptr};
  int64_t chunk_count[2] = {0, 0}, chunk = 1;  // (chunk: the strips' width, nr)
  int64_t per_image(int kind) const {
    const int64_t TH = tiles_h(), TW = tiles_w(), fh = full_h(), fw = full_w();
    return kind == 0 ? fh * fw : kind == 1 ? fh * (TW - fw) : kind == 2 ? (TH - fh) * fw : (TH - fh) * (TW - fw);
  }
  Tile tile(int64_t t) const {
    const int64_t TH = tiles_h(), TW = tiles_w(), fh = full_h(), fw = full_w();
    const int64_t n0 = t / (kImagesPerGroup * TH * TW) * kImagesPerGroup, images = std::min(kImagesPerGroup, batch - n0);
    t -= n0 * TH * TW;
    constexpr int kAll = 0x1FF, kNoB2 = 0x1FF & ~(1 << 2 | 1 << 5 | 1 << 8), kNoA2 = 0x1FF & ~(0x7 << 6);
    const int g = images == kImagesPerGroup ? 0 : 1;
    int kind = 0;
    int64_t i = t;  // the tile's index among its group's tiles of its kind
    if (t < chunk_count[g] * chunk) {
      const uint32_t e = chunks[g][t / chunk];
      kind = (int)(e >> 28);
      i = (int64_t)(e & 0xFFFFFFF) * chunk + t % chunk;
    } else {
      i -= chunk_count[g] * chunk;
      for (;; ++kind) {  // the kinds' partial strips (all of each kind without chunks), kind after kind
        const int64_t count = images * per_image(kind), whole = chunks[g] ? count / chunk * chunk : 0;
        if (i < count - whole || kind == 3) {
          i += whole;
          break;
        }
        i -= count - whole;
      }
    }
    switch (kind) {
      case 0: return {n0 + i / (fh * fw), i / fw % fh, i % fw, kAll};
      case 1: return {n0 + i / fh, i % fh, TW - 1, kNoB2};
      case 2: return {n0 + i / fw, TH - 1, i % fw, kNoA2};
      default: return {n0 + i, TH - 1, TW - 1, kNoB2 & kNoA2};
    }
  }
};

// Problem::chunks for q's shapes and strips of nr tiles, kept in store.
void order_tiles(Problem& q, std::vector<uint32_t> (&store)[2], int64_t nr) {
  q.chunk = nr;
  for (int g = 0; g < 2; ++g) {
    const int64_t images = g == 0 ? (q.batch >= Problem::kImagesPerGroup ? Problem::kImagesPerGroup : 0)
                                  : q.batch % Problem::kImagesPerGroup;
    struct Chunk {
      int64_t last_image;
      int kind;
      int64_t strip;
    };
    std::vector<Chunk> list;
    for (int kind = 0; kind < 4; ++kind) {
      const int64_t per = q.per_image(kind), strips = images * per / nr;
      for (int64_t j = 0; j < strips; ++j) list.push_back({(j * nr + nr - 1) / per, kind, j});
    }
    std::stable_sort(list.begin(), list.end(), [](const Chunk& a, const Chunk& b) { return a.last_image < b.last_image; });
    store[g].clear();
    for (const Chunk& c : list) store[g].push_back((uint32_t)c.kind << 28 | (uint32_t)c.strip);
    q.chunks[g] = store[g].data();
    q.chunk_count[g] = (int64_t)store[g].size();
  }
}

// Row d (of depth rows) of a packed B (cols_pad columns), in strip s: packed_b_row_runs' layout (gemm.h).
template <typename T> inline T* packed_row(T* base, int64_t d, int64_t depth, int64_t cols_pad, int64_t strip) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t blk = d / kKc * kKc, kc = std::min(kKc, depth - blk);
  return base + blk * cols_pad + strip * kc * nr + (d - blk) * nr;
}

// U for the output channels of panel [o0, o0 + kMr), written straight into each point's packed A (point pt at
// a + a_off[pt], laid out as gemm.h's pack_a_panels lays out an M x K_pt matrix, row o, column slot * C + i), the
// rows past C_out zero. Each value is summed in float64 and rounded once. kChannelsPerPass input channels at a time
// go through a local block, then out as 25 contiguous runs: written value by value, the 25 destinations (a multiple
// of 2 KiB apart) fought over a few L1 sets.
constexpr int64_t kChannelsPerPass = 16;
#if defined(__AVX512F__)
// transform_weights' block for float, the panel's 8 output channels in the 8 float64 lanes of one vector: the same
// float64 sums in the same order, rounded once, so the same bits as the scalar loop (which cost ~40 cycles per
// channel pair, 5% of the seed layers' time at batch 25).
inline void transform_weight_lanes(const float* w, const Problem& q, int64_t o0, int64_t i0, int64_t ic,
                                   float (*block)[kChannelsPerPass][8]) {
  const int64_t O = q.out_c, I = q.in_c;
  const __mmask8 live = (__mmask8)(O - o0 >= 8 ? 0xFF : (1u << std::max<int64_t>(O - o0, 0)) - 1);
  const __m256i rows_of_o = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)(I * 9)));
  const float* base = w + o0 * I * 9;
  for (int64_t il = 0; il < ic; ++il) {
    const float* g = base + (i0 + il) * 9;
    __m512d t[9];
    for (int k = 0; k < 9; ++k)
      t[k] = _mm512_cvtps_pd(_mm256_mmask_i32gather_ps(_mm256_setzero_ps(), live, rows_of_o, g + k, 4));
    __m512d rows[5][3];  // as in the scalar loop: the row combinations, then the column combinations
    for (int kw = 0; kw < 3; ++kw) {
      rows[0][kw] = t[kw];
      rows[1][kw] = t[3 + kw];
      rows[2][kw] = _mm512_add_pd(t[kw], t[6 + kw]);
      rows[3][kw] = t[6 + kw];
      rows[4][kw] = t[3 + kw];
    }
    for (int r = 0; r < 5; ++r) {
      _mm256_store_ps(block[5 * r][il], _mm512_cvtpd_ps(rows[r][0]));
      _mm256_store_ps(block[5 * r + 1][il], _mm512_cvtpd_ps(rows[r][1]));
      _mm256_store_ps(block[5 * r + 2][il], _mm512_cvtpd_ps(_mm512_add_pd(rows[r][0], rows[r][2])));
      _mm256_store_ps(block[5 * r + 3][il], _mm512_cvtpd_ps(rows[r][2]));
      _mm256_store_ps(block[5 * r + 4][il], _mm512_cvtpd_ps(rows[r][1]));
    }
  }
}
#endif
template <typename T> void transform_weights(const T* w, const Problem& q, int64_t o0, T* a, const int64_t* a_off) {
  const int64_t O = q.out_c, I = q.in_c, m_pad = round_up(O, kMr);
  alignas(64) T block[25][kChannelsPerPass][kMr];
  for (int64_t i0 = 0; i0 < I; i0 += kChannelsPerPass) {
    const int64_t ic = std::min(kChannelsPerPass, I - i0);
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float> && kMr == 8) {  // the 8 rows of the panel as the 8 lanes of a vector
      transform_weight_lanes(w, q, o0, i0, ic, block);
    } else
#endif
    for (int64_t o = o0; o < o0 + kMr; ++o)
      for (int64_t i = i0; i < i0 + ic; ++i) {
        const int64_t il = i - i0, ol = o - o0;
        if (o >= O) {
          for (int u = 0; u < 25; ++u) block[u][il][ol] = T(0);
          continue;
        }
        const T* g = w + (o * I + i) * 9;
        double rows[5][3];  // the row combinations (a, sa) of the kernel: taps 0, 1, 0 + 2, 2, 1
        for (int kw = 0; kw < 3; ++kw) {
          const double g0 = g[kw], g1 = g[3 + kw], g2 = g[6 + kw];
          rows[0][kw] = g0;
          rows[1][kw] = g1;
          rows[2][kw] = g0 + g2;
          rows[3][kw] = g2;
          rows[4][kw] = g1;
        }
        for (int r = 0; r < 5; ++r) {  // then the column combinations, in the same order
          block[5 * r][il][ol] = T(rows[r][0]);
          block[5 * r + 1][il][ol] = T(rows[r][1]);
          block[5 * r + 2][il][ol] = T(rows[r][0] + rows[r][2]);
          block[5 * r + 3][il][ol] = T(rows[r][2]);
          block[5 * r + 4][il][ol] = T(rows[r][1]);
        }
      }
    int v = 0;  // value v of the loops below: point (ra, cb), slot (sa, sb)
    for (int ra = 0; ra < 3; ++ra)
      for (int sa = 0; sa < kSlots[ra]; ++sa)
        for (int cb = 0; cb < 3; ++cb)
          for (int sb = 0; sb < kSlots[cb]; ++sb, ++v) {
            const int pt = ra * 3 + cb;
            const int64_t K = slots_of(pt) * I, k_first = (sa * kSlots[cb] + sb) * I + i0;
            const int64_t blk = k_first / kKc * kKc, kc = std::min(kKc, K - blk);
            if (k_first + ic <= blk + kKc) {  // one run of ic kMr-row steps (block[v] has that layout)
              std::memcpy(a + a_off[pt] + blk * m_pad + o0 * kc + (k_first - blk) * kMr, block[v], sizeof(T) * kMr * ic);
              continue;
            }
            for (int64_t il = 0; il < ic; ++il) {  // the run crosses a kKc block: step by step
              const int64_t k = k_first + il, kb = k / kKc * kKc, kcb = std::min(kKc, K - kb);
              std::memcpy(a + a_off[pt] + kb * m_pad + o0 * kcb + (k - kb) * kMr, block[v][il], sizeof(T) * kMr);
            }
          }
  }
}

// Where the nr / L vector groups of lanes of strip s read x: lane l's tile has its 5x5 input window at x offset
// base[l] (+ c H W for channel c), row r of the window inside the image for lanes in rows[r], column k in cols[k].
struct LaneWindows {
  int32_t base[64];
  uint64_t rows[5], cols[5];
};

template <typename T>
void lane_windows(const Problem& q, const Problem::Tile* tiles, int64_t count, LaneWindows& lw) {
  for (int r = 0; r < 5; ++r) lw.rows[r] = lw.cols[r] = 0;
  for (int64_t l = 0; l < nr_of<T>(); ++l) {
    lw.base[l] = 0;
    if (l >= count) continue;
    const Problem::Tile& tl = tiles[l];
    const int64_t n = tl.n, r0 = 4 * tl.th - q.pad_top, c0 = 4 * tl.tw - q.pad_left;
    lw.base[l] = (int32_t)(n * q.in_c * q.in_h * q.in_w + r0 * q.in_w + c0);
    for (int k = 0; k < 5; ++k) {
      lw.rows[k] |= (uint64_t)(r0 + k >= 0 && r0 + k < q.in_h) << l;
      lw.cols[k] |= (uint64_t)(c0 + k >= 0 && c0 + k < q.in_w) << l;
    }
  }
}

// V for the tiles of strip s of the task (lanes [0, count), the rest zero), every input channel, into the nine packed
// B matrices (point pt at packed + b_off[pt], slots_of(pt) C rows, cols_pad columns). The element loop: the same
// operations in the same order as the vector code below, one lane at a time.
template <typename T>
void input_transform_lanes(const T* x, const Problem& q, const LaneWindows& lw, int64_t count, int64_t strip,
                           int64_t cols_pad, const int64_t* b_off, T* packed) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t I = q.in_c, HW = q.in_h * q.in_w, W = q.in_w;
  for (int64_t i = 0; i < I; ++i)
    for (int64_t l = 0; l < nr; ++l) {
      T d[5][5];
      for (int r = 0; r < 5; ++r)
        for (int k = 0; k < 5; ++k)
          d[r][k] = l < count && (lw.rows[r] >> l & 1) && (lw.cols[k] >> l & 1) ? x[i * HW + lw.base[l] + r * W + k]
                                                                                : T(0);
      for (int ra = 0; ra < 3; ++ra)
        for (int sa = 0; sa < kSlots[ra]; ++sa) {
          T row[5];
          for (int k = 0; k < 5; ++k)
            row[k] = kMinus[ra][sa] >= 0 ? d[kPlus[ra][sa]][k] - d[kMinus[ra][sa]][k] : d[kPlus[ra][sa]][k];
          for (int cb = 0; cb < 3; ++cb)
            for (int sb = 0; sb < kSlots[cb]; ++sb) {
              const int pt = ra * 3 + cb;
              const int64_t K = slots_of(pt) * I, slot = sa * kSlots[cb] + sb;
              const T v = kMinus[cb][sb] >= 0 ? row[kPlus[cb][sb]] - row[kMinus[cb][sb]] : row[kPlus[cb][sb]];
              packed_row(packed + b_off[pt], slot * I + i, K, cols_pad, strip)[l] = v;
            }
        }
    }
}

// Where the 25 values of input channel 0 go in the nine packed B matrices of one strip (nr columns): value
// v = 5 r + c, r and c the row and column combinations in the order (point, slot) = (0, 0), (0, 1), (1, 0), (2, 0),
// (2, 1). A strip of nr columns has its rows nr apart whatever the kKc blocking (packed_row with cols_pad = nr), so
// channel i's rows are these plus i nr: next_channel steps them (instead of recomputing the 25 each channel, which
// cost ~2.5% of the seed enc2 forward).
template <typename T> void value_rows(T* packed, const int64_t* b_off, int64_t I, T** rows) {
  constexpr int kPoint[5] = {0, 0, 1, 2, 2}, kSlot[5] = {0, 1, 0, 0, 1};
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 5; ++c) {
      const int pt = kPoint[r] * 3 + kPoint[c];
      const int64_t slot = kSlot[r] * kSlots[kPoint[c]] + kSlot[c];
      rows[5 * r + c] = packed + b_off[pt] + slot * I * nr_of<T>();
    }
}
template <typename T> inline void next_channel(T** rows) {
  for (int v = 0; v < 25; ++v) rows[v] += nr_of<T>();
}

// Whether input_transform_rows applies: a tile row's 5 window columns per tile, from column -pad_left on, lie in two
// vectors (32 floats), every read past them being a zero (column 31 itself outside the image), and a tile row fits in
// the 16 lanes.
bool rows_fit_two_vectors(const Problem& q) {
  return q.tiles_w() <= 16 && (4 * q.tiles_w() + 1 <= 32 || q.in_w + q.pad_left <= 31) && q.pad_left <= 16;
}

#if defined(__AVX512F__)
// The five column combinations of one row combination (its window columns k = 0..4 in col), stored
// whole at rows[0..4] + off: col0 - col2, col1, col2, col4 - col2, col3.
inline void store_columns(const __m512* col, float* const* rows, int64_t off) {
  _mm512_storeu_ps(rows[0] + off, _mm512_sub_ps(col[0], col[2]));
  _mm512_storeu_ps(rows[1] + off, col[1]);
  _mm512_storeu_ps(rows[2] + off, col[2]);
  _mm512_storeu_ps(rows[3] + off, _mm512_sub_ps(col[4], col[2]));
  _mm512_storeu_ps(rows[4] + off, col[3]);
}

// input_transform_lanes for float, 16 lanes at a time: each window element is one masked gather (zero outside the
// image and past the task's tiles), the combinations run in registers, and V is stored as whole vectors.
// Window rows 3, 4 are read only where a lane's tile needs a point with a = 2, columns 3, 4 only where one needs b = 2
// (half_needs: the points the tiles of each 16 lanes sum, Problem::Tile::needs): the strips of cut tiles skip 10 or
// 16 of the 25 gathers. The values skipped (zeros in V instead) meet only products that no output stored sums.
void input_transform_gathers(const float* x, const Problem& q, const LaneWindows& lw, int64_t count,
                             const int64_t* b_off, float* packed, const int* half_needs) {
  constexpr int64_t nr = nr_of<float>();
  const int64_t I = q.in_c, HW = q.in_h * q.in_w, W = q.in_w;
  __m512i base[2];
  __mmask16 rm[2][5], cm[2][5];
  for (int h = 0; h < 2; ++h) {
    base[h] = _mm512_loadu_si512(lw.base + 16 * h);
    const uint32_t valid = (uint32_t)(count - 16 * h >= 16 ? 0xFFFF : count > 16 * h ? (1u << (count - 16 * h)) - 1 : 0);
    for (int k = 0; k < 5; ++k) {
      rm[h][k] = (__mmask16)((lw.rows[k] >> (16 * h)) & valid);
      cm[h][k] = (__mmask16)(lw.cols[k] >> (16 * h));
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  float* rows[25];
  value_rows(packed, b_off, I, rows);
  for (int64_t i = 0; i < I; ++i, next_channel(rows)) {
    const float* xi = x + i * HW;
    for (int h = 0; h < 2; ++h) {
      __m512 d[5][5];
      const bool far_rows = half_needs[h] & 0x1C0, far_cols = half_needs[h] & 0x124;
      for (int r = 0; r < 5; ++r)
        for (int k = 0; k < 5; ++k) {
          if ((r >= 3 && !far_rows) || (k >= 3 && !far_cols)) {
            d[r][k] = zero;
            continue;
          }
          const __m512i idx = _mm512_add_epi32(base[h], _mm512_set1_epi32((int32_t)(r * W + k)));
          d[r][k] = _mm512_mask_i32gather_ps(zero, (__mmask16)(rm[h][r] & cm[h][k]), idx, xi, 4);
        }
      __m512 col[5];
      for (int k = 0; k < 5; ++k) col[k] = _mm512_sub_ps(d[0][k], d[2][k]);
      store_columns(col, rows, 16 * h);
      store_columns(d[1], rows + 5, 16 * h);
      store_columns(d[2], rows + 10, 16 * h);
      for (int k = 0; k < 5; ++k) col[k] = _mm512_sub_ps(d[4][k], d[2][k]);
      store_columns(col, rows + 15, 16 * h);
      store_columns(d[3], rows + 20, 16 * h);
    }
  }
}

// input_transform_gathers for images narrow enough (rows_fit_two_vectors), without gathers. Each group of 16 lanes
// of the strip holds "pieces", runs of tiles of one tile row. For each row combination of the window (x rows read in
// place as two vectors each, masked loads: zero outside the image, combined down the rows), one two-register permute
// per piece and window column k moves column 4 tw + k of each of the piece's tiles into the piece's lanes, and a
// masked move merges the pieces; the column combinations then run on whole vectors, stored whole (stores of part of
// a vector, one per piece, cost four times as much). The same operations on the same values as the gathers: the
// same bits.
bool input_transform_rows(const float* x, const Problem& q, const Problem::Tile* tiles, int64_t count,
                          const int64_t* b_off, float* packed) {
  constexpr int64_t nr = nr_of<float>();
  constexpr int kMaxPieces = 6;
  const int64_t W = q.in_w, H = q.in_h, I = q.in_c, HW = H * W;
  auto lanes = [](int64_t lo, int64_t hi) {  // lanes [lo, hi) of 16
    uint32_t m = 0;
    for (int64_t l = std::max<int64_t>(lo, 0); l < std::min<int64_t>(hi, 16); ++l) m |= 1u << l;
    return (__mmask16)m;
  };
  const __mmask16 load_lo = lanes(q.pad_left, q.pad_left + W), load_hi = lanes(q.pad_left - 16, q.pad_left + W - 16);
  struct Piece {
    const float* row[5];  // window row dy: x row at row[dy] + c H W for channel c (from column -pad_left)
    __mmask16 lo[5], hi[5];  // its two vectors' load masks (0 outside the image)
    __mmask16 lanes;
    __m512i idx[5];  // lane l takes window column k of its tile: vector column 4 tw + k (31, a zero, past them)
  };
  alignas(64) Piece pieces[2][kMaxPieces];
  int pieces_of[2] = {0, 0};
  for (int h = 0; h < 2; ++h)
    for (int64_t l = 16 * h; l < std::min<int64_t>(count, 16 * h + 16);) {
      const Problem::Tile& tl = tiles[l];
      const int64_t n = tl.n, th = tl.th, tw = tl.tw;
      int64_t run = 1;  // the lanes of this piece: the next tiles of the same tile row
      while (l + run < std::min<int64_t>(count, 16 * h + 16)) {
        const Problem::Tile& next = tiles[l + run];
        if (next.n != n || next.th != th || next.tw != tw + run) break;
        ++run;
      }
      // Tiles cut by an odd width come one per tile row: that many pieces cost more than the gathers (given up here,
      // before the pieces' permute indices are built).
      if (pieces_of[h] == kMaxPieces) return false;
      Piece& pc = pieces[h][pieces_of[h]++];
      for (int dy = 0; dy < 5; ++dy) {  // (worked out once per strip, not per load and channel)
        const int64_t y = 4 * th - q.pad_top + dy;
        const bool inside = y >= 0 && y < H;
        pc.row[dy] = x + n * I * HW - q.pad_left + (inside ? y : 0) * W;
        pc.lo[dy] = inside ? load_lo : (__mmask16)0;
        pc.hi[dy] = inside ? load_hi : (__mmask16)0;
      }
      pc.lanes = lanes(l - 16 * h, std::min(l + run, count) - 16 * h);
      for (int k = 0; k < 5; ++k) {
        alignas(64) int32_t v[16];
        for (int j = 0; j < 16; ++j) v[j] = (int32_t)std::clamp<int64_t>(4 * (tw + j - (l - 16 * h)) + k, 0, 31);
        pc.idx[k] = _mm512_load_si512(v);
      }
      l += run;
    }
  const __m512 zero = _mm512_setzero_ps();
  float* rows[25];
  value_rows(packed, b_off, I, rows);
  for (int64_t i = 0; i < I; ++i, next_channel(rows)) {
    const int64_t ci = i * HW;
    for (int h = 0; h < 2; ++h) {
      // row combination r: x row kPlus[r] minus x row kMinus[r] of the window (as in the loops over (point, slot))
      constexpr int kRowPlus[5] = {0, 1, 2, 4, 3}, kRowMinus[5] = {2, -1, -1, 2, -1};
#pragma GCC unroll 5
      for (int r = 0; r < 5; ++r) {
        __m512 col[5] = {zero, zero, zero, zero, zero};
        for (int p = 0; p < pieces_of[h]; ++p) {
          const Piece& pc = pieces[h][p];
          auto row = [&](int dy, __m512& lo, __m512& hi) {
            lo = _mm512_maskz_loadu_ps(pc.lo[dy], pc.row[dy] + ci);
            hi = _mm512_maskz_loadu_ps(pc.hi[dy], pc.row[dy] + ci + 16);
          };
          __m512 lo, hi;
          row(kRowPlus[r], lo, hi);
          if (kRowMinus[r] >= 0) {
            __m512 lo2, hi2;
            row(kRowMinus[r], lo2, hi2);
            lo = _mm512_sub_ps(lo, lo2);
            hi = _mm512_sub_ps(hi, hi2);
          }
#pragma GCC unroll 5
          for (int k = 0; k < 5; ++k)
            col[k] = _mm512_mask_mov_ps(col[k], pc.lanes, _mm512_permutex2var_ps(lo, pc.idx[k], hi));
        }
        store_columns(col, rows + 5 * r, 16 * h);
      }
    }
  }
  return true;
}

// Whether input_transform_narrow applies: a row of the image, from column -pad_left on, fits in one vector with lane
// 15 outside it (a zero for the window columns past the image).
bool rows_fit_one_vector(const Problem& q) { return q.in_w + q.pad_left <= 15 && q.tiles_w() <= 4; }

// input_transform_rows for images narrow enough that a row is one vector (rows_fit_one_vector: the seeds' 14x14 ->
// 7x7 layers), where a 16-lane group holds five or six runs of three tiles and input_transform_rows spent one permute
// and one masked move per run and window column. Here a "source" is the run of lanes of one tile row of one image
// (every window row it reads is one vector), and one two-source permute per pair of sources and window column moves
// both sources' columns into their lanes: half the permutes and moves. Window rows 3, 4 and columns 3, 4 are read
// only where a tile of the 16 lanes needs a point with a = 2 or b = 2 (half_needs; input_transform_gathers says why
// the rest is free). The same operations on the same values as input_transform_rows: the same bits.
bool input_transform_narrow(const float* x, const Problem& q, const Problem::Tile* tiles, int64_t count,
                            const int64_t* b_off, float* packed, const int* half_needs) {
  constexpr int64_t nr = nr_of<float>();
  constexpr int kMaxSources = 8;  // four pairs; more (the cut tiles' strips, one tile per source): the gathers
  const int64_t W = q.in_w, H = q.in_h, I = q.in_c, HW = H * W;
  uint32_t m = 0;
  for (int64_t l = q.pad_left; l < q.pad_left + W; ++l) m |= 1u << l;
  const __mmask16 load = (__mmask16)m;
  struct Source {  // window row dy: x row at row[dy] + c H W for channel c, loaded with mask[dy] (0: outside)
    const float* row[5];
    __mmask16 mask[5];
  };
  struct Pair {
    __mmask16 lanes;
    __m512i idx[5];  // window column k: lane 4 tw + k of the first source's row (16 + of the second's; 15: a zero)
  };
  alignas(64) Pair pairs[2][kMaxSources / 2];
  Source sources[2][kMaxSources];
  int sources_of[2] = {0, 0};
  for (int h = 0; h < 2; ++h) {
    alignas(64) int32_t idx[kMaxSources / 2][5][16] = {};
    uint32_t lanes[kMaxSources / 2] = {};
    for (int64_t l = 16 * h; l < std::min<int64_t>(count, 16 * h + 16);) {
      const Problem::Tile& tl = tiles[l];
      if (sources_of[h] == kMaxSources) return false;
      const int s = sources_of[h]++;
      for (int dy = 0; dy < 5; ++dy) {  // (the rows and masks worked out once per strip, not per channel)
        const int64_t y = 4 * tl.th - q.pad_top + dy;
        const bool inside = y >= 0 && y < H;
        sources[h][s].row[dy] = x + tl.n * I * HW - q.pad_left + (inside ? y : 0) * W;
        sources[h][s].mask[dy] = inside ? load : (__mmask16)0;
      }
      for (; l < std::min<int64_t>(count, 16 * h + 16); ++l) {  // the lanes of this tile row of this image
        const Problem::Tile& t = tiles[l];
        if (t.n != tl.n || t.th != tl.th) break;
        lanes[s / 2] |= 1u << (l - 16 * h);
        for (int k = 0; k < 5; ++k) idx[s / 2][k][l - 16 * h] = (int32_t)(std::min<int64_t>(4 * t.tw + k, 15) + 16 * (s % 2));
      }
    }
    for (int p = 0; p < (sources_of[h] + 1) / 2; ++p) {
      if (sources_of[h] == 2 * p + 1) sources[h][2 * p + 1] = sources[h][2 * p];  // an odd last source: paired with itself
      pairs[h][p].lanes = (__mmask16)lanes[p];
      for (int k = 0; k < 5; ++k) pairs[h][p].idx[k] = _mm512_load_si512(idx[p][k]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  float* rows[25];
  value_rows(packed, b_off, I, rows);
  for (int64_t i = 0; i < I; ++i, next_channel(rows)) {
    const int64_t ci = i * HW;
    for (int h = 0; h < 2; ++h) {
      const bool far_rows = half_needs[h] & 0x1C0, far_cols = half_needs[h] & 0x124;
      const int pair_count = (sources_of[h] + 1) / 2;
      // row combination r: window row kPlus[r] minus window row kMinus[r] (as in input_transform_rows)
      constexpr int kRowPlus[5] = {0, 1, 2, 4, 3}, kRowMinus[5] = {2, -1, -1, 2, -1};
#pragma GCC unroll 5
      for (int r = 0; r < 5; ++r) {
        __m512 col[5] = {zero, zero, zero, zero, zero};
        if (r < 3 || far_rows) {
          for (int p = 0; p < pair_count; ++p) {
            __m512 rc[2];
            for (int e = 0; e < 2; ++e) {
              const Source& sc = sources[h][2 * p + e];
              auto row = [&](int dy) { return _mm512_maskz_loadu_ps(sc.mask[dy], sc.row[dy] + ci); };
              rc[e] = kRowMinus[r] >= 0 ? _mm512_sub_ps(row(kRowPlus[r]), row(kRowMinus[r])) : row(kRowPlus[r]);
            }
            const Pair& pr = pairs[h][p];
#pragma GCC unroll 5
            for (int k = 0; k < 5; ++k)
              if (k < 3 || far_cols)
                col[k] = _mm512_mask_mov_ps(col[k], pr.lanes, _mm512_permutex2var_ps(rc[0], pr.idx[k], rc[1]));
          }
        }
        store_columns(col, rows + 5 * r, 16 * h);
      }
    }
  }
  return true;
}
#endif

// A run of a strip's tiles in one tile row of one image: tiles (th, tw0 .. tw0 + count - 1) of image n, lanes
// first .. first + count - 1 of the strip.
struct Segment {
  int64_t n, th, tw0, count, first;
};

// y for the strip's tiles (lanes [0, count)) from the nine P blocks (point pt at p + pt * p_stride, row o at
// + o * nr; zero for the points not in needs, which no output stored here sums): Q and y in vectors over the lanes,
// the activation, and the two output columns of each tile interleaved (two permutes per tile row and 16 lanes) into
// ybuf, channel o's output row r at ybuf + (2 o + r) 2 nr; then each run of tiles copies its outputs from there into
// y, row by row, channel after channel. (Interleaved per run of tiles instead, the seed 7x7 layers' runs of three
// tiles paid two loads and a permute for each six outputs stored: the output transform took 0.05 of enc2's 0.34 ms.)
template <typename T>
void output_transform(const T* p, int64_t p_stride, int needs, const Problem& q, const Segment* segs,
                      int64_t seg_count, Activation act, T* y, T* ybuf) {
  using V = typename Simd<T>::vec;
  constexpr int64_t nr = nr_of<T>();
  constexpr int L = Simd<T>::lanes;
  const int64_t O = q.out_c, Ho = q.out_h, Wo = q.out_w;
  for (int64_t o = 0; o < O; ++o) {  // y of every output channel, 2 rows of 2 nr interleaved outputs, into ybuf
    const T* po = p + o * nr;
    T* yo = ybuf + o * 4 * nr;
    for (int v = 0; v < nr; v += L) {
      V P[kPoints];
      for (int pt = 0; pt < kPoints; ++pt) P[pt] = needs >> pt & 1 ? load_vec(po + pt * p_stride + v) : V{};
      V Q[3][2];
      for (int a = 0; a < 3; ++a) {
        Q[a][0] = P[a * 3] + P[a * 3 + 1];
        Q[a][1] = P[a * 3 + 2] + P[a * 3 + 1];
      }
      for (int r = 0; r < 2; ++r) {
        V out[2];
        for (int c = 0; c < 2; ++c) {
          out[c] = Q[2 * r][c] + Q[1][c];
          if (act == Activation::relu) out[c] = relu_vec(out[c]);
        }
        T* dst = yo + r * 2 * nr + 2 * v;
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {
          const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          __m512 e, od;
          std::memcpy(&e, &out[0], sizeof(e));
          std::memcpy(&od, &out[1], sizeof(od));
          _mm512_storeu_ps(dst, _mm512_permutex2var_ps(e, lo, od));
          _mm512_storeu_ps(dst + L, _mm512_permutex2var_ps(e, hi, od));
          continue;
        }
#endif
        alignas(64) T lanes[2][L];
        store_vec(lanes[0], out[0]);
        store_vec(lanes[1], out[1]);
        for (int j = 0; j < L; ++j) {
          dst[2 * j] = lanes[0][j];
          dst[2 * j + 1] = lanes[1][j];
        }
      }
    }
  }
  for (int64_t s = 0; s < seg_count; ++s) {  // then each run of tiles, channel after channel
    const Segment& sg = segs[s];
    const int64_t ow0 = 2 * sg.tw0, width = std::min(2 * sg.count, Wo - ow0);
    for (int r = 0; r < 2; ++r) {
      const int64_t oh = 2 * sg.th + r;
      if (oh >= Ho) break;
      T* dst = y + (sg.n * O * Ho + oh) * Wo + ow0;
      const T* src = ybuf + r * 2 * nr + 2 * sg.first;
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {  // (width <= 2 nr: at most four vectors)
        __mmask16 m[4];
        for (int j = 0; j < 4; ++j) {
          const int64_t left = std::clamp<int64_t>(width - 16 * j, 0, 16);
          m[j] = (__mmask16)((1u << left) - 1);
        }
        if (width <= 16) {  // one vector per row and channel; y's lines 4 channels on fetched for writing
          const uintptr_t ahead = (uintptr_t)(4 * Ho * Wo) * sizeof(float), last = (uintptr_t)(width - 1) * sizeof(float);
          for (int64_t o = 0; o < O; ++o, dst += Ho * Wo, src += 4 * nr) {
            const uintptr_t at = reinterpret_cast<uintptr_t>(dst) + ahead;
            _mm_prefetch(reinterpret_cast<const char*>(at), _MM_HINT_ET0);
            _mm_prefetch(reinterpret_cast<const char*>(at + last), _MM_HINT_ET0);
            _mm512_mask_storeu_ps(dst, m[0], _mm512_maskz_loadu_ps(m[0], src));
          }
          continue;
        }
        for (int64_t o = 0; o < O; ++o, dst += Ho * Wo, src += 4 * nr)
          for (int j = 0; j < 4 && m[j]; ++j)
            _mm512_mask_storeu_ps(dst + 16 * j, m[j], _mm512_maskz_loadu_ps(m[j], src + 16 * j));
        continue;
      }
#endif
      for (int64_t o = 0; o < O; ++o, dst += Ho * Wo, src += 4 * nr) std::copy(src, src + width, dst);
    }
  }
}

template <typename T> void forward(const T* x, const T* w, const T* bias, T* y, const Problem& q, Activation act) {
  GRADCORE_PHASE("conv2d_winograd_s2");  // one call per convolution (the tests count them)
  constexpr int64_t nr = nr_of<T>();
  const int64_t O = q.out_c, I = q.in_c, m_pad = round_up(O, kMr), panels = m_pad / kMr;
  int64_t a_off[kPoints], b_rows[kPoints], total_rows = 0;
  for (int pt = 0; pt < kPoints; ++pt) {
    b_rows[pt] = total_rows;
    a_off[pt] = m_pad * total_rows;
    total_rows += slots_of(pt) * I;
  }
  const int64_t total = q.tiles(), strips = (total + nr - 1) / nr;
  // The nine P blocks of a strip sit p_stride apart: a multiple of 4 KiB would put the same lane of every point in
  // one L1 set, and the output transform reads all nine at once.
  const int64_t p_stride = m_pad * nr + nr;
  const bool parallel = total * O * I * 25 >= kParallelThreshold;  // multiply-adds
#if defined(__AVX512F__)
  const bool rows_fit = rows_fit_two_vectors(q);
  const bool narrow = rows_fit_one_vector(q);
#endif
  TaskShares strip_shares(strips, parallel);
#pragma omp parallel if (strip_shares.parallel())
  {
    // Each thread transforms all of U, before its first strip, into its own scratch (a fresh block of this size
    // would be mapped anew on every call, and its page faults cost more than the weight transform itself). Shared
    // between the threads, half of U was written by the other core: each GEMM read it from there, and each call's
    // transform took its lines back (2 threads, batch 25: seed enc2's GEMMs 0.177 -> 0.205 thread-ms from 1 thread,
    // the weight transform 0.013 -> 0.020 for half the work each, and a barrier between the two phases).
    T* packed_u = nullptr;
    strip_shares.run([&](int64_t s) {  // (parallel.h's TaskShares: y's lines stay with one core from call to call)
      if (!packed_u) {
        GRADCORE_PHASE("conv2d_winograd_s2/weight_transform");
        packed_u = weight_scratch.get<T>(m_pad * total_rows);
        for (int64_t t = 0; t < panels; ++t) transform_weights(w, q, t * kMr, packed_u, a_off);
      }
      const int64_t t0 = s * nr, count = std::min(nr, total - t0);
      int half_needs[2] = {0, 0};  // the points the tiles of each 16 lanes sum
      // The strip's tiles, looked up once (Problem::tile's divisions and chunk lookups), not once per lane in each of
      // the input transforms and again for the segments below.
      Problem::Tile tiles[nr];
      for (int64_t l = 0; l < count; ++l) tiles[l] = q.tile(t0 + l);
      for (int64_t l = 0; l < count; ++l) half_needs[l >= 16] |= tiles[l].needs;
      const int needs = half_needs[0] | half_needs[1];  // the points the strip's tiles sum
      int64_t b_off[kPoints];
      for (int pt = 0; pt < kPoints; ++pt) b_off[pt] = b_rows[pt] * nr;
      T* packed = scratch_packed_b.get<T>(total_rows * nr);
      T* p = scratch_col.get<T>(kPoints * p_stride + 4 * O * nr);
      T* ybuf = p + kPoints * p_stride;
      {
        GRADCORE_PHASE("conv2d_winograd_s2/input_transform");
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<T, float>) {
          if (!(narrow && input_transform_narrow(x, q, tiles, count, b_off, packed, half_needs)) &&
              (!rows_fit || !input_transform_rows(x, q, tiles, count, b_off, packed))) {
            LaneWindows lw;
            lane_windows<T>(q, tiles, count, lw);
            input_transform_gathers(x, q, lw, count, b_off, packed, half_needs);
          }
        } else {
          LaneWindows lw;
          lane_windows<T>(q, tiles, count, lw);
          input_transform_lanes(x, q, lw, count, 0, nr, b_off, packed);
        }
#else
        LaneWindows lw;
        lane_windows<T>(q, tiles, count, lw);
        input_transform_lanes(x, q, lw, count, 0, nr, b_off, packed);
#endif
      }
      {
        GRADCORE_PHASE("conv2d_winograd_s2/gemm");
        for (int pt = 0; pt < kPoints; ++pt) {
          if (!(needs >> pt & 1)) continue;  // no tile of the strip sums it (Problem::tile)
          T* out = p + pt * p_stride;
          // All nr columns, those past count too (the input transforms zero their V): whole-vector stores instead of
          // the micro-kernel's edge copy in partial strips, and P fully written for the output transform's loads.
          gemm_packed_to(O, nr, slots_of(pt) * I, packed_u + a_off[pt], packed + b_off[pt],
                         [&](int64_t) { return StripOut<T>{out, nr, nullptr, false}; }, nr, false,
                         pt == 4 ? bias : nullptr);
        }
      }
      GRADCORE_PHASE("conv2d_winograd_s2/output_transform");
      Segment segs[nr];
      int64_t seg_count = 0;
      for (int64_t done = 0; done < count;) {
        const Problem::Tile& tl = tiles[done];
        int64_t run = 1;
        for (; done + run < count; ++run) {
          const Problem::Tile& next = tiles[done + run];
          if (next.n != tl.n || next.th != tl.th || next.tw != tl.tw + run) break;
        }
        segs[seg_count++] = Segment{tl.n, tl.th, tl.tw, run, done};
        done += run;
      }
      output_transform(p, p_stride, needs, q, segs, seg_count, act, y, ybuf);
    });
  }
}

}  // namespace

// When it wins (the measurements at the top of this file): float32 (float64 was not measured), 32 or more channels on
// each side (fewer: the GEMMs too thin to pay for the transforms), at most 128 x 256 channel pairs (beyond, the nine
// packed U of 25 C_in C_out floats no longer stay in L2 while the strips stream past), outputs of at least 7x7 (the
// 2x2 tiles and their transforms run mostly empty below), and images narrow enough for the tile-row input
// transform (rows_fit_two_vectors: wider ones take the gathers, which only tied).
bool winograd_stride2_forward_applies(const Conv2dParams& p, DType dtype) {
  const Problem q{p.batch, p.in_channels, p.in_h, p.in_w, p.out_channels, p.out_h, p.out_w, p.pad_top, p.pad_left};
  return dtype == DType::float32 && p.kernel_h == 3 && p.kernel_w == 3 && p.stride_h == 2 && p.stride_w == 2 &&
         p.dilation_h == 1 && p.dilation_w == 1 && p.groups == 1 && p.in_channels >= 32 && p.out_channels >= 32 &&
         p.in_channels * p.out_channels <= 128 * 256 && p.out_h >= 7 && p.out_w >= 7 && rows_fit_two_vectors(q) &&
         p.batch * p.in_channels * p.in_h * p.in_w < ((int64_t)1 << 31) - 64;  // gather offsets are int32
}

void conv2d_winograd_stride2_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y,
                                         const Conv2dParams& p) {
  Problem q{p.batch, p.in_channels, p.in_h, p.in_w, p.out_channels, p.out_h, p.out_w, p.pad_top, p.pad_left};
  std::vector<uint32_t> chunks[2];
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    order_tiles(q, chunks, nr_of<T>());
    forward<T>(x.data_as<T>(), w.data_as<T>(), bias.numel() ? bias.data_as<T>() : nullptr, y.data_as<T>(), q,
               p.activation);
  });
}

}  // namespace gradcore
