// CPU elementwise loops; the maths is in elementwise.h. OpenMP splits large arrays into static chunks (each
// element's result does not depend on the split, so results are identical for any thread count).
#include "elementwise.h"
#include <algorithm>
#include <type_traits>
#include "cpu/parallel.h"

namespace gradcore {

using cpu::kParallelThreshold;

// Elements from which a unary op runs on every thread. The cheap ops (a multiply-add, a compare) are bound by memory
// and pay for the fork only at kParallelThreshold; the ones with a libm call per element (expf, logf, tanhf: 2-3 ns
// each, ~10x a cheap op) pay from 1/8 of it: the seeds' output sigmoid, 19,600 elements at B=25, ran on one thread
// (~56 us). Each element's result never depends on the split, so the bits are the same for any thread count.
template <UnaryOp OP> constexpr int64_t unary_parallel_threshold() {
  constexpr bool cheap = OP == UnaryOp::affine || OP == UnaryOp::abs || OP == UnaryOp::relu ||
                         OP == UnaryOp::leaky_relu || OP == UnaryOp::clamp || OP == UnaryOp::rdiv ||
                         OP == UnaryOp::sqrt;
  return cheap ? kParallelThreshold : kParallelThreshold / 8;
}

void unary_cpu(const Array& x, Array& y, UnaryOp op, double a, double b) {
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* in = x.data_as<T>();
    T* out = y.data_as<T>();
    const T ta = (T)a, tb = (T)b;
    dispatch_unary(op, [&](auto op_constant) {
      constexpr UnaryOp OP = decltype(op_constant)::value;
#pragma omp parallel for schedule(static) if (n >= unary_parallel_threshold<OP>())
      for (int64_t i = 0; i < n; ++i) out[i] = apply_unary<OP, T>(in[i], ta, tb);
    });
  });
}

void binary_cpu(const Array& a, const Array& b, Array& out, BinaryOp op, double param, double param2,
                const BroadcastLayout& layout) {
  const int64_t n = layout.numel;
  if (n == 0) return;
  dispatch_binary_typed(a.dtype(), op, [&](auto zero, auto op_constant) {
    using T = decltype(zero);
    constexpr BinaryOp OP = decltype(op_constant)::value;
    const T* pa = a.data_as<T>();
    const T* pb = b.data_as<T>();
    T* po = out.data_as<T>();
    const T tp = (T)param, tp2 = (T)param2;
    if (layout.same_shape) {
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) po[i] = binary_element<OP, T>(pa[i], pb[i], tp, tp2);
      return;
    }
    // Rows along the last dimension: offsets of a row's start computed once, then a strided inner loop.
    const int last = layout.ndim - 1;
    const int64_t row_len = layout.ndim ? layout.out_shape[last] : 1;
    const int64_t rows = n / row_len;
    const int64_t sa = layout.ndim ? layout.a_stride[last] : 0, sb = layout.ndim ? layout.b_stride[last] : 0;
#pragma omp parallel for schedule(static) if (n >= kParallelThreshold)
    for (int64_t r = 0; r < rows; ++r) {
      int64_t oa, ob;
      broadcast_offsets(layout, r * row_len, oa, ob);  // of the row's first element
      T* row_out = po + r * row_len;
      for (int64_t j = 0; j < row_len; ++j)
        row_out[j] = binary_element<OP, T>(pa[oa + j * sa], pb[ob + j * sb], tp, tp2);
    }
  });
}

}  // namespace gradcore
