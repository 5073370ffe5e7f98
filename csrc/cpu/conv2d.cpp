// CPU conv2d forward (also conv_transpose2d's input gradient): a GEMM over im2col, the maths is in conv2d.h. The
// pieces live beside this file: the packed GEMM in gemm.h, im2col/col2im in im2col.h, the depthwise kernels in
// conv2d_depthwise.cpp, the input gradient in conv2d_backward_input.cpp, the weight gradient in
// conv2d_backward_weight.cpp.
//
//   forward          Y (C_out/G x n*P)    = W_g (packed once)  * im2col of n images side by side (packed B)
// Several small images share one GEMM so that its columns fill whole strips; how many depends on the shapes only.
// Stride-1 forwards with wide outputs run on an extended pixel grid where every im2col row is a plain copy.
// Depthwise convolutions (one input and one output channel per group) skip the GEMM (conv2d_depthwise.h).
//
// Threads and determinism: one (block of images, group) per task, each writing its own slice of the output, so
// results are the same for any thread count; tests/test_conv2d.py checks 1, 2 and 3 threads bit for bit.
#include "conv2d.h"
#include <algorithm>
#include <cstring>
#include <vector>
#include "cpu/conv2d_depthwise.h"
#include "cpu/conv2d_winograd.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"

namespace gradcore {

namespace {

using namespace cpu;

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
  GRADCORE_PHASE("conv2d_forward");
  if (winograd_forward_applies(p)) {  // stride-1 3x3 with many channels: cpu/conv2d_winograd.cpp
    conv2d_winograd_forward_cpu(x, w, bias, y, p);
    return;
  }
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels();
  const T* px = x.data_as<T>();
  const T* pw = w.data_as<T>();
  const T* pb = bias.numel() ? bias.data_as<T>() : nullptr;
  T* py = y.data_as<T>();
  const bool parallel = N * Cout * P * K >= kParallelThreshold;  // multiply-adds
  if (is_depthwise(p)) {
    depthwise_forward(px, pw, pb, py, p, parallel);
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

}  // namespace

void conv2d_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p) {
  if (y.numel() == 0) return;
  dispatch_float(x.dtype(), [&](auto zero) { forward<decltype(zero)>(x, w, bias, y, p); });
}

}  // namespace gradcore
