// The gate nonlinearities and state update of a ConvLSTM cell (Shi et al. 2015, "Convolutional LSTM Network"),
// fused: one kernel per time step forward, one backward. The convolution that produces the pre-activations runs
// before this (conv2d over concat(x, h), "same" padding) and is not part of these kernels.
//
// Layouts (contiguous NCHW; P = H*W positions, Hc hidden channels):
//   pre       (N, 4*Hc, H, W)  gate pre-activations Wx*x + Wh*h + b, channel blocks in the order
//                              [i (input gate), f (forget gate), g (cell candidate), o (output gate)]:
//                              channels [0,Hc) are i, [Hc,2Hc) f, [2Hc,3Hc) g, [3Hc,4Hc) o.
//   c         (N, Hc, H, W)    previous cell state
//   peephole  (3, Hc, H, W)    optional per channel-and-position peephole weights [w_ci, w_cf, w_co]
//
// Forward, per element (n, k, p); "." is the elementwise product, sigma the logistic function:
//   i  = sigma(pre_i + w_ci . c)          f  = sigma(pre_f + w_cf . c)          g  = tanh(pre_g)
//   c' = f . c + i . g
//   o  = sigma(pre_o + w_co . c')         h' = o . tanh(c')
// Without peepholes the w terms are zero. Outputs: h', c' and the activated gates [i, f, g, o] (same layout as
// pre), which the backward pass reads instead of recomputing the exponentials.
//
// Backward, given dh' and dc' (the gradients arriving at h' and c'); t = tanh(c'):
//   da_o   = dh' . t . o (1 - o)                                   (gradient of pre_o)
//   dc'tot = dc' + dh' . o . (1 - t^2) + da_o . w_co               (everything that reaches c')
//   da_i   = dc'tot . g . i (1 - i)       da_f = dc'tot . c . f (1 - f)       da_g = dc'tot . i . (1 - g^2)
//   dc     = dc'tot . f + da_i . w_ci + da_f . w_cf
//   dw_ci  = sum_n da_i . c       dw_cf = sum_n da_f . c       dw_co = sum_n da_o . c'
// d_pre holds [da_i, da_f, da_g, da_o]. The peephole sums run over the batch in increasing n for every
// (channel, position), each from a zeroed accumulator, so they are bitwise reproducible and independent of the
// thread count or grid size. Backpropagation through time adds these per-step gradients in the layer above.
// tanh(c') is recomputed in backward (one transcendental) rather than saved (one more array written and read).
// Float on the CPU uses the vectorised exp/tanh of fast_math.h (within 2.5 ulp), so CPU and CUDA float results
// agree to rounding, not bitwise; each device on its own is bitwise repeatable.
#pragma once
#include <cstdint>
#include "array.h"
#include "fast_math.h"
#include "host_device.h"

namespace gradcore {

struct ConvLSTMGatesShape {
  int64_t batch = 0;      // N
  int64_t hidden = 0;     // Hc
  int64_t positions = 0;  // H * W
  bool peephole = false;
};

// Forward. pre (N,4Hc,H,W), c (N,Hc,H,W), peephole (3,Hc,H,W) or unused when !shape.peephole.
// Writes h_next (N,Hc,H,W), c_next (N,Hc,H,W), gates (N,4Hc,H,W) completely.
void conv_lstm_gates_forward_cpu(const Array& pre, const Array& c, const Array& peephole, Array& h_next,
                                 Array& c_next, Array& gates, const ConvLSTMGatesShape& shape);
// Backward. gates (N,4Hc,H,W), c (N,Hc,H,W), c_next (N,Hc,H,W), peephole (3,Hc,H,W) or unused, d_h_next and
// d_c_next (N,Hc,H,W). Writes d_pre (N,4Hc,H,W), d_c (N,Hc,H,W) and, with peepholes, d_peephole (3,Hc,H,W).
void conv_lstm_gates_backward_cpu(const Array& gates, const Array& c, const Array& c_next, const Array& peephole,
                                  const Array& d_h_next, const Array& d_c_next, Array& d_pre, Array& d_c,
                                  Array& d_peephole, const ConvLSTMGatesShape& shape);
#ifdef GRADCORE_WITH_CUDA
void conv_lstm_gates_forward_cuda(const Array& pre, const Array& c, const Array& peephole, Array& h_next,
                                  Array& c_next, Array& gates, const ConvLSTMGatesShape& shape);
void conv_lstm_gates_backward_cuda(const Array& gates, const Array& c, const Array& c_next, const Array& peephole,
                                   const Array& d_h_next, const Array& d_c_next, Array& d_pre, Array& d_c,
                                   Array& d_peephole, const ConvLSTMGatesShape& shape);
#endif

// A peephole term w . v, which is absent when w is 0 (as without peepholes): 0 * inf would turn an infinite cell
// state into NaN where the equations give +-inf.
template <typename T> GRADCORE_HD T peephole_term(T w, T v) { return w == T(0) ? T(0) : w * v; }

// The per-element maths above, shared by the CPU loops and the CUDA kernels. Pointers are offset so that
// index 0 is this element's (n, k, p); `stride` is Hc*P, the distance between gate blocks of one sample.
template <typename T>
GRADCORE_HD void conv_lstm_gates_forward_element(const T* pre, T c, T w_ci, T w_cf, T w_co, int64_t stride,
                                                 T* h_next, T* c_next, T* gates) {
  const T i = fast_sigmoid(pre[0] + peephole_term(w_ci, c));
  const T f = fast_sigmoid(pre[stride] + peephole_term(w_cf, c));
  const T g = fast_tanh(pre[2 * stride]);
  const T cn = f * c + i * g;
  const T o = fast_sigmoid(pre[3 * stride] + peephole_term(w_co, cn));
  *c_next = cn;
  *h_next = o * fast_tanh(cn);
  gates[0] = i;
  gates[stride] = f;
  gates[2 * stride] = g;
  gates[3 * stride] = o;
}

// Writes the four pre-activation gradients (stride apart) and d_c; returns this element's three peephole gradient
// terms through dw_ci, dw_cf, dw_co (the caller sums them over the batch).
template <typename T>
GRADCORE_HD void conv_lstm_gates_backward_element(const T* gates, T c, T cn, T w_ci, T w_cf, T w_co, T dh, T dcn,
                                                  int64_t stride, T* d_pre, T* d_c, T& dw_ci, T& dw_cf, T& dw_co) {
  const T i = gates[0], f = gates[stride], g = gates[2 * stride], o = gates[3 * stride];
  const T t = fast_tanh(cn);
  const T da_o = dh * t * o * (T(1) - o);
  const T dc_total = dcn + dh * o * (T(1) - t * t) + peephole_term(w_co, da_o);
  const T da_i = dc_total * g * i * (T(1) - i);
  const T da_f = dc_total * c * f * (T(1) - f);
  const T da_g = dc_total * i * (T(1) - g * g);
  d_pre[0] = da_i;
  d_pre[stride] = da_f;
  d_pre[2 * stride] = da_g;
  d_pre[3 * stride] = da_o;
  *d_c = dc_total * f + peephole_term(w_ci, da_i) + peephole_term(w_cf, da_f);
  dw_ci = da_i * c;
  dw_cf = da_f * c;
  dw_co = da_o * cn;
}

}  // namespace gradcore
