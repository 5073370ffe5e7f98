// CUDA fused Adam/AdamW: ONE launch updates every element of every tensor of the table (one block per chunk);
// see fused_adam.h for the rule, which is shared with the CPU loop (adam_element). Each element's p, g, m, v
// (v_max) are read once with 16-byte loads and p, m, v (v_max) written once. The step counters, the clip scales and
// the non-finite flag are read on the device, so the launch needs no synchronisation with the host.
#include "cuda/multi_tensor.cuh"
#include "fused_adam.h"
#include "grad_norm.h"

namespace gradcore {

namespace {

template <typename T, bool kAmsgrad>
__global__ void __launch_bounds__(kMultiTensorThreads)
    fused_adam_kernel(TensorTableView table, AdamParams params, const double* grad_scales,
                      const double* nonfinite_state) {
  if (nonfinite_state && nonfinite_state[kStateNonfinite] != 0.0) return;  // the whole step is skipped
  advance_steps_of_empty_tensors(table);
  if (blockIdx.x >= table.n_chunks) return;
  const ChunkEntry ch = table.chunks[blockIdx.x];
  const TensorEntry e = table.tensors[ch.tensor];
  const double step = e.step ? *e.step : 0.0;
  const double scale = grad_scales ? grad_scales[params.scale_offset + ch.tensor] : 1.0;
  const AdamScalars<T> s = adam_scalars<T>(params, params.groups[e.group], step, scale);
  T* __restrict__ p = static_cast<T*>(e.column[kParamColumn]);
  const T* __restrict__ g = static_cast<const T*>(e.column[kGradColumn]);
  T* __restrict__ m = static_cast<T*>(e.column[kAdamColumnExpAvg]);
  T* __restrict__ v = static_cast<T*>(e.column[kAdamColumnExpAvgSq]);
  T* __restrict__ v_max = static_cast<T*>(e.column[kAdamColumnMaxExpAvgSq]);
  const ChunkRange r = chunk_range<T>(e, ch);
  constexpr int P = Pack<T>::size;
  for (int64_t i = r.begin + (int64_t)threadIdx.x * P; i < r.packed_end; i += (int64_t)kMultiTensorThreads * P) {
    Pack<T> pp = load_pack(p + i), gg = load_pack(g + i), mm = load_pack(m + i), vv = load_pack(v + i), vx;
    if (kAmsgrad) vx = load_pack(v_max + i);
#pragma unroll
    for (int k = 0; k < P; ++k) {
      T unused = T(0);
      adam_element<T, kAmsgrad>(pp.v[k], gg.v[k], mm.v[k], vv.v[k], kAmsgrad ? vx.v[k] : unused, s);
    }
    store_pack(p + i, pp);
    store_pack(m + i, mm);
    store_pack(v + i, vv);
    if (kAmsgrad) store_pack(v_max + i, vx);
  }
  for (int64_t i = r.packed_end + threadIdx.x; i < r.end; i += kMultiTensorThreads) {
    T unused = T(0);
    adam_element<T, kAmsgrad>(p[i], g[i], m[i], v[i], kAmsgrad ? v_max[i] : unused, s);
  }
  if (e.step) finish_chunk_and_advance_step(table, e, ch.tensor, step);
}

}  // namespace

void fused_adam_cuda(const TensorTableView& table, const AdamParams& params, const Array& grad_scales,
                     const Array& nonfinite_state) {
  if (table.n_tensors == 0) return;
  cudaStream_t s = table_stream(table);
  const double* scales = grad_scales.data() ? grad_scales.data_as<double>() : nullptr;
  const double* flag = nonfinite_state.data() ? nonfinite_state.data_as<double>() : nullptr;
  dispatch_float(table.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (params.amsgrad) {
      cuda::launch("fused_adam_kernel", fused_adam_kernel<T, true>, multi_tensor_grid(table), kMultiTensorThreads, s,
          table, params, scales, flag);
    } else {
      cuda::launch("fused_adam_kernel", fused_adam_kernel<T, false>, multi_tensor_grid(table), kMultiTensorThreads, s,
          table, params, scales, flag);
    }
  });
}

}  // namespace gradcore
