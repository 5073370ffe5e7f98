// Comparisons and selection, on every dtype (float32, float64, int64, bool), with numpy broadcasting:
//   compare(a, b; op) -> bool:  eq a == b, ne a != b, lt a < b, le a <= b, gt a > b, ge a >= b  (IEEE: every
//                                comparison with NaN is false except ne), logical_and (a != 0) && (b != 0),
//                                logical_or, logical_xor
//   where(cond, a, b)[i] = cond[i] ? a[i] : b[i]   (cond bool; a and b of one dtype, the output's; all three
//                                                    broadcast together)
// Both operands of compare have one dtype: the Python layer promotes mixed operands first (PyTorch's rules). The
// gradients of where (g to a where cond holds, to b elsewhere) are where(cond, g, 0) and where(cond, 0, g), summed
// to a's and b's shapes by the caller: no kernel of their own.
#pragma once
#include <cstdint>
#include <type_traits>
#include "array.h"
#include "host_device.h"
#include "layout.h"

namespace gradcore {

enum class CompareOp { eq, ne, lt, le, gt, ge, logical_and, logical_or, logical_xor };

template <CompareOp OP, typename T> GRADCORE_HD bool apply_compare(T x, T y) {
  if constexpr (OP == CompareOp::eq) return x == y;
  if constexpr (OP == CompareOp::ne) return x != y;
  if constexpr (OP == CompareOp::lt) return x < y;
  if constexpr (OP == CompareOp::le) return x <= y;
  if constexpr (OP == CompareOp::gt) return x > y;
  if constexpr (OP == CompareOp::ge) return x >= y;
  if constexpr (OP == CompareOp::logical_and) return (x != T(0)) && (y != T(0));
  if constexpr (OP == CompareOp::logical_or) return (x != T(0)) || (y != T(0));
  if constexpr (OP == CompareOp::logical_xor) return (x != T(0)) != (y != T(0));
  return false;
}

#define GRADCORE_COMPARE_CASE(NAME) \
  case CompareOp::NAME: return fn(std::integral_constant<CompareOp, CompareOp::NAME>{});
template <typename Fn> void dispatch_compare(CompareOp op, Fn&& fn) {
  switch (op) {
    GRADCORE_COMPARE_CASE(eq) GRADCORE_COMPARE_CASE(ne) GRADCORE_COMPARE_CASE(lt) GRADCORE_COMPARE_CASE(le)
    GRADCORE_COMPARE_CASE(gt) GRADCORE_COMPARE_CASE(ge) GRADCORE_COMPARE_CASE(logical_and)
    GRADCORE_COMPARE_CASE(logical_or) GRADCORE_COMPARE_CASE(logical_xor)
  }
}
#undef GRADCORE_COMPARE_CASE

// How where's three inputs are read for each output element: strides 0 along broadcast dimensions.
struct WhereLayout {
  int ndim = 0;
  int64_t out_shape[kMaxDims] = {};
  int64_t cond_stride[kMaxDims] = {}, a_stride[kMaxDims] = {}, b_stride[kMaxDims] = {};
  int64_t numel = 0;
};
// Throws ArgError naming condition, input or other when the shapes do not broadcast together.
WhereLayout where_layout(const Shape& cond, const Shape& a, const Shape& b);

GRADCORE_HD void where_offsets(const WhereLayout& l, int64_t i, int64_t& oc, int64_t& oa, int64_t& ob) {
  int64_t c_off = 0, a_off = 0, b_off = 0;
  for (int d = l.ndim - 1; d >= 0; --d) {
    const int64_t k = i % l.out_shape[d];
    i /= l.out_shape[d];
    c_off += k * l.cond_stride[d];
    a_off += k * l.a_stride[d];
    b_off += k * l.b_stride[d];
  }
  oc = c_off;
  oa = a_off;
  ob = b_off;
}

void compare_cpu(const Array& a, const Array& b, Array& out, CompareOp op, const BroadcastLayout& layout);
void where_cpu(const Array& cond, const Array& a, const Array& b, Array& out, const WhereLayout& layout);
#ifdef GRADCORE_WITH_CUDA
void compare_cuda(const Array& a, const Array& b, Array& out, CompareOp op, const BroadcastLayout& layout);
void where_cuda(const Array& cond, const Array& a, const Array& b, Array& out, const WhereLayout& layout);
#endif

}  // namespace gradcore
