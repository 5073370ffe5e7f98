// CUDA kernels for the fused ConvLSTM gates; the maths is in conv_lstm.h. Elements are (n, q), q = k * P + p.
// Consecutive threads take consecutive q, so every load and store (each of the four gate blocks, the states and
// the peepholes) is coalesced. Bandwidth-bound: forward reads 5 and writes 6 values per element (7 and 5 with
// the gradients backward).
//
// Peephole gradient: one thread per q loops over n in increasing order with register accumulators that start at
// zero, then writes the three sums: no atomics, the same bits for any grid. Without peepholes backward is a flat
// grid-stride loop over all N * Q elements.
#include "conv_lstm.h"
#include "cuda/launch.cuh"

namespace gradcore {

template <typename T, bool PEEPHOLE>
__global__ void conv_lstm_gates_forward_kernel(const T* __restrict__ pre, const T* __restrict__ c,
                                               const T* __restrict__ w, T* __restrict__ h_next,
                                               T* __restrict__ c_next, T* __restrict__ gates, int64_t N, int64_t Q) {
  const int64_t total = N * Q;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = e / Q, q = e - n * Q, g4 = n * 4 * Q + q;
    const T w_ci = PEEPHOLE ? w[q] : T(0), w_cf = PEEPHOLE ? w[Q + q] : T(0), w_co = PEEPHOLE ? w[2 * Q + q] : T(0);
    conv_lstm_gates_forward_element<T>(pre + g4, c[e], w_ci, w_cf, w_co, Q, h_next + e, c_next + e, gates + g4);
  }
}

template <typename T>
__global__ void conv_lstm_gates_backward_kernel(const T* __restrict__ gates, const T* __restrict__ c,
                                                const T* __restrict__ c_next, const T* __restrict__ dh,
                                                const T* __restrict__ dcn, T* __restrict__ d_pre,
                                                T* __restrict__ d_c, int64_t N, int64_t Q) {
  const int64_t total = N * Q;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t n = e / Q, q = e - n * Q, g4 = n * 4 * Q + q;
    T unused_i, unused_f, unused_o;
    conv_lstm_gates_backward_element<T>(gates + g4, c[e], c_next[e], T(0), T(0), T(0), dh[e], dcn[e], Q, d_pre + g4,
                                        d_c + e, unused_i, unused_f, unused_o);
  }
}

template <typename T>
__global__ void conv_lstm_gates_backward_peephole_kernel(const T* __restrict__ gates, const T* __restrict__ c,
                                                         const T* __restrict__ c_next, const T* __restrict__ w,
                                                         const T* __restrict__ dh, const T* __restrict__ dcn,
                                                         T* __restrict__ d_pre, T* __restrict__ d_c,
                                                         T* __restrict__ d_w, int64_t N, int64_t Q) {
  for (int64_t q = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; q < Q; q += (int64_t)gridDim.x * blockDim.x) {
    const T w_ci = w[q], w_cf = w[Q + q], w_co = w[2 * Q + q];
    T acc_i = T(0), acc_f = T(0), acc_o = T(0);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t e = n * Q + q, g4 = n * 4 * Q + q;
      T dw_ci, dw_cf, dw_co;
      conv_lstm_gates_backward_element<T>(gates + g4, c[e], c_next[e], w_ci, w_cf, w_co, dh[e], dcn[e], Q,
                                          d_pre + g4, d_c + e, dw_ci, dw_cf, dw_co);
      acc_i += dw_ci;
      acc_f += dw_cf;
      acc_o += dw_co;
    }
    d_w[q] = acc_i;
    d_w[Q + q] = acc_f;
    d_w[2 * Q + q] = acc_o;
  }
}

void conv_lstm_gates_forward_cuda(const Array& pre, const Array& c, const Array& peephole, Array& h_next,
                                  Array& c_next, Array& gates, const ConvLSTMGatesShape& shape) {
  const int64_t N = shape.batch, Q = shape.hidden * shape.positions;
  if (N * Q == 0) return;
  cudaStream_t s = cuda::stream_of(pre);
  const unsigned grid = cuda::grid_for(N * Q, 256);
  dispatch_float(pre.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (shape.peephole)
      cuda::launch("conv_lstm_gates_forward_kernel", conv_lstm_gates_forward_kernel<T, true>, grid, 256, s,
          pre.data_as<T>(), c.data_as<T>(), peephole.data_as<T>(), h_next.data_as<T>(), c_next.data_as<T>(),
          gates.data_as<T>(), N, Q);
    else
      cuda::launch("conv_lstm_gates_forward_kernel", conv_lstm_gates_forward_kernel<T, false>, grid, 256, s,
          pre.data_as<T>(), c.data_as<T>(), nullptr, h_next.data_as<T>(), c_next.data_as<T>(), gates.data_as<T>(), N,
          Q);
  });
}

void conv_lstm_gates_backward_cuda(const Array& gates, const Array& c, const Array& c_next, const Array& peephole,
                                   const Array& d_h_next, const Array& d_c_next, Array& d_pre, Array& d_c,
                                   Array& d_peephole, const ConvLSTMGatesShape& shape) {
  const int64_t N = shape.batch, Q = shape.hidden * shape.positions;
  if (N * Q == 0) return;
  cudaStream_t s = cuda::stream_of(gates);
  dispatch_float(gates.dtype(), [&](auto zero) {
    using T = decltype(zero);
    if (shape.peephole) {
      cuda::launch("conv_lstm_gates_backward_peephole_kernel", conv_lstm_gates_backward_peephole_kernel<T>,
          cuda::grid_for(Q, 256), 256, s, gates.data_as<T>(), c.data_as<T>(), c_next.data_as<T>(),
          peephole.data_as<T>(), d_h_next.data_as<T>(), d_c_next.data_as<T>(), d_pre.data_as<T>(), d_c.data_as<T>(),
          d_peephole.data_as<T>(), N, Q);
    } else {
      cuda::launch("conv_lstm_gates_backward_kernel", conv_lstm_gates_backward_kernel<T>, cuda::grid_for(N * Q, 256),
          256, s, gates.data_as<T>(), c.data_as<T>(), c_next.data_as<T>(), d_h_next.data_as<T>(),
          d_c_next.data_as<T>(), d_pre.data_as<T>(), d_c.data_as<T>(), N, Q);
    }
  });
}

}  // namespace gradcore
