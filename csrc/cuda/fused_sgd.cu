// CUDA fused SGD: ONE launch updates every element of every tensor of the table (one block per chunk); see
// fused_sgd.h for the rule, which is shared with the CPU loop (sgd_element). p, g (and the momentum buffer) are read
// once with 16-byte loads and p (and the buffer) written once; step counters, clip scales and the non-finite flag are
// read on the device.
#include "cuda/multi_tensor.cuh"
#include "fused_sgd.h"
#include "grad_norm.h"

namespace gradcore {

namespace {

template <typename T, bool kMomentum>
__global__ void __launch_bounds__(kMultiTensorThreads)
    fused_sgd_kernel(TensorTableView table, SgdParams params, const double* grad_scales,
                     const double* nonfinite_state) {
  if (nonfinite_state && nonfinite_state[kStateNonfinite] != 0.0) return;  // the whole step is skipped
  advance_steps_of_empty_tensors(table);
  if (blockIdx.x >= table.n_chunks) return;
  const ChunkEntry ch = table.chunks[blockIdx.x];
  const TensorEntry e = table.tensors[ch.tensor];
  const double step = e.step ? *e.step : 0.0;
  const double scale = grad_scales ? grad_scales[params.scale_offset + ch.tensor] : 1.0;
  const SgdScalars<T> s = sgd_scalars<T>(params, params.groups[e.group], step, scale);
  T* __restrict__ p = static_cast<T*>(e.column[kParamColumn]);
  const T* __restrict__ g = static_cast<const T*>(e.column[kGradColumn]);
  T* __restrict__ b = static_cast<T*>(e.column[kSgdColumnMomentum]);
  const ChunkRange r = chunk_range<T>(e, ch);
  constexpr int P = Pack<T>::size;
  for (int64_t i = r.begin + (int64_t)threadIdx.x * P; i < r.packed_end; i += (int64_t)kMultiTensorThreads * P) {
    Pack<T> pp = load_pack(p + i), gg = load_pack(g + i), bb;
    // The first step writes the buffer without reading it (it starts as the gradient).
    if (kMomentum && !s.first_step) bb = load_pack(b + i);
#pragma unroll
    for (int k = 0; k < P; ++k) {
      T unused = T(0);
      sgd_element<T, kMomentum>(pp.v[k], gg.v[k], kMomentum ? bb.v[k] : unused, s);
    }
    store_pack(p + i, pp);
    if (kMomentum) store_pack(b + i, bb);
  }
  for (int64_t i = r.packed_end + threadIdx.x; i < r.end; i += kMultiTensorThreads) {
    T unused = T(0);
    sgd_element<T, kMomentum>(p[i], g[i], kMomentum ? b[i] : unused, s);
  }
  if (e.step) finish_chunk_and_advance_step(table, e, ch.tensor, step);
}

}  // namespace

void fused_sgd_cuda(const TensorTableView& table, const SgdParams& params, const Array& grad_scales,
                    const Array& nonfinite_state) {
  if (table.n_tensors == 0) return;
  cudaStream_t s = table_stream(table);
  const double* scales = grad_scales.data() ? grad_scales.data_as<double>() : nullptr;
  const double* flag = nonfinite_state.data() ? nonfinite_state.data_as<double>() : nullptr;
  dispatch_float(table.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (params.momentum) {
      cuda::launch("fused_sgd_kernel", fused_sgd_kernel<T, true>, multi_tensor_grid(table), kMultiTensorThreads, s,
          table, params, scales, flag);
    } else {
      cuda::launch("fused_sgd_kernel", fused_sgd_kernel<T, false>, multi_tensor_grid(table), kMultiTensorThreads, s,
          table, params, scales, flag);
    }
  });
}

}  // namespace gradcore
