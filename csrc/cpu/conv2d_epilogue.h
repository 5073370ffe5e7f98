// The convolutions' activation epilogue on the CPU (the maths: conv2d.h's activate). Each kernel calls
// activate_span on a stretch of its output as soon as those values are final, while they are still in cache from
// the store (a task's block of y is at most kNc columns x C_out/G rows, in L2), so the fused conv + ReLU pays no
// separate pass over memory. The same per-element operation as F.relu: the same bits.
#pragma once
#include <cstdint>
#include "conv2d.h"

namespace gradcore::cpu {

// p[i] = act(p[i]) for i in [0, n).
template <typename T> inline void activate_span(T* p, int64_t n, Activation act) {
  if (act == Activation::none) return;
  for (int64_t i = 0; i < n; ++i) p[i] = activate(p[i], Activation::relu);  // (the branch hoisted out of the loop)
}

// act(y) in place over a whole output, for the kernels without an epilogue of their own (Winograd, depthwise): F.relu's
// own loop, one pass over y.
inline void activate_whole(Array& y, Activation act) {
  if (act != Activation::none) unary_cpu(y, y, UnaryOp::relu, 0.0, 0.0);
}

}  // namespace gradcore::cpu
