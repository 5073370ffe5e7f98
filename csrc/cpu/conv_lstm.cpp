// CPU loops for the fused ConvLSTM gates; the maths is in conv_lstm.h. Elements are indexed (n, q) with
// q = k * P + p in [0, Hc * P): each sample's gate blocks are Hc * P apart.
// The peephole gradient is summed over n for each q by the thread that owns q's block, in increasing n, from a
// zeroed accumulator: the result is the same for any number of threads.
#include "conv_lstm.h"
#include <algorithm>

namespace gradcore {

namespace {
constexpr int64_t kParallelThreshold = 1 << 15;
constexpr int64_t kBlock = 256;  // positions per peephole-gradient block (three accumulators of this length)
}  // namespace

void conv_lstm_gates_forward_cpu(const Array& pre, const Array& c, const Array& peephole, Array& h_next,
                                 Array& c_next, Array& gates, const ConvLSTMGatesShape& shape) {
  const int64_t N = shape.batch, Q = shape.hidden * shape.positions;
  dispatch_float(pre.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pre_p = pre.data_as<T>();
    const T* c_p = c.data_as<T>();
    const T* w = shape.peephole ? peephole.data_as<T>() : nullptr;
    T* h_out = h_next.data_as<T>();
    T* c_out = c_next.data_as<T>();
    T* gates_p = gates.data_as<T>();
#pragma omp parallel for collapse(2) schedule(static) if (N * Q >= kParallelThreshold)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t e = n * Q + q, g4 = n * 4 * Q + q;
        const T w_ci = w ? w[q] : T(0), w_cf = w ? w[Q + q] : T(0), w_co = w ? w[2 * Q + q] : T(0);
        conv_lstm_gates_forward_element<T>(pre_p + g4, c_p[e], w_ci, w_cf, w_co, Q, h_out + e, c_out + e,
                                           gates_p + g4);
      }
  });
}

void conv_lstm_gates_backward_cpu(const Array& gates, const Array& c, const Array& c_next, const Array& peephole,
                                  const Array& d_h_next, const Array& d_c_next, Array& d_pre, Array& d_c,
                                  Array& d_peephole, const ConvLSTMGatesShape& shape) {
  const int64_t N = shape.batch, Q = shape.hidden * shape.positions;
  dispatch_float(gates.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* gates_p = gates.data_as<T>();
    const T* c_p = c.data_as<T>();
    const T* cn_p = c_next.data_as<T>();
    const T* dh_p = d_h_next.data_as<T>();
    const T* dcn_p = d_c_next.data_as<T>();
    T* d_pre_p = d_pre.data_as<T>();
    T* d_c_p = d_c.data_as<T>();
    if (!shape.peephole) {
#pragma omp parallel for collapse(2) schedule(static) if (N * Q >= kParallelThreshold)
      for (int64_t n = 0; n < N; ++n)
        for (int64_t q = 0; q < Q; ++q) {
          const int64_t e = n * Q + q, g4 = n * 4 * Q + q;
          T dw[3];
          conv_lstm_gates_backward_element<T>(gates_p + g4, c_p[e], cn_p[e], T(0), T(0), T(0), dh_p[e], dcn_p[e],
                                              Q, d_pre_p + g4, d_c_p + e, dw);
        }
      return;
    }
    const T* w = peephole.data_as<T>();
    T* dw_p = d_peephole.data_as<T>();
    const int64_t blocks = (Q + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (N * Q >= kParallelThreshold)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t q0 = b * kBlock, len = std::min(kBlock, Q - q0);
      T acc[3][kBlock] = {};  // zeroed accumulators, one per peephole and position of the block
      for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < len; ++j) {
          const int64_t q = q0 + j, e = n * Q + q, g4 = n * 4 * Q + q;
          T dw[3];
          conv_lstm_gates_backward_element<T>(gates_p + g4, c_p[e], cn_p[e], w[q], w[Q + q], w[2 * Q + q], dh_p[e],
                                              dcn_p[e], Q, d_pre_p + g4, d_c_p + e, dw);
          acc[0][j] += dw[0];
          acc[1][j] += dw[1];
          acc[2][j] += dw[2];
        }
      for (int64_t j = 0; j < len; ++j) {
        dw_p[q0 + j] = acc[0][j];
        dw_p[Q + q0 + j] = acc[1][j];
        dw_p[2 * Q + q0 + j] = acc[2][j];
      }
    }
  });
}

}  // namespace gradcore
