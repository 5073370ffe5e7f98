// CPU loops for the fused ConvLSTM gates; the maths is in conv_lstm.h. Elements are indexed (n, q) with
// q = k * P + p in [0, Hc * P): each sample's gate blocks are Hc * P apart, so for a fixed n every array is read
// and written contiguously along q. Work is split into (n, block of q) tiles for OpenMP, and each tile's inner loop
// over q is a SIMD loop (the float transcendentals come from fast_math.h, which vectorise).
// The peephole gradient is summed over n for each q by the thread that owns q's block, in increasing n, from a
// zeroed accumulator: the result is the same for any number of threads.
#include "conv_lstm.h"
#include <algorithm>
#include "cpu/parallel.h"

namespace gradcore {

namespace {

using cpu::kParallelThreshold;
constexpr int64_t kBlock = 512;  // q per tile (three peephole accumulators of this length per thread)

template <typename T, bool PEEPHOLE>
void gates_forward(const T* pre, const T* c, const T* w, T* h_next, T* c_next, T* gates, int64_t N, int64_t Q) {
  const int64_t blocks = (Q + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) schedule(static) if (N * Q >= kParallelThreshold)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t q0 = b * kBlock, q1 = std::min(Q, q0 + kBlock);
      const T* pre_n = pre + n * 4 * Q;
      T* gates_n = gates + n * 4 * Q;
      const T* c_n = c + n * Q;
      T* h_out = h_next + n * Q;
      T* c_out = c_next + n * Q;
#pragma omp simd
      for (int64_t q = q0; q < q1; ++q) {
        const T w_ci = PEEPHOLE ? w[q] : T(0), w_cf = PEEPHOLE ? w[Q + q] : T(0);
        const T w_co = PEEPHOLE ? w[2 * Q + q] : T(0);
        conv_lstm_gates_forward_element<T>(pre_n + q, c_n[q], w_ci, w_cf, w_co, Q, h_out + q, c_out + q, gates_n + q);
      }
    }
}

template <typename T>
void gates_backward(const T* gates, const T* c, const T* c_next, const T* dh, const T* dcn, T* d_pre, T* d_c,
                    int64_t N, int64_t Q) {
  const int64_t blocks = (Q + kBlock - 1) / kBlock;
#pragma omp parallel for collapse(2) schedule(static) if (N * Q >= kParallelThreshold)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t q0 = b * kBlock, q1 = std::min(Q, q0 + kBlock), e0 = n * Q, g0 = n * 4 * Q;
#pragma omp simd
      for (int64_t q = q0; q < q1; ++q) {
        T unused_i, unused_f, unused_o;
        conv_lstm_gates_backward_element<T>(gates + g0 + q, c[e0 + q], c_next[e0 + q], T(0), T(0), T(0), dh[e0 + q],
                                            dcn[e0 + q], Q, d_pre + g0 + q, d_c + e0 + q, unused_i, unused_f, unused_o);
      }
    }
}

template <typename T>
void gates_backward_peephole(const T* gates, const T* c, const T* c_next, const T* w, const T* dh, const T* dcn,
                             T* d_pre, T* d_c, T* d_w, int64_t N, int64_t Q) {
  const int64_t blocks = (Q + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (N * Q >= kParallelThreshold)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t q0 = b * kBlock, len = std::min(kBlock, Q - q0);
    T acc_i[kBlock] = {}, acc_f[kBlock] = {}, acc_o[kBlock] = {};  // zeroed accumulators
    for (int64_t n = 0; n < N; ++n) {
      const int64_t e0 = n * Q + q0, g0 = n * 4 * Q + q0;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const int64_t q = q0 + j;
        T dw_ci, dw_cf, dw_co;
        conv_lstm_gates_backward_element<T>(gates + g0 + j, c[e0 + j], c_next[e0 + j], w[q], w[Q + q], w[2 * Q + q],
                                            dh[e0 + j], dcn[e0 + j], Q, d_pre + g0 + j, d_c + e0 + j, dw_ci, dw_cf,
                                            dw_co);
        acc_i[j] += dw_ci;
        acc_f[j] += dw_cf;
        acc_o[j] += dw_co;
      }
    }
    for (int64_t j = 0; j < len; ++j) {
      d_w[q0 + j] = acc_i[j];
      d_w[Q + q0 + j] = acc_f[j];
      d_w[2 * Q + q0 + j] = acc_o[j];
    }
  }
}

}  // namespace

void conv_lstm_gates_forward_cpu(const Array& pre, const Array& c, const Array& peephole, Array& h_next,
                                 Array& c_next, Array& gates, const ConvLSTMGatesShape& shape) {
  const int64_t N = shape.batch, Q = shape.hidden * shape.positions;
  dispatch_float(pre.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (shape.peephole)
      gates_forward<T, true>(pre.data_as<T>(), c.data_as<T>(), peephole.data_as<T>(), h_next.data_as<T>(),
                             c_next.data_as<T>(), gates.data_as<T>(), N, Q);
    else
      gates_forward<T, false>(pre.data_as<T>(), c.data_as<T>(), nullptr, h_next.data_as<T>(), c_next.data_as<T>(),
                              gates.data_as<T>(), N, Q);
  });
}

void conv_lstm_gates_backward_cpu(const Array& gates, const Array& c, const Array& c_next, const Array& peephole,
                                  const Array& d_h_next, const Array& d_c_next, Array& d_pre, Array& d_c,
                                  Array& d_peephole, const ConvLSTMGatesShape& shape) {
  const int64_t N = shape.batch, Q = shape.hidden * shape.positions;
  dispatch_float(gates.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (shape.peephole)
      gates_backward_peephole<T>(gates.data_as<T>(), c.data_as<T>(), c_next.data_as<T>(), peephole.data_as<T>(),
                                 d_h_next.data_as<T>(), d_c_next.data_as<T>(), d_pre.data_as<T>(), d_c.data_as<T>(),
                                 d_peephole.data_as<T>(), N, Q);
    else
      gates_backward<T>(gates.data_as<T>(), c.data_as<T>(), c_next.data_as<T>(), d_h_next.data_as<T>(),
                        d_c_next.data_as<T>(), d_pre.data_as<T>(), d_c.data_as<T>(), N, Q);
  });
}

}  // namespace gradcore
