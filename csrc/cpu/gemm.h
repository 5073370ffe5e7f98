// The CPU GEMM, the one shared by every op that multiplies matrices (conv2d, conv_transpose2d, matmul, linear):
// C (M x N) = A (M x K) * B (K x N), from A and B packed into the layout the micro-kernel streams:
//   A: for each block of kKc reduction steps, panels of kMr rows, each panel k-major ([k][kMr]);
//   B: for each block of kKc reduction steps, strips of nr columns, each strip k-major ([k][nr]).
// Edges are zero-padded in the packed copies, so the micro-kernel always runs a full kMr x nr tile and only the
// store looks at the edge. The micro-kernel keeps the tile of C in registers (Simd<T>, two vectors wide) and
// streams one A panel and one B strip. Callers pack B themselves (im2col.h writes straight into the packed layout);
// packed_b_row_runs is the one place that knows where an element of a packed B lives.
// Every element of C is summed over k in increasing order, whatever the blocking: results are bitwise repeatable.
// Precisely: C = [C +] bias + (sum over the first kKc steps), then C += (sum over the next kKc steps), ... The
// kKc blocking is fixed, so the tiling of M and N and the number of threads never change a bit of the result.
//
// Two kinds of driver sit on top of the packed product: the convolutions pack B straight from the image (im2col.h,
// conv2d.cpp, conv2d_backward_weight.cpp), and gemm_batched (at the end of this file) multiplies plain strided
// matrices, transposed reads included, for matmul and linear (cpu/matmul.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include "cpu/parallel.h"
#include "cpu/scratch.h"
#include "cpu/simd.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gradcore::cpu {

#if defined(__AVX512F__)
constexpr int kMr = 8;  // 8 rows x 2 vectors = 16 of the 32 vector registers hold the C tile
#else
constexpr int kMr = 6;  // 12 of 16 registers
#endif
constexpr int64_t kKc = 256;  // reduction steps per packed block: an A panel and a B strip stay in L1/L2

template <typename T> constexpr int64_t nr_of() { return Simd<T>::nr; }

// The row panels [i_begin, i_end) (multiples of kMr) of A (M x K), element (m, k) at src[m * rs + k * cs], packed
// into dst, which holds the whole packed A (callers may pack disjoint panel ranges on several threads).
template <typename T>
void pack_a_panels(const T* src, int64_t rs, int64_t cs, int64_t M, int64_t K, int64_t i_begin, int64_t i_end, T* dst) {
  const int64_t m_pad = round_up(M, kMr);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    T* block = dst + k0 * m_pad;
    for (int64_t i0 = i_begin; i0 < std::min(i_end, m_pad); i0 += kMr) {
      T* panel = block + i0 * kc;
      const int64_t rows = std::min<int64_t>(kMr, M - i0);
      if (cs == 1 && rows == kMr) {  // rows contiguous along k: read each row once, in order
        for (int64_t i = 0; i < kMr; ++i) {
          const T* s = src + (i0 + i) * rs + k0;
          for (int64_t k = 0; k < kc; ++k) panel[k * kMr + i] = s[k];
        }
        continue;
      }
      for (int64_t k = 0; k < kc; ++k) {
        const T* s = src + i0 * rs + (k0 + k) * cs;
        T* d = panel + k * kMr;
        int64_t i = 0;
        if (rs == 1)
          for (; i < rows; ++i) d[i] = s[i];
        else
          for (; i < rows; ++i) d[i] = s[i * rs];
        for (; i < kMr; ++i) d[i] = T(0);
      }
    }
  }
}

// A (M x K), element (m, k) at src[m * rs + k * cs], packed whole.
template <typename T> void pack_a(const T* src, int64_t rs, int64_t cs, int64_t M, int64_t K, T* dst) {
  pack_a_panels(src, rs, cs, M, K, 0, round_up(M, kMr), dst);
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

// dst[j] = src[j] (or dst[j] += src[j] when accumulate), then relu when asked, j in [0, n), n <= nr: the edges of a
// C tile. For float with AVX-512, masked vector loads and stores instead of an element loop (the same single add per
// element, and relu_vec's rule as a compare mask: same bits).
template <typename T> inline void store_tile_edge(const T* src, T* dst, int64_t n, bool accumulate, bool relu = false) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 lanes = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
      __m512 v = _mm512_maskz_loadu_ps(lanes, src + j);
      if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, dst + j), v);
      if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NLE_UQ), v);  // > 0 or NaN
      _mm512_mask_storeu_ps(dst + j, lanes, v);
    }
    return;
  }
#endif
  for (int64_t j = 0; j < n; ++j) {
    const T v = accumulate ? dst[j] + src[j] : src[j];
    dst[j] = relu ? relu_vec(v) : v;
  }
}

// Where one strip of nr columns of C goes: columns [0, split) at c (row stride ldc), columns [split, n_valid) at c2
// (the same row stride; c2[0] is column split). split >= nr: the whole strip at c. A strip splits when the columns
// of C are the pixels of several images side by side and an image ends inside the strip (conv2d.cpp).
// relu: store relu(C) (simd.h's relu_vec) once the sum is final: the fused conv + ReLU's epilogue (conv2d.cpp).
template <typename T> struct StripOut {
  T* c;
  int64_t split;
  T* c2;
  bool relu = false;
};

// One reduction step of a ROWS x nr tile of C held in registers: row i += a[i * a_stride] * (b0 b1), a's value
// broadcast. The micro-kernel's FMA step, shared with the kernels that read their own A and B for it (the few-channel
// convolution, the Winograd weight gradient's gather kernel): the same operations in the same order, the same bits.
template <typename T, int ROWS, typename V>
inline void tile_step(V (&acc0)[ROWS], V (&acc1)[ROWS], const T* a, int64_t a_stride, V b0, V b1) {
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i) {
    const V ai = broadcast<T>(a[i * a_stride]);
    acc0[i] += ai * b0;
    acc1[i] += ai * b1;
  }
}

// C tile (ROWS x nr, ROWS <= kMr) = [C +] bias + A panel * B strip over kc steps; only n_valid columns are stored.
// The A panel is packed ([k][kMr]), or with DIRECT_A read in place: row i at a + i lda, contiguous along k.
template <typename T, int ROWS, bool DIRECT_A = false>
inline void micro_kernel(int64_t kc, const T* a, const T* b, StripOut<T> out, int64_t ldc, int64_t n_valid,
                         bool accumulate, const T* bias, int64_t lda = 0) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes, NR = Simd<T>::nr;
  V acc0[ROWS], acc1[ROWS];
  // (every loop over the rows fully unrolled, so the tile stays in registers from the first FMA to the store)
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i) {
    acc0[i] = broadcast<T>(bias ? bias[i] : T(0));
    acc1[i] = acc0[i];
  }
  for (int64_t k = 0; k < kc; ++k) {
    const V b0 = load_vec(b + k * NR), b1 = load_vec(b + k * NR + L);
    tile_step<T, ROWS>(acc0, acc1, DIRECT_A ? a + k : a + k * kMr, DIRECT_A ? lda : 1, b0, b1);
  }
  const int64_t first = std::min(out.split, n_valid);
  if (first == NR) {  // the whole strip at out.c
    if (accumulate) {
#pragma GCC unroll 16
      for (int i = 0; i < ROWS; ++i) {
        acc0[i] += load_vec(out.c + i * ldc);
        acc1[i] += load_vec(out.c + i * ldc + L);
      }
    }
    if (out.relu) {
#pragma GCC unroll 16
      for (int i = 0; i < ROWS; ++i) {
        acc0[i] = relu_vec(acc0[i]);
        acc1[i] = relu_vec(acc1[i]);
      }
    }
#pragma GCC unroll 16
    for (int i = 0; i < ROWS; ++i) {
      store_vec(out.c + i * ldc, acc0[i]);
      store_vec(out.c + i * ldc + L, acc1[i]);
    }
    return;
  }
  alignas(64) T tile[ROWS][NR];
#pragma GCC unroll 16
  for (int i = 0; i < ROWS; ++i) {
    store_vec(tile[i], acc0[i]);
    store_vec(tile[i] + L, acc1[i]);
  }
  for (int i = 0; i < ROWS; ++i) {
    store_tile_edge(tile[i], out.c + i * ldc, first, accumulate, out.relu);
    if (first < n_valid) store_tile_edge(tile[i] + first, out.c2 + i * ldc, n_valid - first, accumulate, out.relu);
  }
}

template <typename T, int ROWS, bool DIRECT_A = false>
void micro_kernel_rows(int64_t rows, int64_t kc, const T* a, const T* b, StripOut<T> out, int64_t ldc,
                       int64_t n_valid, bool accumulate, const T* bias, int64_t lda = 0) {
  if constexpr (ROWS > 1) {
    if (rows < ROWS)
      return micro_kernel_rows<T, ROWS - 1, DIRECT_A>(rows, kc, a, b, out, ldc, n_valid, accumulate, bias, lda);
  }
  micro_kernel<T, ROWS, DIRECT_A>(kc, a, b, out, ldc, n_valid, accumulate, bias, lda);
}
template <typename T, int ROWS>
void micro_kernel_rows(int64_t rows, int64_t kc, const T* a, const T* b, T* c, int64_t ldc, int64_t n_valid,
                       bool accumulate, const T* bias) {
  micro_kernel_rows<T, ROWS>(rows, kc, a, b, StripOut<T>{c, nr_of<T>(), nullptr}, ldc, n_valid, accumulate, bias);
}

// C (M x N) = [C +] row_bias + A * B from packed A and B, restricted to the row panels [i_begin, i_end) and column
// strips [j_begin, j_end) (element indices, multiples of kMr and nr), with strip_out(j0) saying where the strip of
// columns [j0, j0 + nr) of row 0 goes (a StripOut; rows follow at stride ldc). row_bias: M values or null.
template <typename T, typename StripOutOf>
void gemm_packed_to(int64_t M, int64_t N, int64_t K, const T* ap, const T* bp, StripOutOf&& strip_out, int64_t ldc,
                    bool accumulate, const T* row_bias, int64_t i_begin = 0, int64_t i_end = -1, int64_t j_begin = 0,
                    int64_t j_end = -1) {
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
      const StripOut<T> out = strip_out(j0);
      for (int64_t i0 = i_begin; i0 < i_end; i0 += kMr) {
        const StripOut<T> rows_out{out.c + i0 * ldc, out.split, out.c2 ? out.c2 + i0 * ldc : nullptr,
                                   out.relu && k0 + kKc >= K};  // relu on the reduction's last block only
        micro_kernel_rows<T, kMr>(M - i0, kc, a_block + i0 * kc, strip, rows_out, ldc, n_valid, acc,
                                  bias ? bias + i0 : nullptr);
      }
    }
  }
}

// C (M x N, row stride ldc) = [C +] row_bias + A * B: gemm_packed_to with C one plain matrix.
template <typename T>
void gemm_packed(int64_t M, int64_t N, int64_t K, const T* ap, const T* bp, T* c, int64_t ldc, bool accumulate,
                 const T* row_bias, int64_t i_begin = 0, int64_t i_end = -1, int64_t j_begin = 0, int64_t j_end = -1) {
  gemm_packed_to(
      M, N, K, ap, bp, [&](int64_t j0) { return StripOut<T>{c + j0, nr_of<T>(), nullptr}; }, ldc, accumulate,
      row_bias, i_begin, i_end, j_begin, j_end);
}

// ---- the plain strided GEMM ----------------------------------------------------------------------------------------

// A matrix read through strides: element (r, c) at data[r * rs + c * cs]. A transposed read swaps rs and cs, so a
// product with a transpose never materialises it.
template <typename T> struct StridedMatrix {
  const T* data;
  int64_t rs, cs;
};

// B (K x N, element (k, n) at src[k * rs + n * cs]), K <= kKc, packed as strips of nr columns, each [k][nr], with the
// columns past N zero. Contiguous rows (cs == 1) copy runs; transposed reads (rs == 1) walk each column down k.
template <typename T> void pack_b(const T* src, int64_t rs, int64_t cs, int64_t K, int64_t N, T* dst) {
  constexpr int64_t nr = nr_of<T>();
  for (int64_t j0 = 0; j0 < N; j0 += nr) {
    T* strip = dst + j0 * K;
    const int64_t cols = std::min(nr, N - j0);
    if (cs == 1) {
      for (int64_t k = 0; k < K; ++k) {
        const T* s = src + k * rs + j0;
        T* d = strip + k * nr;
        std::copy(s, s + cols, d);
        std::fill(d + cols, d + nr, T(0));
      }
    } else if (rs == 1) {
      for (int64_t j = 0; j < cols; ++j) {
        const T* s = src + (j0 + j) * cs;
        for (int64_t k = 0; k < K; ++k) strip[k * nr + j] = s[k];
      }
      for (int64_t k = 0; k < K && cols < nr; ++k) std::fill(strip + k * nr + cols, strip + (k + 1) * nr, T(0));
    } else {
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < nr; ++j) strip[k * nr + j] = j < cols ? src[k * rs + (j0 + j) * cs] : T(0);
    }
  }
}

// Rows and columns of C per task: an A block of kMc rows x kKc steps stays in L2 while each packed B strip (kKc x nr)
// streams through L1 once; kNc columns bound the packed B block.
constexpr int64_t kMc = 16 * kMr;
constexpr int64_t kNc = 512;
// Multiply-adds from which gemm_batched starts threads: below, a product takes ~10 us on one core, about what
// starting and joining the threads costs on a busy machine. Tuning only: results never depend on it.
constexpr int64_t kGemmParallelThreshold = 1 << 18;

// Fewer rows than a panel (M < kMr: a batch of one or a few samples): packing B would cost more than the product
// (each element of B is used M times), so B is read where it is, for columns [j0, j0 + nc) of C:
//   rows of B contiguous (cs == 1): strips of nr columns accumulate a[k] B[k, strip] in two vectors over each kKc
//     block and then add onto C: the packed micro-kernel's operations in its order, so these bits are the packed
//     path's (a row of C comes out the same alone or in a batch);
//   columns of B contiguous (rs == 1, a transposed read such as linear's weight): each element is a dot product of
//     two contiguous runs, in kDotLanes fixed lanes per kKc block, the lanes then added in order and onto C. The
//     same bits on any instruction set, though not the packed path's: a row computed in a batch of fewer than kMr
//     rows may differ in its last bits from the same row in a larger batch.
constexpr int kDotLanes = 16;

// Several independent accumulations run side by side (kFewRowsStrips strips, kFewRowsDots dot products): each
// element's operations and their order are exactly those of one at a time, but the multiply-add and the lane-sum
// chains of different elements overlap instead of each waiting on its own latency (a batch-1 linear was ~1.5x
// PyTorch's time with one chain at a time).
constexpr int kFewRowsStrips = 4;
constexpr int kFewRowsDots = 8;

// C row cr[j0, j0 + S * NR) (+)= a row ar (stride acs) times S full strips of B (rows contiguous, k-th at bk0 + k rs).
template <typename T, int S>
inline void few_rows_strips(const T* ar, int64_t acs, const T* b, int64_t brs, T* cr, int64_t K, bool accumulate) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes, NR = Simd<T>::nr;
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t k_end = std::min(K, k0 + kKc);
    V acc0[S], acc1[S];
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) acc0[s] = acc1[s] = V{};
    for (int64_t k = k0; k < k_end; ++k) {
      const V ai = broadcast<T>(ar[k * acs]);
      const T* bk = b + k * brs;
#pragma GCC unroll 8
      for (int s = 0; s < S; ++s) {
        acc0[s] += ai * load_vec(bk + s * NR);
        acc1[s] += ai * load_vec(bk + s * NR + L);
      }
    }
    alignas(64) T tile[S * NR];
#pragma GCC unroll 8
    for (int s = 0; s < S; ++s) {
      store_vec(tile + s * NR, acc0[s]);
      store_vec(tile + s * NR + L, acc1[s]);
    }
    for (int64_t jj = 0; jj < S * NR; ++jj) cr[jj] = (accumulate || k0 > 0) ? cr[jj] + tile[jj] : tile[jj];
  }
}

// cr[j] (+)= row . b_j for J outputs j, b_j at b + j bcs (contiguous along k), each a dot product in kDotLanes fixed
// lanes per kKc block, the lanes then added in order, the tail after them, and the block's sum onto C.
template <typename T, int J>
inline void few_rows_dots(const T* row, const T* b, int64_t bcs, T* cr, int64_t K, bool accumulate) {
  using D = FixedVec<T, kDotLanes>;
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t k_end = std::min(K, k0 + kKc);
    D lanes[J];
#pragma GCC unroll 8
    for (int j = 0; j < J; ++j) lanes[j] = D{};
    int64_t k = k0;
    for (; k + kDotLanes <= k_end; k += kDotLanes) {
      const D r = load_as<D>(row + k);
#pragma GCC unroll 8
      for (int j = 0; j < J; ++j) lanes[j] += r * load_as<D>(b + j * bcs + k);
    }
    T acc[J];
#pragma GCC unroll 8
    for (int j = 0; j < J; ++j) acc[j] = lanes[j][0];
    for (int l = 1; l < kDotLanes; ++l)
#pragma GCC unroll 8
      for (int j = 0; j < J; ++j) acc[j] += lanes[j][l];
    for (; k < k_end; ++k)
#pragma GCC unroll 8
      for (int j = 0; j < J; ++j) acc[j] += row[k] * b[j * bcs + k];
#pragma GCC unroll 8
    for (int j = 0; j < J; ++j) cr[j] = (accumulate || k0 > 0) ? cr[j] + acc[j] : acc[j];
  }
}

template <typename T>
void gemm_few_rows(int64_t M, int64_t N, int64_t K, StridedMatrix<T> a, StridedMatrix<T> b, T* c, int64_t ldc,
                   bool accumulate, int64_t j0, int64_t nc) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes, NR = Simd<T>::nr;
  const int64_t j_end = std::min(N, j0 + nc);
  for (int64_t i = 0; i < M; ++i) {
    const T* ar = a.data + i * a.rs;
    T* cr = c + i * ldc;
    if (b.cs == 1) {
      int64_t j = j0;
      for (; j + kFewRowsStrips * NR <= j_end; j += kFewRowsStrips * NR)
        few_rows_strips<T, kFewRowsStrips>(ar, a.cs, b.data + j, b.rs, cr + j, K, accumulate);
      for (; j + NR <= j_end; j += NR) few_rows_strips<T, 1>(ar, a.cs, b.data + j, b.rs, cr + j, K, accumulate);
      if (j < j_end) {  // the last, partial strip goes through a zero-padded copy of each kKc block, as when packed
        const int64_t n_valid = j_end - j;
        alignas(64) T edge[kKc * NR];
        for (int64_t k0 = 0; k0 < K; k0 += kKc) {
          const int64_t k_end = std::min(K, k0 + kKc);
          for (int64_t k = k0; k < k_end; ++k) {
            const T* bk = b.data + k * b.rs + j;
            T* e = edge + (k - k0) * NR;
            for (int jj = 0; jj < NR; ++jj) e[jj] = jj < n_valid ? bk[jj] : T(0);
          }
          V acc0{}, acc1{};
          for (int64_t k = k0; k < k_end; ++k) {
            const V ai = broadcast<T>(ar[k * a.cs]);
            acc0 += ai * load_vec(edge + (k - k0) * NR);
            acc1 += ai * load_vec(edge + (k - k0) * NR + L);
          }
          alignas(64) T tile[NR];
          store_vec(tile, acc0);
          store_vec(tile + L, acc1);
          for (int64_t jj = 0; jj < n_valid; ++jj)
            cr[j + jj] = (accumulate || k0 > 0) ? cr[j + jj] + tile[jj] : tile[jj];
        }
      }
      continue;
    }
    // b.rs == 1: dot products; a row of A read through strides is gathered once
    const T* row = ar;
    if (a.cs != 1) {
      T* gathered = scratch_col.get<T>(K);
      for (int64_t k = 0; k < K; ++k) gathered[k] = ar[k * a.cs];
      row = gathered;
    }
    int64_t j = j0;
    for (; j + kFewRowsDots <= j_end; j += kFewRowsDots)
      few_rows_dots<T, kFewRowsDots>(row, b.data + j * b.cs, b.cs, cr + j, K, accumulate);
    for (; j < j_end; ++j) few_rows_dots<T, 1>(row, b.data + j * b.cs, b.cs, cr + j, K, accumulate);
  }
}

// Whether gemm_tile computes C^T (gemm_tile_transposed): B a transposed read, and A, with at least a panel of rows
// (fewer go to gemm_few_rows), at most half B's size.
template <typename T> bool computes_transposed(int64_t M, int64_t N, StridedMatrix<T> b) {
  return M >= kMr && b.rs == 1 && b.cs != 1 && 2 * M <= N;
}

// Rows [i0, i0 + rows) and columns [j0, j0 + cols) of C (tile: their first element) += A B (or = A B), for B a
// transposed read (its columns contiguous along k, such as linear's weight) and A the smaller operand: instead of
// transposing B's K x cols block into the packed layout, it computes the transposed tile C^T = B^T A^T, whose A
// operand B^T has rows contiguous along k and is read in place by the micro-kernel (DIRECT_A), and whose B operand
// A^T is the small one to pack. C^T starts from C's values (transposed) when accumulating, so every element gets the
// same multiply-adds in the same order as on the packed path: the same bits.
template <typename T>
void gemm_tile_transposed(int64_t K, StridedMatrix<T> a, StridedMatrix<T> b, T* tile, int64_t ldc, bool accumulate,
                          int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t rows_pad = round_up(rows, nr);
  T* ct = scratch_col.get<T>(cols * rows_pad);  // C^T (cols x rows), row stride rows_pad
  if (accumulate)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) ct[j * rows_pad + i] = tile[i * ldc + j];
  T* packed = scratch_packed_b.get<T>(std::min(K, kKc) * rows_pad);
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    // A^T (kc x rows): element (k, m) at a[m rs + k cs]
    pack_b(a.data + i0 * a.rs + k0 * a.cs, a.cs, a.rs, kc, rows, packed);
    const T* bt = b.data + j0 * b.cs + k0;  // B^T (cols x kc): row j at bt + j cs, contiguous along k
    for (int64_t s0 = 0; s0 < rows; s0 += nr)
      for (int64_t r0 = 0; r0 < cols; r0 += kMr)
        micro_kernel_rows<T, kMr, true>(cols - r0, kc, bt + r0 * b.cs, packed + s0 * kc,
                                        StripOut<T>{ct + r0 * rows_pad + s0, nr, nullptr}, rows_pad,
                                        std::min(nr, rows - s0), accumulate || k0 > 0, nullptr, b.cs);
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) tile[i * ldc + j] = ct[j * rows_pad + i];
}

// Rows [i0, i0 + rows) and columns [j0, j0 + cols) of C (tile: their first element) = [C +] a_i b_j for K = 1, each
// element computed as the micro-kernel computes it, in the same vector code: an accumulator from zero plus a_i b_j
// (one fma where the machine has it), then C added. The same bits as the packed path, without its packing and its
// per-tile calls (a batch-1 weight gradient is all writes: ~20% faster).
template <typename T>
void gemm_outer_product(StridedMatrix<T> a, StridedMatrix<T> b, T* tile, int64_t ldc, bool accumulate, int64_t i0,
                        int64_t rows, int64_t j0, int64_t cols) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  const int64_t cols_pad = round_up(cols, (int64_t)L);
  T* brow = scratch_packed_b.get<T>(cols_pad);
  for (int64_t j = 0; j < cols_pad; ++j) brow[j] = j < cols ? b.data[(j0 + j) * b.cs] : T(0);
  for (int64_t i = 0; i < rows; ++i) {
    const V ai = broadcast<T>(a.data[(i0 + i) * a.rs]);
    T* row = tile + i * ldc;
    int64_t j = 0;
    for (; j + L <= cols; j += L) {
      V acc{};
      acc += ai * load_vec(brow + j);
      if (accumulate) acc += load_vec(row + j);
      store_vec(row + j, acc);
    }
    if (j < cols) {
      V acc{};
      acc += ai * load_vec(brow + j);
      alignas(64) T lanes[L];
      store_vec(lanes, acc);
      store_tile_edge(lanes, row + j, cols - j, accumulate);
    }
  }
}

// One task of gemm_batched: rows [i0, i0 + mc) and columns [j0, j0 + nc) of C = [C +] col_bias + A B, packing its
// own A and B blocks one kKc block of the reduction at a time (into the calling thread's scratch).
template <typename T>
void gemm_tile(int64_t M, int64_t N, int64_t K, StridedMatrix<T> a, StridedMatrix<T> b, T* c, int64_t ldc,
               bool accumulate, const T* col_bias, int64_t i0, int64_t mc, int64_t j0, int64_t nc) {
  const int64_t rows = std::min(mc, M - i0), cols = std::min(nc, N - j0);
  T* tile = c + i0 * ldc + j0;
  if (col_bias) {  // C starts at the bias, and the blocks of the reduction add onto it
    for (int64_t i = 0; i < rows; ++i) {
      T* row = tile + i * ldc;
      for (int64_t j = 0; j < cols; ++j) row[j] = accumulate ? row[j] + col_bias[j0 + j] : col_bias[j0 + j];
    }
    accumulate = true;
  }
  if (K == 0) {  // an empty reduction: the product is zero, and every element is still written
    if (!accumulate)
      for (int64_t i = 0; i < rows; ++i) std::fill(tile + i * ldc, tile + i * ldc + cols, T(0));
    return;
  }
  if (M < kMr && (b.cs == 1 || b.rs == 1)) {
    gemm_few_rows(M, N, K, a, b, c, ldc, accumulate, j0, nc);
    return;
  }
  if (K == 1) {  // an outer product (a batch-1 weight gradient): packing and micro-tiles cost more than the writes
    gemm_outer_product(a, b, tile, ldc, accumulate, i0, rows, j0, cols);
    return;
  }
  if (computes_transposed(M, N, b)) {
    gemm_tile_transposed(K, a, b, tile, ldc, accumulate, i0, rows, j0, cols);
    return;
  }
  T* packed_a = scratch_col.get<T>(round_up(rows, kMr) * std::min(K, kKc));
  T* packed_b = scratch_packed_b.get<T>(std::min(K, kKc) * round_up(cols, nr_of<T>()));
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    pack_a(a.data + i0 * a.rs + k0 * a.cs, a.rs, a.cs, rows, kc, packed_a);
    pack_b(b.data + k0 * b.rs + j0 * b.cs, b.rs, b.cs, kc, cols, packed_b);
    gemm_packed(rows, cols, kc, packed_a, packed_b, tile, ldc, accumulate || k0 > 0, (const T*)nullptr);
  }
}

// count products C_t (M x N, row stride ldc) = [C_t +] col_bias + A_t B_t, with item(t) giving {A_t, B_t, C_t}
// (a std::tuple<StridedMatrix<T>, StridedMatrix<T>, T*>). col_bias: N values added to every row, or null.
// Tasks are (item, row block, column block) tiles of C, each written by one thread; the tile sizes come from the
// shapes alone (and cannot change the result anyway, see the top of this file).
template <typename T, typename Item>
void gemm_batched(int64_t count, int64_t M, int64_t N, int64_t K, Item&& item, int64_t ldc, bool accumulate,
                  const T* col_bias) {
  if (count == 0 || M == 0 || N == 0) return;
  constexpr int64_t nr = nr_of<T>();
  int64_t mc = std::min(round_up(M, kMr), kMc), nc = std::min(round_up(N, nr), kNc);
  auto tiles = [&] { return count * ((M + mc - 1) / mc) * ((N + nc - 1) / nc); };
  const bool parallel = count * M * N * std::max<int64_t>(K, 1) >= kGemmParallelThreshold;  // multiply-adds
  if (computes_transposed(M, N, std::get<1>(item(0)))) {
    // C^T's strips run along M and its row panels along N: all of M in one block (each tile packs its A^T block),
    // N split only as far as the threads need, since every tile re-packs A^T
    mc = std::min(round_up(M, nr), kNc), nc = round_up(N, kMr);
    const int64_t wanted = parallel ? std::min<int64_t>(8, 2 * max_threads()) : 1;
    while (tiles() < wanted && nc > kMr) nc = round_up(nc / 2, kMr);
  } else if (parallel) {  // enough tiles to share: narrower column blocks first (A is the cheaper operand to re-pack)
    while (tiles() < 8 && nc > nr) nc = round_up(nc / 2, nr);
    while (tiles() < 8 && mc > kMr) mc = round_up(mc / 2, kMr);
  }
  const int64_t row_blocks = (M + mc - 1) / mc, col_blocks = (N + nc - 1) / nc, per_item = row_blocks * col_blocks;
#pragma omp parallel for schedule(dynamic, 1) if (parallel && tiles() > 1)
  for (int64_t t = 0; t < count * per_item; ++t) {
    const int64_t r = t % per_item, i0 = r / col_blocks * mc, j0 = r % col_blocks * nc;
    const auto [a, b, c] = item(t / per_item);
    gemm_tile<T>(M, N, K, a, b, c, ldc, accumulate, col_bias, i0, mc, j0, nc);
  }
}

}  // namespace gradcore::cpu
