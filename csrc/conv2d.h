// 2-D convolution (cross-correlation, PyTorch's convention) and its two gradients. conv_transpose2d is the adjoint
// and reuses these three kernels with roles swapped (python/gradcore/ops/conv_transpose2d.py).
//
// Shapes: x (N, C_in, H, W), weight (C_out, C_in/G, kH, kW), bias (C_out), y (N, C_out, H_out, W_out).
// Padding is given per side (top, bottom, left, right) so that "same" can put its odd pixel at the bottom/right.
//   H_out = floor((H + pad_top + pad_bottom - d_h (kH - 1) - 1) / s_h) + 1        (W_out likewise)
//
// Forward, for output channel co in group g = co / (C_out/G), input channels ci of that group:
//   y[n, co, oh, ow] = b[co] + sum_{ci, kh, kw} w[co, ci, kh, kw] * x[n, g C_in/G + ci, ih, iw]
//   ih = oh s_h - pad_top + kh d_h,  iw = ow s_w - pad_left + kw d_w            (x is 0 outside the image)
// As a GEMM per image and group, with K = C_in/G kH kW and P = H_out W_out:
//   Y_g (C_out/G x P) = W_g (C_out/G x K) * col_g (K x P),   col[(ci,kh,kw), (oh,ow)] = x[.., ih, iw]  (im2col)
// Gradients, with gy = dL/dy:
//   backward_input:  dcol_g = W_g^T gy_g, then col2im adds each dcol entry into dx at its (ih, iw)
//                    dx[n, ci, ih, iw] = sum_{co, kh, kw : oh, ow integral and in range} w[co, ci, kh, kw] gy[n, co, oh, ow]
//   backward_weight: dW_g = sum_n gy_{n,g} col_{n,g}^T                         (a reduction over N and P)
//   bias:            db[co] = sum_{n, oh, ow} gy[n, co, oh, ow]                (done by _core.sum)
//
// Activation epilogue (p.activation, forward and backward_input only; epilogue.h): the stored value is act(y),
// applied to each element once its sum (bias included) is final. The fused op conv2d + ReLU saves y = relu(conv)
// and its backward masks gy first (elementwise.h's relu_backward(gy, y) = y <= 0 ? 0 : gy, conv_relu_backward below),
// then runs the usual gradients on the masked gy: the same operations as the unfused pair, so the same bits.
//
// Determinism: every output element is reduced in an order fixed by the shapes alone: no float atomics, and the same
// bits for any thread count or launch. On the CPU each weight-gradient element is owned by one task that walks the
// whole N*P reduction in order; on CUDA the N*P reduction is split into fixed chunks whose partial sums land in their
// own slices of a buffer and are then added in chunk order.
#pragma once
#include <cstdint>
#include "array.h"
#include "epilogue.h"

namespace gradcore {

struct Conv2dParams {
  int64_t batch = 0, in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0;
  int64_t out_h = 0, out_w = 0;
  int64_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t groups = 1;
  Activation activation = Activation::none;  // the epilogue of forward / backward_input's stored result

  int64_t in_per_group() const { return in_channels / groups; }
  int64_t out_per_group() const { return out_channels / groups; }
  int64_t gemm_k() const { return in_per_group() * kernel_h * kernel_w; }  // reduction length of the forward GEMM
  int64_t in_pixels() const { return in_h * in_w; }
  int64_t out_pixels() const { return out_h * out_w; }
  // 1x1, stride 1, no padding: im2col is the identity (col_g is x's channel slice itself).
  bool is_pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_top == 0 && pad_bottom == 0 &&
           pad_left == 0 && pad_right == 0;
  }
};

// Validates the arguments of a convolution of an input shaped `x_shape` with a weight shaped `w_shape` and computes
// the output size; throws ArgError/ArgTypeError naming the argument (x, weight, stride, padding, dilation, groups).
// stride and dilation: (h, w); padding: (top, bottom, left, right).
Conv2dParams conv2d_params(const Shape& x_shape, const Shape& w_shape, const int64_t stride[2],
                           const int64_t padding[4], const int64_t dilation[2], int64_t groups);

// y (N, C_out, H_out, W_out) = conv(x, w) + bias; bias may be an empty Array (no bias). y is written whole.
void conv2d_forward_cpu(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p);
// gx (N, C_in, H, W) from gy (N, C_out, H_out, W_out) and w; plus bias[c] on every gx[:, c] when bias is given
// (conv_transpose2d's forward). gx is written whole.
void conv2d_backward_input_cpu(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p);
// gw (C_out, C_in/G, kH, kW) from x and gy; written whole.
void conv2d_backward_weight_cpu(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p);
// The ReLU mask of the fused conv + ReLU's backward, one pass over gy (N, C, H, W) and y (the saved relu output):
//   gm = relu_backward(gy, y),  db[c] = sum_{n, h, w} gm[n, c, h, w]   (db only when it is non-empty: (C) or (0))
// db is summed in _core.sum's order (reduce.h / reduce.cpp), so it has the bits of the unfused sum(gm, [0, 2, 3]).
void conv_relu_backward_cpu(const Array& gy, const Array& y, Array& gm, Array& db);
#ifdef GRADCORE_WITH_CUDA
void conv_relu_backward_cuda(const Array& gy, const Array& y, Array& gm, Array& db);
void conv2d_forward_cuda(const Array& x, const Array& w, const Array& bias, Array& y, const Conv2dParams& p);
void conv2d_backward_input_cuda(const Array& gy, const Array& w, const Array& bias, Array& gx, const Conv2dParams& p);
void conv2d_backward_weight_cuda(const Array& x, const Array& gy, Array& gw, const Conv2dParams& p);
#endif

}  // namespace gradcore
