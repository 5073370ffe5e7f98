// CPU regression losses: one loop per direction over the elements, the rules in regression_loss.h.
#include "regression_loss.h"
#include "cpu/parallel.h"

namespace gradcore {

void regression_loss_forward_cpu(const Array& x, const Array& t, Array& loss, RegressionLoss kind, double param) {
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *px = x.data_as<T>(), *pt = t.data_as<T>();
    T* out = loss.data_as<T>();
    const T a = (T)param;
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = regression_loss<T>(kind, px[i] - pt[i], a);
  });
}

void regression_loss_backward_cpu(const Array& g, const Array& x, const Array& t, Array& dx, RegressionLoss kind,
                                  double param) {
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *pg = g.data_as<T>(), *px = x.data_as<T>(), *pt = t.data_as<T>();
    T* out = dx.data_as<T>();
    const T a = (T)param;
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) out[i] = pg[i] * regression_loss_derivative<T>(kind, px[i] - pt[i], a);
  });
}

}  // namespace gradcore
