// Winograd F(2x2, 3x3) (Lavin & Gray 2015, "Fast Algorithms for Convolutional Neural Networks") for the CPU's
// stride-1, dilation-1, 3x3 convolutions: each 2x2 block of outputs ("tile") of each output channel costs 16
// multiply-adds per input channel instead of 36 (2.25x fewer), the rest being cheap additions.
//
// In one dimension, two outputs y0, y1 of a 3-tap correlation from four inputs d0..d3:
//   V = B^T d:  [d0 - d2,  d1 + d2,  d2 - d1,  d1 - d3]                     (input transform, additions only)
//   U = G g:    [g0,  (g0 + g1 + g2) / 2,  (g0 - g1 + g2) / 2,  g2]         (weight transform, once per call)
//   y = A^T m, m = U . V (elementwise):  y0 = m0 + m1 + m2,  y1 = m1 - m2 - m3
// In two dimensions (nesting the 1-D rule along rows and columns), for a tile at output (2 th, 2 tw):
//   d (4x4) = in[ci, 2 th - off_h + (0..3), 2 tw - off_w + (0..3)]    (0 outside the image)
//   V_ci = B^T d B,  U_co,ci = G g_co,ci G^T,  Y_co = A^T (sum_ci U_co,ci . V_ci) A
// The sum over ci, at each of the 16 transform points xi, is one GEMM: M_xi (C_out x tiles) = U_xi (C_out x C_in)
// V_xi (C_in x tiles), run by the packed GEMM of gemm.h (pack_a / gemm_packed); the input transform writes V straight
// into its packed B layout.
//
// Forward:        out = y, in = x,  g_co,ci = w[co, ci],               off = (pad_top, pad_left)
// backward_input: out = gx, in = gy, g_c,m[kh, kw] = w[m, c, 2-kh, 2-kw], off = (2 - pad_top, 2 - pad_left)
//   (dx[ih] = sum_kh w[kh] gy[ih + pad_top - kh] = sum_kh' w[2 - kh'] gy[ih + kh' - (2 - pad_top)]; a negative
//   offset just starts the reads further in).
//
// Work split and determinism: the tiles of all images, numbered image by image and row by row, are cut into blocks
// of a fixed count (from the shapes only); one task per block runs the input transform, the 16 GEMMs and the output
// transform into its own tiles of the output. Every output element is computed by one task in an order fixed by the
// shapes, so results are bitwise identical for any thread count.
//
// Rounding: the transforms add and subtract up to 9 inputs (16 products per output instead of 9), so float32
// results differ from the direct GEMM's by a few units in the last place of the largest terms: see
// tests/test_conv2d_winograd.py for the measured error against the float64 reference.
//
// Stride 2 was tried and lost (branch s2-winograd, 4ce7ed6, conv2d_winograd_stride2.cpp, not merged): the four
// phase sub-kernels (2x2, 2x1, 1x2, 1x1 taps) through F(2, 2), summed in the transform domain, cut the GEMMs by a
// third (0.69x multiplies; 0.91x on 7x7 outputs rounded up to 8x8), but its input and output transforms cost more
// than im2col: seed enc2 forward 0.60 -> 0.87 ms, dec1 backward-data 1.23 -> 1.60, dec2 backward-data 2.27 -> 2.41
// (1 thread, CPU-time minima); F(4, 2) was slower still, with float32 errors of 30-130 units. Untried: the input
// transform over several channels per register pass, and the output transform in the GEMM's store.
#include "cpu/conv2d_winograd.h"
#include <algorithm>
#include <cstring>
#include "cpu/gemm.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"

namespace gradcore {

namespace {

using namespace cpu;

constexpr int kPoints = 16;  // transform points of F(2x2, 3x3): a 4x4 grid

// The convolution the Winograd kernel computes: out[n, o, oh, ow] = bias[o] + sum_{i, kh, kw} g(o, i, kh, kw)
// in[n, i, oh + kh - off_h, ow + kw - off_w], with g(o, i, kh, kw) = w[o * w_o + i * w_i + kh * w_kh + kw * w_kw +
// w_base] (strides that read the forward weight, or its flipped transpose for backward_input).
struct Problem {
  int64_t batch, in_c, in_h, in_w;
  int64_t out_c, out_h, out_w;
  int64_t off_h, off_w;
  int64_t w_o, w_i, w_kh, w_kw, w_base;
  int64_t tiles_h() const { return (out_h + 1) / 2; }
  int64_t tiles_w() const { return (out_w + 1) / 2; }
  int64_t tiles() const { return batch * tiles_h() * tiles_w(); }
};

// Output channels per GEMM (a multiple of kMr): the 16 result blocks of one task (16 x rows x tiles) stay in L2 with
// the task's packed input.
constexpr int64_t kRowsPerBlock = 64;

// Tiles per task: a multiple of the GEMM's strip width nr, as many as keep the 16 packed inputs of the block
// (16 x C_in x tiles) within ~256 KiB, at most 4 strips.
template <typename T> int64_t tiles_per_task(const Problem& q) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t per_tile = kPoints * q.in_c * (int64_t)sizeof(T);
  return nr * std::clamp<int64_t>((256 << 10) / (per_tile * nr), 1, 4);
}

// U_xi (16 x out_c x in_c, point-major), each point's matrix packed for the GEMM in blocks of kRowsPerBlock rows:
// block b of point xi at packed + (b * 16 + xi) * block_size.
template <typename T> void transform_weights(const T* w, const Problem& q, T* u, T* packed, int64_t block_size) {
  GRADCORE_PHASE("conv2d_winograd/weight_transform");
  const int64_t O = q.out_c, I = q.in_c, plane = O * I;
  for (int64_t o = 0; o < O; ++o) {
    for (int64_t i = 0; i < I; ++i) {
      const T* g = w + q.w_base + o * q.w_o + i * q.w_i;
      T gg[4][3];  // G g: rows of the kernel combined
      for (int64_t c = 0; c < 3; ++c) {
        const T g0 = g[c * q.w_kw], g1 = g[q.w_kh + c * q.w_kw], g2 = g[2 * q.w_kh + c * q.w_kw];
        gg[0][c] = g0;
        gg[1][c] = (g0 + g1 + g2) * T(0.5);
        gg[2][c] = (g0 - g1 + g2) * T(0.5);
        gg[3][c] = g2;
      }
      T* dst = u + o * I + i;
      for (int r = 0; r < 4; ++r) {  // (G g) G^T: then columns
        dst[(r * 4 + 0) * plane] = gg[r][0];
        dst[(r * 4 + 1) * plane] = (gg[r][0] + gg[r][1] + gg[r][2]) * T(0.5);
        dst[(r * 4 + 2) * plane] = (gg[r][0] - gg[r][1] + gg[r][2]) * T(0.5);
        dst[(r * 4 + 3) * plane] = gg[r][2];
      }
    }
  }
  for (int64_t b = 0; b * kRowsPerBlock < O; ++b) {
    const int64_t o0 = b * kRowsPerBlock, rows = std::min(kRowsPerBlock, O - o0);
    for (int xi = 0; xi < kPoints; ++xi)
      pack_a(u + xi * plane + o0 * I, I, (int64_t)1, rows, I, packed + (b * kPoints + xi) * block_size);
  }
}

// A run of the tiles of one task that lie in one tile row of one image: tiles (th, tw0 .. tw0 + count - 1) of image
// n, columns first .. first + count - 1 of the task's GEMMs.
struct Segment {
  int64_t n, th, tw0, count, first;
};

// Calls fn(segment) for the tiles [t0, t0 + cols) in order.
template <typename Fn> void for_each_segment(const Problem& q, int64_t t0, int64_t cols, Fn&& fn) {
  const int64_t TH = q.tiles_h(), TW = q.tiles_w();
  for (int64_t done = 0; done < cols;) {
    const int64_t t = t0 + done, tw = t % TW, th = t / TW % TH, n = t / (TW * TH);
    const int64_t count = std::min(TW - tw, cols - done);
    fn(Segment{n, th, tw, count, done});
    done += count;
  }
}

// V for the tiles of one segment, every input channel, into the 16 packed B matrices (in_c rows, cols_pad columns
// each, point xi at packed + xi * point_stride). Each input row is split into its even and odd columns first, so
// that the transform along the rows reads contiguous runs: tile j reads columns 2j .. 2j + 3, that is even[j],
// odd[j], even[j + 1], odd[j + 1]. rows: scratch for 18 (count + 1) values.
template <typename T>
void input_transform(const T* in, const Problem& q, const Segment& s, int64_t cols_pad, int64_t point_stride,
                     T* packed, T* rows) {
  const int64_t E = s.count + 1, L = 2 * E;  // the segment's tiles read L input columns from x0 on
  const int64_t x0 = 2 * s.tw0 - q.off_w, k_lo = std::clamp<int64_t>(-x0, 0, L),
                k_hi = std::clamp<int64_t>(q.in_w - x0, k_lo, L);
  const bool inside = k_lo == 0 && k_hi == L;
  T* padded = rows;  // one input row with its zeros, where the segment reaches past the image's sides
  T *even[4], *odd[4], *ue[4], *uo[4];
  for (int r = 0; r < 4; ++r) {
    even[r] = rows + L + r * E;
    odd[r] = rows + L + (4 + r) * E;
    ue[r] = rows + L + (8 + r) * E;
    uo[r] = rows + L + (12 + r) * E;
  }
  const int64_t depth = q.in_c;
  for (int64_t i = 0; i < q.in_c; ++i) {
    const T* plane = in + (s.n * q.in_c + i) * q.in_h * q.in_w;
    for (int r = 0; r < 4; ++r) {  // the 4 input rows, zero outside the image
      const int64_t y = 2 * s.th - q.off_h + r;
      if (y < 0 || y >= q.in_h || k_lo == k_hi) {
        std::fill(even[r], even[r] + E, T(0));
        std::fill(odd[r], odd[r] + E, T(0));
        continue;
      }
      const T* src = plane + y * q.in_w + x0;
      if (!inside) {
        std::fill(padded, padded + k_lo, T(0));
        std::memcpy(padded + k_lo, src + k_lo, sizeof(T) * (k_hi - k_lo));
        std::fill(padded + k_hi, padded + L, T(0));
        src = padded;
      }
      T* e = even[r];
      T* o = odd[r];
#pragma omp simd
      for (int64_t k = 0; k < E; ++k) {
        e[k] = src[2 * k];
        o[k] = src[2 * k + 1];
      }
    }
    for (int p = 0; p < 2; ++p) {  // B^T d: down the columns of the tile, for the even and the odd columns
      T* const* d = p ? odd : even;
      T* const* u = p ? uo : ue;
      const T *d0 = d[0], *d1 = d[1], *d2 = d[2], *d3 = d[3];
      T *u0 = u[0], *u1 = u[1], *u2 = u[2], *u3 = u[3];
#pragma omp simd
      for (int64_t k = 0; k < E; ++k) {
        u0[k] = d0[k] - d2[k];
        u1[k] = d1[k] + d2[k];
        u2[k] = d2[k] - d1[k];
        u3[k] = d1[k] - d3[k];
      }
    }
    for (int a = 0; a < 4; ++a) {  // (B^T d) B: along the rows
      const T* e = ue[a];
      const T* o = uo[a];
      T* base = packed + a * 4 * point_stride;
      packed_b_row_runs(base, i, s.first, s.count, cols_pad, depth, [&](T* dst, int64_t first, int64_t run) {
        const T* e0 = e + first;
#pragma omp simd
        for (int64_t j = 0; j < run; ++j) dst[j] = e0[j] - e0[j + 1];
      });
      packed_b_row_runs(base + point_stride, i, s.first, s.count, cols_pad, depth,
                        [&](T* dst, int64_t first, int64_t run) {
                          const T *e0 = e + first, *o0 = o + first;
#pragma omp simd
                          for (int64_t j = 0; j < run; ++j) dst[j] = o0[j] + e0[j + 1];
                        });
      packed_b_row_runs(base + 2 * point_stride, i, s.first, s.count, cols_pad, depth,
                        [&](T* dst, int64_t first, int64_t run) {
                          const T *e0 = e + first, *o0 = o + first;
#pragma omp simd
                          for (int64_t j = 0; j < run; ++j) dst[j] = e0[j + 1] - o0[j];
                        });
      packed_b_row_runs(base + 3 * point_stride, i, s.first, s.count, cols_pad, depth,
                        [&](T* dst, int64_t first, int64_t run) {
                          const T* o0 = o + first;
#pragma omp simd
                          for (int64_t j = 0; j < run; ++j) dst[j] = o0[j] - o0[j + 1];
                        });
    }
  }
}

template <typename T>
void winograd(const T* in, const T* w, const T* bias, T* out, const Problem& q) {
  constexpr int64_t nr = nr_of<T>();
  const int64_t O = q.out_c, I = q.in_c;
  const int64_t blocks = (O + kRowsPerBlock - 1) / kRowsPerBlock, block_rows = std::min(O, kRowsPerBlock);
  const int64_t block_size = round_up(block_rows, kMr) * I;
  AlignedBuffer<T> u(kPoints * O * I), packed_u(blocks * kPoints * block_size);
  transform_weights(w, q, u.ptr, packed_u.ptr, block_size);

  const int64_t nt = tiles_per_task<T>(q), total = q.tiles(), tasks = (total + nt - 1) / nt;
  const int64_t out_plane = q.out_h * q.out_w;
  const bool parallel = total * 16 * O * I >= kParallelThreshold;  // multiply-adds
  TaskShares shares(tasks, parallel);  // (parallel.h: outputs stay with one core)
#pragma omp parallel if (shares.parallel())
  shares.run([&](int64_t t) {
    const int64_t t0 = t * nt, cols = std::min(nt, total - t0), cols_pad = round_up(cols, nr);
    const int64_t seg_max = std::min(nt, q.tiles_w());
    // The 16 points' matrices sit point_stride (packed inputs) and result_stride (GEMM results) apart: a multiple of
    // 4 KiB would put the same column of every point in one L1 set, and the transforms touch all 16 at once.
    const int64_t point_stride = I * cols_pad + nr, result_stride = block_rows * nt + nr;
    T* packed = scratch_packed_b.get<T>(kPoints * point_stride);
    T* result = scratch_col.get<T>(kPoints * result_stride + 18 * (seg_max + 1) + 4 * nt);
    T* rows = result + kPoints * result_stride;
    T* y = rows + 18 * (seg_max + 1);  // 4 x nt: the 2x2 outputs of each tile of one channel
    {
      GRADCORE_PHASE("conv2d_winograd/input_transform");
      for_each_segment(q, t0, cols, [&](const Segment& s) {
        input_transform(in, q, s, cols_pad, point_stride, packed, rows);
      });
      for (int xi = 0; xi < kPoints; ++xi) zero_packed_b_tail(packed + xi * point_stride, cols, cols_pad, I);
    }
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t o0 = b * kRowsPerBlock, rows_b = std::min(kRowsPerBlock, O - o0);
      {
        GRADCORE_PHASE("conv2d_winograd/gemm");
        for (int xi = 0; xi < kPoints; ++xi)
          gemm_packed(rows_b, cols, I, packed_u.ptr + (b * kPoints + xi) * block_size, packed + xi * point_stride,
                      result + xi * result_stride, nt, false, (const T*)nullptr);
      }
      GRADCORE_PHASE("conv2d_winograd/output_transform");
      for (int64_t o = 0; o < rows_b; ++o) {
        const T* m = result + o * nt;  // point xi at m + xi * ps
        const int64_t ps = result_stride;
        const T bv = bias ? bias[o0 + o] : T(0);
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j) {  // A^T M A, column by column of the 4x4 M, then along rows
          T s0[4], s1[4];
          for (int c = 0; c < 4; ++c) {
            const T m0 = m[c * ps + j], m1 = m[(4 + c) * ps + j], m2 = m[(8 + c) * ps + j], m3 = m[(12 + c) * ps + j];
            s0[c] = m0 + m1 + m2;
            s1[c] = m1 - m2 - m3;
          }
          y[j] = s0[0] + s0[1] + s0[2] + bv;
          y[nt + j] = s0[1] - s0[2] - s0[3] + bv;
          y[2 * nt + j] = s1[0] + s1[1] + s1[2] + bv;
          y[3 * nt + j] = s1[1] - s1[2] - s1[3] + bv;
        }
        for_each_segment(q, t0, cols, [&](const Segment& s) {
          T* plane = out + (s.n * O + o0 + o) * out_plane;
          const int64_t ow0 = 2 * s.tw0, width = std::min(2 * s.count, q.out_w - ow0);
          for (int r = 0; r < 2; ++r) {
            const int64_t oh = 2 * s.th + r;
            if (oh >= q.out_h) break;
            T* dst = plane + oh * q.out_w + ow0;
            const T* even = y + 2 * r * nt + s.first;
            const T* odd = even + nt;
            const int64_t pairs = width / 2;
            for (int64_t j = 0; j < pairs; ++j) {
              dst[2 * j] = even[j];
              dst[2 * j + 1] = odd[j];
            }
            if (width % 2) dst[width - 1] = even[pairs];
          }
        });
      }
    }
  });
}

}  // namespace

// When Winograd wins. The Winograd problem (in -> out channels) costs about a in + b out + c in out per tile (input
// transform, output transform, GEMM); the direct methods cost d in out per pixel, with a smaller d for the forward
// (a GEMM over im2col) than for the input gradient (GEMM then col2im). Measured on the 2-core Zen 4 dev machine as
// CPU time per call at 1 thread (loaded machine; float32, N=16 or 32, ms, direct -> Winograd), problem in -> out:
//   forward   32->32 28x28: 3.29 -> 3.61   48->48: 6.62 -> 6.25   64->32: 6.30 -> 6.82   128->32: 12.6 -> 13.9
//             32->64: 5.76 -> 5.49   32->128: 10.9 -> 8.71   16->128: 5.62 -> 5.41   128->16: 7.88 -> 11.4
//             64->64 56x56: 95 -> 58   128->128 28x28: 84 -> 54   256->256 14x14: 85 -> 52   65->256 64x64: 293 -> 136
//             256->64: 45.7 -> 36.2   64->256: 41.0 -> 24.8   64->64 14x14: 7.05 -> 6.00, 10x10: 3.60 -> 3.57
//             128->128 7x7: 6.41 -> 6.48   256->256 7x7: 23.1 -> 19.9, 4x4: 7.18 -> 8.38   64->64 7x7 (N=8): .58 -> .75
//   backward  16->16 28x28: 1.81 -> 1.55   32->32: 4.58 -> 3.87   48->48: 8.27 -> 6.59   32->64: 8.80 -> 5.27
//   _input    64->32: 6.74 -> 7.16   128->32: 11.2 -> 13.6   128->16: 5.82 -> 11.6   64->16: 3.42 -> 5.78
//             16->64: 6.83 -> 3.15   16->128: 14.6 -> 5.36   32->128: 20.6 -> 8.76   256->65 64x64: 230 -> 119
//             256->64: 40.0 -> 36.9   64->256: 63.8 -> 24.6   128->128 7x7: 6.76 -> 6.39   256->256 4x4: 7.86 -> 8.33
// float64 gains as much or more (128->128 28x28: 188 -> 94 forward, 168 -> 97 backward). Hence: few output channels
// (the GEMM too thin to pay for the input transform) and small images (tiles of 7 or fewer per row: the transforms'
// vectors run mostly empty) stay direct.
namespace {
bool winograd_shape(const Conv2dParams& p) {
  return p.kernel_h == 3 && p.kernel_w == 3 && p.stride_h == 1 && p.stride_w == 1 && p.dilation_h == 1 &&
         p.dilation_w == 1 && p.groups == 1;
}
// A problem in -> out channels with out_pixels outputs per channel is big enough.
bool winograd_sizes(int64_t out_pixels, int64_t in, int64_t out) {
  return out_pixels >= 64 || (out_pixels >= 49 && in * out >= 128 * 128);
}
}  // namespace

bool winograd_forward_applies(const Conv2dParams& p) {
  return winograd_shape(p) && p.in_channels >= 32 && p.out_channels >= 64 &&
         winograd_sizes(p.out_pixels(), p.in_channels, p.out_channels);
}

bool winograd_backward_input_applies(const Conv2dParams& p) {
  const int64_t in = p.out_channels, out = p.in_channels;  // gy -> gx
  return winograd_shape(p) && in >= 16 && out >= 16 && (out >= 64 || 2 * out > in) &&
         winograd_sizes(p.in_pixels(), in, out);
}

void conv2d_winograd_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  const int64_t I = p.in_channels;
  const Problem q{p.batch, I, p.in_h, p.in_w, p.out_channels, p.out_h, p.out_w, p.pad_top, p.pad_left,
                  I * 9, 9, 3, 1, 0};
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    winograd<T>(x.data_as<T>(), w.data_as<T>(), bias.numel() ? bias.data_as<T>() : nullptr, y.data_as<T>(), q);
  });
}

void conv2d_winograd_backward_input_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx,
                                        const Conv2dParams& p) {
  // g(c, m, kh, kw) = w[m, c, 2 - kh, 2 - kw]: w_base points at w[0, 0, 2, 2], and kh, kw step backwards.
  const int64_t C = p.in_channels;
  const Problem q{p.batch, p.out_channels, p.out_h, p.out_w, C, p.in_h, p.in_w, 2 - p.pad_top, 2 - p.pad_left,
                  9, C * 9, -3, -1, 8};
  dispatch_float(gy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    winograd<T>(gy.data_as<T>(), w.data_as<T>(), bias.numel() ? bias.data_as<T>() : nullptr, gx.data_as<T>(), q);
  });
}

}  // namespace gradcore
