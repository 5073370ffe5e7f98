// CPU depthwise convolutions; see conv2d_depthwise.h.
#include "cpu/conv2d_depthwise.h"
#include <algorithm>
#include <cstring>
#include <vector>
#include "cpu/im2col.h"
#include "cpu/scratch.h"
#include "cpu/simd.h"

namespace gradcore::cpu {

namespace {

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

// The zero-bordered grid of the stride-1 kernels: ext_h rows of length ext_w, and for each kernel tap (kh, kw) the
// offset it reads at, forward (and weight gradient) from x padded by (pad_top, pad_left):
//   offset = kh d_h ext_w + kw d_w
// backward_input from gy placed at (R, S) = (d_h (kH - 1), d_w (kW - 1)):
//   offset = (pad_top + R - kh d_h) ext_w + (pad_left + S - kw d_w)
struct Stride1Grid {
  int64_t ext_h = 0, ext_w = 0, top = 0, left = 0;  // top, left: where the source plane starts in the grid
  std::vector<int64_t> offsets;
  Stride1Grid(const Conv2dParams& p, bool backward_input) {
    const int64_t R = p.dilation_h * (p.kernel_h - 1), S = p.dilation_w * (p.kernel_w - 1);
    if (backward_input) {
      ext_h = std::max(p.in_h + p.pad_top, p.out_h) + R, ext_w = std::max(p.in_w + p.pad_left, p.out_w) + S;
      top = R, left = S;
    } else {
      ext_h = p.in_h + p.pad_top + p.pad_bottom, ext_w = p.in_w + p.pad_left + p.pad_right;
      top = p.pad_top, left = p.pad_left;
    }
    for (int64_t kh = 0; kh < p.kernel_h; ++kh)
      for (int64_t kw = 0; kw < p.kernel_w; ++kw)
        offsets.push_back(backward_input ? (p.pad_top + R - kh * p.dilation_h) * ext_w + (p.pad_left + S - kw * p.dilation_w)
                                         : kh * p.dilation_h * ext_w + kw * p.dilation_w);
  }
};

// fn(t, c) for every plane t = n * channels + c, one task each.
template <typename Fn> void for_each_plane(int64_t planes, int64_t channels, bool parallel, Fn&& fn) {
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t t = 0; t < planes; ++t) fn(t, t % channels);
}

}  // namespace

// forward (x -> y) and backward_input (gy -> gx) walk the planes alike: each (image, channel) plane of src, of
// (src_h, src_w), into the plane of dst, of (dst_h, dst_w).
template <typename T, bool kBackwardInput>
void depthwise_planes(const T* src, const T* w, const T* bias, T* dst, const Conv2dParams& p, bool parallel) {
  const int64_t K = p.gemm_k(), C = p.out_channels;  // = in_channels
  const int64_t src_h = kBackwardInput ? p.out_h : p.in_h, src_w = kBackwardInput ? p.out_w : p.in_w;
  const int64_t dst_h = kBackwardInput ? p.in_h : p.out_h, dst_w = kBackwardInput ? p.in_w : p.out_w;
  if (p.stride_h == 1 && p.stride_w == 1) {
    const Stride1Grid grid(p, kBackwardInput);
    for_each_plane(p.batch * C, C, parallel, [&](int64_t t, int64_t c) {
      depthwise_stride1_plane(src + t * src_h * src_w, src_h, src_w, grid.top, grid.left, dst_h, dst_w, grid.ext_h,
                              grid.ext_w, grid.offsets.data(), w + c * K, K, bias ? bias[c] : T(0),
                              dst + t * dst_h * dst_w);
    });
    return;
  }
  const std::vector<RowWindow> windows = row_windows(p);
  for_each_plane(p.batch * C, C, parallel, [&](int64_t t, int64_t c) {
    const T* s = src + t * src_h * src_w;
    T* d = dst + t * dst_h * dst_w;
    if constexpr (kBackwardInput)
      depthwise_backward_input_plane(s, w + c * K, bias ? bias[c] : T(0), p, windows.data(), d);
    else
      depthwise_forward_plane(s, w + c * K, bias ? bias[c] : T(0), p, windows.data(), d);
  });
}

template <typename T>
void depthwise_forward(const T* px, const T* pw, const T* pb, T* py, const Conv2dParams& p, bool parallel) {
  depthwise_planes<T, false>(px, pw, pb, py, p, parallel);
}

template <typename T>
void depthwise_backward_input(const T* pg, const T* pw, const T* pb, T* px, const Conv2dParams& p, bool parallel) {
  depthwise_planes<T, true>(pg, pw, pb, px, p, parallel);
}

// One thread per channel, images in order.
template <typename T>
void depthwise_backward_weight(const T* px, const T* pg, T* pw, const Conv2dParams& p, bool parallel) {
  const int64_t K = p.gemm_k(), P = p.out_pixels(), N = p.batch, HW = p.in_pixels();
  const int64_t Cin = p.in_channels, Cout = p.out_channels;
  const bool stride1 = p.stride_h == 1 && p.stride_w == 1;
  const Stride1Grid grid(p, false);                      // for stride 1
  const std::vector<RowWindow> windows = row_windows(p);  // for other strides
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t c = 0; c < Cout; ++c) {
    for (int64_t n = 0; n < N; ++n) {
      const T* x = px + (n * Cin + c) * HW;
      const T* gy = pg + (n * Cout + c) * P;
      if (stride1)
        depthwise_stride1_weight_plane(x, gy, p, grid.ext_h, grid.ext_w, grid.offsets.data(), pw + c * K);
      else
        depthwise_backward_weight_plane(x, gy, p, windows.data(), pw + c * K);
    }
  }
}

#define GRADCORE_DEPTHWISE_INSTANCES(T)                                                                           \
  template void depthwise_forward<T>(const T*, const T*, const T*, T*, const Conv2dParams&, bool);               \
  template void depthwise_backward_input<T>(const T*, const T*, const T*, T*, const Conv2dParams&, bool);        \
  template void depthwise_backward_weight<T>(const T*, const T*, T*, const Conv2dParams&, bool);
GRADCORE_DEPTHWISE_INSTANCES(float)
GRADCORE_DEPTHWISE_INSTANCES(double)
#undef GRADCORE_DEPTHWISE_INSTANCES

}  // namespace gradcore::cpu
