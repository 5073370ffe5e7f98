// The activation epilogue on the CPU (the maths: epilogue.h's activate), for the convolutions and batch_norm. Where a kernel holds the final
// values in registers it applies relu_vec (simd.h) before the store: the GEMM's micro-kernel (StripOut::relu, gemm.h)
// and the stride-decomposed tiles. Elsewhere it calls activate_span on a stretch of its output as soon as those
// values are final, while they are still in cache (conv_transpose2d's GEMM + col2im path, after its bias), or
// activate_whole after the kernel (Winograd, depthwise); batch_norm's forward applies activate_span per plane just
// written. The same per-element operation as F.relu: the same bits.
#pragma once
#include <cstdint>
#include "array.h"
#include "elementwise.h"
#include "epilogue.h"
#include "cpu/simd.h"

namespace gradcore::cpu {

// p[i] = act(p[i]) for i in [0, n). relu by whole vectors: x where x > 0 or x is NaN, else +0, lane by lane, which
// is activate's (the scalar form, with its ||, is not vectorised by GCC and ran at one element per cycle).
template <typename T> inline void activate_span(T* p, int64_t n, Activation act) {
  if (act == Activation::none) return;
  constexpr int L = Simd<T>::lanes;
  int64_t i = 0;
  for (; i + L <= n; i += L) store_vec(p + i, relu_vec(load_vec(p + i)));
  for (; i < n; ++i) p[i] = activate(p[i], Activation::relu);
}

// act(y) in place over a whole output, for the kernels without an epilogue of their own (Winograd, depthwise): F.relu's
// own loop, one pass over y.
inline void activate_whole(Array& y, Activation act) {
  if (act != Activation::none) unary_cpu(y, y, UnaryOp::relu, 0.0, 0.0);
}

}  // namespace gradcore::cpu
