// softmax and log_softmax along one dimension, and their backward passes.
//
// x is viewed as (outer, D, inner): D the length of the dimension, outer the product of the dimensions before it,
// inner the product of those after it. A row is one (o, i) pair: its D values lie `inner` elements apart.
//   m = max_j x_j          s = sum_j e^(x_j - m)          (m makes every exponent <= 0: no overflow for any logit)
//   softmax:     y_j = e^(x_j - m) / s
//   log_softmax: y_j = (x_j - m) - log s
// Backward, with g = dL/dy:
//   softmax:     dx_j = y_j (g_j - sum_k g_k y_k)
//   log_softmax: dx_j = g_j - e^(y_j) sum_k g_k
//
// Numerics and order. Each row takes three passes (max, sum of exponentials, output), or two for the backward
// (the row sum, output). Sums accumulate in double in an order fixed by D alone (CPU: in index order, or eight
// interleaved lanes for contiguous rows; CUDA: each lane of a warp a fixed strided subset, then a fixed shuffle
// tree), so results are bitwise reproducible and independent of the thread count. No atomics. A row whose max is
// -inf (all -inf) gives NaN, and a NaN anywhere in a row makes the row NaN, as in PyTorch.
#pragma once
#include <cstdint>
#include "array.h"
#include "fast_math.h"
#include "host_device.h"

namespace gradcore {

struct SoftmaxParams {
  int64_t outer = 1, dim = 1, inner = 1;  // x viewed as (outer, D, inner)
  bool log = false;                        // log_softmax
};

// e^x in T: the vectorisable float exponential on the host (fast_math.h, within 1.4 ulp), CUDA's own on the device.
template <typename T> GRADCORE_HD T softmax_exp(T x) {
#if defined(__CUDA_ARCH__)
  return exp(x);
#else
  if constexpr (sizeof(T) == 4) return x < -87.3f ? 0.0f : fast_expf(x);  // fast_expf clamps; e^x underflows here
  else return std::exp(x);
#endif
}

// y (outer, D, inner) from x of the same shape.
void softmax_forward_cpu(const Array& x, Array& y, const SoftmaxParams& p);
// dx from the output y and its gradient g, all of one shape.
void softmax_backward_cpu(const Array& y, const Array& g, Array& dx, const SoftmaxParams& p);
#ifdef GRADCORE_WITH_CUDA
void softmax_forward_cuda(const Array& x, Array& y, const SoftmaxParams& p);
void softmax_backward_cuda(const Array& y, const Array& g, Array& dx, const SoftmaxParams& p);
#endif

}  // namespace gradcore
