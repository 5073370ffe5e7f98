// The per-element regression losses and their derivatives, with d = input - target:
//   l1:         |d|                                              d/dd: sign(d) (0 at 0)
//   smooth_l1:  |d| < beta ? d^2 / (2 beta) : |d| - beta / 2      d/dd: |d| < beta ? d / beta : sign(d)
//   huber:      |d| < delta ? d^2 / 2 : delta (|d| - delta / 2)   d/dd: |d| < delta ? d : delta sign(d)
// (huber = delta * smooth_l1 with beta = delta; smooth_l1 with beta = 0 is l1, which the Python layer uses.)
// The target's gradient is minus the input's. mse_loss is composed from elementwise ops (ops/losses.py).
// Each element is computed alone, so results are the same bits on any thread count, and both devices use the
// rules below.
#pragma once
#include <cstdint>
#include "array.h"
#include "host_device.h"

namespace gradcore {

enum class RegressionLoss { l1, smooth_l1, huber };

template <typename T> GRADCORE_HD T sign_of(T d) { return d > T(0) ? T(1) : (d < T(0) ? T(-1) : d); }  // NaN: NaN

template <typename T> GRADCORE_HD T regression_loss(RegressionLoss kind, T d, T param) {
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

// loss (n) from x and t (n).
void regression_loss_forward_cpu(const Array& x, const Array& t, Array& loss, RegressionLoss kind, double param);
// dx = g * dloss/dd per element (n).
void regression_loss_backward_cpu(const Array& g, const Array& x, const Array& t, Array& dx, RegressionLoss kind,
                                  double param);
#ifdef GRADCORE_WITH_CUDA
void regression_loss_forward_cuda(const Array& x, const Array& t, Array& loss, RegressionLoss kind, double param);
void regression_loss_backward_cuda(const Array& g, const Array& x, const Array& t, Array& dx, RegressionLoss kind,
                                   double param);
#endif

}  // namespace gradcore
