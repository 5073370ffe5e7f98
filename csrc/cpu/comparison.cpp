// CPU comparisons and where; the rules are in comparison.h. Each output element is computed on its own, so the
// OpenMP split changes nothing in the result.
#include "comparison.h"
#include <algorithm>
#include <string>
#include "cpu/parallel.h"

namespace gradcore {

WhereLayout where_layout(const Shape& cond, const Shape& a, const Shape& b) {
  check_max_dims(cond, "condition", "where");
  check_max_dims(a, "input", "where");
  check_max_dims(b, "other", "where");
  const Shape* shapes[3] = {&cond, &a, &b};
  const char* names[3] = {"condition", "input", "other"};
  WhereLayout l;
  l.ndim = (int)std::max({cond.size(), a.size(), b.size()});
  int64_t* strides[3] = {l.cond_stride, l.a_stride, l.b_stride};
  for (int d = l.ndim - 1; d >= 0; --d) {
    int64_t size = 1;
    for (int k = 0; k < 3; ++k) {
      const int i = d - (l.ndim - (int)shapes[k]->size());
      const int64_t dk = i >= 0 ? (*shapes[k])[i] : 1;
      if (dk != 1 && size != 1 && dk != size)
        throw ArgError(std::string(names[k]) + ": shape " + shape_str(*shapes[k]) + " does not broadcast with " +
                       "condition " + shape_str(cond) + ", input " + shape_str(a) + " and other " + shape_str(b));
      if (dk != 1) size = dk;
    }
    l.out_shape[d] = size;
  }
  for (int k = 0; k < 3; ++k) {
    int64_t run = 1;
    for (int d = l.ndim - 1; d >= 0; --d) {
      const int i = d - (l.ndim - (int)shapes[k]->size());
      const int64_t dk = i >= 0 ? (*shapes[k])[i] : 1;
      strides[k][d] = dk == 1 ? 0 : run;
      run *= dk;
    }
  }
  l.numel = 1;
  for (int d = 0; d < l.ndim; ++d) l.numel *= l.out_shape[d];
  return l;
}

void compare_cpu(const Array& a, const Array& b, Array& out, CompareOp op, const BroadcastLayout& layout) {
  const int64_t n = layout.numel;
  if (n == 0) return;
  bool* po = out.data_as<bool>();
  dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pa = a.data_as<T>();
    const T* pb = b.data_as<T>();
    dispatch_compare(op, [&](auto op_constant) {
      constexpr CompareOp OP = decltype(op_constant)::value;
      if (layout.same_shape) {
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
        for (int64_t i = 0; i < n; ++i) po[i] = apply_compare<OP, T>(pa[i], pb[i]);
        return;
      }
      // Rows along the last dimension, as binary_cpu: one offset computation per row.
      const int last = layout.ndim - 1;
      const int64_t row_len = layout.ndim ? layout.out_shape[last] : 1;
      const int64_t rows = n / row_len;
      const int64_t sa = layout.ndim ? layout.a_stride[last] : 0, sb = layout.ndim ? layout.b_stride[last] : 0;
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
      for (int64_t r = 0; r < rows; ++r) {
        int64_t oa, ob;
        broadcast_offsets(layout, r * row_len, oa, ob);
        bool* row_out = po + r * row_len;
        for (int64_t j = 0; j < row_len; ++j) row_out[j] = apply_compare<OP, T>(pa[oa + j * sa], pb[ob + j * sb]);
      }
    });
  });
}

void where_cpu(const Array& cond, const Array& a, const Array& b, Array& out, const WhereLayout& layout) {
  const int64_t n = layout.numel;
  if (n == 0) return;
  const bool* pc = cond.data_as<bool>();
  dispatch_all(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* pa = a.data_as<T>();
    const T* pb = b.data_as<T>();
    T* po = out.data_as<T>();
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) {
      int64_t oc, oa, ob;
      where_offsets(layout, i, oc, oa, ob);
      po[i] = pc[oc] ? pa[oa] : pb[ob];
    }
  });
}

}  // namespace gradcore
