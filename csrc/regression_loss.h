// The per-element regression losses and their derivatives, with d = input - target:
//   l1:         |d|                                              d/dd: sign(d) (0 at 0)
//   smooth_l1:  |d| < beta ? d^2 / (2 beta) : |d| - beta / 2      d/dd: |d| < beta ? d / beta : sign(d)
//   huber:      |d| < delta ? d^2 / 2 : delta (|d| - delta / 2)   d/dd: |d| < delta ? d : delta sign(d)
//   squared:    d^2                                              d/dd: 2 d
// (huber = delta * smooth_l1 with beta = delta; smooth_l1 with beta = 0 is l1, which the Python layer uses.)
// The target's gradient is minus the input's. squared is mse_loss's term: one pass each way where the composed
// (x - t) * (x - t) took two forward and three backward (g d, g d, and their sum); the gradient is rounded as that
// sum was, 2 * round(g d), so the results keep their bits (round(g * 2d) differs where g d is subnormal).
// Each element is computed alone, so results are the same bits on any thread count, and both devices use the
// rules below.
#pragma once
#include <cstdint>
#include "array.h"
#include "host_device.h"

namespace gradcore {

enum class RegressionLoss { l1, smooth_l1, huber, squared };

template <typename T> GRADCORE_HD T sign_of(T d) { return d > T(0) ? T(1) : (d < T(0) ? T(-1) : d); }  // NaN: NaN

template <typename T> GRADCORE_HD T regression_loss(RegressionLoss kind, T d, T param) {
  if (kind == RegressionLoss::squared) return d * d;
  const T a = fabs(d);
  if (kind == RegressionLoss::l1) return a;
  if (kind == RegressionLoss::smooth_l1) return a < param ? T(0.5) * d * d / param : a - T(0.5) * param;
  return a < param ? T(0.5) * d * d : param * (a - T(0.5) * param);
}

template <typename T> GRADCORE_HD T regression_loss_derivative(RegressionLoss kind, T d, T param) {
  if (kind == RegressionLoss::l1) return sign_of(d);
  const bool inside = fabs(d) < param;
  if (kind == RegressionLoss::smooth_l1) return inside ? d / param : sign_of(d);
  return inside ? d : param * sign_of(d);
}

// g * dloss/dd for one element: what the backward kernels write.
template <typename T> GRADCORE_HD T regression_loss_gradient(RegressionLoss kind, T g, T d, T param) {
  if (kind == RegressionLoss::squared) {
    const T gd = g * d;
    return T(2) * gd;  // = gd + gd exactly; written as a product so no compiler contracts it into fma(g, d, gd)
  }
  return g * regression_loss_derivative(kind, d, param);
}

// loss (n) from x and t (n).
void regression_loss_forward_cpu(const Array& x, const Array& t, Array& loss, RegressionLoss kind, double param);
// dx = G * dloss/dd per element (n), with G = g per element (g: n elements, scale 1), or the gradient of the loss's
// mean or sum, G = scale * g for every element (g: one element; scale 1/n or 1), rounded as the broadcast
// scale * g of the composed reduction was.
void regression_loss_backward_cpu(const Array& g, double scale, const Array& x, const Array& t, Array& dx,
                                  RegressionLoss kind, double param);
#ifdef GRADCORE_WITH_CUDA
void regression_loss_forward_cuda(const Array& x, const Array& t, Array& loss, RegressionLoss kind, double param);
void regression_loss_backward_cuda(const Array& g, double scale, const Array& x, const Array& t, Array& dx,
                                   RegressionLoss kind, double param);
#endif

}  // namespace gradcore
