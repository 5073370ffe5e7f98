// CPU regression losses: one loop per direction over the elements, the rules in regression_loss.h. Each loop is
// compiled once per kind (the kind a template constant), so each vectorises without a per-element branch.
#include <type_traits>
#include "regression_loss.h"
#include "cpu/parallel.h"

namespace gradcore {

namespace {

// fn(std::integral_constant<RegressionLoss, kind>{}) for the runtime kind.
template <typename Fn> void dispatch_kind(RegressionLoss kind, Fn&& fn) {
  using K = RegressionLoss;
  switch (kind) {
    case K::l1: return fn(std::integral_constant<K, K::l1>{});
    case K::smooth_l1: return fn(std::integral_constant<K, K::smooth_l1>{});
    case K::huber: return fn(std::integral_constant<K, K::huber>{});
    case K::squared: return fn(std::integral_constant<K, K::squared>{});
  }
}

}  // namespace

void regression_loss_forward_cpu(const Array& x, const Array& t, Array& loss, RegressionLoss kind, double param) {
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *px = x.data_as<T>(), *pt = t.data_as<T>();
    T* out = loss.data_as<T>();
    const T a = (T)param;
    dispatch_kind(kind, [&](auto k) {
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
      for (int64_t i = 0; i < n; ++i) out[i] = regression_loss<T>(k.value, px[i] - pt[i], a);
    });
  });
}

void regression_loss_backward_cpu(const Array& g, double scale, const Array& x, const Array& t, Array& dx,
                                  RegressionLoss kind, double param) {
  const int64_t n = x.numel();
  const bool broadcast = g.numel() == 1;  // (n == 1 with a per-element g comes with scale 1: the same bits)
  dispatch_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *pg = g.data_as<T>(), *px = x.data_as<T>(), *pt = t.data_as<T>();
    T* out = dx.data_as<T>();
    const T a = (T)param;
    dispatch_kind(kind, [&](auto k) {
      if (broadcast) {
        const T G = (T)scale * pg[0];
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
        for (int64_t i = 0; i < n; ++i) out[i] = regression_loss_gradient<T>(k.value, G, px[i] - pt[i], a);
      } else {
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelThreshold)
        for (int64_t i = 0; i < n; ++i) out[i] = regression_loss_gradient<T>(k.value, pg[i], px[i] - pt[i], a);
      }
    });
  });
}

}  // namespace gradcore
