// CPU conv2d backward_input (also conv_transpose2d's forward): the maths is in conv2d.h.
//
//   backward_input   dcol (K x n*P)       = W_g^T (packed once) * gy of n images side by side, then col2im
// Several small images share one GEMM (images_per_gemm, im2col.h). Depthwise convolutions skip the GEMM
// (conv2d_depthwise.h), and so do stride-1 ones with a short K (conv_transpose2d 32 -> 1: K = 9), which read gy in
// place instead of packing it (conv2d_few_channels.cpp, the same bits). Strided layers with enough channels per
// group run as one direct stride-1 correlation per output phase instead (conv2d_stride_decomposed.h): no column
// matrix and no col2im, which for the seed decoder's 7x7 -> 14x14 layers cost more than the GEMM itself (dec1 T
// forward 0.85 -> ~0.55 ms at 2 threads).
//
// Threads and determinism: one (block of images, group) per task, each writing its own slice of gx, so results are
// the same for any thread count; tests/test_conv2d.py checks 1, 2 and 3 threads bit for bit.
#include "conv2d.h"
#include <algorithm>
#include <cstring>
#include "cpu/conv2d_depthwise.h"
#include "cpu/conv2d_few_channels.h"
#include "cpu/epilogue.h"
#include "cpu/conv2d_winograd.h"
#include "cpu/conv2d_stride_decomposed.h"
#include "cpu/conv_transpose2d_winograd.h"
#include "cpu/gemm.h"
#include "cpu/im2col.h"
#include "cpu/parallel.h"
#include "cpu/phase_timer.h"
#include "cpu/scratch.h"

namespace gradcore {

namespace {

using namespace cpu;

template <typename T>
void backward_input(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p) {
  GRADCORE_PHASE("conv2d_backward_input");
  if (winograd_backward_input_applies(p)) {  // stride-1 3x3 with many channels: cpu/conv2d_winograd.cpp
    conv2d_winograd_backward_input_cpu(gy, w, bias, gx, p);
    activate_whole(gx, p.activation);  // its output transform has no epilogue (yet): one pass over gx
    return;
  }
  if (conv_transpose2d_winograd_applies(p)) {  // stride-2 3x3, gx twice gy's size: cpu/conv_transpose2d_winograd.cpp
    conv_transpose2d_winograd_cpu(gy, w, bias, gx, p);
    return;
  }
  const int64_t G = p.groups, M = p.out_per_group(), K = p.gemm_k(), P = p.out_pixels(), N = p.batch;
  const int64_t Cin = p.in_channels, Cout = p.out_channels, HW = p.in_pixels(), Cg = p.in_per_group();
  const T* pg = gy.data_as<T>();
  const T* pw = w.data_as<T>();
  const T* pb = bias.numel() ? bias.data_as<T>() : nullptr;
  T* px = gx.data_as<T>();
  const bool parallel = N * Cout * P * K >= kParallelThreshold;  // multiply-adds
  if (is_depthwise(p)) {
    depthwise_backward_input(pg, pw, pb, px, p, parallel);
    activate_whole(gx, p.activation);
    return;
  }
  if (few_channels_backward_input_applies(p)) {  // stride 1, K <= 27 (conv_transpose2d 32 -> 1): no packed gy
    conv2d_few_channels_backward_input_cpu(gy, w, bias, gx, p);
    return;
  }
  if (use_stride_decomposed<T>(p)) {  // strided layers: phases of direct convolutions, no col2im
    backward_input_stride_decomposed(pg, pw, pb, px, p, parallel);
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
      {
        GRADCORE_PHASE("conv2d_backward_input/pack");
        for (int64_t i = 0; i < count; ++i)
          rows_packed_b(pg + ((n0 + i) * Cout + g * M + m0) * P, P, mc, P, i * P, cols_pad, packed);
        zero_packed_b_tail(packed, cols, cols_pad, mc);
      }
      GRADCORE_PHASE("conv2d_backward_input/gemm");
      gemm_packed(K, cols, mc, packed_wt.ptr + g * a_size + m0 * round_up(K, kMr), packed, dcol, cols, m0 > 0,
                  (const T*)nullptr);
    }
    if (!direct) {
      GRADCORE_PHASE("conv2d_backward_input/col2im");
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
    if (pb || p.activation != Activation::none) {  // the bias, then the activation epilogue (conv_transpose2d's)
      for (int64_t i = 0; i < count; ++i) {
        for (int64_t c = 0; c < Cg; ++c) {
          T* plane = px + ((n0 + i) * Cin + g * Cg + c) * HW;
          if (pb) {
            const T bv = pb[g * Cg + c];
            for (int64_t e = 0; e < HW; ++e) plane[e] += bv;
          }
          activate_span(plane, HW, p.activation);
        }
      }
    }
  }
}

}  // namespace

void conv2d_backward_input_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p) {
  if (gx.numel() == 0) return;
  dispatch_float(gy.dtype(), [&](auto zero) { backward_input<decltype(zero)>(gy, w, bias, gx, p); });
}

}  // namespace gradcore
