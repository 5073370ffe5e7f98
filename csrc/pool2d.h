// 2-d pooling over (N, C, H, W): max, average and adaptive average, each plane (n, c) on its own.
//
// Windows. Output (oh, ow) of max/avg pooling reads rows oh*sH - pH + kh*dH (kh < kH) and columns alike (avg pooling
// has dilation 1); cells outside the input are padding. Output size, as PyTorch:
//   OH = floor_or_ceil((H + 2 pH - dH (kH - 1) - 1) / sH) + 1, and with ceil_mode the last window must start inside
//   the input or the left padding: if (OH - 1) sH >= H + pH then OH -= 1.
// max:  y = the largest value in the window (padding never wins); its flat index h*W + w in the plane is saved.
//       Ties go to the first in the window's row-major order (strict >); a NaN wins over anything (y is NaN), a
//       later NaN over an earlier one, exactly as PyTorch's CPU kernel. A window of only -inf keeps its first cell;
//       a window with no input cell (dilation can skip them all, in the padding) gives -inf and index -1.
// avg:  y = sum of the window's input cells / divisor, where the divisor is divisor_override when given, else the
//       window's size clipped to the padded input (count_include_pad) or to the input (not count_include_pad).
// adaptive avg: window oh covers rows [floor(oh H / OH), ceil((oh + 1) H / OH)) (columns alike); y = its mean.
//
// Backward: each input cell sums, from zero and in (oh, ow) order, the gradients of the windows that hold it:
//   max: dx[h, w] = sum over windows whose saved index is h*W + w of dy;   avg: dx = sum of dy / divisor.
// CUDA gathers them (one thread per input cell, pool_backward_cell); the CPU scatters each plane's dy in output order
// from one thread. Both add the same terms in the same order: no atomics, the same bits on either device and for any
// thread count.
#pragma once
#include <cstdint>
#include "array.h"
#include "host_device.h"

namespace gradcore {

enum class PoolKind { max, avg, adaptive_avg };

struct Pool2dParams {
  PoolKind kind = PoolKind::max;
  int64_t planes = 0;                      // N * C
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  bool count_include_pad = true;           // avg
  int64_t divisor_override = 0;            // avg; 0: none
};

// Output length of one side of max/avg pooling (PyTorch's pooling_output_shape).
inline int64_t pool_output_size(int64_t in, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation,
                                bool ceil_mode) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;  // floor division
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// A window's extent on one side, clipped to the input: cells begin, begin + step, ... < end.
struct Span {
  int64_t begin, end, step;
};

// max pooling: window o on a side of length `in`.
GRADCORE_HD Span max_span(int64_t o, int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t dilation) {
  int64_t begin = o * stride - pad;
  const int64_t end_unclipped = begin + (kernel - 1) * dilation + 1;
  while (begin < 0) begin += dilation;
  return {begin, end_unclipped < in ? end_unclipped : in, dilation};
}

// avg pooling: window o, clipped to the input, and its length clipped to the padded input (for count_include_pad).
GRADCORE_HD Span avg_span(int64_t o, int64_t in, int64_t kernel, int64_t stride, int64_t pad, int64_t& padded_len) {
  const int64_t begin = o * stride - pad;
  int64_t end = begin + kernel;
  if (end > in + pad) end = in + pad;
  padded_len = end - begin;
  return {begin < 0 ? 0 : begin, end < in ? end : in, 1};
}

// adaptive pooling: window o of `out` over a side of length `in`.
GRADCORE_HD Span adaptive_span(int64_t o, int64_t in, int64_t out) {
  return {(o * in) / out, ((o + 1) * in + out - 1) / out, 1};
}

// The windows (on one side) that can hold input cell i: [first, last], clipped to [0, out).
GRADCORE_HD void windows_holding(int64_t i, const Pool2dParams& p, bool rows, int64_t& first, int64_t& last) {
  const int64_t out = rows ? p.out_h : p.out_w, in = rows ? p.in_h : p.in_w;
  if (p.kind == PoolKind::adaptive_avg) {
    first = (i * out) / in;
    last = ((i + 1) * out + in - 1) / in - 1;
  } else {
    const int64_t k = rows ? p.kernel_h : p.kernel_w, s = rows ? p.stride_h : p.stride_w;
    const int64_t pad = rows ? p.pad_h : p.pad_w, d = rows ? p.dilation_h : p.dilation_w;
    const int64_t lo = i + pad - (k - 1) * d;  // windows starting at or after this (in padded coordinates) hold i
    first = lo <= 0 ? 0 : (lo + s - 1) / s;
    last = (i + pad) / s;
  }
  if (last > out - 1) last = out - 1;
}

// The divisor of avg window (oh, ow), and its clipped spans.
GRADCORE_HD int64_t avg_divisor(const Pool2dParams& p, int64_t oh, int64_t ow, Span& sh, Span& sw) {
  if (p.kind == PoolKind::adaptive_avg) {
    sh = adaptive_span(oh, p.in_h, p.out_h);
    sw = adaptive_span(ow, p.in_w, p.out_w);
    return (sh.end - sh.begin) * (sw.end - sw.begin);
  }
  int64_t padded_h, padded_w;
  sh = avg_span(oh, p.in_h, p.kernel_h, p.stride_h, p.pad_h, padded_h);
  sw = avg_span(ow, p.in_w, p.kernel_w, p.stride_w, p.pad_w, padded_w);
  if (p.divisor_override) return p.divisor_override;
  return p.count_include_pad ? padded_h * padded_w : (sh.end - sh.begin) * (sw.end - sw.begin);
}

// Max pooling of one output cell: the value and its flat index in the plane.
template <typename T>
GRADCORE_HD void max_window(const T* plane, const Pool2dParams& p, int64_t oh, int64_t ow, T& value, int64_t& index) {
  const Span sh = max_span(oh, p.in_h, p.kernel_h, p.stride_h, p.pad_h, p.dilation_h);
  const Span sw = max_span(ow, p.in_w, p.kernel_w, p.stride_w, p.pad_w, p.dilation_w);
  T best = -INFINITY;
  // A window whose dilated cells all fall in the padding holds no input cell: -inf, and index -1 (PyTorch would
  // point at a cell outside the plane here, and its backward would write there).
  int64_t at = (sh.begin < sh.end && sw.begin < sw.end) ? sh.begin * p.in_w + sw.begin : -1;
  for (int64_t h = sh.begin; h < sh.end; h += sh.step)
    for (int64_t w = sw.begin; w < sw.end; w += sw.step) {
      const T v = plane[h * p.in_w + w];
      if (v > best || v != v) {
        best = v;
        at = h * p.in_w + w;
      }
    }
  value = best;
  index = at;
}

// Average pooling (plain or adaptive) of one output cell, summed in T in row-major order (as PyTorch).
template <typename T> GRADCORE_HD T avg_window(const T* plane, const Pool2dParams& p, int64_t oh, int64_t ow) {
  Span sh, sw;
  const int64_t divisor = avg_divisor(p, oh, ow, sh, sw);
  if (sh.begin >= sh.end || sw.begin >= sw.end) return T(0);
  T sum = T(0);
  for (int64_t h = sh.begin; h < sh.end; ++h)
    for (int64_t w = sw.begin; w < sw.end; ++w) sum += plane[h * p.in_w + w];
  return sum / (T)divisor;
}

// dx of one input cell (h, w) from the plane's dy (out_h, out_w) and, for max pooling, its saved indices.
template <typename T>
GRADCORE_HD T pool_backward_cell(const T* dy, const int64_t* indices, const Pool2dParams& p, int64_t h, int64_t w) {
  int64_t oh0, oh1, ow0, ow1;
  windows_holding(h, p, true, oh0, oh1);
  windows_holding(w, p, false, ow0, ow1);
  T acc = T(0);
  if (p.kind == PoolKind::max) {
    const int64_t self = h * p.in_w + w;
    for (int64_t oh = oh0; oh <= oh1; ++oh)
      for (int64_t ow = ow0; ow <= ow1; ++ow)
        if (indices[oh * p.out_w + ow] == self) acc += dy[oh * p.out_w + ow];
    return acc;
  }
  for (int64_t oh = oh0; oh <= oh1; ++oh)
    for (int64_t ow = ow0; ow <= ow1; ++ow) {
      Span sh, sw;
      const int64_t divisor = avg_divisor(p, oh, ow, sh, sw);
      if (h >= sh.begin && h < sh.end && w >= sw.begin && w < sw.end) acc += dy[oh * p.out_w + ow] / (T)divisor;
    }
  return acc;
}

// Forward: y (planes, out_h, out_w); indices (planes, out_h, out_w) int64, max pooling only (else null).
void pool2d_forward_cpu(const Array& x, Array& y, int64_t* indices, const Pool2dParams& p);
// Backward: dx (planes, in_h, in_w) from dy (planes, out_h, out_w) and, for max pooling, the saved indices.
void pool2d_backward_cpu(const Array& dy, const int64_t* indices, Array& dx, const Pool2dParams& p);
#ifdef GRADCORE_WITH_CUDA
void pool2d_forward_cuda(const Array& x, Array& y, int64_t* indices, const Pool2dParams& p);
void pool2d_backward_cuda(const Array& dy, const int64_t* indices, Array& dx, const Pool2dParams& p);
#endif

}  // namespace gradcore
